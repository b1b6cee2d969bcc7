"""Maintenance-policy study: ``twin maintain`` evaluates many candidate policies in one launch.

A study is one tool group's model (``tool=``, configs/maintain/tool), one
policy family (``policy=``, configs/maintain/policy) and a grid or random
search over that family's parameters.  Every (candidate, replication) is one
work item of :mod:`kernels.maintenance`; KPIs are computed per replication and
summarised as mean and 95% CI, and candidates are compared with the best by a
paired CI (common random numbers make the pairing informative).

Layers: :func:`load_study` validates a composed config into a :class:`Study`
before any compute; :func:`simulate` launches the kernel; :func:`summarise`
turns raw item outputs into KPIs; :func:`run_study` writes policies.csv,
best_policy.json and tradeoff.png; :func:`main` is the Hydra entry point.
docs/maintenance.md describes the model and every output.
"""
from __future__ import annotations

import csv
import itertools
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kernels import maintenance as M
from twin.distributions import Dist
from twin.errors import ConfigError

HOURS_PER_YEAR = 8760.0
OBJECTIVES = {"availability": ("availability", 1.0), "good_dies": ("good_dies_per_year", 1.0),
              "cost": ("cost_per_year", -1.0)}
# family -> grid parameters; kernel kind comes from the family (and time_based's basis)
POLICIES = {
    "run_to_failure": (),
    "time_based": ("T",),
    "wafer_count": ("N",),
    "condition_based": ("threshold", "smoothing"),
    "predictive": ("lead", "level"),
}
BASES = {"operating": M.AGE, "calendar": M.CALENDAR_AGE, "block": M.BLOCK}  # time_based policy.basis
KPIS = ("availability", "good_dies_per_year", "cost_per_year", "failures_per_year", "pms_per_year",
        "wafers_per_year", "yield_factor", "warnings_per_year")
STUDY_KEYS = {"tool", "policy", "grid", "search", "samples", "baseline", "objective", "replicas", "horizon_years",
              "seed", "crn", "backend", "chunk_items", "warnings"}


# ----------------------------------------------------------------------------- tool model


@dataclass(frozen=True)
class ToolModel:
    """One tool group's degradation, failure, maintenance, sensor, yield and price model (hours)."""

    name: str
    wafers_per_hour: float
    utilisation: float = 1.0
    drift: float = 0.0  # condition per wafer
    noise: float = 0.0  # condition sd per sqrt(wafer)
    step_wafers: float = 25.0  # wafers between condition updates and sensor readings
    life: Dist | None = None  # operating hours to an age failure
    threshold: Dist | None = None  # condition level that fails the tool
    hazard_h0: float = 0.0  # per operating hour at c = 0
    hazard_b: float = 0.0  # hazard multiplies by exp(b c)
    repair: Dist = Dist.constant(8.0)
    pm_duration: Dist = Dist.constant(4.0)
    sensor_noise: float = 0.0
    forget: float = 1.0  # reading weight decay in the RUL fit
    min_readings: int = 3
    die_area_cm2: float = 1.0
    d0: float = 0.0  # killer defects per cm^2 on a new tool
    gross_dies: float = 1.0
    price_pm: float = 0.0
    price_repair: float = 0.0
    price_down_hour: float = 0.0
    warn_level: float = math.inf  # condition at which a failure is predicted (RUL = 0)
    warn_horizon: float = 0.0  # hours: warn when predicted RUL falls below
    warn_window: float = 1.0  # hours after a warning within which a failure matches it
    warn_bins: int = 48

    @property
    def degrades(self) -> bool:
        return self.drift > 0.0 or self.noise > 0.0

    def tables(self, horizon_hours: float) -> tuple[np.ndarray, np.ndarray]:
        """``(gi, gf)`` as :mod:`kernels.maintenance` reads them."""
        gi = np.zeros(M.N_GI, np.int32)
        gf = np.zeros(M.N_GF, np.float64)
        life = self.life.encode() if self.life else (0, 0.0, 0.0, 0.0)
        thr = self.threshold.encode() if self.threshold else (0, 0.0, 0.0, 0.0)
        rep, pm = self.repair.encode(), self.pm_duration.encode()
        gi[[M.GI_LIFE_ON, M.GI_LIFE_KIND, M.GI_THR_ON, M.GI_THR_KIND]] = [self.life is not None, life[0],
                                                                         self.threshold is not None, thr[0]]
        gi[[M.GI_HAZ_ON, M.GI_REPAIR_KIND, M.GI_PM_KIND, M.GI_MIN_READ, M.GI_BINS]] = [
            self.hazard_h0 > 0.0, rep[0], pm[0], self.min_readings, self.warn_bins]
        gf[[M.GF_HORIZON, M.GF_RATE, M.GF_UTIL, M.GF_DRIFT, M.GF_NOISE]] = [
            horizon_hours, self.wafers_per_hour, self.utilisation, self.drift, self.noise]
        gf[M.GF_STEP_W] = self.step_wafers if self.degrades else M.INF
        gf[[M.GF_SENSOR_SD, M.GF_FORGET, M.GF_H0, M.GF_HB]] = [self.sensor_noise, self.forget, self.hazard_h0,
                                                               self.hazard_b]
        gf[M.GF_LIFE_P0:M.GF_LIFE_P2 + 1] = life[1:]
        gf[M.GF_THR_P0:M.GF_THR_P2 + 1] = thr[1:]
        gf[M.GF_REPAIR_P0:M.GF_REPAIR_P2 + 1] = rep[1:]
        gf[M.GF_PM_P0:M.GF_PM_P2 + 1] = pm[1:]
        gf[[M.GF_KILL, M.GF_GROSS, M.GF_PRICE_PM, M.GF_PRICE_REPAIR, M.GF_PRICE_DOWN]] = [
            self.die_area_cm2 * self.d0, self.gross_dies, self.price_pm, self.price_repair, self.price_down_hour]
        gf[[M.GF_WARN_LEVEL, M.GF_WARN_HORIZON, M.GF_WARN_WINDOW]] = [
            min(self.warn_level, M.INF), self.warn_horizon, self.warn_window]
        return gi, gf


