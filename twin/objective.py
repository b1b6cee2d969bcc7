"""The run's objective: one number a Hydra sweeper (Optuna) optimises.

``objective: {kpi: NAME, direction: minimize|maximize, cost: {per_tool: {GROUP: c}}}`` makes
``twin run`` return the mean over replications of the per-replication KPI ``NAME`` (a column of
replications.csv, e.g. ``product.p.cycle_time_days.mean``) plus, for each GROUP, ``c`` x its tool
count — in the KPI's units, added when minimising and subtracted when maximising, so a sweeper
finds the best line under a tool cost.  Every name is checked against the line before any compute.
"""
from __future__ import annotations

import math

import numpy as np

from twin.errors import ConfigError

DIRECTIONS = ("minimize", "maximize")


def check_objective(spec, compiled) -> dict | None:
    """The validated objective settings, or None when the run has no objective."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ConfigError("objective", spec, "must be a mapping {kpi, direction, cost}")
    unknown = set(spec) - {"kpi", "direction", "cost"}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"objective.{key}", spec[key], "unknown setting; allowed: kpi, direction, cost")
    kpi = spec.get("kpi")
    if kpi is None:
        return None
    names = kpi_names(compiled)
    if kpi not in names:
        hint = ", ".join(n for n in names if n.startswith(str(kpi).split(".")[0]))[:300] or ", ".join(names[:8])
        raise ConfigError("objective.kpi", kpi, f"not a per-replication KPI of this line; e.g. {hint}")
    direction = spec.get("direction") or "minimize"
    if direction not in DIRECTIONS:
        raise ConfigError("objective.direction", direction, f"allowed: {', '.join(DIRECTIONS)}")
    cost = spec.get("cost") or {}
    if not isinstance(cost, dict) or set(cost) - {"per_tool"}:
        raise ConfigError("objective.cost", cost, "allowed: {per_tool: {GROUP: cost per tool}}")
    groups = {g.name: g.tools for g in compiled.line.tool_groups}
    per_tool = cost.get("per_tool") or {}
    for name, value in per_tool.items():
        if name not in groups:
            raise ConfigError(f"objective.cost.per_tool.{name}", name, f"not a tool group; allowed: {', '.join(groups)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"objective.cost.per_tool.{name}", value, "must be a finite number (KPI units per tool)")
    tool_cost = float(sum(value * groups[name] for name, value in per_tool.items()))
    return {"kpi": kpi, "direction": direction, "tool_cost": tool_cost}


def objective_section(spec: dict, rows: dict) -> dict:
    """kpis.json's ``objective``: the KPI's mean and 95% CI, the tool cost and the value returned."""
    from twin.kpis import summarize

    s = summarize(rows[spec["kpi"]])
    sign = 1.0 if spec["direction"] == "minimize" else -1.0
    value = s["mean"] + sign * spec["tool_cost"]
    return {"kpi": spec["kpi"], "direction": spec["direction"], "kpi_mean": s["mean"], "kpi_ci95": s["ci95"],
            "tool_cost": spec["tool_cost"], "value": float(value) if math.isfinite(value) else None}


def kpi_names(compiled) -> list[str]:
    """Per-replication KPI names of ``compiled`` (from statistics of one all-zero replication)."""
    from twin import kpis
    from twin.runner import RunResult, result_shapes

    stats = {k: np.zeros((1, *shape), dtype) for k, (shape, dtype) in result_shapes(compiled).items()}
    empty = RunResult(compiled=compiled, replicas=1, horizon_days=2.0, warmup_days=1.0, seed=0, backend="cpu",
                      device_name="", stats=stats, lot_log=np.zeros(0), snapshots={})
    with np.errstate(all="ignore"):
        return sorted(kpis.per_replication(empty))


def fix_optuna_sampler_instantiation() -> None:
    """hydra-core 1.4 builds sweeper plugins without recursive instantiation, so hydra-optuna-sweeper
    1.3 receives its sampler as a config node; build the sampler from it (no-op on hydra-core 1.3)."""
    try:
        from hydra_plugins.hydra_optuna_sweeper import _impl
    except ImportError:
        return
    cls = _impl.OptunaSweeperImpl
    if getattr(cls, "_sampler_built", False):
        return
    original = cls.__init__

    def __init__(self, sampler, *args, **kwargs):
        from hydra.utils import instantiate
        from omegaconf import DictConfig

        original(self, instantiate(sampler) if isinstance(sampler, DictConfig) else sampler, *args, **kwargs)

    cls.__init__ = __init__
    cls._sampler_built = True
