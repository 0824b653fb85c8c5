"""What the app holds for its lifetime, built once in the lifespan hook."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from moderation_service.config import Settings
from moderation_service.keys import KeyStore
from moderation_service.pipeline import Pipeline
from moderation_service.rulebook.registry import RulebookSet
from moderation_service.signposting import SignpostDirectory
from moderation_service.store import Store, StoreUnavailable

__all__ = ["AppState", "require_store", "state_of"]


@dataclass
class AppState:
    settings: Settings
    keys: KeyStore
    pipeline: Pipeline
    store: Store | None = None

    @property
    def rulebooks(self) -> RulebookSet:
        return self.pipeline.rulebooks

    @property
    def directory(self) -> SignpostDirectory:
        return self.pipeline.directory


def require_store(state: AppState) -> Store:
    """The store, or StoreUnavailable (HTTP 503 + Retry-After) when no Redis is configured."""
    if state.store is None:
        raise StoreUnavailable("the queue is not configured (MODERATION_REDIS_URL)")
    return state.store


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.moderation
    return state