def parse_tool(cfg: dict, warnings: dict | None = None) -> ToolModel:
    """Validate a ``tool`` mapping (configs/maintain/tool/*.yaml) and the ``warnings`` settings."""
    cfg = _mapping(cfg, "tool")
    if "group" in cfg:
        cfg = tool_config_from_line(cfg)
    _only(cfg, "tool", {"name", "wafers_per_hour", "utilisation", "condition", "failure", "repair", "pm_duration",
                        "sensor", "yield", "prices"})
    cond = _mapping(cfg.get("condition"), "tool.condition")
    _only(cond, "tool.condition", {"drift", "noise", "step_wafers"})
    fail = _mapping(cfg.get("failure"), "tool.failure")
    _only(fail, "tool.failure", {"life", "threshold", "hazard"})
    hazard = _mapping(fail.get("hazard"), "tool.failure.hazard")
    _only(hazard, "tool.failure.hazard", {"h0", "b"})
    sensor = _mapping(cfg.get("sensor"), "tool.sensor")
    _only(sensor, "tool.sensor", {"noise", "forget", "min_readings"})
    ycfg = _mapping(cfg.get("yield"), "tool.yield")
    _only(ycfg, "tool.yield", {"die_area_cm2", "d0", "gross_dies"})
    prices = _mapping(cfg.get("prices"), "tool.prices")
    _only(prices, "tool.prices", {"pm", "repair", "down_hour"})
    life = _dist(fail.get("life"), "tool.failure.life")
    threshold = _dist(fail.get("threshold"), "tool.failure.threshold")
    tool = ToolModel(
        name=str(cfg.get("name") or "tool"),
        wafers_per_hour=_num(cfg.get("wafers_per_hour", 1.0), "tool.wafers_per_hour", low=0.0, open_low=True),
        utilisation=_num(cfg.get("utilisation", 1.0), "tool.utilisation", low=0.0, high=1.0, open_low=True),
        drift=_num(cond.get("drift", 0.0), "tool.condition.drift"),
        noise=_num(cond.get("noise", 0.0), "tool.condition.noise"),
        step_wafers=_num(cond.get("step_wafers", 25.0), "tool.condition.step_wafers", low=1e-3),
        life=life,
        threshold=threshold,
        hazard_h0=_num(hazard.get("h0", 0.0), "tool.failure.hazard.h0"),
        hazard_b=_num(hazard.get("b", 0.0), "tool.failure.hazard.b", low=-math.inf),
        repair=_dist(cfg.get("repair", 8.0), "tool.repair", required=True),
        pm_duration=_dist(cfg.get("pm_duration", 4.0), "tool.pm_duration", required=True),
        sensor_noise=_num(sensor.get("noise", 0.0), "tool.sensor.noise"),
        forget=_num(sensor.get("forget", 1.0), "tool.sensor.forget", low=0.0, high=1.0, open_low=True),
        min_readings=_int(sensor.get("min_readings", 3), "tool.sensor.min_readings", 2),
        die_area_cm2=_num(ycfg.get("die_area_cm2", 1.0), "tool.yield.die_area_cm2"),
        d0=_num(ycfg.get("d0", 0.0), "tool.yield.d0"),
        gross_dies=_num(ycfg.get("gross_dies", 1.0), "tool.yield.gross_dies"),
        price_pm=_num(prices.get("pm", 0.0), "tool.prices.pm"),
        price_repair=_num(prices.get("repair", 0.0), "tool.prices.repair"),
        price_down_hour=_num(prices.get("down_hour", 0.0), "tool.prices.down_hour"),
    )
    if life is None and threshold is None and tool.hazard_h0 == 0.0:
        raise ConfigError("tool.failure", fail, "give at least one of life, threshold or hazard.h0 > 0")
    if threshold is not None and not tool.degrades:
        raise ConfigError("tool.failure.threshold", fail.get("threshold"),
                          "a condition threshold needs condition.drift or condition.noise > 0")
    return _with_warnings(tool, warnings or {})


LINE_TOOL_KEYS = {"name", "line", "group", "run", "wafers_per_hour", "utilisation", "step_wafers", "pm_duration",
                  "sensor", "yield", "prices"}


def tool_config_from_line(cfg: dict) -> dict:
    """A line's tool group as a tool mapping in hours: its wear, wear-out level, random life, repair,
    PM duration and sensor, so a study and ``twin run`` model the same tool.

    The line counts a calendar-basis life in all time and the study in processing time; for the
    exponential and Weibull lives the line allows, calendar time T at utilisation u is processing
    time u T, so the life's scale is multiplied by u.
    """
    _only(cfg, "tool", LINE_TOOL_KEYS)
    line = _line_of_tool(cfg.get("line") or "default")
    grp = _line_group(line, cfg.get("group"))
    rate, util = _line_throughput(cfg, line, grp)
    m, f = grp.maintenance, grp.failure
    failure = {"threshold": _dist_spec(grp.failure_level) if grp.failure_level else None}
    if f is not None:
        failure["life"] = _dist_spec(f.ttf.scaled((util if f.basis == "calendar" else 1.0) / 60.0))
    sensor = {"noise": grp.sensor_sd, "min_readings": m.min_readings if m else 3, **_mapping(cfg.get("sensor"), "tool.sensor")}
    step = cfg.get("step_wafers")
    return {
        "name": cfg.get("name") or f"{line.name}/{grp.name}",
        "wafers_per_hour": rate, "utilisation": util,
        "condition": {"drift": grp.condition_drift, "noise": grp.condition_noise,
                      "step_wafers": step if step is not None else _lot_size(line, grp.name)},
        "failure": {k: v for k, v in failure.items() if v is not None},
        "repair": _dist_spec(f.repair.scaled(1 / 60.0)) if f else 0.0,  # the line repairs a wear-out in no time then
        "pm_duration": _line_pm_duration(cfg, grp),
        "sensor": sensor, "yield": cfg.get("yield") or {}, "prices": cfg.get("prices") or {},
    }


