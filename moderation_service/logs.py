"""JSON logs with a fixed set of fields: request id, route, status, latency, action, and so on.

Only whitelisted ``extra`` fields are written, so a stray ``extra={"text": ...}`` can never put a
post into a log line. Messages themselves are constant strings chosen in this code base.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback

__all__ = ["SAFE_FIELDS", "JsonFormatter", "configure_logging", "json_logging_active"]

SAFE_FIELDS = (
    "request_id", "route", "method", "status", "latency_ms", "action", "classifier", "error",
    "problems", "versions", "submission", "queue", "attempt",
)  # fmt: skip


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage()[:500],
        }
        for field in SAFE_FIELDS:
            if field in record.__dict__:
                entry[field] = record.__dict__[field]
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__  # the type only: messages may quote input
            # Where it happened (file, line, function; never a message or a local value), for whoever debugs it.
            entry["frames"] = [f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(record.exc_info[2])][-12:]
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Route every logger (ours, uvicorn's, RQ's) through one JSON handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "rq.worker"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False  # replaced by our request log, which has the route template, not raw paths


def json_logging_active() -> bool:
    """Whether this process logs JSON (a server or worker): then even a crash must be one JSON line."""
    return any(isinstance(handler.formatter, JsonFormatter) for handler in logging.getLogger().handlers)
