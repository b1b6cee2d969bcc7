"""A line's tool group as a study tool (``tool.line``/``tool.group``), and the best policy back in the
line's terms (minutes, wafers) so a study and ``twin run`` model the same tool.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from twin.distributions import Dist
from twin.errors import ConfigError
from twin.maintain.checks import _first_line, _mapping, _num, _only

if TYPE_CHECKING:
    from twin.maintain.tool import ToolModel


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