def _line_of_tool(source):
    """The line by name or path; a missing one is reported as ``tool.line``, not the run's ``line``."""
    from twin.line import load_line, resolve_line_path

    if isinstance(source, str):
        try:
            resolve_line_path(source)
        except ConfigError as err:
            raise ConfigError("tool.line", source, err.allowed) from None
    return load_line(source)


def _line_group(line, name):
    """The group to study: it must wear (condition drift) and fail somehow (random or wear-out)."""
    names = [g.name for g in line.tool_groups]
    wearing = [g.name for g in line.tool_groups if g.condition_drift > 0.0]
    if name not in names:
        raise ConfigError("tool.group", name, f"a tool group of line {line.name}: {', '.join(names)}")
    grp = line.tool_groups[names.index(name)]
    if grp.condition_drift <= 0.0:
        raise ConfigError("tool.group", grp.name, "a group whose condition degrades (condition.drift_per_wafer > 0): "
                                                  f"{', '.join(wearing) or 'none in this line'}")
    if grp.failure is None and grp.failure_level is None:
        raise ConfigError("tool.group", grp.name, "a group that fails: it has neither failures nor "
                                                  "condition.failure_level")
    return grp


def _line_pm_duration(cfg, grp):
    """Hours: tool.pm_duration, else the group's maintenance.duration, else its first pm's; never invented."""
    if cfg.get("pm_duration") is not None:
        return cfg["pm_duration"]
    minutes = grp.maintenance.duration if grp.maintenance else (grp.pms[0].duration if grp.pms else None)
    if minutes is None:
        raise ConfigError("tool.pm_duration", None, f"required: group {grp.name} has no maintenance.duration and no "
                                                    "pm to take it from (hours: a number or {dist: ..., ...})")
    return _dist_spec(minutes.scaled(1 / 60.0))


def _group_visits(line, group: str) -> dict:
    """Expected visits of one wafer of each product to ``group``: its steps weighted by ``sampling`` and
    by the rework loops over them (1 / (1 - p) each; 1 + p for rework.once)."""
    visits = {}
    for p in line.products:
        loop = [1.0] * len(p.route)
        for k, s in enumerate(p.route):
            if s.rework_prob > 0.0:
                factor = 1.0 + s.rework_prob if s.rework_once else 1.0 / max(1.0 - s.rework_prob, 1e-9)
                for j in range(s.rework_to - 1, k + 1):
                    loop[j] *= factor
        visits[p.name] = sum(s.sampling * loop[k] for k, s in enumerate(p.route) if s.group == group)
    return visits


def _lot_size(line, group: str) -> float:
    """Wafers per condition update: the lot size of the releases whose product visits the group (their mean)."""
    visits = _group_visits(line, group)
    sizes = [r.lot_size for r in line.releases if visits.get(r.product, 0.0) > 0.0]
    if not sizes:
        raise ConfigError("tool.group", group, f"a group some release of line {line.name} visits")
    return float(sum(sizes) / len(sizes))


def _line_throughput(cfg, line, grp) -> tuple[float, float]:
    """One tool's wafers per processing hour and busy share of up time: given, else from ``tool.run``."""
    given = {k: cfg.get(k) for k in ("wafers_per_hour", "utilisation")}
    if any(v is None for v in given.values()):
        if cfg.get("run") is None:
            key = next(k for k, v in given.items() if v is None)
            raise ConfigError(f"tool.{key}", None, "required for a line's tool group unless tool.run names a `twin run` "
                              "folder of the line: one tool's wafers per processing hour and busy share of up time")
        from_run = run_throughput(cfg["run"], line, grp)
        given = {k: v if v is not None else from_run[k] for k, v in given.items()}
    return (_num(given["wafers_per_hour"], "tool.wafers_per_hour", low=0.0, open_low=True),
            _num(given["utilisation"], "tool.utilisation", low=0.0, high=1.0, open_low=True))


def run_throughput(run, line, grp) -> dict:
    """Throughput of one tool of ``grp`` in a ``twin run`` folder of ``line`` (its kpis.json).

    utilisation = productive / availability (the study's utilisation is a share of up time);
    wafers_per_hour = wafer visits to the group per day (each product's wafer throughput x its
    expected visits) / (24 x tools x productive): wafers per hour of processing.
    """
    doc = _read_kpis(run)
    ran = (doc.get("meta") or {}).get("line")
    if ran != line.name:
        raise ConfigError("tool.run", str(run), f"a run of line {line.name} (tool.line); this is a run of line {ran}")
    kpi = (doc.get("tool_groups") or {}).get(grp.name)
    if not isinstance(kpi, dict):
        raise ConfigError("tool.run", str(run), f"a run whose kpis.json reports tool group {grp.name}")
    productive = _kpi_mean(kpi, ("e10", "productive"), run)
    available = _kpi_mean(kpi, ("availability",), run)
    if productive <= 0.0:
        raise ConfigError("tool.run", str(run), f"a run in which group {grp.name} processed wafers (productive > 0)")
    visits = _group_visits(line, grp.name)
    per_day = sum(_kpi_mean((doc.get("products") or {}).get(p), ("throughput_wafers_per_day",), run) * v
                  for p, v in visits.items() if v > 0.0)
    return {"wafers_per_hour": per_day / (24.0 * grp.tools * productive),
            "utilisation": min(productive / available, 1.0)}


