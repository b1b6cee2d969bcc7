"""Write a run folder: kpis.json, CSV tables, snapshots and the line's layout.

The folder is self-contained so that ``twin view`` opens it later without
re-running.  docs/outputs.md documents every file; FORMAT_VERSION changes
whenever a reader would break.  Every file lands by an atomic rename and
kpis.json, which lists the others, lands last (twin/rundir.py).
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import platform
from pathlib import Path

import numpy as np

from kernels import layout as K
from twin import kpis, readable
from twin.rundir import CHECKPOINT, MANIFEST, OUTPUT_NAMES, OUTPUT_PATTERNS, atomic_move, atomic_open, atomic_write_text

FORMAT_VERSION = 1
# Settings that say how a run proceeds, not what it computes: left out of config_hash, so a resumed run
# hashes like an uninterrupted one.
HOW_NOT_WHAT = ("resume", "checkpoint_seconds")


def package_versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("fabtwin", "numpy", "numba", "numba-cuda", "cupy-cuda12x", "hydra-core", "pyvista"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def write_run(result, out_dir, config: dict, extra_sections: dict | None = None, staged=(),
              interrupted=lambda: False) -> dict:
    """Write every output of ``result`` into ``out_dir``; returns the kpis.json content.

    The old manifest goes first and the new one comes last, so a folder with a
    kpis.json is complete and consistent.  ``staged`` files (written elsewhere
    in the same file system, e.g. the yield report's) are moved in atomically;
    ``interrupted()`` is asked just before the manifest is written, so a signal
    during the writes is recorded.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    rows = kpis.per_replication(result)
    doc = build_kpis(result, rows, config)
    doc.update(extra_sections or {})
    write_replications_csv(out / "replications.csv", rows)
    write_lots_csv(out / "lots_rep0.csv", result)
    write_tools_csv(out / "tools.csv", result)
    write_snapshots(out / "snapshots.npz", result)
    _write_json(out / "line.json", line_layout(result.compiled))
    for path in staged:
        atomic_move(path, out / Path(path).name)
    names = ["replications.csv", "lots_rep0.csv", "tools.csv", "snapshots.npz", "line.json",
             *(Path(p).name for p in staged)]
    _remove_other_outputs(out, names)
    doc["meta"]["files"] = {name: _file_record(out / name) for name in names}
    doc["meta"]["interrupted"] = bool(result.interrupted or interrupted())
    _write_json(out / MANIFEST, doc)
    return doc


def _remove_other_outputs(out: Path, keep) -> None:
    """A previous run's outputs that this run did not write (e.g. another product's wafer maps)."""
    keep = set(keep) | {MANIFEST, CHECKPOINT}
    stale = [n for n in OUTPUT_NAMES if n not in keep]
    stale += [p.name for pat in OUTPUT_PATTERNS if not pat.startswith(".") for p in out.glob(pat) if p.name not in keep]
    for name in stale:
        (out / name).unlink(missing_ok=True)


def _file_record(path: Path) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def estimate_bytes(replicas: int, compiled, n_snapshots: int, lot_rows: int, wafer_maps: int) -> int:
    """An upper bound on the run folder's size without the checkpoint (checked before compute)."""
    groups, tools = len(compiled.group_names), compiled.n_tools
    kpi_columns = 40 * (len(compiled.line.products) + len(compiled.stream_names)) + 20 * groups
    return int(
        replicas * kpi_columns * 14                              # replications.csv
        + 4096 * (groups + len(compiled.stream_names)) + 65536  # kpis.json, line.json
        + lot_rows * 160                                         # lots_rep0.csv and yield_lots_rep0.csv
        + tools * 200                                            # tools.csv
        + n_snapshots * (tools + 4 * groups) + 65536             # snapshots.npz (uncompressed bound)
        + wafer_maps * 4096                                      # wafer_maps*.npz
    )


def build_kpis(result, rows, config) -> dict:
    c = result.compiled
    tree = kpis.nest(rows)
    return {
        "meta": {
            "format_version": FORMAT_VERSION,
            "fabtwin_version": package_versions().get("fabtwin", "dev"),
            "line": c.line.name,
            "backend": result.backend,
            "device": result.device_name,
            "packages": package_versions(),
            "seed": result.seed,
            "replications": result.replicas,
            "horizon_days": result.horizon_days,
            "warmup_days": result.warmup_days,
            "wall_seconds": round(result.wall_seconds, 3),
            "compile_seconds": round(result.compile_seconds, 3),
            "events": result.events,
            "events_per_second": result.events / max(result.wall_seconds, 1e-9),
            "config_hash": config_hash({k: v for k, v in config.items() if k not in HOW_NOT_WHAT}),
            "config": config,
            "interrupted": result.interrupted,
            "planned_replications": result.planned_replicas or result.replicas,
            "planned_horizon_days": result.planned_horizon_days or result.horizon_days,
        },
        "products": tree.get("products", {}),
        "lot_types": tree.get("lot_types", {}),
        "tool_groups": tree.get("tool_groups", {}),
        "checks": {
            "conservation": kpis.conservation(result),
            "littles_law": kpis.littles_law(rows, [p.name for p in c.line.products]),
        },
    }


def _write_json(path, doc):
    atomic_write_text(path, json.dumps(doc, indent=2, default=_json_default) + "\n")


def _json_default(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def write_replications_csv(path, rows: dict):
    keys = list(rows)
    n = len(next(iter(rows.values())))
    with atomic_open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["replication", *keys])
        for r in range(n):
            w.writerow([r, *(_fmt(rows[k][r]) for k in keys)])


def _fmt(v):
    v = float(v)
    return "" if not np.isfinite(v) else f"{v:.6g}"


def write_lots_csv(path, result):
    c = result.compiled
    log = result.lot_log
    with atomic_open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["lot_type", "product", "priority", "wafers", "release_day", "completion_day", "cycle_time_days",
                    "due_day", "on_time", "defect_density_per_cm2"])
        for row in log:
            initial = row["release_min"] < 0
            ct = "" if initial else f"{(row['done_min'] - row['release_min']) / 1440:.4f}"
            w.writerow([c.stream_names[row["stream"]], c.line.products[row["product"]].name, int(row["priority"]),
                        int(row["wafers"]), "initial" if initial else f"{row['release_min'] / 1440:.4f}",
                        f"{row['done_min'] / 1440:.4f}", ct, f"{row['due_min'] / 1440:.4f}",
                        int(row["done_min"] <= row["due_min"]), f"{row['defect_density']:.6g}"])


