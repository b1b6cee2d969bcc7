"""``twin bench``: run the benchmark matrix, save one result file and a plot, flag regressions.

The matrix is the engine (default line, SMT2020 HVLM when available), the
SimPy baseline of the default line, the yield kernel and the maintenance
sweep; each on numba CPU with one thread, with all cores, and on CUDA when a
real GPU is usable.  The benchmark code lives in the checkout's
``benchmarks/`` folder (not installed with the package); each section module
exposes ``run(quick) -> list[dict]``.  A section that is missing or fails is
recorded with its reason and the others still run.

Every run writes ``benchmarks/results/<UTC time>_<machine hash>.json`` (rows,
hardware, software, the CPU time other processes took during each section)
and a PNG of throughput and speedup against the replication count, then
compares with the previous result file of the same machine (same CPU model,
core count and GPU) and flags every row whose median throughput fell by more
than the noise threshold.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from twin.errors import ConfigError

SECTIONS = ("engine", "simpy", "yield", "maintenance")
MODULES = {"engine": "bench_engine", "simpy": "simpy_baseline", "yield": "bench_yield",
           "maintenance": "bench_maintenance"}
SCHEMA = "fabtwin-bench/1"


# ----------------------------------------------------------------------------- arguments

def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        raise ConfigError("bench", " ".join(extra), "unknown argument; see twin bench --help")
    args.only = _choices(args.only, SECTIONS, "bench.only") if args.only else list(SECTIONS)
    args.sizes = _positive_ints(args.sizes, "bench.sizes") if args.sizes else None
    if args.repeats is not None and args.repeats < 1:
        raise ConfigError("bench.repeats", args.repeats, "must be an integer >= 1")
    if not 0.0 < args.threshold < 1.0:
        raise ConfigError("bench.threshold", args.threshold, "must be a fraction in (0, 1), e.g. 0.15")
    return args


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twin bench", description=__doc__.splitlines()[0], exit_on_error=False)
    p.add_argument("--quick", action="store_true", help="small sizes, 3 repeats (under two minutes on 2 cores)")
    p.add_argument("--only", help=f"comma-separated sections to run: {','.join(SECTIONS)} (default: all)")
    p.add_argument("--sizes", help="engine replication counts, e.g. 1,2,4,8 (default: per line and mode)")
    p.add_argument("--repeats", type=int, help="engine repeats per point (default 3 quick, 5 full)")
    p.add_argument("--out", help="folder for the result file and plot (default: benchmarks/results)")
    p.add_argument("--threshold", type=float, default=0.15, help="regression threshold on the median (default 0.15)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--fail-on-regression", action="store_true", help="exit 1 when a regression is flagged")
    return p


def _choices(text: str, allowed, field: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    for name in names:
        if name not in allowed:
            raise ConfigError(field, name, f"allowed: {', '.join(allowed)}")
    return names


def _positive_ints(text: str, field: str) -> list[int]:
    try:
        values = [int(s) for s in text.split(",")]
    except ValueError:
        raise ConfigError(field, text, "must be comma-separated integers >= 1, e.g. 1,2,4,8") from None
    if not values or min(values) < 1:
        raise ConfigError(field, text, "must be comma-separated integers >= 1, e.g. 1,2,4,8")
    return values


# ----------------------------------------------------------------------------- optional packages

BENCH_EXTRA = 'pip install "fabtwin[bench]"'


def has_module(name: str) -> bool:
    """True when ``name`` imports, found without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def check_extras(args, argv) -> None:
    """Before any work: a section asked for by name needs its package (one-line error); in the default
    run a missing package drops the SimPy section or the plot, said in one line each."""
    if "simpy" in args.only and not has_module("simpy"):
        if any(a.startswith("--only") for a in argv):
            raise ConfigError("--only", "simpy", f"the SimPy baseline needs simpy: {BENCH_EXTRA}")
        args.only = [s for s in args.only if s != "simpy"]
        print(f"note: skipping the SimPy baseline: it needs simpy ({BENCH_EXTRA})", file=sys.stderr)
    if not args.no_plot and not has_module("matplotlib"):
        args.no_plot = True
        print(f"note: skipping the plot: it needs matplotlib ({BENCH_EXTRA})", file=sys.stderr)


# ----------------------------------------------------------------------------- where the benchmarks live