def _read_kpis(run) -> dict:
    path = Path(str(run)).expanduser() / "kpis.json"
    if not path.is_file():
        raise ConfigError("tool.run", str(run), "a `twin run` output folder holding kpis.json")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError("tool.run", str(run), f"a readable kpis.json ({_first_line(err)})") from None


def _kpi_mean(node, keys, run) -> float:
    for k in keys:
        node = node.get(k) if isinstance(node, dict) else None
    value = node.get("mean") if isinstance(node, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError("tool.run", str(run), f"a kpis.json with a number at {'.'.join(keys)}.mean")
    return float(value)


def _dist_spec(dist: Dist) -> dict:
    from twin.distributions import PARAMS

    return {"dist": dist.kind, **dict(zip(PARAMS[dist.kind], dist.params))}


def line_maintenance(policy: str, params: dict, tool: ToolModel, basis: str = "operating") -> dict:
    """The best candidate in the line's terms (minutes, wafers), ready for the group in the line YAML;
    ``note`` says what has no line equivalent or reads differently there, so nothing is dropped silently."""
    duration = _dist_spec(tool.pm_duration.scaled(60.0))
    notes = []
    if policy == "condition_based":
        doc = {"maintenance": {"policy": "condition", "threshold": params["threshold"], "duration": duration}}
        if params.get("smoothing", 1.0) != 1.0:
            notes.append(f"smoothing {params['smoothing']:g} has no line equivalent: the line acts on raw readings")
        if params["threshold"] <= 0.0:
            notes.append(f"threshold {params['threshold']:g}: the line needs a threshold > 0")
    elif policy == "predictive":
        doc = {"maintenance": {"policy": "predictive", "target_level": params.get("level", tool.warn_level),
                               "lead_minutes": params["lead"] * 60.0, "min_readings": tool.min_readings,
                               "duration": duration}}
        if tool.forget != 1.0:
            notes.append(f"sensor.forget {tool.forget:g} has no line equivalent: the line weighs every reading alike")
    elif policy == "wafer_count":
        doc = {"pm": [{"name": "study", "every_wafers": params["N"], "duration": duration}]}
        notes.append("the line counts a pm's wafers since that pm, not since the last repair")
    elif policy == "time_based" and basis == "block":
        doc = {"pm": [{"name": "study", "every_minutes": params["T"] * 60.0, "duration": duration}]}
    elif policy == "time_based":
        # operating age T is T x rate wafers; calendar (up-time) age T is utilisation x T operating hours
        hours = params["T"] * (tool.utilisation if basis == "calendar" else 1.0)
        doc = {"pm": [{"name": "study", "every_wafers": hours * tool.wafers_per_hour, "duration": duration}]}
        notes.append(f"{basis} age {params['T']:g} h as wafers at {tool.wafers_per_hour:g} wafers per processing hour"
                     + (f" x utilisation {tool.utilisation:g}" if basis == "calendar" else "")
                     + "; the line counts them since that pm, not since the last repair")
    else:
        doc = {"pm": [], "maintenance": None}
    if notes:
        doc["note"] = "; ".join(notes)
    return doc


def _with_warnings(tool: ToolModel, cfg: dict) -> ToolModel:
    from dataclasses import replace

    cfg = _mapping(cfg, "warnings")
    _only(cfg, "warnings", {"level", "horizon_hours", "window_hours", "bins"})
    level = cfg.get("level")
    if level is None:
        level = tool.threshold.mean if tool.threshold is not None else math.inf
    level = _num(level, "warnings.level", low=0.0, open_low=True, finite=False)
    horizon = _num(cfg.get("horizon_hours", 48.0), "warnings.horizon_hours")
    window = _num(cfg.get("window_hours", 2.0 * horizon), "warnings.window_hours", low=0.0, open_low=True)
    return replace(tool, warn_level=level, warn_horizon=horizon, warn_window=window,
                   warn_bins=_int(cfg.get("bins", 48), "warnings.bins", 1))


# ----------------------------------------------------------------------------- candidates


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


# ----------------------------------------------------------------------------- study


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
                 horizon_years=_num(cfg.get("horizon_years", 1.0), "horizon_years", low=0.0, open_low=True),
                 seed=seed, crn=bool(cfg.get("crn", True)), backend=backend,
                 chunk_items=_int(cfg.get("chunk_items", 0), "chunk_items", 0), search=search)


# ----------------------------------------------------------------------------- simulation


@dataclass
class Raw:
    """Item outputs: ``out`` [candidates, replications, N_OUT], lead histogram pooled over replications."""

    out: np.ndarray
    hist: np.ndarray  # int64 [candidates, bins]
    horizon_hours: float
    seconds: float


def stream_seeds(seed: int) -> np.ndarray:
    """Three independent stream seeds (renewal draws, down durations, path + sensor) from one seed."""
    from kernels.rng import splitmix64_host

    return np.array([splitmix64_host((seed << 2) + k) for k in range(3)], np.uint64)


