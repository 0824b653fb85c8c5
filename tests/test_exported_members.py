"""Every public module's ``__all__`` names things that exist, and nothing public is left out of it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest
import typer
from fastapi import APIRouter

import moderation_service

# Optional heavy backends (torch, detoxify) are imported only where used.
SKIP = {"moderation_service.core.classifiers.minilm_model", "moderation_service.core.classifiers.detoxify_backend"}


def modules() -> list[str]:
    found = pkgutil.walk_packages(moderation_service.__path__, "moderation_service.")
    return [m.name for m in found if m.name not in SKIP and not m.name.endswith("__main__")]  # __main__ runs the CLI


def _handlers(module: ModuleType) -> set[object]:
    """Route and command functions: reached through the module's router or Typer app, never imported by name."""
    found: set[object] = set()
    for value in vars(module).items():
        if isinstance(value[1], APIRouter):
            found |= {getattr(route, "endpoint", None) for route in value[1].routes}
        if isinstance(value[1], typer.Typer):
            found |= {command.callback for command in value[1].registered_commands}
    return found


def public_definitions(module: ModuleType) -> set[str]:
    """Classes and functions written in this module (not imported into it) whose names are public."""
    handlers = _handlers(module)
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", None) == module.__name__
        and value not in handlers
    }


def left_out(module: ModuleType) -> set[str]:
    return public_definitions(module) - set(getattr(module, "__all__", ()))


@pytest.mark.parametrize("name", modules())
def test_all_is_honest(name: str) -> None:
    module: ModuleType = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        assert hasattr(module, "__path__") and not public_definitions(module), f"{name} has no __all__"
        return
    for member in exported:
        assert hasattr(module, member), f"{name}.__all__ names missing {member}"
    assert not left_out(module), f"{name} defines public {sorted(left_out(module))} but leaves them out of __all__"


def test_the_left_out_check_can_fail() -> None:
    """The second half above must be able to fail: a module with a public class not in ``__all__`` is caught."""
    module = ModuleType("example")
    exec("__all__ = ['Kept']\nclass Kept: ...\nclass Forgotten: ...\ndef _private(): ...", module.__dict__)  # noqa: S102
    assert left_out(module) == {"Forgotten"}
