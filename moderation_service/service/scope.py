"""Which community a post belongs to, and whether the caller's scope reaches it (one check for every write)."""

from __future__ import annotations

from collections.abc import Sequence

from moderation_service.core.post import PostIn
from moderation_service.errors import ForbiddenError
from moderation_service.service.parts import Services
from moderation_service.store import Scope

__all__ = ["Scope", "community_of", "require_communities"]


def community_of(services: Services, post: PostIn) -> str:
    """The rulebook the post is judged under (its community, or the default): escalations are filed under it."""
    return services.pipeline.rulebooks.get(post.community).name


def require_communities(services: Services, scope: Scope, posts: Sequence[PostIn]) -> None:
    """ForbiddenError (403) when a key limited to some communities sends a post for another one."""
    if not scope.communities:
        return
    for index, post in enumerate(posts):
        community = community_of(services, post)
        if community not in scope.communities:
            where = f"items[{index}]: " if len(posts) > 1 else ""
            raise ForbiddenError(f"{where}this key may not post to community {community!r}")