def simulate(tool: ToolModel, candidates: Candidates, replicas: int, horizon_hours: float, seed: int,
             backend=None, crn: bool = True, rep0: int = 0, chunk_items: int = 0) -> Raw:
    """Run every (candidate, replication) item; results depend on the seed and keys only, not on chunks.

    With ``crn`` item ``(i, r)`` is keyed by replication ``rep0 + r`` alone, so
    candidates share random streams; without, by ``i * 2**32 + rep0 + r``.
    """
    gi, gf = tool.tables(horizon_hours)
    n_cand = len(candidates)
    out = np.zeros((n_cand, replicas, M.N_OUT), np.float64)
    hist = np.zeros((n_cand, tool.warn_bins), np.int64)
    from twin.backend import cpu_threads, on_cuda

    cuda = on_cuda(backend)  # backend: the engine's twin.backend.Backend (None: the CPU)
    chunk = chunk_items or (1 << 20 if cuda else 1 << 18)
    per = max(1, chunk // replicas)
    stride = 0 if crn else 1 << 32
    seeds = stream_seeds(seed)
    run = _cuda_chunk(gi, gf, candidates, seeds) if cuda else _cpu_chunk
    started = time.perf_counter()
    with cpu_threads(backend):
        for a in range(0, n_cand, per):
            b = min(a + per, n_cand)
            o, h = run(gi, gf, candidates, seeds, a, b, replicas, rep0, stride)
            out[a:b] = o.reshape(b - a, replicas, M.N_OUT)
            hist[a:b] = h.reshape(b - a, replicas, -1).sum(axis=1)
    return Raw(out, hist, horizon_hours, time.perf_counter() - started)


def _cpu_chunk(gi, gf, cands, seeds, a, b, replicas, rep0, stride):
    n = (b - a) * replicas
    out = np.zeros((n, M.N_OUT), np.float64)
    hist = np.zeros((n, gi[M.GI_BINS]), np.int32)
    rng = np.zeros((n, 3, 2), np.uint64)
    M.simulate_cpu(gi, gf, cands.kinds, cands.params, seeds, a, replicas, rep0, stride, out, hist, rng)
    return out, hist


def _cuda_chunk(gi, gf, cands, seeds):
    """A chunk runner holding the static tables on the device (uploaded once)."""
    from numba import cuda

    launch = M.cuda_launcher()
    d_static = [cuda.to_device(np.ascontiguousarray(x)) for x in (gi, gf, cands.kinds, cands.params, seeds)]

    def run(gi, gf, cands, seeds, a, b, replicas, rep0, stride):
        n = (b - a) * replicas
        d_out = cuda.device_array((M.N_OUT, n), np.float64)
        d_hist = cuda.device_array((int(gi[M.GI_BINS]), n), np.int32)
        d_rng = cuda.device_array((2, 3, n), np.uint64)
        launch(*d_static, a, replicas, rep0, stride, d_out, d_hist, d_rng)
        return d_out.copy_to_host().T, d_hist.copy_to_host().T

    return run


def warm_up(tool: ToolModel, backend) -> float:
    """Compile (or load from the cache) the kernel on one tiny item; returns seconds."""
    started = time.perf_counter()
    cands = make_candidates("run_to_failure", {})
    simulate(tool, cands, 2, 1.0, 0, backend=backend)
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- KPIs


def per_replication(tool: ToolModel, raw: Raw) -> dict:
    """KPI arrays [candidates, replications]: each replication is one independent sample."""
    o = raw.out
    years = raw.horizon_hours / HOURS_PER_YEAR
    with np.errstate(divide="ignore", invalid="ignore"):
        yield_factor = np.where(o[..., M.O_WAFERS] > 0, o[..., M.O_GOOD] / (o[..., M.O_WAFERS] * tool.gross_dies),
                                np.nan)
    return {
        "availability": o[..., M.O_UP] / raw.horizon_hours,
        "good_dies_per_year": o[..., M.O_GOOD] / years,
        "cost_per_year": o[..., M.O_COST] / years,
        "failures_per_year": o[..., M.O_FAILS] / years,
        "pms_per_year": o[..., M.O_PMS] / years,
        "wafers_per_year": o[..., M.O_WAFERS] / years,
        "yield_factor": yield_factor,
        "warnings_per_year": o[..., M.O_WARNINGS] / years,
    }


def mean_ci(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise mean and 95% Student-t half-width over the last axis (NaNs dropped)."""
    from twin.kpis import t975

    import warnings

    x = np.where(np.isfinite(x), x, np.nan)
    n = np.isfinite(x).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (no wafers) summarise to NaN
        mean = np.nanmean(x, axis=-1)
        sd = np.nanstd(x, axis=-1, ddof=1)
        t = np.array([t975(int(k) - 1) for k in np.ravel(n)]).reshape(n.shape)
        half = t * sd / np.sqrt(n)
    return mean, half


def warning_scores(tool: ToolModel, raw: Raw) -> dict:
    """Precision, recall and lead times pooled over replications (docs/maintenance.md defines the matching)."""
    s = raw.out.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = s[:, M.O_TRUE] / (s[:, M.O_TRUE] + s[:, M.O_FALSE])
        recall = s[:, M.O_DETECTED] / s[:, M.O_FAILS]
        mean_lead = s[:, M.O_LEAD_SUM] / s[:, M.O_TRUE]
    median = np.array([_hist_quantile(h, tool.warn_window, 0.5) for h in raw.hist])
    return {"warning_precision": precision, "warning_recall": recall, "median_lead_hours": median,
            "mean_lead_hours": mean_lead}


def _hist_quantile(hist, width_total, q):
    total = hist.sum()
    if total <= 0:
        return math.nan
    cum = np.cumsum(hist)
    k = int(np.searchsorted(cum, q * total))
    before = cum[k - 1] if k > 0 else 0
    return (k + (q * total - before) / hist[k]) * width_total / hist.size


@dataclass
class Summary:
    """Per-candidate KPIs with CIs, the best candidate and paired gaps to it."""

    kpis: dict  # name -> (mean [n], ci95 [n])
    warnings: dict  # name -> [n]
    best: int
    gap: np.ndarray  # objective(candidate) - objective(best), mean over paired replications
    gap_ci: np.ndarray
    tied: np.ndarray  # bool: gap's CI covers 0


def summarise(tool: ToolModel, raw: Raw, objective: str) -> Summary:
    """KPIs with CIs, the best candidate for ``objective``, and each candidate's paired gap to it."""
    reps = per_replication(tool, raw)
    kpis = {k: mean_ci(v) for k, v in reps.items()}
    key, sign = OBJECTIVES[objective]
    score = sign * np.nan_to_num(kpis[key][0], nan=-np.inf)
    best = int(np.argmax(score))
    diff = reps[key] - reps[key][best][None, :]
    gap, gap_ci = mean_ci(diff)
    gap_ci = np.nan_to_num(gap_ci, nan=0.0)
    return Summary(kpis, warning_scores(tool, raw), best, gap, gap_ci, np.abs(gap) <= gap_ci)


# ----------------------------------------------------------------------------- outputs


def run_study(cfg: dict, out_dir) -> dict:
    """Validate ``cfg``, evaluate every candidate, write the study's outputs; returns best_policy.json's content."""
    study = load_study(cfg)
    backend = study.backend
    compile_s = warm_up(study.tool, backend)
    hours = study.horizon_years * HOURS_PER_YEAR
    raw = simulate(study.tool, study.candidates, study.replicas, hours, study.seed, backend, study.crn,
                   chunk_items=study.chunk_items)
    summary = summarise(study.tool, raw, study.objective)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_policies_csv(out / "policies.csv", study, summary)
    doc = best_policy_doc(study, summary, raw, compile_s, cfg)
    (out / "best_policy.json").write_text(json.dumps(doc, indent=2, default=_json_default) + "\n")
    plot_tradeoff(out / "tradeoff.png", study, summary)
    return doc


def write_policies_csv(path, study: Study, s: Summary) -> None:
    cands = study.candidates
    key, sign = OBJECTIVES[study.objective]
    order = np.argsort(np.argsort(-np.nan_to_num(sign * s.kpis[key][0], nan=-np.inf), kind="stable"))
    params = list(cands.columns)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["candidate", "policy", *params, *(f"{k}{s_}" for k in KPIS for s_ in ("", "_ci95")),
                    *s.warnings, "rank", "gap_to_best", "gap_ci95", "tied_with_best"])
        for i in range(len(cands)):
            w.writerow([i, _label(study, cands.labels[i]), *(_fmt(cands.columns[p][i]) for p in params),
                        *(_fmt(s.kpis[k][j][i]) for k in KPIS for j in (0, 1)),
                        *(_fmt(v[i]) for v in s.warnings.values()), int(order[i]) + 1, _fmt(s.gap[i]),
                        _fmt(s.gap_ci[i]), int(s.tied[i])])


def _label(study, label):
    return f"time_based_{study.basis}" if label == "time_based" else label


def best_policy_doc(study: Study, s: Summary, raw: Raw, compile_s: float, cfg: dict) -> dict:
    from twin.output import package_versions

    b = s.best
    cands = study.candidates
    items_years = len(cands) * study.replicas * study.horizon_years
    doc = {
        "tool": study.tool.name,
        "objective": study.objective,
        "policy": _label(study, cands.labels[b]),
        "parameters": {k: float(v[b]) for k, v in cands.columns.items() if np.isfinite(v[b])},
        "kpis": {k: _ci_doc(s.kpis[k], b) for k in KPIS},
        "warnings": {k: _num_or_none(v[b]) for k, v in s.warnings.items()},
        "candidates_tied_with_best": int(s.tied.sum()),
        "candidates": len(cands),
        "meta": {
            "backend": study.backend.name,
            "device": study.backend.device_name,
            "replications": study.replicas,
            "horizon_years": study.horizon_years,
            "search": study.search,
            "seed": study.seed,
            "common_random_numbers": study.crn,
            "wall_seconds": round(raw.seconds, 3),
            "compile_seconds": round(compile_s, 3),
            "candidate_replication_years_per_second": items_years / max(raw.seconds, 1e-9),
            "packages": package_versions(),
            "config": cfg,
        },
    }
    tool_cfg = cfg.get("tool") or {}
    if isinstance(tool_cfg, dict) and "group" in tool_cfg:
        doc["line_maintenance"] = {"line": tool_cfg.get("line") or "default", "group": tool_cfg["group"],
                                   **line_maintenance(cands.labels[b], doc["parameters"], study.tool, study.basis)}
    if cands.labels[0] == "run_to_failure":  # warnings scored without PM censoring them
        doc["warnings_under_run_to_failure"] = {k: _num_or_none(v[0]) for k, v in s.warnings.items()}
        if b != 0:
            doc["gain_over_run_to_failure"] = {"mean": float(-s.gap[0]), "ci95": float(s.gap_ci[0])}
    return doc


def _ci_doc(pair, i):
    return {"mean": _num_or_none(pair[0][i]), "ci95": _num_or_none(pair[1][i])}


def _num_or_none(v):
    v = float(v)
    return v if math.isfinite(v) else None


def _fmt(v) -> str:
    v = float(v)
    return "" if not math.isfinite(v) else f"{v:.6g}"


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def plot_tradeoff(path, study: Study, s: Summary) -> None:
    """Objective against the first policy parameter (with CIs), and good dies against cost per year."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    _plot_parameter(left, study, s)
    _plot_pareto(right, study, s)
    fig.suptitle(f"{study.tool.name}: {_label(study, study.policy)}, {len(study.candidates)} candidates x "
                 f"{study.replicas} replications x {study.horizon_years:g} years")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_parameter(ax, study, s):
    key = OBJECTIVES[study.objective][0]
    mean, half = s.kpis[key]
    cands = study.candidates
    ax.set_ylabel(f"{key} (mean, 95% CI)")
    if not cands.columns:
        ax.errorbar(range(len(cands)), mean, yerr=half, fmt="o")
        ax.set_xlabel("candidate")
        return
    names = list(cands.columns)
    x = cands.columns[names[0]]
    policy_rows = np.isfinite(x)
    groups = [(None, policy_rows)]
    if len(names) > 1:
        other = cands.columns[names[1]]
        levels = np.unique(other[policy_rows])
        if levels.size <= 6:
            groups = [(f"{names[1]}={v:g}", policy_rows & (other == v)) for v in levels]
    for label, rows in groups:
        order = np.argsort(x[rows])
        xs, ys, hs = x[rows][order], mean[rows][order], np.nan_to_num(half[rows][order])
        style = "-" if study.search == "grid" else "."
        ax.plot(xs, ys, style, label=label)
        ax.fill_between(xs, ys - hs, ys + hs, alpha=0.25)
    if not policy_rows.all():
        base = np.flatnonzero(~policy_rows)[0]
        ax.axhline(mean[base], color="grey", ls="--", label="run to failure")
    if np.isfinite(x[s.best]):
        ax.plot([x[s.best]], [mean[s.best]], "r*", ms=14, label="best")
    ax.set_xlabel(names[0] + {"T": " (hours)", "N": " (wafers)", "lead": " (hours)"}.get(names[0], ""))
    ax.legend(fontsize=8)


def _plot_pareto(ax, study, s):
    """Good dies against maintenance cost, coloured by the first policy parameter; the Pareto front in black."""
    g, gh = s.kpis["good_dies_per_year"]
    c, ch = s.kpis["cost_per_year"]
    cands = study.candidates
    ax.errorbar(c, g, xerr=np.nan_to_num(ch), yerr=np.nan_to_num(gh), fmt="none", ecolor="0.8", lw=0.8, zorder=1)
    names = list(cands.columns)
    if names:
        x = cands.columns[names[0]]
        dots = ax.scatter(c, g, c=x, s=14, cmap="viridis", zorder=2)
        ax.figure.colorbar(dots, ax=ax, label=names[0])
    else:
        ax.scatter(c, g, s=14, zorder=2)
    front = pareto_front(c, g)
    ax.plot(c[front], g[front], "k.-", lw=1.2, label="Pareto front (cheaper, more good dies)", zorder=3)
    if cands.labels[0] == "run_to_failure" and len(cands) > 1:
        ax.plot([c[0]], [g[0]], "kx", ms=10, label="run to failure", zorder=4)
    ax.plot([c[s.best]], [g[s.best]], "r*", ms=14, label=f"best ({study.objective})", zorder=5)
    ax.set_xlabel("maintenance cost per year (PM + repair prices)")
    ax.set_ylabel("good dies per year")
    ax.legend(fontsize=8)


def pareto_front(cost: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """Indices of candidates no other beats on both lower cost and a higher benefit ``avail``, by cost."""
    ok = np.flatnonzero(np.isfinite(cost) & np.isfinite(avail))
    order = ok[np.lexsort((-avail[ok], cost[ok]))]
    front, top = [], -np.inf
    for i in order:
        if avail[i] > top:
            front.append(i)
            top = avail[i]
    return np.array(front, np.int64)


def print_summary(doc: dict, out_dir) -> None:
    meta = doc["meta"]
    k = doc["kpis"]
    print(f"FabTwin maintain: tool {doc['tool']}, {doc['candidates']} candidates x {meta['replications']} "
          f"replications x {meta['horizon_years']:g} years on {meta['backend']} ({meta['device']})")
    print(f"{meta['wall_seconds']:.2f} s (+{meta['compile_seconds']:.1f} s JIT/cache load), "
          f"{meta['candidate_replication_years_per_second']:,.0f} candidate-replication-years/s")
    params = ", ".join(f"{n}={v:.4g}" for n, v in doc["parameters"].items())
    print(f"best for {doc['objective']}: {doc['policy']} {params} "
          f"({doc['candidates_tied_with_best']} candidates within the CI of the best)")
    for name in ("availability", "good_dies_per_year", "cost_per_year", "failures_per_year"):
        m, h = k[name]["mean"], k[name]["ci95"]
        print(f"  {name:<20} {_g(m)} ± {_g(h)}")
    w = doc["warnings"]
    print(f"  warnings: precision {_g(w['warning_precision'])}, recall {_g(w['warning_recall'])}, "
          f"median lead {_g(w['median_lead_hours'])} h")
    if "line_maintenance" in doc:
        lm = {k: v for k, v in doc["line_maintenance"].items() if k not in ("line", "group")}
        print(f"  for line {doc['line_maintenance']['line']}, group {doc['line_maintenance']['group']}: {json.dumps(lm)}")
    print(f"results: {out_dir}")


def _g(v):
    return "-" if v is None else f"{v:.4g}"


# ----------------------------------------------------------------------------- Hydra entry point


def config_search_path() -> str:
    from twin.configs_path import config_dir

    return f"hydra.searchpath=[file://{config_dir() / 'maintain'}]"


def compose_config(overrides: list[str] = ()) -> dict:
    """The study config ``twin maintain`` would run with ``overrides`` (for tests and notebooks)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from twin.configs_path import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="maintain", overrides=[*overrides, config_search_path()])
    return OmegaConf.to_container(cfg, resolve=True)


