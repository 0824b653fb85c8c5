"""Webhook keys (32+ bytes, rotation with both signatures) and the callback allow-list (origin, resolved address)."""

from __future__ import annotations

import http.server
import ipaddress
import os
import subprocess
import sys
import threading
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import ValidationError

from moderation_service.callbacks import CallbackRefused, check_callback_url, parse_allowed_origin, resolve_callback
from moderation_service.config import WebhookSettings
from moderation_service.service.notify import send_webhook
from moderation_service.webhooks import sign, verify
from tests.queue_support import free_port

NEW = "n" * 40
OLD = "o" * 40
LOOPBACK = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"callback_allowed_hosts": ["forum.example.org"]}, "unsigned"),
        ({"callback_allowed_hosts": ["forum.example.org"], "secret": "s" * 31}, "at least 32 bytes"),
        ({"secret": NEW, "previous_secret": "short-old-key"}, "at least 32 bytes"),
        ({"previous_secret": OLD}, "needs MODERATION_WEBHOOK_SECRET"),
        ({"callback_allowed_hosts": ["ftp://forum.example.org"], "secret": NEW}, "http or https"),
        ({"callback_allowed_hosts": ["https://forum.example.org/path"], "secret": NEW}, "scheme://host"),
    ],
)
def test_unsafe_webhook_settings_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WebhookSettings(**values)


def test_a_signature_is_never_made_with_an_empty_key() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        sign("", b"{}")
    with pytest.raises(ValueError, match="non-empty"):
        sign([NEW, ""], b"{}")


def test_rotation_sends_both_signatures_and_either_key_verifies() -> None:
    header = sign([NEW, OLD], b'{"a":1}')
    assert header.count("v1=") == 2
    assert verify(NEW, b'{"a":1}', header) and verify(OLD, b'{"a":1}', header)
    assert not verify("x" * 40, b'{"a":1}', header)
    assert not verify(NEW, b'{"a":2}', header)
    assert not verify(NEW, b'{"a":1}', sign([NEW], b'{"a":1}', timestamp=1))  # stale: a replay


@pytest.mark.parametrize(
    ("entry", "origin"),
    [
        ("Forum.Example.org", "https://forum.example.org:443"),
        ("https://*.example.net", "https://*.example.net:443"),
        ("http://hooks.example.org:8080", "http://hooks.example.org:8080"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_allow_list_entries_are_origins(entry: str, origin: str) -> None:
    assert str(parse_allowed_origin(entry)) == origin


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://forum.example.org/hook", True),
        ("https://forum.example.org:443/hook", True),
        ("https://forum.example.org:6379/hook", False),  # another port of an allowed host
        ("http://forum.example.org/hook", False),  # another scheme
        ("https://a.example.net/hook", True),
        ("https://example.net/hook", False),
        ("https://evil.org/hook", False),
    ],
)
def test_callback_origin_must_match_scheme_host_and_port(url: str, allowed: bool) -> None:
    settings = WebhookSettings(secret=NEW, callback_allowed_hosts=["forum.example.org", "https://*.example.net"])
    if allowed:
        assert check_callback_url(url, settings.callback_allowed_hosts) == url
    else:
        with pytest.raises(CallbackRefused, match="allow-list"):
            check_callback_url(url, settings.callback_allowed_hosts)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "192.168.0.1", "[::1]", "[::ffff:127.0.0.1]", "0.0.0.0"])
def test_private_loopback_and_link_local_addresses_are_refused_unless_allowed(address: str) -> None:
    url = f"http://{address}:8080/hook"
    allowed = [f"http://{address}:8080"]
    with pytest.raises(CallbackRefused, match="private, loopback, link-local"):
        check_callback_url(url, allowed)
    network = ipaddress.ip_network(address.strip("[]").removeprefix("::ffff:"))
    assert check_callback_url(url, allowed, [network]) == url


def test_a_name_is_resolved_once_and_its_addresses_checked() -> None:
    """``localhost`` is allow-listed by name, but resolves to loopback: refused unless that network is allowed."""
    url = "http://localhost:8080/hook?x=1"
    with pytest.raises(CallbackRefused, match="loopback"):
        resolve_callback(url, ["http://localhost:8080"])
    target = resolve_callback(url, ["http://localhost:8080"], LOOPBACK)
    parts = urlsplit(target.url)
    assert ipaddress.ip_address(parts.hostname or "").is_loopback  # the checked address, not the name
    assert parts.port == 8080 and parts.path == "/hook" and parts.query == "x=1"
    assert target.host_header == "localhost:8080" and target.sni_hostname is None


class _Receiver(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.seen.append((self.headers["Host"], self.headers["X-Moderation-Signature"], body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_delivery_connects_to_the_checked_address_with_the_name_as_host() -> None:
    """A real receiver: the request reaches the resolved address, names the allowed host, carries both signatures."""
    port = free_port()
    allowed = [f"http://localhost:{port}"]
    address = urlsplit(resolve_callback(f"http://localhost:{port}/", allowed, LOOPBACK).url).hostname or ""
    server_class = type("Server", (http.server.HTTPServer,), {"address_family": 10 if ":" in address else 2})
    receiver = server_class((address, port), _Receiver)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    _Receiver.seen.clear()
    try:
        refused = send_webhook(WebhookSettings(secret=NEW, callback_allowed_hosts=allowed), f"http://localhost:{port}/hook", b"{}")
        settings = WebhookSettings(secret=NEW, previous_secret=OLD, callback_allowed_hosts=allowed, callback_allowed_networks=LOOPBACK)
        sent = send_webhook(settings, f"http://localhost:{port}/hook", b'{"event":"decision"}')
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert refused == (False, True)  # loopback not allowed: final, never retried, nothing sent
    assert sent == (True, False)
    [(host, header, body)] = _Receiver.seen
    assert host == f"localhost:{port}" and body == b'{"event":"decision"}'
    assert verify(NEW, body, header) and verify(OLD, body, header)


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_process_with_callbacks_and_a_short_secret_refuses_to_start(command: str) -> None:
    """The real entry points: exit 2 with one line naming the variable, and the key itself never printed."""
    short = "k" * 31
    env = {**os.environ, "MODERATION_CALLBACK_ALLOWED_HOSTS": "forum.example.org", "MODERATION_WEBHOOK_SECRET": short}
    ran = subprocess.run([sys.executable, "-m", "moderation_service", command], env=env, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 2
    assert "MODERATION_WEBHOOK_SECRET must be at least 32 bytes" in ran.stderr and short not in ran.stderr + ran.stdout
