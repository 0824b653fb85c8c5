"""Rulebooks, their published code of conduct, reloads, and signposting: what the API shows besides decisions."""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import BaseModel

from moderation_service.core.decision import Signposting
from moderation_service.core.rulebook.render import render_html, render_markdown
from moderation_service.errors import RulebookError
from moderation_service.service.parts import Services
from moderation_service.service.rulebook_sync import live_version, publish

__all__ = [
    "Readiness",
    "Reloaded",
    "RulebookSummary",
    "code_of_conduct",
    "publish_versions",
    "readiness",
    "reload_quietly",
    "reload_rulebooks",
    "rulebooks",
    "signposting",
]

log = logging.getLogger(__name__)


class RulebookSummary(BaseModel):
    name: str
    title: str
    community: str
    version: str
    version_note: str
    categories: list[str]
    rules: int


class Readiness(BaseModel):
    ready: bool
    rulebooks: dict[str, str]
    models: list[str]
    rulebook_version: str | None = None  # digest of every live rulebook: the same in every process once converged
    rulebooks_current: bool = True  # False while this process's rules differ from the version published in Redis


class Reloaded(BaseModel):
    reloaded: dict[str, str]
    rulebook_version: str
    published: bool  # False: Redis was down, so other processes keep their rules until they next reload


def rulebooks(services: Services) -> tuple[str, list[RulebookSummary]]:
    """The default rulebook's name and a summary of every live one."""
    books = services.pipeline.rulebooks
    return books.default, [
        RulebookSummary(
            name=b.name,
            title=b.title,
            community=b.community,
            version=b.version,
            version_note=b.version_note,
            categories=list(b.categories),
            rules=len(b.rules),
        )
        for b in books.all()
    ]


def code_of_conduct(services: Services, name: str, format: Literal["md", "html"]) -> str:
    """Rendered from the rulebook that is enforced, so what members read cannot drift from it."""
    book = services.pipeline.rulebooks.get(name)
    return render_markdown(book) if format == "md" else render_html(book)


def reload_rulebooks(services: Services) -> Reloaded:
    """Reload from disk and publish the result, so every API and worker process follows within seconds.

    An invalid file raises RulebookError and the last good rulebooks stay live (nothing is published).
    """
    versions = services.pipeline.rulebooks.reload()
    published = publish(services)
    return Reloaded(reloaded=versions, rulebook_version=live_version(services), published=published)


def reload_quietly(services: Services) -> None:
    """SIGHUP: the same reload, reported in the log instead of an HTTP answer."""
    try:
        reloaded = reload_rulebooks(services)
    except RulebookError as exc:
        log.error("rulebook reload refused; last good rulebooks stay live", extra={"problems": [str(p) for p in exc.problems]})
        return
    log.info("rulebooks reloaded", extra={"versions": reloaded.reloaded})


def publish_versions(services: Services) -> None:
    """The loaded rulebook and model versions, as the ``moderation_version_info`` metric."""
    if services.metrics is not None:
        books = services.pipeline.rulebooks.all()
        services.metrics.set_versions(((b.name, b.version) for b in books), services.pipeline.model_versions)


def signposting(services: Services, locale: str | None) -> Signposting:
    return services.pipeline.directory.lookup(locale or services.pipeline.options.default_locale)


def readiness(services: Services) -> Readiness:
    books = services.pipeline.rulebooks
    if not books.loaded:
        return Readiness(ready=False, rulebooks={}, models=[])
    live = live_version(services)
    published = services.rulebook_sync.published
    return Readiness(
        ready=True,
        rulebooks={b.name: b.version for b in books.all()},
        models=[str(m) for m in services.pipeline.model_versions],
        rulebook_version=live,
        rulebooks_current=published is None or published == live,
    )
