"""The classifier extension point: a small Protocol and one registry of named factories.

Names resolve through ``REGISTRY``; anything else is treated as a dotted path
``package.module:factory``, so operators can plug in their own model without forking.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from moderation_service.core.options import ClassifierOptions
from moderation_service.errors import ConfigError

__all__ = ["REGISTRY", "Classifier", "ClassifierFactory", "create_classifier"]


@runtime_checkable
class Classifier(Protocol):
    """Scores texts; each score is a calibrated probability in [0, 1] per label."""

    name: str
    version: str
    labels: tuple[str, ...]

    def predict(self, texts: Sequence[str]) -> list[dict[str, float]]: ...


ClassifierFactory = Callable[[ClassifierOptions], Classifier]

REGISTRY: dict[str, str] = {
    "embedded": "moderation_service.core.classifiers.embedded:from_options",
    "detoxify": "moderation_service.core.classifiers.detoxify_backend:from_options",
}


def create_classifier(name: str, options: ClassifierOptions) -> Classifier:
    """Build the classifier called ``name`` (a registry name or ``module:factory``)."""
    target = REGISTRY.get(name, name)
    module_name, _, attribute = target.partition(":")
    if not attribute:
        raise ConfigError(f"unknown classifier {name!r}; known: {', '.join(sorted(REGISTRY))} or module:factory")
    try:
        factory: ClassifierFactory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load classifier {name!r} from {target}: {exc}") from exc
    classifier = factory(options)
    if not isinstance(classifier, Classifier):
        raise ConfigError(f"{target} did not return a Classifier")
    return classifier
