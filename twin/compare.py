"""``twin compare``: KPI differences of runs against a baseline, paired by replication index.

Replication r of every scenario is seeded by (seed, r) alone, so scenario B's replication r and the
baseline's replication r share their random numbers as far as the model allows (common random
numbers): the difference ``B_r - A_r`` removes the noise both share.  For each KPI the table gives

- the paired estimate: the mean of the per-replication differences with a Student-t 95% interval
  (n - 1 degrees of freedom), valid whatever the correlation between A_r and B_r;
- the independent estimate: the difference of means with Welch's 95% interval, as if the runs had
  nothing in common;
- the variance reduction ratio: Welch's squared standard error over the paired one (> 1: pairing
  made the comparison that many times cheaper in replications).

It reads only run folders (``replications.csv``, ``kpis.json``); a sweep folder stands for the run
folders inside it.  docs/studies.md (Compare) explains the output.
"""
from __future__ import annotations

import csv
import fnmatch
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin.errors import ConfigError, DataError
from twin.kpis import t975

DEFAULT_SHOWN = ("product.*.throughput_lots_per_day", "product.*.cycle_time_days.mean", "product.*.x_factor",
                 "product.*.on_time_pct", "product.*.wip_lots", "product.*.good_dies_per_day")
CSV_COLUMNS = ("scenario", "baseline", "kpi", "n_pairs", "baseline_mean", "scenario_mean", "difference",
               "paired_ci95", "paired_low", "paired_high", "independent_ci95", "independent_low", "independent_high",
               "variance_reduction")


@dataclass(frozen=True)
class Run:
    """One run folder's per-replication table."""

    label: str
    folder: Path
    seed: int | None
    replication: np.ndarray  # replication indices (int)
    columns: dict  # KPI name -> float array over replications (NaN where undefined)


@dataclass(frozen=True)
class Difference:
    kpi: str
    n_pairs: int
    baseline_mean: float
    scenario_mean: float
    difference: float  # mean of paired differences (scenario - baseline)
    paired_ci95: float
    independent_difference: float
    independent_ci95: float
    variance_reduction: float


# ----------------------------------------------------------------------------- statistics


def paired_ci(a, b) -> tuple[float, float, int]:
    """Mean of ``b - a`` over pairs where both are finite, its t 95% half-width, and the pair count."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = (b - a)[np.isfinite(a) & np.isfinite(b)]
    n = d.size
    if n == 0:
        return math.nan, math.nan, 0
    half = t975(n - 1) * d.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
    return float(d.mean()), float(half), n


def welch_ci(a, b) -> tuple[float, float]:
    """``mean(b) - mean(a)`` and Welch's t 95% half-width (Welch-Satterthwaite degrees of freedom)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2:
        diff = float(b.mean() - a.mean()) if a.size and b.size else math.nan
        return diff, math.nan
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se2 = va + vb
    diff = float(b.mean() - a.mean())
    if se2 == 0:
        return diff, 0.0
    df = se2**2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return diff, float(_t975_real(df) * math.sqrt(se2))


def _t975_real(df: float) -> float:
    """t quantile at a non-integer df: linear between the neighbouring integers (t975 falls with df)."""
    lo = max(1, int(math.floor(df)))
    frac = df - lo
    return t975(lo) if frac <= 0 else (1 - frac) * t975(lo) + frac * t975(lo + 1)


