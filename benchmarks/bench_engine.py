"""Fab-line engine throughput: simulated events per second, per CPU core, and replication-days per second.

For each line (the default line; SMT2020 HVLM when its loader and data are
present) and each backend (numba CPU on one thread, numba CPU on all cores,
numba CUDA on a real GPU, never the simulator) the replication count sweeps
1, 2, 4, ... so the scaling curve shows.  Timing:

- the JIT warm-up is done first and reported apart (``jit_first_call_seconds``,
  with whether numba's disk cache held the kernels); the full run also times
  a cold compile in a fresh process with an empty cache;
- each point is run ``repeats`` times; the median and the min/max are kept;
- the clock is ``RunResult.wall_seconds``: allocation, initialisation, every
  segment of simulated time (the runner synchronises the device after each)
  and the copy of the statistics to the host; JIT warm-up excluded;
- a sweep stops growing once one point takes longer than ``max_point_s``.

    python benchmarks/bench_engine.py [--quick]
    python benchmarks/bench_engine.py --against /path/to/other/checkout [rounds]

``run(quick)`` returns the rows, so ``twin bench`` can call it.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NO_GPU = "not measured: no GPU available"

# line -> (horizon_days, warmup_days, sizes) for (quick, full)
PLANS = {
    "default": ((20.0, 5.0, (1, 2, 4, 8)), (60.0, 15.0, (1, 2, 4, 8, 16, 32, 64))),
    "smt2020_hvlm": ((2.0, 0.5, (1, 2, 4)), (10.0, 2.0, (1, 2, 4, 8, 16))),
}
CUDA_SIZES = ((64, 256, 1024), (64, 256, 1024, 4096, 16384))
MAX_POINT_S = (4.0, 60.0)


def load_lines() -> tuple[dict, list[dict]]:
    """Compiled lines to run, and a skip row (with its reason) for each line that cannot load."""
    from twin.compile import compile_line
    from twin.line import load_line

    lines, skipped = {}, []
    for name in PLANS:
        try:
            lines[name] = compile_line(load_line(name))
        except Exception as err:  # a missing loader, data folder or config names the reason
            skipped.append({"benchmark": "engine", "line": name, "backend": "all",
                            "note": f"skipped: {type(err).__name__}: {err}"})
    return lines, skipped


def targets() -> list[tuple[str, int]]:
    """(backend, threads): CPU on one thread, CPU on all cores, CUDA when a real GPU is usable."""
    import numba

    from kernels.target import cuda_usable

    cores = numba.config.NUMBA_NUM_THREADS
    out = [("cpu", 1)] + ([("cpu", cores)] if cores > 1 else [])
    if cuda_usable() and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        out.append(("cuda", 0))
    return out


def make_backend(name: str, threads: int):
    from twin.backend import resolve_backend

    return resolve_backend(name, threads)


def cache_state() -> str:
    """'hit' when numba's disk cache already holds the CPU engine launcher, else 'miss'."""
    import numba

    from kernels.target import keyed_cache_dir

    keyed_cache_dir()
    folder = Path(numba.config.CACHE_DIR or ROOT / "kernels" / "__pycache__")
    return "hit" if any(folder.rglob("launch_cpu.advance_all-*.nbi")) else "miss"


def cold_compile_seconds(line: str) -> float | None:
    """First call in a fresh process with an empty numba cache (the compile a new install pays)."""
    code = ("import time\nfrom twin.line import load_line\nfrom twin.compile import compile_line\n"
            "from twin.backend import resolve_backend\n"
            f"c = compile_line(load_line({line!r}))\nb = resolve_backend('cpu', 1)\n"
            "print(b.warm_up(c))\n")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        return None
    return float(proc.stdout.split()[-1])


def time_point(compiled, backend, replicas: int, horizon: float, warmup: float, repeats: int) -> dict:
    """Median and spread of ``repeats`` timed runs of ``replicas`` replications."""
    from twin.runner import run_line

    seconds, events = [], 0
    for k in range(repeats):
        result = run_line(compiled, replicas, horizon, warmup, seed=1 + k, backend=backend)
        seconds.append(result.wall_seconds)
        events += result.events
    return {"seconds": seconds, "events_per_run": events / repeats}


