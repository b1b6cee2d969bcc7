"""Where the Hydra configs live, installed or in a source checkout."""
from __future__ import annotations

from pathlib import Path


def config_dir() -> Path:
    """``twin/configs`` when installed, else the checkout's ``configs/``.

    Every Hydra composition starts here, so this also registers the typed schemas that
    config.yaml and maintain.yaml extend (twin.schema).
    """
    from twin.schema import register

    register()
    here = Path(__file__).resolve().parent
    installed = here / "configs"
    if (installed / "config.yaml").is_file():
        return installed
    return here.parent / "configs"
