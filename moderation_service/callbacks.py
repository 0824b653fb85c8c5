"""Where a webhook may go: an allow-list of origins (scheme, host, port), and the one address it connects to.

A callback URL is checked twice. When it is submitted, its origin must be on the operator's list (a
bare host on the list means ``https`` on port 443, so a client cannot aim at ``:6379`` of an allowed
host). When it is delivered, its host name is resolved once, every address it resolves to must be
public (not private, loopback, link-local, reserved or multicast) unless the operator allowed its
network, and the request goes to that checked address, so a name that re-resolves to an internal
address between check and connect (DNS rebinding) cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from moderation_service.errors import InputError

__all__ = [
    "CallbackRefused",
    "Origin",
    "ResolvedCallback",
    "check_callback_url",
    "parse_allowed_origin",
    "resolve_callback",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_DEFAULT_PORTS = {"http": 80, "https": 443}


class CallbackRefused(InputError):
    """A callback whose origin or address is not allowed (HTTP 422 at submission; never retried at delivery)."""


@dataclass(frozen=True)
class Origin:
    """``scheme://host:port``; ``host`` may start with ``*.`` (any sub-domain) in an allow-list entry."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def admits(self, other: Origin) -> bool:
        if (self.scheme, self.port) != (other.scheme, other.port):
            return False
        if self.host.startswith("*."):
            return other.host.endswith(self.host[1:]) and other.host != self.host[2:]
        return self.host == other.host


def _ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def parse_allowed_origin(entry: str) -> Origin:
    """An allow-list entry: ``host`` (https, 443), ``https://host``, ``http://host:8080``; ValueError naming what is wrong."""
    text = entry.strip().lower()
    parts = urlsplit(text if "://" in text else f"https://{text}")
    if parts.scheme not in _DEFAULT_PORTS:
        raise ValueError(f"callback origin {entry!r}: the scheme must be http or https")
    if not parts.hostname or parts.username or parts.password or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"callback origin {entry!r} must be scheme://host[:port] and nothing more")
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError as exc:
        raise ValueError(f"callback origin {entry!r}: invalid port") from exc
    return Origin(parts.scheme, parts.hostname, port)


def _origin_of(url: str) -> tuple[Origin, str]:
    """The URL's origin and its path with query (what the request asks the receiver for)."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise CallbackRefused("callback_url must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise CallbackRefused("callback_url may not carry credentials")
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError as exc:
        raise CallbackRefused("callback_url has an invalid port") from exc
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Origin(parts.scheme, parts.hostname.lower().rstrip("."), port), target


def _address_allowed(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in networks):
        return True
    return address.is_global and not address.is_multicast


def _refuse_address(address: IPAddress) -> CallbackRefused:
    return CallbackRefused(
        f"callback address {address} is private, loopback, link-local or reserved; "
        "allow its network explicitly (MODERATION_CALLBACK_ALLOWED_NETWORKS) if that is intended"
    )


def check_callback_url(url: str, allowed: Sequence[str], networks: Sequence[IPNetwork] = ()) -> str:
    """The URL if its origin is allow-listed (and, for an IP literal, its address allowed); CallbackRefused naming why not."""
    origin, _ = _origin_of(url)
    if not allowed:
        raise CallbackRefused("callbacks are disabled: the operator has not allow-listed any origin (MODERATION_CALLBACK_ALLOWED_HOSTS)")
    if not any(parse_allowed_origin(entry).admits(origin) for entry in allowed):
        raise CallbackRefused(f"callback origin {origin} is not on the operator's allow-list")
    address = _ip(origin.host)
    if address is not None and not _address_allowed(address, networks):
        raise _refuse_address(address)
    return url


@dataclass(frozen=True)
class ResolvedCallback:
    """What to connect to (``url`` names the checked address) and the name the receiver expects (Host, TLS SNI)."""

    url: str
    host_header: str
    sni_hostname: str | None


def resolve_callback(url: str, allowed: Sequence[str], networks: Sequence[IPNetwork] = ()) -> ResolvedCallback:
    """Check the URL again, resolve its host once, refuse it unless every address is allowed; OSError when DNS fails."""
    check_callback_url(url, allowed, networks)
    origin, target = _origin_of(url)
    literal = _ip(origin.host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        infos = socket.getaddrinfo(origin.host, origin.port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    for address in addresses:
        if not _address_allowed(address, networks):
            raise _refuse_address(address)
    chosen = addresses[0]
    host = f"[{chosen}]" if chosen.version == 6 else str(chosen)
    default = _DEFAULT_PORTS[origin.scheme] == origin.port
    name = f"[{origin.host}]" if ":" in origin.host else origin.host
    return ResolvedCallback(
        url=f"{origin.scheme}://{host}:{origin.port}{target}",
        host_header=name if default else f"{name}:{origin.port}",
        sni_hostname=origin.host if origin.scheme == "https" and literal is None else None,
    )