def row(line: str, backend, threads: int, replicas: int, horizon: float, warmup: float, timing: dict) -> dict:
    secs = timing["seconds"]
    med = statistics.median(secs)
    events = timing["events_per_run"]
    q = statistics.quantiles(secs, n=4) if len(secs) >= 2 else [med, med, med]
    out = {
        "benchmark": "engine", "key": f"engine/{line}/{backend.name}/t{threads}/r{replicas}/h{horizon:g}/w{warmup:g}",
        "line": line, "backend": backend.name, "threads": threads, "device": backend.device_name,
        "replicas": replicas, "horizon_days": horizon, "warmup_days": warmup, "repeats": len(secs),
        "seconds_median": med, "seconds_min": min(secs), "seconds_max": max(secs), "seconds_iqr": q[2] - q[0],
        "events_per_run": events, "events_per_s": events / med,
        "replication_days_per_s": replicas * horizon / med,
    }
    if backend.name == "cpu":
        out["events_per_s_per_core"] = out["events_per_s"] / threads
    return out


def sweep(name: str, compiled, backend_name: str, threads: int, quick: bool, sizes=None, repeats=None) -> list[dict]:
    """One backend on one line: warm-up row, then replicas doubling until a point gets too slow."""
    horizon, warmup, plan_sizes = PLANS[name][0 if quick else 1]
    if backend_name == "cuda":
        plan_sizes = CUDA_SIZES[0 if quick else 1]
    sizes = sizes or plan_sizes
    from twin import runner

    repeats = repeats or (3 if quick else 5)
    cache = cache_state() if backend_name == "cpu" else "n/a"
    backend = make_backend(backend_name, threads)
    started = time.perf_counter()
    backend.warm_up(compiled)
    rows = [{"benchmark": "engine_jit", "key": f"engine_jit/{name}/{backend_name}/t{threads}", "line": name,
             "backend": backend_name, "threads": threads, "device": backend.device_name,
             "jit_first_call_seconds": time.perf_counter() - started, "numba_cache": cache,
             "tool_groups": len(compiled.group_names), "tools": compiled.n_tools,
             "route_steps": len(compiled.step_names), "lot_capacity": compiled.lot_capacity,
             "lot_slots": compiled.lot_slots, "state_bytes_per_replication": runner.bytes_per_replication(compiled)}]
    for replicas in sizes:
        timing = time_point(compiled, backend, replicas, horizon, warmup, repeats)
        rows.append(row(name, backend, threads, replicas, horizon, warmup, timing))
        if statistics.median(timing["seconds"]) > MAX_POINT_S[0 if quick else 1]:
            break
    return rows


PYSCFABSIM_SECONDS = 100.0  # PySCFabSim, HVLM, 30 days, 1 replication: as the SMT2020 issue states it (not run here)


def hvlm_target(compiled, quick: bool) -> dict:
    """The SMT2020 target: HVLM, 30 days, one replication, one CPU core, warm JIT; against PySCFabSim's ~100 s."""
    backend = make_backend("cpu", 1)
    started = time.perf_counter()
    backend.warm_up(compiled)
    jit = time.perf_counter() - started
    timing = time_point(compiled, backend, 1, 30.0, 0.0, 3 if quick else 7)
    out = row("smt2020_hvlm", backend, 1, 1, 30.0, 0.0, timing)
    out.update(benchmark="engine_hvlm_target", key="engine_hvlm_target/cpu/t1/r1/h30",
               jit_first_call_seconds=jit, pyscfabsim_seconds_stated=PYSCFABSIM_SECONDS,
               speedup_vs_pyscfabsim_stated=PYSCFABSIM_SECONDS / out["seconds_median"])
    return out


_HVLM_CHILD = """
import json, sys, time
import numba
numba.set_num_threads(1)
from twin.backend import resolve_backend
from twin.compile import compile_line
from twin.line import load_line
from twin.runner import run_line
c = compile_line(load_line("smt2020_hvlm"))
b = resolve_backend("cpu", 1)
b.warm_up(c)
cpu = time.process_time()
r = run_line(c, 1, 30.0, 0.0, seed=int(sys.argv[1]), backend=b)
cpu = time.process_time() - cpu
print(json.dumps({"seconds": r.wall_seconds, "cpu_seconds": cpu, "events": r.events}))
"""


