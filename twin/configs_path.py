"""Where the Hydra configs live, installed or in a source checkout."""
from __future__ import annotations

from pathlib import Path


def config_dir() -> Path:
    """``twin/configs`` when installed, else the checkout's ``configs/``."""
    here = Path(__file__).resolve().parent
    installed = here / "configs"
    if (installed / "config.yaml").is_file():
        return installed
    return here.parent / "configs"