def locate_benchmarks() -> Path:
    """``benchmarks/`` of the checkout this package runs from, else of the current folder."""
    import twin

    for folder in (Path(twin.__file__).resolve().parents[1] / "benchmarks", Path.cwd() / "benchmarks"):
        if (folder / "bench_engine.py").is_file():
            return folder
    raise ConfigError("benchmarks", str(Path.cwd() / "benchmarks"),
                      "folder with bench_engine.py not found; run twin bench from a FabTwin checkout "
                      "(the benchmarks are not installed with the package)")


def load_module(folder: Path, name: str):
    """Import ``folder/name.py`` by path, or None when the file is absent."""
    path = folder / f"{name}.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"fabtwin_benchmarks_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- machine and software

def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        return os.cpu_count() or 1


def gpu_info() -> dict | None:
    """Name, driver and memory of the CUDA device when a real GPU is usable; None otherwise."""
    from kernels.target import cuda_device_name, cuda_usable

    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or not cuda_usable():
        return None
    from numba import cuda

    info = {"name": cuda_device_name(), "driver": None}
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        driver, memory = out.stdout.strip().splitlines()[0].split(",")
        info.update(driver=driver.strip(), memory=memory.strip())
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        pass
    try:
        info["cuda_driver_api"] = ".".join(map(str, cuda.cudadrv.driver.driver.get_version()))
        info["compute_capability"] = ".".join(map(str, cuda.get_current_device().compute_capability))
    except Exception:  # noqa: BLE001 (best effort: metadata only)
        pass
    return info


