"""Where the shared data sets live (SMT2020 tables, the SMAT2022 floor), from anywhere.

Looked for, in order: an explicit folder (a config key or a command-line option), the data set's own
environment variable, ``$FABTWIN_DATA/<name>``, then ``shared/data/<name>`` beside the checkout the
package runs from or any folder above it, then the same above the working folder.  A lookup that
finds nothing says where it looked and how to point to the data, in one line.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_ENV = "FABTWIN_DATA"  # a folder holding smt2020/ and smat2022/
ANCESTORS = 4  # folders above the checkout (or the working folder) searched for shared/data


@dataclass(frozen=True)
class Found:
    """A data folder, or None with every place tried; ``how`` says which rule found it."""

    path: Path | None
    how: str
    tried: tuple[str, ...]


def candidates(name: str, explicit=None, env: str | None = None) -> list[tuple[Path, str]]:
    """(folder, how) in lookup order; an explicit folder or a set environment variable is the only one."""
    if explicit:
        return [(Path(str(explicit)).expanduser(), "as given")]
    if env and os.environ.get(env):
        return [(Path(os.environ[env]).expanduser(), f"${env}")]
    if os.environ.get(DATA_ENV):
        return [(Path(os.environ[DATA_ENV]).expanduser() / name, f"${DATA_ENV}")]
    import twin

    out = []
    for start, what in ((Path(twin.__file__).resolve().parents[1], "beside the checkout"),
                        (Path.cwd().resolve(), "above the working folder")):
        for base in [start, *start.parents][: ANCESTORS + 1]:
            out.append((base / "shared" / "data" / name, what))
    unique: dict = {}
    for path, how in out:
        unique.setdefault(str(path), (path, how))
    return list(unique.values())


def find(name: str, marker: str, explicit=None, env: str | None = None) -> Found:
    """The first candidate folder holding ``marker`` (a file that marks the data set)."""
    tried = []
    for folder, how in candidates(name, explicit, env):
        tried.append(str(folder))
        if (folder / marker).is_file():
            return Found(folder, how, tuple(tried))
    return Found(None, "", tuple(tried))


def how_to_point(name: str, option: str) -> str:
    """The one-line hint of a failed lookup."""
    return (f"set {DATA_ENV}=/path/to/data (the folder holding {name}/) or {option}")