def write_tools_csv(path, result):
    """Per-tool E10 fractions, availability and failures of replication 0."""
    c = result.compiled
    tf, ti = result.stats["rep0_tf"], result.stats["rep0_ti"]  # replication 0's per-tool rows
    window = (result.horizon_days - result.warmup_days) * 1440.0
    with atomic_open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["tool", "group", "utilisation", "availability", "failures", "pms", *K.E10_NAMES])
        for t, name in enumerate(c.tool_names):
            e10 = tf[t, K.TF_E10_0:K.TF_E10_0 + K.N_E10] / window
            w.writerow([name, c.group_names[c.tool_group[t]], f"{e10[K.PRODUCTIVE]:.4f}",
                        f"{1 - e10[K.SCHED_DOWN] - e10[K.UNSCHED_DOWN]:.4f}", int(ti[t, K.T_FAILS]), int(ti[t, K.T_PMS]),
                        *(f"{v:.4f}" for v in e10)])


def write_snapshots(path, result):
    c = result.compiled
    snaps = result.snapshots
    with atomic_open(path, "wb") as f:
        np.savez_compressed(
            f,
            format_version=np.int64(FORMAT_VERSION),
            time_days=snaps["time_days"],
            tool_state=snaps["tool_state"],
            queue_lots=snaps["queue_lots"],
            tool_group=c.tool_group,
            group_names=np.array(c.group_names),
            group_areas=np.array([g.area for g in c.line.tool_groups]),
            tool_names=np.array(c.tool_names),
        )


def line_layout(c) -> dict:
    line = c.line
    return {
        "name": line.name,
        "format_version": FORMAT_VERSION,
        "groups": [{"name": g.name, "area": g.area, "tools": g.tools, "position": list(g.position) if g.position else None}
                   for g in line.tool_groups],
        "areas": list(line.areas),
        "layout": line.layout,
        "smt2020": (line.layout or {}).get("smt2020") if isinstance(line.layout, dict) else None,
    }


