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
import platform
from pathlib import Path

import numpy as np

from kernels import layout as K
from twin import kpis
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
    tf, ti = result.stats["tf"][0], result.stats["ti"][0]
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


def summary_table(doc: dict) -> str:
    """A short terminal table: per product throughput, cycle time, X-factor, on-time."""
    lines = [f"{'product':<16}{'lots/day':>16}{'cycle time d':>18}{'X-factor':>14}{'on-time %':>16}{'WIP lots':>14}"]
    for name, p in doc["products"].items():
        lines.append(f"{name:<16}{_ci(p['throughput_lots_per_day']):>16}{_ci(p['cycle_time_days']['mean']):>18}"
                     f"{_ci(p['x_factor']):>14}{_ci(p['on_time_pct']):>16}{_ci(p['wip_lots']):>14}")
    groups = doc["tool_groups"]
    top = sorted(groups.items(), key=lambda kv: -(kv[1]["utilisation"]["mean"] or 0))[:5]
    lines.append("")
    lines.append(f"{'busiest tool groups':<22}{'utilisation':>16}{'availability':>16}{'queue wait min':>18}")
    for name, g in top:
        lines.append(f"{name:<22}{_ci(g['utilisation']):>16}{_ci(g['availability']):>16}{_ci(g['queue_wait_minutes']):>18}")
    return "\n".join(lines)


def _ci(s: dict) -> str:
    if s["mean"] is None:
        return "-"
    m = s["mean"]
    h = s["ci95"]
    return f"{m:.3g}±{h:.2g}" if h is not None else f"{m:.3g}"
