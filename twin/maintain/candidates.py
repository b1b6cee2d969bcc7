"""Candidate policies: one family's grid or random search, as kernel kinds and parameters."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from kernels import maintenance as M
from twin.errors import ConfigError
from twin.maintain.checks import _int, _mapping, _num, _only
from twin.maintain.tool import ToolModel


POLICIES = {
    "run_to_failure": (),
    "time_based": ("T",),
    "wafer_count": ("N",),
    "condition_based": ("threshold", "smoothing"),
    "predictive": ("lead", "level"),
}


BASES = {"operating": M.AGE, "calendar": M.CALENDAR_AGE, "block": M.BLOCK}  # time_based policy.basis


@dataclass(frozen=True)
class Candidates:
    """Candidate policies: kernel kinds and parameters plus the user-facing parameter columns."""

    labels: tuple[str, ...]  # policy family per candidate
    kinds: np.ndarray  # int32 [n]
    params: np.ndarray  # float64 [n, 3]
    columns: dict = field(default_factory=dict)  # parameter name -> float array [n] (NaN: not used)

    def __len__(self) -> int:
        return int(self.kinds.size)


def make_candidates(policy: str, values: dict, basis: str = "operating", baseline: bool = False) -> Candidates:
    """Candidates of one family: ``values`` maps each parameter to an equal-length array."""
    names = POLICIES[policy]
    n = len(next(iter(values.values()))) if names else 1
    kind = {"run_to_failure": M.RUN_TO_FAILURE, "wafer_count": M.WAFERS, "condition_based": M.CONDITION,
            "predictive": M.PREDICTIVE, "time_based": BASES[basis]}[policy]
    kinds = np.full(n, kind, np.int32)
    params = np.zeros((n, 3), np.float64)
    for j, name in enumerate(names):
        params[:, j] = values[name]
    labels = [policy] * n
    columns = {name: np.asarray(values[name], np.float64) for name in names}
    if baseline and policy != "run_to_failure":
        kinds = np.concatenate([[M.RUN_TO_FAILURE], kinds]).astype(np.int32)
        params = np.vstack([np.zeros((1, 3)), params])
        labels = ["run_to_failure", *labels]
        columns = {k: np.concatenate([[np.nan], v]) for k, v in columns.items()}
    return Candidates(tuple(labels), kinds, params, columns)


def grid_values(policy: str, grid: dict, search: str, samples: int, seed: int, defaults: dict) -> dict:
    """Parameter arrays of every candidate: the grid's cartesian product, or ``samples`` random draws."""
    names = POLICIES[policy]
    grid = _mapping(grid, "grid")
    _only(grid, "grid", set(names), f"policy {policy} takes grid parameters: {', '.join(names) or 'none'}")
    axes = {}
    for name in names:
        spec = grid.get(name, defaults.get(name))
        if spec is None:
            raise ConfigError(f"grid.{name}", None, f"policy {policy} needs grid.{name} (a list, a number or "
                                                    "{low, high, num, log})")
        axes[name] = _axis(spec, f"grid.{name}")
    if not names:
        return {}
    if search == "grid":
        combos = list(itertools.product(*(axes[k][0] for k in names)))
        if len(combos) > 4_000_000:
            raise ConfigError("grid", len(combos), "at most 4,000,000 candidates; use search=random")
        return {k: np.array([c[j] for c in combos], np.float64) for j, k in enumerate(names)}
    rng = np.random.default_rng(seed)
    return {k: _draw(axes[k], samples, rng) for k in names}


def _axis(spec, field_name):
    """``(grid points, (low, high, log) or None)`` from a number, a list, ``"low:high:num[:log]"`` or a mapping."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return [_num(spec, field_name, low=-math.inf)], None
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise ConfigError(field_name, spec, "an empty list has no candidates")
        return [_num(v, f"{field_name}[{i}]", low=-math.inf) for i, v in enumerate(spec)], None
    if isinstance(spec, str):
        spec = _range_string(spec, field_name)
    spec = _mapping(spec, field_name)
    _only(spec, field_name, {"low", "high", "num", "log"})
    low = _num(spec.get("low"), f"{field_name}.low", low=-math.inf)
    high = _num(spec.get("high"), f"{field_name}.high", low=low)
    num = _int(spec.get("num", 10), f"{field_name}.num", 1)
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise ConfigError(f"{field_name}.low", low, "a log range needs low > 0")
    points = np.geomspace(low, high, num) if log else np.linspace(low, high, num)
    return [float(v) for v in points], (low, high, log)


def _range_string(text: str, field_name: str) -> dict:
    """``"50:1500:59"`` -> 59 points from 50 to 1500; a trailing ``:log`` spaces them geometrically."""
    parts = text.split(":")
    log = parts[-1].strip() == "log"
    if log:
        parts = parts[:-1]
    try:
        low, high, num = float(parts[0]), float(parts[1]), int(parts[2])
        if len(parts) != 3:
            raise ValueError
    except (ValueError, IndexError):
        raise ConfigError(field_name, text, "expected a number, a list, 'low:high:num' (add ':log' for a geometric "
                                            "grid) or {low, high, num, log}") from None
    return {"low": low, "high": high, "num": num, "log": log}


def _draw(axis, n, rng):
    points, span = axis
    if span is None:
        return rng.choice(np.asarray(points, np.float64), n)
    low, high, log = span
    if log:
        return np.exp(rng.uniform(math.log(low), math.log(high), n))
    return rng.uniform(low, high, n)


def check_parameters(policy: str, values: dict, tool: ToolModel) -> None:
    """Domain checks per family, before any compute."""
    rules = {"T": (0.0, math.inf, True), "N": (0.0, math.inf, True), "threshold": (-math.inf, math.inf, False),
             "smoothing": (0.0, 1.0, True), "lead": (0.0, math.inf, False), "level": (0.0, math.inf, True)}
    for name, v in values.items():
        low, high, open_low = rules[name]
        bad = ~np.isfinite(v) | (v < low) | (v > high) | ((v == low) if open_low else False)
        if bad.any():
            side = ">" if open_low else ">="
            raise ConfigError(f"grid.{name}", float(v[bad][0]), f"must be finite, {side} {low:g}"
                              + (f" and <= {high:g}" if math.isfinite(high) else ""))
    if policy in ("condition_based", "predictive") and not tool.degrades:
        raise ConfigError("policy", policy, f"tool {tool.name} does not degrade (condition.drift = noise = 0): "
                                            "no signal to act on")
