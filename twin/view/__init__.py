"""3D views of a finished run: the fab floor, tool states, WIP and wafer maps.

A leaf package: ``import twin.view`` loads nothing heavy.  ``run_folder``,
``layout`` and ``geometry`` need NumPy only (testable with no display);
``scene`` imports PyVista when first used.  docs/views.md explains the views.
"""
from __future__ import annotations

import importlib

_SUBMODULES = ("run_folder", "layout", "geometry", "scene", "cli")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_SUBMODULES])
