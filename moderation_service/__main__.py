"""``python -m moderation_service`` is the ``moderation-service`` command."""

from moderation_service.cli import main

main()