_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--info", "-i", "--config-name", "-cn", "--config-dir",
                     "-cd", "--experimental-rerun"}


def split_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Hydra flags first (argparse wants them before the overrides), overrides after."""
    flags, overrides = [], []
    it = iter(argv)
    for a in it:
        if a.startswith("-"):
            flags.append(a)
            if a in _FLAGS_WITH_VALUE:
                nxt = next(it, None)
                if nxt is not None:
                    flags.append(nxt)
        else:
            overrides.append(a)
    return flags, overrides


def validate_overrides(overrides: list[str], multirun: bool) -> None:
    """Compose and validate every job's config (each sweep combination) before any compute."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            parsed += parser.parse_overrides([text])
        except Exception as err:  # Hydra's OverrideParseException
            key, _, value = text.partition("=")
            raise ConfigError(key, value, f"cannot parse: {_first_line(err)}") from None
    parsed = [o for o in parsed if not o.get_key_element().lstrip("+~").startswith("hydra.")]
    choices = []
    for o in parsed:
        if o.is_sweep_override():
            if not multirun:
                raise ConfigError(o.get_key_element(), o.input_line.partition("=")[2], "a sweep needs -m (multirun)")
            choices.append([f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()])
        else:
            choices.append([o.input_line])
    for combo in list(itertools.product(*choices))[:256]:
        load_study(_compose_checked(list(combo)))


