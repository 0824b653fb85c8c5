"""Every public module's ``__all__`` names things that exist, and nothing public is left out."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest

import moderation_service

SKIP = {"moderation_service.classifiers.minilm_model", "moderation_service.classifiers.detoxify_backend"}


def modules() -> list[str]:
    found = pkgutil.walk_packages(moderation_service.__path__, "moderation_service.")
    return [m.name for m in found if m.name not in SKIP and not m.name.endswith("__main__")]  # __main__ runs the CLI


@pytest.mark.parametrize("name", modules())
def test_all_is_honest(name: str) -> None:
    module: ModuleType = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        assert module.__name__.endswith("__init__") or hasattr(module, "__path__") or name.endswith("__main__"), f"{name} has no __all__"
        return
    for member in exported:
        assert hasattr(module, member), f"{name}.__all__ names missing {member}"
