"""Stability over time of an SMT2020 line: cycle time, throughput and WIP per window, across replications.

    python benchmarks/smt2020_stability.py --line smt2020_hvlm --days 1460 --window 90 --replicas 2 --out DIR

Writes DIR/smt2020_stability.csv (twin.smt2020_report.STABILITY_COLUMNS) and prints a Markdown table
of WIP and normal-lot cycle time per window (mean ± 95 % CI half-width), the form docs/smt2020.md
shows. Any line setting can follow as KEY=VALUE (e.g. lssu=chain).
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import yaml

from twin.backend import resolve_backend
from twin.compile import compile_line
from twin.configs_path import config_dir
from twin.line import load_line
from twin.smt2020_report import STABILITY_NAME, stability_windows, write_stability


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--line", default="smt2020_hvlm")
    ap.add_argument("--days", type=float, default=1460.0)
    ap.add_argument("--window", type=float, default=90.0)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("."))
    ap.add_argument("settings", nargs="*", help="line settings KEY=VALUE")
    a = ap.parse_args()
    cfg = yaml.safe_load((Path(config_dir()) / "line" / f"{a.line}.yaml").read_text())
    for item in a.settings:
        key, value = item.split("=", 1)
        cfg[key] = yaml.safe_load(value)
    compiled = compile_line(load_line(cfg))
    started = time.perf_counter()
    rows = stability_windows(compiled, a.replicas, a.days, a.window, a.seed, resolve_backend("cpu", 0))
    a.out.mkdir(parents=True, exist_ok=True)
    write_stability(a.out / STABILITY_NAME, rows)
    print(f"{a.line}: {a.replicas} replications x {a.days:g} days in {time.perf_counter() - started:.0f} s "
          f"on {platform.processor() or platform.machine()}")
    print(markdown_table(rows))


def markdown_table(rows) -> str:
    """Windows as rows: WIP (time average) and mean cycle time of normal and hot lots finished in the window."""
    cell = {(r["window_start_days"], r["name"], r["metric"]): r for r in rows}
    starts = sorted({r["window_start_days"] for r in rows})
    cols = [("all", "wip_lots", "WIP (lots)"), ("normal", "cycle_time_days", "normal lots CT (d)"),
            ("hot", "cycle_time_days", "hot lots CT (d)"), ("all", "throughput_lots_per_day", "out (lots/d)")]
    out = ["| days | " + " | ".join(c[2] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for s in starts:
        end = cell[(s, "all", "wip_lots")]["window_end_days"]
        vals = []
        for name, metric, _ in cols:
            r = cell[(s, name, metric)]
            ci = "" if r["ci95"] is None else f" ± {r['ci95']:.1f}"
            vals.append("" if r["mean"] is None else f"{r['mean']:.1f}{ci}")
        out.append(f"| {s:g}–{end:g} | " + " | ".join(vals) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
