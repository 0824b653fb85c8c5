"""Where a rule file may point (``extends:``, lexicon files): only at files inside the rules folders.

A reference is a plain relative path (no ``..``, not absolute, no ``~`` or backslash), looked up in the
rule file's own folder and then the live rules folder, and kept only if it still lies inside that folder
once links are resolved. A rule file must never be a way to read other files on the server.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

__all__ = ["find_confined", "is_plain_reference", "search_folders"]


def is_plain_reference(ref: str) -> bool:
    """A relative path that cannot climb out of the folder it is read from."""
    path = PurePosixPath(ref)
    return bool(ref.strip()) and not path.is_absolute() and ".." not in path.parts and "\\" not in ref and not ref.startswith("~")


def search_folders(rule_file: Path, rules_dir: Path | None) -> list[Path]:
    """The rule file's folder, then the rules folder (each resolved once)."""
    return list(dict.fromkeys(f.resolve() for f in [rule_file.parent, *([rules_dir] if rules_dir is not None else [])]))


def find_confined(ref: str, folders: list[Path]) -> Path | None:
    """The first existing file ``ref`` names inside one of ``folders`` (links leading out do not count)."""
    if not is_plain_reference(ref):
        return None
    for folder in folders:
        candidate = (folder / ref).resolve()
        if candidate.is_relative_to(folder) and candidate.is_file():
            return candidate
    return None