GROUPS = {"tool": "maintain/tool", "policy": "maintain/policy", "backend": "backend"}


def group_options(group: str) -> list[str]:
    from twin.configs_path import config_dir

    return sorted(p.stem for p in (config_dir() / GROUPS[group]).glob("*.yaml"))


def _compose_checked(overrides: list[str]) -> dict:
    """compose_config, with Hydra's composition errors turned into one-line ConfigErrors."""
    for o in overrides:
        key, _, value = o.partition("=")
        if key in GROUPS and value not in group_options(key):
            raise ConfigError(key, value, f"allowed: {', '.join(group_options(key))}")
    try:
        return compose_config(overrides)
    except Exception:  # Hydra's composition errors; name the override that causes it
        pass
    for i in range(len(overrides)):  # find the first override that breaks composition
        try:
            compose_config(overrides[: i + 1])
        except Exception as err:
            key, _, value = overrides[i].partition("=")
            raise ConfigError(key.lstrip("+~"), value, _why(overrides[:i], key.lstrip("+~"), err)) from None
    raise ConfigError("overrides", " ".join(overrides), "Hydra could not compose this config")


def _why(before: list[str], key: str, err) -> str:
    """'unknown setting; grid takes: T' when the key is missing, else Hydra's own first line."""
    parent, _, _ = key.rpartition(".")
    node = compose_config(before)
    for part in parent.split(".") if parent else []:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and key.rpartition(".")[2] not in node:
        return f"unknown setting; {parent or 'the config'} takes: {', '.join(map(str, node)) or 'nothing'}"
    return _first_line(err)


