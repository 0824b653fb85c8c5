"""The community's code of conduct as data: schema, loading, matching, tests and rendering."""

from moderation_service.rulebook.loader import Rulebook, load_rulebook
from moderation_service.rulebook.registry import RulebookSet

__all__ = ["Rulebook", "RulebookSet", "load_rulebook"]