def variance_reduction(a, b) -> float:
    """Welch's squared standard error over the paired one, on the same finite pairs."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    n = a.size
    if n < 2:
        return math.nan
    paired = np.var(b - a, ddof=1) / n
    independent = (a.var(ddof=1) + b.var(ddof=1)) / n
    if paired == 0:
        return math.inf if independent > 0 else math.nan
    return float(independent / paired)


def difference(kpi: str, base: Run, scen: Run) -> Difference:
    """One KPI of ``scen`` against ``base``, pairing replication r with replication r."""
    a_all, b_all = base.columns.get(kpi), scen.columns.get(kpi)
    common, ia, ib = np.intersect1d(base.replication, scen.replication, return_indices=True)
    a, b = a_all[ia], b_all[ib]
    diff, half, n = paired_ci(a, b)
    ind, ind_half = welch_ci(a_all, b_all)
    return Difference(kpi, n, _nanmean(a_all), _nanmean(b_all), diff, half, ind, ind_half, variance_reduction(a, b))


def _nanmean(x) -> float:
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else math.nan


# ----------------------------------------------------------------------------- run folders


def run_folders(paths) -> list[Path]:
    """Run folders in order: a folder with kpis.json is a run, any other holds runs (a sweep)."""
    out = []
    for p in map(Path, paths):
        if (p / "replications.csv").is_file():
            out.append(p)
        elif p.is_dir() and (inner := [q.parent for q in p.glob("*/replications.csv")]):
            out += sorted(inner, key=_job_order)
        else:
            raise ConfigError("compare", str(p), "is neither a run folder (with replications.csv) nor a sweep folder holding run folders")
    return out


def _job_order(folder: Path):
    """Sweep jobs by number where the folder starts with one (``12_dispatch=cr``), else by name."""
    head, sep, _ = folder.name.partition("_")
    return (0, int(head), folder.name) if sep and head.isdigit() else (1, 0, folder.name)


def load_run(folder: Path, label: str | None = None) -> Run:
    """Read a run folder's replications.csv (and the seed from kpis.json)."""
    import json

    path = folder / "replications.csv"
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2 or not rows[0] or rows[0][0] != "replication":
        raise DataError(path, 1, "replication", "expected a header starting with 'replication' and one row per replication")
    header = rows[0]
    values = np.full((len(rows) - 1, len(header)), np.nan)
    for i, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise DataError(path, i + 2, None, f"{len(row)} fields, the header has {len(header)}")
        for j, text in enumerate(row):
            if text != "":
                try:
                    values[i, j] = float(text)
                except ValueError:
                    raise DataError(path, i + 2, header[j], f"not a number: {text!r}") from None
    seed = None
    if (folder / "kpis.json").is_file():
        seed = (json.loads((folder / "kpis.json").read_text()).get("meta") or {}).get("seed")
    columns = {name: values[:, j] for j, name in enumerate(header[1:], start=1)}
    return Run(label or folder.name, folder, seed, values[:, 0].astype(int), columns)


def compare(runs: list[Run], baseline: Run) -> list[tuple[Run, list[Difference]]]:
    """Every KPI both runs have, for each scenario other than the baseline."""
    out = []
    for run in runs:
        if run is baseline:
            continue
        kpis = [k for k in baseline.columns if k in run.columns]
        out.append((run, [difference(k, baseline, run) for k in kpis]))
    return out


