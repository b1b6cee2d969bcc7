"""SMT2020 results in the shape of the testbed's published tables, and stability over time.

``smt2020_report.csv`` (written by ``twin run`` on an SMT2020 line) holds, per lot type, the lots
released in the statistics window and finished by its end, the mean cycle time and the on-time
share; per tool family, availability, utilisation, breakdown, PM and setup shares. Every value is
a mean over replications with its 95 % CI half-width, one row per (table, name, metric), so a
reader holding the published tables compares line by line. docs/outputs.md documents the columns.

``stability_windows`` runs one long simulation and reports cycle time, throughput and WIP per
window (90 days by default) across replications: a drifting WIP or cycle time means no steady
state (docs/smt2020.md, Stability over time).
"""
from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import numpy as np

from kernels import layout as K
from twin import kpis, tool_sums
from twin.compile import MINUTES_PER_DAY

REPORT_NAME = "smt2020_report.csv"
STABILITY_NAME = "smt2020_stability.csv"
COLUMNS = ("table", "name", "metric", "mean", "ci95", "n")


def is_smt2020_line(line_cfg) -> bool:
    """A run's ``line`` setting names an SMT2020 line (a loader mapping or an embedded smt2020_* name)."""
    if isinstance(line_cfg, dict):
        return line_cfg.get("loader") == "smt2020"
    return isinstance(line_cfg, str) and line_cfg.startswith("smt2020")


def write_if_smt2020(result, out_dir, line_cfg) -> Path | None:
    """Write ``smt2020_report.csv`` into the run folder when the run's line is an SMT2020 line."""
    if not is_smt2020_line(line_cfg):
        return None
    path = Path(out_dir) / REPORT_NAME
    write_rows(path, report_rows(result))
    return path


def report_rows(result) -> list[dict]:
    """Every (table, name, metric) row of the report, each summarised over replications."""
    rows = []
    for name, samples in lot_type_samples(result).items():
        rows += [_row("lot_type", name, metric, values) for metric, values in samples.items()]
    for name, samples in tool_family_samples(result).items():
        rows += [_row("tool_family", name, metric, values) for metric, values in samples.items()]
    return rows


def lot_type_samples(result) -> dict:
    """Per lot type, per-replication arrays: released in the window, finished of those, cycle time, on time."""
    c = result.compiled
    s_f = result.stats["s_f"]
    window_days = result.horizon_days - result.warmup_days
    out = {}
    for s, name in enumerate(c.stream_names):
        ct_n = s_f[:, s, K.SS_CT_N]
        out[name] = {
            "released_in_window": s_f[:, s, K.SS_RELEASED],
            "finished_of_released": s_f[:, s, K.SS_WINDOW_DONE],
            "completed_in_window": s_f[:, s, K.SS_DONE],
            "throughput_lots_per_day": s_f[:, s, K.SS_DONE] / window_days,
            "cycle_time_days": kpis._ratio(s_f[:, s, K.SS_CT_SUM], ct_n) / MINUTES_PER_DAY,
            "on_time_pct": 100.0 * kpis._ratio(s_f[:, s, K.SS_ONTIME], ct_n),
        }
    return out


def tool_family_samples(result) -> dict:
    """Per tool family, per-replication shares (%): availability and the E10 shares of calendar time;
    utilisation of available time, counting a tool busy while any lot is inside it, setup included
    (``utilisation_pct``), or only while it is held by setup or processing (``held_pct``; for a
    cascading tool, the cascade interval)."""
    c = result.compiled
    e10_minutes = tool_sums.e10_sum(result.stats)  # [R, groups, N_E10], summed over each group's tools
    loaded = tool_sums.tf_sum(result.stats, K.TF_STANDBY_LOADED)
    window_min = (result.horizon_days - result.warmup_days) * MINUTES_PER_DAY
    out = {}
    for g, (name, n_tools) in enumerate(zip(c.group_names, tool_sums.group_tools(c))):
        calendar = window_min * n_tools
        e10 = e10_minutes[:, g] / calendar
        available = 1.0 - e10[:, K.SCHED_DOWN] - e10[:, K.UNSCHED_DOWN]
        held = e10[:, K.PRODUCTIVE] + e10[:, K.SETUP]
        inside = held + loaded[:, g] / calendar
        out[name] = {
            "tools": np.full(e10_minutes.shape[0], float(n_tools)),
            "availability_pct": 100.0 * available,
            "utilisation_pct": 100.0 * kpis._ratio(inside, available),
            "held_pct": 100.0 * kpis._ratio(held, available),
            "breakdown_pct": 100.0 * e10[:, K.UNSCHED_DOWN],
            "pm_pct": 100.0 * e10[:, K.SCHED_DOWN],
            "setup_pct": 100.0 * e10[:, K.SETUP],
        }
    return out