def machine_info() -> dict:
    from twin.backend import cpu_model

    import numba

    memory = None
    try:
        with open("/proc/meminfo") as f:
            memory = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    gpu = gpu_info()
    key = f"{cpu_model()}|{cpu_cores()}|{gpu['name'] if gpu else 'none'}"
    return {"cpu_model": cpu_model(), "cpu_cores": cpu_cores(), "cpu_detail": cpu_detail(),
            "numba_threads": numba.config.NUMBA_NUM_THREADS, "numba_threading_layer": _threading_layer(),
            "memory_gib": memory, "gpu": gpu, "os": platform.platform(), "machine_hash": _short_hash(key),
            "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def cpu_detail() -> dict:
    """Vendor, family/model numbers, clock and whether it runs under a hypervisor (from /proc/cpuinfo)."""
    wanted = {"vendor_id": "vendor", "cpu family": "family", "model": "model", "cpu MHz": "mhz", "cache size": "cache"}
    out = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                name, _, value = (part.strip() for part in line.partition(":"))
                if name in wanted:
                    out[wanted[name]] = value
                elif name == "flags":
                    out["virtualised"] = "hypervisor" in value.split()
    except OSError:
        out["machine"] = platform.machine()
    return out


def _threading_layer() -> str | None:
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        return None


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def software_info(root: Path) -> dict:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for dist in ("numpy", "numba", "numba-cuda", "cupy-cuda12x", "cupy-cuda11x", "cupy", "simpy", "matplotlib",
                 "scipy", "fabtwin"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    import twin

    versions["twin_imported_from"] = str(Path(twin.__file__).resolve().parent)
    versions["git_commit"] = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    versions["git_dirty"] = bool(status) if status is not None else None
    return versions


def _git(root: Path, *args) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


class LoadMeter:
    """CPU time other processes used while a section ran, in cores (timings are only as quiet as the machine)."""

    def __enter__(self):
        self.wall0, self.busy0, self.own0 = time.perf_counter(), _machine_busy_seconds(), _own_cpu_seconds()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.wall0
        busy1 = _machine_busy_seconds()
        self.seconds = wall
        if busy1 is None or self.busy0 is None or wall <= 0:
            self.other_cores = None
            return False
        own = _own_cpu_seconds() - self.own0
        self.other_cores = max(0.0, (busy1 - self.busy0 - own) / wall)
        return False


def _machine_busy_seconds() -> float | None:
    """Busy CPU seconds of the whole machine since boot (user, nice, system, irq, softirq, steal)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# ----------------------------------------------------------------------------- the matrix

def run_matrix(folder: Path, args) -> dict:
    """Run the chosen sections; every section's rows, duration and foreign load."""
    doc = {"schema": SCHEMA, "created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "quick": bool(args.quick), "command": "twin bench " + " ".join(args.argv),
           "machine": machine_info(), "software": software_info(folder.parent),
           "sections": {}, "section_runs": {}}
    started = time.perf_counter()
    for section in args.only:
        print(f"[bench] {section} ...", flush=True)
        with LoadMeter() as meter:
            rows = run_section(folder, section, args)
        doc["sections"][section] = rows
        doc["section_runs"][section] = {"seconds": round(meter.seconds, 2), "other_processes_cores":
                                        None if meter.other_cores is None else round(meter.other_cores, 3)}
    doc["total_seconds"] = round(time.perf_counter() - started, 2)
    doc["machine"]["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    doc["machine"]["numba_threading_layer"] = _threading_layer()
    doc["summary"] = summarize(doc)
    return doc


def run_section(folder: Path, section: str, args) -> list[dict]:
    module = load_module(folder, MODULES[section])
    if module is None:
        return [{"benchmark": section, "note": f"skipped: benchmarks/{MODULES[section]}.py is not present"}]
    try:
        if section == "engine":
            return module.run(args.quick, sizes=args.sizes, repeats=args.repeats)
        return module.run(args.quick)
    except Exception as err:  # noqa: BLE001 (one broken section must not lose the others)
        print(f"[bench] {section} failed: {type(err).__name__}: {err}", file=sys.stderr)
        return [{"benchmark": section, "error": f"{type(err).__name__}: {err}"}]


def summarize(doc: dict) -> dict:
    """Headline figures: best engine throughput per line and backend, all-core scaling, speed-up over SimPy."""
    engine = [r for r in doc["sections"].get("engine", []) if r.get("benchmark") == "engine" and "events_per_s" in r]
    out: dict = {"engine": {}, "simpy": None}
    for r in engine:
        name = f"{r['line']}/{r['backend']}/{r['threads']}t" if r["backend"] == "cpu" else f"{r['line']}/{r['backend']}"
        best = out["engine"].get(name)
        if best is None or r["events_per_s"] > best["events_per_s"]:
            out["engine"][name] = {k: r.get(k) for k in ("events_per_s", "events_per_s_per_core",
                                                         "replication_days_per_s", "replicas", "horizon_days")}
    simpy = next((r for r in doc["sections"].get("simpy", []) if "replication_days_per_s" in r), None)
    if simpy is not None:
        same = [r for r in engine if r["line"] == "default" and r["horizon_days"] == simpy["horizon_days"]
                and r["warmup_days"] == simpy["warmup_days"]]
        one = next((r for r in same if r["backend"] == "cpu" and r["threads"] == 1
                    and r["replicas"] == simpy["replicas"]), None)
        best = max(same, key=lambda r: r["replication_days_per_s"], default=None)
        entry = {"replication_days_per_s": simpy["replication_days_per_s"], "replicas": simpy["replicas"],
                 "horizon_days": simpy["horizon_days"]}
        if one is not None:
            events_per_rep_day = one["events_per_run"] / (one["replicas"] * one["horizon_days"])
            entry["engine_equivalent_events_per_s"] = simpy["replication_days_per_s"] * events_per_rep_day
            entry["twin_cpu_1_thread_speedup"] = one["replication_days_per_s"] / simpy["replication_days_per_s"]
        if best is not None:
            entry["twin_best_speedup"] = best["replication_days_per_s"] / simpy["replication_days_per_s"]
            entry["twin_best"] = f"{best['backend']} {best['threads']} threads, {best['replicas']} replications"
        out["simpy"] = entry
    return out


# ----------------------------------------------------------------------------- output

def result_stem(doc: dict) -> str:
    stamp = doc["created"].replace("-", "").replace(":", "")
    return f"{stamp}_{doc['machine']['machine_hash']}"


def save(doc: dict, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path, n = out_dir / f"{result_stem(doc)}.json", 1
    while path.exists():  # two runs within one second
        n += 1
        path = out_dir / f"{result_stem(doc)}-{n}.json"
    path.write_text(json.dumps(doc, indent=1, default=_json_default) + "\n")
    return path


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def plot(doc: dict, path: Path) -> Path | None:
    """Engine throughput and speed-up over numba CPU 1 thread against the replication count (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in doc["sections"].get("engine", []) if r.get("benchmark") == "engine" and "events_per_s" in r]
    if not rows:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    series: dict = {}
    for r in rows:
        label = f"{r['line']} numba {r['backend'].upper()}" + (f" {r['threads']} thr" if r["backend"] == "cpu" else "")
        series.setdefault((r["line"], label), []).append(r)
    for (line, label), pts in sorted(series.items()):
        pts.sort(key=lambda r: r["replicas"])
        x = [r["replicas"] for r in pts]
        axes[0].errorbar(x, [r["events_per_s"] for r in pts], yerr=_spread(pts, "events_per_s"), marker="o",
                         capsize=3, label=label)
        axes[1].plot(x, [r["replication_days_per_s"] for r in pts], marker="o", label=label)
        base = _single_thread_rate(rows, line)
        if base:
            axes[2].plot(x, [r["events_per_s"] / base for r in pts], marker="o", label=label)
    for r in doc["sections"].get("simpy", []):
        if "replication_days_per_s" in r:
            axes[1].axhline(r["replication_days_per_s"], color="k", ls="--",
                            label=f"SimPy {r['line']} ({r['horizon_days']:g} d horizon)")
    titles = ("simulated events / s", "replication-days / s", "speed-up over numba CPU 1 thread")
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    sizes = sorted({r["replicas"] for r in rows})
    for ax, title in zip(axes, titles):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes)
        ax.xaxis.set_major_formatter(FormatStrFormatter("%d"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("replications")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    m = doc["machine"]
    gpu = m["gpu"]["name"] if m.get("gpu") else "no GPU"
    fig.suptitle(f"FabTwin engine, {m['cpu_model']}, {m['cpu_cores']} cores, {gpu} ({doc['created']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _spread(pts, metric):
    """Asymmetric error bars from the fastest and slowest repeat."""
    lo = [r[metric] - r[metric] * r["seconds_median"] / r["seconds_max"] for r in pts]
    hi = [r[metric] * r["seconds_median"] / r["seconds_min"] - r[metric] for r in pts]
    return [lo, hi]


def _single_thread_rate(rows, line) -> float | None:
    """CPU 1-thread events/s at its largest size: one thread's rate is flat in the replication count."""
    ones = [r for r in rows if r["line"] == line and r["backend"] == "cpu" and r["threads"] == 1]
    return max(ones, key=lambda r: r["replicas"])["events_per_s"] if ones else None


def print_report(doc: dict, folder: Path, compare) -> None:
    engine_mod = load_module(folder, "bench_engine")
    rows = doc["sections"]
    if "engine" in rows and engine_mod is not None:
        print()
        engine_mod.print_rows(rows["engine"])
    for section in ("simpy", "yield", "maintenance"):
        for r in rows.get(section, []):
            print(_short_row(section, r, compare))
    s = doc["summary"].get("simpy")
    if s:
        print(f"SimPy baseline: {s['replication_days_per_s']:.1f} replication-days/s on one core"
              + (f"; twin numba CPU 1 thread is {s['twin_cpu_1_thread_speedup']:.1f}x faster"
                 if "twin_cpu_1_thread_speedup" in s else "")
              + (f", best twin ({s['twin_best']}) {s['twin_best_speedup']:.1f}x" if "twin_best_speedup" in s else ""))
    for section, run in doc["section_runs"].items():
        other = run["other_processes_cores"]
        warn = "  <- other processes were busy: timings are unreliable" if other is not None and other > 0.25 else ""
        used = "?" if other is None else f"{other:.2f}"
        print(f"[{section}] {run['seconds']:.1f} s, other processes used {used} cores{warn}")


def _short_row(section: str, r: dict, compare) -> str:
    head = f"{section:12s}{str(r.get('benchmark', '')):32s}{str(r.get('backend', '')):6s}"
    if "error" in r or "note" in r:
        return head + str(r.get("error") or r.get("note"))
    metric = compare.metric_of(r) if compare else None
    if metric is None:
        extra = {k: v for k, v in r.items() if "seconds" in k}
        return head + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in extra.items())
    threads = f"{r['threads']} thr " if r.get("threads") else ""
    return head + f"{threads}{metric} {r[metric]:,.4g} (median of {r.get('repeats', '?')})"


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        _parser().print_help()
        return 0
    try:
        args = parse_args(argv)
    except argparse.ArgumentError as err:
        raise ConfigError("bench", str(err.argument_name), str(err)) from None
    args.argv = list(argv)
    check_extras(args, argv)  # a missing extra is said before anything else
    folder = locate_benchmarks()
    out_dir = Path(args.out) if args.out else folder / "results"
    compare = load_module(folder, "compare")
    doc = run_matrix(folder, args)
    found = compare.previous(out_dir, doc) if compare and out_dir.is_dir() else None
    report = compare.compare(doc, found[1], args.threshold) if found else None
    doc["comparison"] = {"previous": found[0].name if found else None, **(report or {})}
    path = save(doc, out_dir)
    png = None if args.no_plot else plot(doc, path.with_suffix(".png"))
    print_report(doc, folder, compare)
    print(compare.format_report(report, found[0].name if found else None) if compare else "")
    print(f"saved {path}" + (f" and {png.name}" if png else ""))
    return 1 if args.fail_on_regression and report and report["regressions"] else 0
