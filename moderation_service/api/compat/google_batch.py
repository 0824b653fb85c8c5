"""Google's batch protocol (``multipart/mixed`` of ``application/http`` parts), parsed and answered with the
standard library's MIME parser, so ``BatchHttpRequest`` of google-api-python-client works unchanged.

Each part is one HTTP request (request line, headers, blank line, body); the answer has one part per
request, in order, whose ``Content-ID`` is ``response-`` plus the request's.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["BatchError", "BatchPart", "parse_batch", "render_batch"]

MAX_PARTS = 100


class BatchError(ValueError):
    """A body that is not a batch of HTTP requests (the message is safe to show)."""


@dataclass(frozen=True)
class BatchPart:
    content_id: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes


def _request(content_id: str, payload: bytes) -> BatchPart:
    head, _, body = payload.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = head.decode("utf-8", "replace").split("\n")
    request_line = lines[0].split(" ")
    if len(request_line) != 3 or not request_line[2].startswith("HTTP/"):
        raise BatchError("a batch part does not start with an HTTP request line")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    target = urlsplit(request_line[1])
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    return BatchPart(content_id, request_line[0].upper(), target.path, query, headers, body.rstrip(b"\n") if body else b"")


def parse_batch(content_type: str, body: bytes) -> list[BatchPart]:
    """The requests inside a ``multipart/mixed`` batch body, in order."""
    if not content_type.lower().startswith("multipart/mixed"):
        raise BatchError("a batch request must be multipart/mixed")
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise BatchError("the batch body is not multipart/mixed")
    parts = list(message.iter_parts())
    if not parts or len(parts) > MAX_PARTS:
        raise BatchError(f"a batch holds 1 to {MAX_PARTS} requests")
    out = []
    for index, part in enumerate(parts):
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            raise BatchError("a batch part is not an HTTP request")
        content_id = " ".join(str(part.get("Content-ID", f"<item + {index}>")).split())  # one line: it is echoed in a header
        out.append(_request(content_id, payload))
    return out


def render_batch(answers: list[tuple[str, int, dict[str, Any]]]) -> tuple[str, bytes]:
    """(content type, body) for (request Content-ID, status, JSON body) answers."""
    boundary = "batch_" + uuid.uuid4().hex
    chunks = []
    for content_id, status, payload in answers:
        inner = content_id[1:-1] if content_id.startswith("<") and content_id.endswith(">") else content_id
        reason = HTTPStatus(status).phrase
        body = json.dumps(payload)
        chunks.append(
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <response-{inner}>\r\n\r\n"
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{body}\r\n"
        )
    chunks.append(f"--{boundary}--\r\n")
    return f"multipart/mixed; boundary={boundary}", "".join(chunks).encode()