def _row(table, name, metric, values) -> dict:
    s = kpis.summarize(values)
    return {"table": table, "name": name, "metric": metric, "mean": s["mean"], "ci95": s["ci95"], "n": s["n"]}


def write_rows(path, rows, columns=COLUMNS) -> None:
    """Write the rows as CSV atomically: a temporary file in the same folder, then a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            for r in rows:
                w.writerow({k: ("" if r[k] is None else (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]))
                            for k in columns})
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------- stability over time


def stability_windows(c, replicas: int, horizon_days: float, window_days: float, seed: int, backend) -> list[dict]:
    """One run of ``horizon_days`` from the tables' initial state, read at every ``window_days``:
    per window and replication, WIP (time average and at the window's end), throughput and mean
    cycle time of the lots finished in the window (normal lots, hot lots, and per lot type).
    Returns rows (window_start_days, window_end_days, name, metric, mean, ci95, n)."""
    from kernels.state import RepState
    from twin.runner import STATE_ORDER, _RepZeroBuffers, advance_to, state_shapes

    horizon = horizon_days * MINUTES_PER_DAY
    ends = np.arange(window_days, horizon_days + 1e-9, window_days) * MINUTES_PER_DAY
    shapes = state_shapes(c)
    state = {name: backend.zeros(replicas, *shapes[name]) for name in STATE_ORDER}
    static = backend.static(c)
    rep0 = _RepZeroBuffers(c, horizon, 0, 0.0)
    logs = backend.rep_zero(rep0, True)
    launch = backend.launchers()
    backend.warm_up(c)
    launch.init_all(static, backend.wip(c), RepState(**state), np.uint64(seed), 0, 0.0, horizon)
    previous = None
    rows = []
    start = 0.0
    for end in ends:
        advance_to(c, backend, launch, static, state, logs, 0, float(end), 0.0, horizon)
        snap = _window_counters(backend.to_host(state["s_f"]), backend.to_host(state["s_i"]), end)
        rows += _window_rows(c, snap, previous, start, end)
        previous, start = snap, end
    return rows


def _window_counters(s_f, s_i, now) -> dict:
    """Cumulative counters at ``now`` per replication and stream; the WIP area is closed at ``now``."""
    wip = s_i[:, :, K.S_WIP].astype(np.float64)
    return {
        "wip_area": s_f[:, :, K.SS_WIP_AREA] + wip * (now - s_f[:, :, K.SS_WIP_SINCE]),
        "wip_end": wip,
        "done": s_f[:, :, K.SS_DONE].copy(),
        "ct_sum": s_f[:, :, K.SS_CT_SUM].copy(),
        "ct_n": s_f[:, :, K.SS_CT_N].copy(),
    }


def _window_rows(c, snap, previous, start, end) -> list[dict]:
    span = end - start
    diff = {k: snap[k] - (previous[k] if previous is not None and k != "wip_end" else 0.0) for k in snap}
    priority = c.ri[:, K.RI_PRIORITY]
    groups = {"all": np.ones(priority.size, bool), "normal": priority == 0, "hot": priority >= 1}
    groups.update({name: np.arange(priority.size) == s for s, name in enumerate(c.stream_names)})
    rows = []
    for name, mask in groups.items():
        metrics = {
            "wip_lots": diff["wip_area"][:, mask].sum(axis=1) / span,
            "wip_lots_at_end": diff["wip_end"][:, mask].sum(axis=1),
            "throughput_lots_per_day": diff["done"][:, mask].sum(axis=1) / (span / MINUTES_PER_DAY),
            "cycle_time_days": kpis._ratio(diff["ct_sum"][:, mask].sum(axis=1), diff["ct_n"][:, mask].sum(axis=1)) / MINUTES_PER_DAY,
        }
        for metric, values in metrics.items():
            s = kpis.summarize(values)
            rows.append({"window_start_days": start / MINUTES_PER_DAY, "window_end_days": end / MINUTES_PER_DAY,
                         "name": name, "metric": metric, "mean": s["mean"], "ci95": s["ci95"], "n": s["n"]})
    return rows


STABILITY_COLUMNS = ("window_start_days", "window_end_days", "name", "metric", "mean", "ci95", "n")


def write_stability(path, rows) -> None:
    """Write the stability rows as CSV atomically (temporary file, then a rename)."""
    write_rows(path, rows, STABILITY_COLUMNS)