def _first_line(err) -> str:
    text = [t.strip() for t in str(err).strip().splitlines() if t.strip()]
    return text[0] if text else type(err).__name__


def main(argv: list[str]) -> int:
    """``twin maintain [key=value ...]``: a Hydra app over configs/maintain.yaml; 2 on a bad config."""
    flags, overrides = split_args(list(argv))
    multirun = "-m" in flags or "--multirun" in flags
    info_only = any(f in flags for f in ("-h", "--help", "--hydra-help", "--cfg", "-c", "--info", "-i"))
    try:
        if not info_only:
            validate_overrides(overrides, multirun)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return _run_hydra(flags, overrides)


def _run_hydra(flags, overrides) -> int:
    import hydra
    from omegaconf import DictConfig, OmegaConf

    from twin.configs_path import config_dir

    started = []

    @hydra.main(config_path=str(config_dir()), config_name="maintain", version_base="1.3")
    def app(cfg: DictConfig) -> None:
        from hydra.core.hydra_config import HydraConfig

        started.append(True)
        out_dir = HydraConfig.get().runtime.output_dir
        try:
            doc = run_study(OmegaConf.to_container(cfg, resolve=True), out_dir)
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        print_summary(doc, out_dir)

    saved = sys.argv
    sys.argv = ["twin maintain", *flags, *overrides, config_search_path()]
    try:
        app()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        return 2 if code == 1 and not started else code
    finally:
        sys.argv = saved
    return 0


# ----------------------------------------------------------------------------- validation helpers


def _mapping(value, field_name) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(field_name, value, "expected a mapping")
    return value


def _only(cfg: dict, field_name: str, allowed: set, hint: str | None = None) -> None:
    extra = sorted(set(cfg) - set(allowed))
    if extra:
        raise ConfigError(f"{field_name}.{extra[0]}", cfg[extra[0]],
                          hint or f"unknown setting; allowed: {', '.join(sorted(allowed))}")


def _num(value, field_name, low=0.0, high=math.inf, open_low=False, finite=True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = (math.isfinite(value) or (not finite and value == math.inf)) and value >= low and value <= high \
            and not (open_low and value == low)
    if not ok:
        rng = f"{'>' if open_low else '>='} {low:g}" if math.isfinite(low) else "a number"
        if math.isfinite(high):
            rng += f" and <= {high:g}"
        raise ConfigError(field_name, value, f"must be {'finite, ' if finite else ''}{rng}")
    return value


def _int(value, field_name, low) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(field_name, value, f"must be an integer >= {low}")
    return value


def _dist(spec, field_name, required=False) -> Dist | None:
    if spec is None:
        if required:
            raise ConfigError(field_name, None, "required: a number (hours) or {dist: ..., ...}")
        return None
    return Dist.parse(spec, field_name)
