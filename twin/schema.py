"""Typed schemas of the Hydra configs: ``config.yaml`` (twin run) and ``maintain.yaml`` (twin maintain).

Each is a dataclass stored in Hydra's ConfigStore and named first in its YAML's defaults list, so Hydra
checks every key and type while it composes: ``replicas=abc``, ``yield.defect_scal=2`` or
``backend.threads=x`` fail before the app starts (``twin.cli`` prints them as one line, exit 2).
Values (ranges, rule names) are checked by :func:`twin.app.prepare` and :func:`twin.maintain.load_study`.
The line, the study's tool and its policy grid are free mappings here: :mod:`twin.line` and
:mod:`twin.maintain` validate them field by field.

A new top-level setting goes into its YAML file and here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

RUN_SCHEMA = "run_schema"
MAINTAIN_SCHEMA = "maintain_schema"


@dataclass
class BackendConfig:
    """configs/backend/NAME.yaml: where the replications run."""

    name: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # CPU threads; 0 = all cores


@dataclass
class YieldConfig:
    """``yield:`` of config.yaml: run-level knobs of the die-level yield report."""

    enabled: bool = True
    defect_scale: float = 1.0
    alpha: Optional[float] = None
    die_size_mm: Optional[float] = None
    sample_wafers: int = 200


@dataclass
class CostConfig:
    """``objective.cost``: what a tool of a group costs, in the objective KPI's units."""

    per_tool: Dict[str, float] = field(default_factory=dict)


@dataclass
class ObjectiveConfig:
    """``objective:``: the number ``twin run`` returns to a sweeper (docs/studies.md, Optimise)."""

    kpi: Optional[str] = None
    direction: str = "minimize"  # minimize | maximize
    cost: CostConfig = field(default_factory=CostConfig)


def _with_yield(cls):
    """``yield`` is a Python keyword, so it cannot be written as a field; add it before @dataclass.
    The generated __init__/__repr__/__eq__ would name it, so they are left out: OmegaConf only reads
    the fields and their defaults."""
    cls.__annotations__["yield"] = YieldConfig
    setattr(cls, "yield", field(default_factory=YieldConfig))
    return dataclass(init=False, repr=False, eq=False, match_args=False)(cls)


@_with_yield
class RunConfig:
    """config.yaml: one ``twin run`` scenario."""

    line: Any = None  # configs/line/NAME.yaml (validated by twin.line)
    backend: BackendConfig = field(default_factory=BackendConfig)
    replicas: int = 8
    horizon_days: Optional[float] = None
    warmup_days: Optional[float] = None
    seed: int = 1
    dispatch: Optional[str] = None
    snapshot_minutes: float = 240.0
    chunk_replicas: int = 0
    max_lots: int = 0
    progress: bool = True
    resume: bool = False  # continue the run in hydra.run.dir from its checkpoint (docs/outputs.md)
    checkpoint_seconds: float = 60.0  # wall seconds between checkpoints at segment boundaries
    cluster: Optional[str] = None  # local | local-cuda | tcp://host:8786 (twin.distributed)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)


@dataclass
class WarningsConfig:
    """``warnings:`` of maintain.yaml: failure warnings raised from the sensor signal."""

    level: Optional[float] = None
    horizon_hours: float = 48.0
    window_hours: float = 96.0
    bins: int = 48


@dataclass
class MaintainConfig:
    """maintain.yaml: one ``twin maintain`` study."""

    tool: Any = None  # configs/maintain/tool/NAME.yaml (validated by twin.maintain)
    policy: Any = None  # configs/maintain/policy/NAME.yaml
    grid: Any = None  # the policy's parameter grid
    backend: BackendConfig = field(default_factory=BackendConfig)
    objective: str = "availability"
    search: str = "grid"
    samples: int = 1024
    baseline: bool = True
    replicas: int = 32
    horizon_years: float = 1.0
    seed: int = 1
    crn: bool = True
    chunk_items: int = 0
    warnings: WarningsConfig = field(default_factory=WarningsConfig)


_registered = []


def register() -> None:
    """Store the schemas in Hydra's ConfigStore, once per process (before any compose)."""
    if _registered:
        return
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name=RUN_SCHEMA, node=RunConfig)
    store.store(name=MAINTAIN_SCHEMA, node=MaintainConfig)
    _registered.append(True)
