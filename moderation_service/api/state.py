"""What the app holds for its lifetime: the keys, and the service parts built once in the lifespan hook."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import Request

from moderation_service.keys import LiveKeys
from moderation_service.service import Services

__all__ = ["ARRIVED", "AppState", "arrived", "services_of", "state_of"]

ARRIVED = "arrived"  # request.state key: time.monotonic() when the request reached the app (set by RequestLog)


@dataclass
class AppState:
    keys: LiveKeys
    services: Services


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.moderation
    return state


def services_of(request: Request) -> Services:
    return state_of(request).services


def arrived(request: Request) -> float:
    """When the request reached the app: a time budget counts from there, not from when its route began."""
    when = getattr(request.state, ARRIVED, None)
    return when if isinstance(when, float) else time.monotonic()