def side_by_side(other: str, rounds: int = 5) -> dict:
    """HVLM target (30 days, 1 replication, 1 thread) of this checkout against the checkout at ``other``.

    Each round runs both checkouts once, in alternating order (A B, B A, ...), each in a fresh
    process with its own kernels (numba caches are keyed by kernel source); seeds 1, 2, ... are the
    same for both. The ratio uses CPU time (``time.process_time`` around ``run_line``): on a shared
    machine wall time also counts the time other processes hold the core. Returns the medians and
    the ratio other / this (> 1: this checkout is faster).
    """
    times = {"this": [], "other": []}
    cpu = {"this": [], "other": []}
    events = {"this": [], "other": []}
    roots = {"this": str(ROOT), "other": str(Path(other).resolve())}
    for k in range(rounds):
        order = ("this", "other") if k % 2 == 0 else ("other", "this")
        for name in order:
            env = {**os.environ, "PYTHONPATH": roots[name]}
            proc = subprocess.run([sys.executable, "-c", _HVLM_CHILD, str(1 + k)], env=env, cwd=roots[name],
                                  capture_output=True, text=True, timeout=1800, check=True)
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            times[name].append(out["seconds"])
            cpu[name].append(out["cpu_seconds"])
            events[name].append(out["events"])
    med = {name: statistics.median(v) for name, v in cpu.items()}
    wall = {name: statistics.median(v) for name, v in times.items()}
    return {"benchmark": "engine_hvlm_side_by_side", "other": roots["other"], "rounds": rounds,
            "device": cpu_name(), "wall_seconds": times, "cpu_seconds": cpu, "events": events,
            "cpu_seconds_median_this": med["this"], "cpu_seconds_median_other": med["other"],
            "wall_seconds_median_this": wall["this"], "wall_seconds_median_other": wall["other"],
            "speedup_this_vs_other": med["other"] / med["this"]}


def cpu_name() -> str:
    from twin.backend import cpu_model

    return cpu_model()


def run(quick: bool, sizes=None, repeats=None) -> list[dict]:
    """Benchmark rows for every line and backend; CUDA only on a real GPU (else a 'not measured' row)."""
    import numba

    lines, rows = load_lines()
    all_threads = numba.config.NUMBA_NUM_THREADS
    try:
        for name, compiled in lines.items():
            if not quick:
                rows.append({"benchmark": "engine_jit_cold", "key": f"engine_jit_cold/{name}", "line": name,
                             "backend": "cpu", "compile_seconds": cold_compile_seconds(name)})
            for backend_name, threads in targets():
                rows += sweep(name, compiled, backend_name, threads, quick, sizes, repeats)
            if name == "smt2020_hvlm":
                rows.append(hvlm_target(compiled, quick))
            if not any(b == "cuda" for b, _ in targets()):
                rows.append({"benchmark": "engine", "line": name, "backend": "cuda", "note": NO_GPU})
            rows.append({"benchmark": "engine", "line": name, "backend": "cupy",
                         "note": "not measured: the engine has no CuPy path (bulk state lives in numba device arrays)"})
            rows.append({"benchmark": "engine", "line": name, "backend": "numpy",
                         "note": "not measured: no NumPy reference of the event engine exists"})
    finally:
        numba.set_num_threads(all_threads)
    return rows


def print_rows(rows: list[dict]) -> None:
    print(f"{'line':14s}{'backend':8s}{'thr':>4s}{'reps':>6s}{'median s':>10s}{'min-max s':>16s}"
          f"{'Mevents/s':>11s}{'Mev/s/core':>11s}{'rep-days/s':>12s}")
    for r in rows:
        if r["benchmark"] == "engine" and "events_per_s" in r:
            per_core = r.get("events_per_s_per_core")
            print(f"{r['line']:14s}{r['backend']:8s}{r['threads']:4d}{r['replicas']:6d}{r['seconds_median']:10.3f}"
                  f"{r['seconds_min']:8.3f}-{r['seconds_max']:<7.3f}{r['events_per_s'] / 1e6:11.3f}"
                  f"{(per_core or 0) / 1e6:11.3f}{r['replication_days_per_s']:12.1f}")
        elif r["benchmark"] == "engine_jit":
            print(f"{r['line']:14s}{r['backend']:8s}{r['threads']:4d}  "
                  f"JIT first call {r['jit_first_call_seconds']:.2f} s "
                  f"(numba cache {r['numba_cache']})")
        elif r["benchmark"] == "engine_hvlm_target":
            print(f"{'smt2020_hvlm':14s}cpu        30 days, 1 replication, 1 thread: median {r['seconds_median']:.3f} s "
                  f"(min {r['seconds_min']:.3f}), {r['speedup_vs_pyscfabsim_stated']:.0f}x PySCFabSim's stated "
                  f"{r['pyscfabsim_seconds_stated']:.0f} s; JIT first call {r['jit_first_call_seconds']:.1f} s")
        elif r["benchmark"] == "engine_jit_cold":
            print(f"{r['line']:14s}cpu        cold compile (empty cache, fresh process) {r['compile_seconds']} s")
        elif "note" in r:
            print(f"{r.get('line', ''):14s}{r['backend']:8s}  {r['note']}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--against" in argv:  # python benchmarks/bench_engine.py --against /path/to/other/checkout [rounds]
        i = argv.index("--against")
        rounds = int(argv[i + 2]) if len(argv) > i + 2 else 5
        print(json.dumps(side_by_side(argv[i + 1], rounds), indent=1))
        return 0
    print_rows(run(quick="--quick" in argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