def write_csv(path: Path, baseline: Run, table) -> None:
    """The full table (every shared KPI), written to a temporary file and renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(CSV_COLUMNS)
            for run, diffs in table:
                for d in diffs:
                    w.writerow([run.label, baseline.label, d.kpi, d.n_pairs, _g(d.baseline_mean), _g(d.scenario_mean),
                                _g(d.difference), _g(d.paired_ci95), _g(d.difference - d.paired_ci95),
                                _g(d.difference + d.paired_ci95), _g(d.independent_ci95),
                                _g(d.independent_difference - d.independent_ci95),
                                _g(d.independent_difference + d.independent_ci95), _g(d.variance_reduction)])
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _g(x) -> str:
    return "" if x is None or not math.isfinite(x) else f"{x:.6g}"


def selected(diffs, patterns) -> list[Difference]:
    return [d for d in diffs if any(fnmatch.fnmatchcase(d.kpi, p) for p in patterns)]


def format_table(baseline: Run, table, patterns) -> str:
    lines = []
    for run, diffs in table:
        lines.append(f"{run.label}  vs  {baseline.label}  (scenario - baseline, 95% CI)")
        lines.append(f"  {'kpi':<44}{'baseline':>11}{'difference':>12}{'paired ±':>11}{'independent ±':>15}{'var. ratio':>12}")
        for d in selected(diffs, patterns):
            lines.append(f"  {d.kpi:<44}{_s(d.baseline_mean):>11}{_s(d.difference):>12}{_s(d.paired_ci95):>11}"
                         f"{_s(d.independent_ci95):>15}{_s(d.variance_reduction):>12}")
    return "\n".join(lines)


def _s(x) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.4g}"


def plot(path: Path, baseline: Run, table, patterns) -> Path | None:
    """A forest plot per scenario: the paired and the independent 95% intervals of each shown KPI,
    relative to the baseline mean (so KPIs in different units share one axis)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = [(run, selected(diffs, patterns)) for run, diffs in table]
    n_kpi = max((len(d) for _, d in rows), default=0)
    if n_kpi == 0:
        return None
    fig, axes = plt.subplots(1, len(rows), figsize=(5 + 4 * len(rows), 1.0 + 0.35 * n_kpi), squeeze=False, sharey=True)
    for ax, (run, diffs) in zip(axes[0], rows):
        y = np.arange(len(diffs))
        scale = np.array([abs(d.baseline_mean) if d.baseline_mean and math.isfinite(d.baseline_mean) else 1.0 for d in diffs])
        mid = np.array([d.difference for d in diffs]) / scale * 100
        ax.errorbar(np.array([d.independent_difference for d in diffs]) / scale * 100, y + 0.15,
                    xerr=np.array([d.independent_ci95 for d in diffs]) / scale * 100, fmt="o", color="0.6",
                    label="independent (Welch)", capsize=2)
        ax.errorbar(mid, y - 0.15, xerr=np.array([d.paired_ci95 for d in diffs]) / scale * 100, fmt="o",
                    color="C0", label="paired by replication", capsize=2)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(y, [d.kpi for d in diffs], fontsize=7)
        ax.set_xlabel(f"% of baseline ({baseline.label})")
        ax.set_title(run.label, fontsize=9)
        ax.invert_yaxis()
    axes[0][0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        plt.close(fig)
    return path


# ----------------------------------------------------------------------------- command


USAGE = ("usage: twin compare RUN_OR_SWEEP_FOLDER... [--baseline FOLDER] [--kpi PATTERN ...] [--out DIR] [--no-plot]")


def parse_args(argv: list[str]) -> dict:
    opts = {"folders": [], "baseline": None, "kpi": [], "out": None, "plot": True}
    it = iter(argv)
    for arg in it:
        if arg in ("--baseline", "--kpi", "--out"):
            value = next(it, None)
            if value is None:
                raise ConfigError(arg, None, f"needs a value; {USAGE}")
            if arg == "--kpi":
                opts["kpi"].append(value)
            else:
                opts[arg[2:]] = value
        elif arg == "--no-plot":
            opts["plot"] = False
        elif arg.startswith("-"):
            raise ConfigError("compare", arg, f"unknown option; {USAGE}")
        else:
            opts["folders"].append(arg)
    if not opts["folders"]:
        raise ConfigError("compare", None, f"give at least one run or sweep folder; {USAGE}")
    return opts


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    opts = parse_args(argv)
    folders = run_folders(opts["folders"])
    base_folder = None
    if opts["baseline"] is not None:
        base_folder = next((f for f in folders if f.name == opts["baseline"] or f.resolve() == Path(opts["baseline"]).resolve()), None)
        if base_folder is None:
            base_folder = run_folders([opts["baseline"]])[0]
            folders = [base_folder, *folders]
    else:
        base_folder = folders[0]
    runs = [load_run(f) for f in folders]
    baseline = runs[[f.resolve() for f in folders].index(base_folder.resolve())]
    if len(runs) < 2:
        raise ConfigError("compare", opts["folders"], "needs a baseline and at least one other run")
    patterns = opts["kpi"] or list(DEFAULT_SHOWN)
    table = compare(runs, baseline)
    out = Path(opts["out"]) if opts["out"] else Path(os.path.commonpath([str(f.resolve().parent) for f in folders]))
    print(format_table(baseline, table, patterns))
    seeds = {r.seed for r in runs}
    if len(seeds) > 1:
        print(f"note: the runs have different seeds {sorted(map(str, seeds))}: pairs share no random numbers, so the paired "
              "interval is valid but no narrower than the independent one", file=sys.stderr)
    write_csv(out / "compare.csv", baseline, table)
    print(f"table: {out / 'compare.csv'} (every KPI)")
    if opts["plot"]:
        png = plot(out / "compare.png", baseline, table, patterns)
        print(f"plot: {png}" if png else "plot: skipped (matplotlib is not installed, or no KPI matched)")
    return 0