BOTTLENECK_ROWS = 5
CT_TAIL_FACTOR = 1.5  # slow lots' cycle time against the mean, and the margin asked of the warm-up


def summary_table(doc: dict) -> str:
    """The terminal summary: what ± means, products with units, and the bottlenecks ranked by busy time.

    A tool group is busy when it processes or sets up; its busy share of available (up) time is what
    queues grow with, so it ranks the bottlenecks, and its queue is shown beside it.
    """
    meta = doc["meta"]
    lines = [f"means over {meta['replications']} replications ± the 95% confidence half-width (Student t); "
             f"statistics from day {meta['warmup_days']:g} to day {meta['horizon_days']:g}", ""]
    header = ("product", "lots/day", "cycle time (days)", "X-factor", "on time (%)", "WIP (lots)")
    rows = [(name, readable.summary(p["throughput_lots_per_day"]), readable.summary(p["cycle_time_days"]["mean"]),
             readable.summary(p["x_factor"]), readable.summary(p["on_time_pct"]), readable.summary(p["wip_lots"]))
            for name, p in doc["products"].items()]
    lines += _table(header, rows)
    lines.append("")
    lines.append("bottleneck tool groups, ranked by busy time = (productive + setup) / available time")
    header = ("tool group", "busy (%)", "setup (%)", "available (%)", "queue (lots)", "queue wait (minutes)")
    rows = [(name, readable.summary(g.get("busy_of_available"), 100), readable.summary(g["e10"]["setup"], 100),
             readable.summary(g["availability"], 100), readable.summary(g["queue_lots"]),
             readable.summary(g["queue_wait_minutes"]))
            for name, g in bottlenecks(doc["tool_groups"])[:BOTTLENECK_ROWS]]
    lines += _table(header, rows)
    return "\n".join(lines)


def bottlenecks(groups: dict) -> list:
    """Tool groups by busy share of available time, highest first (groups never up come last)."""
    def busy(item):
        mean = (item[1].get("busy_of_available") or {}).get("mean")
        return -mean if mean is not None else math.inf
    return sorted(groups.items(), key=busy)


def survivor_warnings(doc: dict) -> list[str]:
    """Products whose cycle times are long against the warm-up: a lot completing at day t was released at
    day 0 or later (initial WIP is not counted), so its cycle time is at most t, and lots slower than the
    warm-up are missing from the window's first days: the mean cycle time is biased low (survivor bias).

    The warning fires when the measured 95th percentile (1.5 x the mean when unknown) exceeds the warm-up.
    """
    meta = doc["meta"]
    warmup, horizon = meta["warmup_days"], meta["horizon_days"]
    out = []
    for name, p in doc["products"].items():
        ct = p["cycle_time_days"]
        mean, p95 = ct["mean"]["mean"], (ct.get("p95") or {}).get("mean")
        if mean is None:
            out.append(f"warning: no released lot of {name} completed between day {warmup:g} and day {horizon:g}, "
                       f"so its cycle time is unknown; raise horizon_days")
            continue
        slow = p95 if p95 is not None and math.isfinite(p95) else CT_TAIL_FACTOR * mean
        if slow > warmup:
            need = math.ceil(CT_TAIL_FACTOR * slow)
            out.append(f"warning: {name}'s cycle time (mean {readable.number(mean)} days, 95th percentile "
                       f"{readable.number(slow)}) is long against the {warmup:g}-day warm-up: lots slower than the "
                       f"time since day 0 cannot have completed yet, so cycle time is biased low; raise warmup_days "
                       f"to at least {need} and horizon_days with it (e.g. horizon_days={need * 4})")
    return out


def _table(header, rows) -> list[str]:
    """Left-aligned first column, right-aligned numbers, each column as wide as its widest cell."""
    widths = [max(len(str(r[k])) for r in (header, *rows)) for k in range(len(header))]

    def line(row):
        return "  ".join(str(c).ljust(w) if k == 0 else str(c).rjust(w) for k, (c, w) in enumerate(zip(row, widths)))

    return [line(header), *(line(r) for r in rows)]
