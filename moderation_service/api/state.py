"""What the app holds for its lifetime: the keys, and the service parts built once in the lifespan hook."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from moderation_service.keys import LiveKeys
from moderation_service.service import Services

__all__ = ["AppState", "services_of", "state_of"]


@dataclass
class AppState:
    keys: LiveKeys
    services: Services


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.moderation
    return state


def services_of(request: Request) -> Services:
    return state_of(request).services
