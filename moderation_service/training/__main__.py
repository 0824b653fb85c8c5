"""``python -m moderation_service.training`` is ``moderation-service train``."""

from moderation_service.cli import app

app(["train"])
