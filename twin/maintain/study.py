"""A composed ``maintain`` config validated into a :class:`Study` before any compute."""
from __future__ import annotations

import math
from dataclasses import dataclass

from twin.errors import ConfigError
from twin.maintain.candidates import BASES, Candidates, POLICIES, check_parameters, grid_values, make_candidates
from twin.maintain.checks import _int, _mapping, _num, _only
from twin.maintain.tool import ToolModel, parse_tool


MAX_HORIZON_YEARS = 100.0  # a tool's whole service life; 1e9 years would run for days
STUDY_KEYS = {"tool", "policy", "grid", "search", "samples", "baseline", "objective", "replicas", "horizon_years",
              "seed", "crn", "backend", "chunk_items", "warnings"}


OBJECTIVES = {"availability": ("availability", 1.0), "good_dies": ("good_dies_per_year", 1.0),
              "cost": ("cost_per_year", -1.0)}


@dataclass(frozen=True)
class Study:
    tool: ToolModel
    policy: str
    basis: str
    candidates: Candidates
    objective: str
    replicas: int
    horizon_years: float
    seed: int
    crn: bool
    backend: object  # twin.backend.Backend
    chunk_items: int
    search: str


def load_study(cfg: dict) -> Study:
    """Validate a composed ``maintain`` config into a Study; raises ConfigError before any compute."""
    from twin.backend import resolve_backend

    cfg = _mapping(cfg, "config")
    unknown = set(cfg) - STUDY_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(key, cfg[key], f"unknown setting; allowed: {', '.join(sorted(STUDY_KEYS))}")
    tool = parse_tool(cfg.get("tool"), cfg.get("warnings"))
    pcfg = _mapping(cfg.get("policy"), "policy")
    _only(pcfg, "policy", {"name", "basis"})
    policy = pcfg.get("name")
    if policy not in POLICIES:
        raise ConfigError("policy.name", policy, f"allowed: {', '.join(POLICIES)}")
    basis = pcfg.get("basis", "operating")
    if basis not in BASES:
        raise ConfigError("policy.basis", basis, f"allowed: {', '.join(BASES)}")
    objective = cfg.get("objective", "availability")
    if objective not in OBJECTIVES:
        raise ConfigError("objective", objective, f"allowed: {', '.join(OBJECTIVES)}")
    search = cfg.get("search", "grid")
    if search not in ("grid", "random"):
        raise ConfigError("search", search, "allowed: grid, random")
    seed = _int(cfg.get("seed", 1), "seed", 0)
    defaults = {"smoothing": 1.0, "level": tool.warn_level if math.isfinite(tool.warn_level) else None}
    values = grid_values(policy, cfg.get("grid") or {}, search, _int(cfg.get("samples", 256), "samples", 1), seed,
                         defaults)
    check_parameters(policy, values, tool)
    backend_cfg = cfg.get("backend") or {}
    if isinstance(backend_cfg, str):
        backend_cfg = {"name": backend_cfg}
    backend = resolve_backend(backend_cfg.get("name", "auto"), backend_cfg.get("threads", 0))
    return Study(tool=tool, policy=policy, basis=basis,
                 candidates=make_candidates(policy, values, basis, bool(cfg.get("baseline", True))),
                 objective=objective, replicas=_int(cfg.get("replicas", 32), "replicas", 2),
                 horizon_years=_num(cfg.get("horizon_years", 1.0), "horizon_years", low=0.0, high=MAX_HORIZON_YEARS, open_low=True),
                 seed=seed, crn=bool(cfg.get("crn", True)), backend=backend,
                 chunk_items=_int(cfg.get("chunk_items", 0), "chunk_items", 0), search=search)

def _label(study, label):
    return f"time_based_{study.basis}" if label == "time_based" else label
