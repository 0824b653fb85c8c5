"""The community's code of conduct as data: schema, loading, matching, tests and rendering."""

from moderation_service.core.rulebook.loader import Rulebook, load_rulebook
from moderation_service.core.rulebook.registry import RulebookSet

__all__ = ["Rulebook", "RulebookSet", "load_rulebook"]
