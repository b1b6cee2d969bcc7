"""One-shot device check for an H100/H200 host: correctness, then timing, in at most 6 minutes.

    python -m benchmarks.gpu_check [--smt2020-dir DIR] [--budget-s 330] [--out DIR]
    python -m benchmarks.gpu_check --dry-run      # numba's CUDA simulator, tiny line, tiny counts

Steps, each recorded in ``benchmarks/results/<UTC time>_gpucheck_<device>.json``:

1. ``preflight``: Python, NumPy, numba, numba-cuda, CuPy and driver versions, the device, one trivial kernel;
2. ``small_line``: a small line on the CPU and on CUDA, same seeds, the CUDA run's lot table starting at
   one slot so that it grows on the device: per-replication event counts must be equal, every KPI's means must agree within the 95% interval of their difference (a real GPU may round
   ``log``/``exp`` and fused multiply-adds differently from the CPU, so bit equality is not required);
3. ``hvlm``: the same on SMT2020 HVLM over a short horizon (``--smt2020-dir``, $FABTWIN_SMT2020_DIR, or
   ``.data/smt2020`` inside the repository, an ignored folder that can travel with the working tree);
4. ``small_line_warp``, ``hvlm_warp``: the same checks with a warp per replication (kernels/launch_warp.py,
   32 lanes; 2 under the simulator); ``small_line_wave``, ``hvlm_wave``: with the wavefront
   (kernels/launch_wave.py, a kernel per stage of an event); ``small_line_persistent``,
   ``hvlm_persistent``: with persistent warps (kernels/launch_persistent.py);
5. ``kernel_resources``: the driver's registers and local memory of each advance kernel and stage kernel;
6. ``cuda_rate_<n>``: replication-days per second at n = 1k, 4k, 16k and the largest count that stays
   resident (estimated from free device memory), ``cuda_warp_rate_<n>`` at 1k and 4k,
   ``cuda_wave_rate_<n>`` and ``cuda_persistent_rate_<n>`` at every count beside them, and
   ``cpu_rate``, all the host's cores on the same line, after the first count. Rates are measured in a
   steady window: after a warm-up run (compile, first launch), each repeat runs horizons h1 and h2
   (interleaved, results copied back, so synchronised) and the rate is
   ``n * (h2 - h1) / (median t2 - median t1)``: initialisation, allocation and copies cancel.
   ``speedup`` is the best CUDA rate of any launcher over the all-cores CPU rate (goal: 10x).

From the start, the CPU, CUDA-thread, CUDA-warp, wavefront and persistent kernels compile in five background processes
(``precompile``: libNVVM takes about 2 minutes for each CUDA advance kernel); a step waits for the one
it needs and loads from the disk cache, and no timing starts before all of them have ended.

A budget guard skips a step whose estimated time would pass ``--budget-s`` (330 s: 6 minutes less a
margin).  Needs numpy, numba, numba-cuda (CuPy optional); not hydra, omegaconf, pyvista or pyyaml.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CARRIED_SMT2020 = ROOT / ".data" / "smt2020"

# lanes: the warp launcher's lanes per replication (the simulator runs each as a Python thread: 2 there);
# warp_counts: the counts (of ``counts``) at which the warp launcher is timed too
REAL = {"small_reps": 128, "small_days": 20.0, "small_warmup": 2.0, "hvlm_reps": 16, "hvlm_days": 1.0,
        "counts": (1000, 4000, 16000), "warp_counts": (1000, 4000), "window_days": (0.25, 0.75), "repeats": 3,
        "lanes": 32}
DRY = {"small_reps": 2, "small_days": 0.3, "small_warmup": 0.05, "hvlm_reps": 1, "hvlm_days": 0.002,
       "counts": (2, 4), "warp_counts": (2,), "window_days": (0.05, 0.1), "repeats": 2, "lanes": 2}


class Budget:
    """Seconds left before the guard; a step runs only if its estimate fits."""

    def __init__(self, seconds: float):
        self.deadline = time.perf_counter() + seconds

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def fits(self, estimate: float) -> bool:
        return estimate < self.left()


# ----------------------------------------------------------------------------- lines


def small_line_data() -> dict:
    """Two stations with failures, wafer-count PM, setups, a batch step and rework (a plain mapping)."""
    exp = lambda mean: {"dist": "exponential", "mean": mean}  # noqa: E731
    groups = [
        {"name": "A", "area": "A", "tools": 3, "dispatch": "fifo",
         "failures": {"ttf": exp(600.0), "repair": exp(40.0)},
         "pm": [{"name": "w", "every_wafers": 200, "duration": {"dist": "constant", "value": 20}}]},
        {"name": "B", "area": "A", "tools": 2, "dispatch": "fifo", "setup": {"minutes": 5},
         "tool_choice": "least_setup"},
    ]
    route = [{"group": "A", "time": exp(20.0), "per": "lot"},
             {"group": "B", "time": exp(15.0), "per": "lot", "setup": "x"},
             {"group": "A", "time": exp(10.0), "per": "lot", "rework": {"prob": 0.1, "to_step": 2}},
             {"group": "B", "time": 12.0, "per": "batch", "batch": {"min": 2, "max": 3, "max_wait": 30},
              "setup": "y"}]
    return {"name": "gpucheck_small", "tool_groups": groups, "products": [{"name": "p", "route": route}],
            "releases": [{"name": "p", "product": "p", "kind": "poisson", "interval_minutes": 30.0,
                          "lot_size": 1, "due_days": 5}]}


def small_line():
    from twin.compile import compile_line
    from twin.line import parse_line

    return compile_line(parse_line(small_line_data()))


def smt2020_dir(arg: str | None) -> Path | None:
    """The folder holding HVLM/: the argument, $FABTWIN_SMT2020_DIR, the carried copy, ../shared/data/smt2020."""
    candidates = [arg, os.environ.get("FABTWIN_SMT2020_DIR"), CARRIED_SMT2020,
                  ROOT.parent / "shared" / "data" / "smt2020"]
    for c in candidates:
        if c and (Path(c) / "HVLM" / "tool.txt.1l").is_file():
            return Path(c)
    return None


def hvlm_line(folder: Path):
    from twin.compile import compile_line
    from twin.smt2020 import load_smt2020

    return compile_line(load_smt2020({"loader": "smt2020", "dataset": "HVLM", "data_dir": str(folder)}))


# ----------------------------------------------------------------------------- steps


def preflight() -> dict:
    import numba
    import numpy as np

    out = {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
           "host_cpu": _cpu_model(), "host_cores": os.cpu_count()}
    out["numba_cuda"] = _version("numba_cuda") or _version("numba-cuda")
    out["simulator"] = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
    from numba import cuda

    if not out["simulator"]:
        from numba.cuda.cudadrv.driver import driver

        version = driver.get_version()
        out["driver_cuda_version"] = f"{version[0]}.{version[1]}" if isinstance(version, tuple) else str(version)
        dev = cuda.get_current_device()
        out["compute_capability"] = list(dev.compute_capability)
        out["multiprocessors"] = int(dev.MULTIPROCESSOR_COUNT)
        free, total = cuda.current_context().get_memory_info()
        out["memory_free_gib"], out["memory_total_gib"] = round(free / 2**30, 1), round(total / 2**30, 1)
        out["nvidia_smi"] = _nvidia_smi()
    from kernels.target import cuda_device_name

    out["device"] = cuda_device_name()
    out["cupy"] = _cupy_info()
    out["trivial_kernel_ok"] = _trivial_kernel()
    out["ok"] = out["trivial_kernel_ok"]
    return out


def _trivial_kernel() -> bool:
    """Add one on the device; ``cuda`` is a module global so numba's simulator can swap it in the kernel."""
    global cuda
    import numpy as np
    from numba import cuda

    @cuda.jit
    def add_one(a):
        i = cuda.grid(1)
        if i < a.size:
            a[i] += 1.0

    host = np.arange(1000, dtype=np.float64)
    dev = cuda.to_device(host)
    add_one[(host.size + 127) // 128, 128](dev)
    return bool(np.array_equal(dev.copy_to_host(), host + 1.0))


cuda = None  # numba.cuda, imported by _trivial_kernel()


def _cupy_info() -> dict:
    try:
        import cupy

        a = cupy.arange(10, dtype=cupy.float64)  # import works without a GPU; an allocation does not
        return {"version": cupy.__version__, "ok": float(a.sum()) == 45.0}
    except Exception as err:
        return {"ok": False, "error": f"{type(err).__name__}: {str(err)[:200]}"}


def compare_backends(c, reps: int, days: float, warmup: float, seed: int = 7, lanes: int = 0,
                     grow: bool = False, wavefront: bool = False, persistent: bool = False) -> dict:
    """CPU and CUDA on the same line and seeds: event counts exactly, KPIs within their CIs. ``lanes``:
    0 for a thread per replication, else a warp (block) of that many lanes per replication; ``wavefront``:
    a kernel per stage of an event (kernels/launch_wave.py); ``persistent``: persistent warps
    (kernels/launch_persistent.py). ``grow``: the
    CUDA run's lot table starts with one slot more than the initial WIP, so it grows on the device
    (kernels/growth.py; the same run as a table that never runs short)."""
    import dataclasses

    from twin.backend import resolve_backend
    from twin.runner import run_line

    args = dict(replicas=reps, horizon_days=days, warmup_days=warmup, seed=seed, snapshot_minutes=0)
    _wait_for("cuda_persistent" if persistent else "cuda_wave" if wavefront else "cuda_warp" if lanes else "cuda_thread")
    on_gpu = dataclasses.replace(c, lot_slots=c.wip.shape[0] + 1) if grow else c
    gpu = run_line(on_gpu, backend=resolve_backend("cuda", lanes=lanes, wavefront=wavefront, persistent=persistent),
                   **args)
    _wait_for("cpu")
    cpu = run_line(c, backend=resolve_backend("cpu"), **args)
    events_gpu, events_cpu = _events_per_rep(gpu), _events_per_rep(cpu)
    kpis = compare_kpis(gpu, cpu)
    return {"replicas": reps, "horizon_days": days, "warmup_days": warmup, "lanes": lanes, "wavefront": wavefront,
            "persistent": persistent,
            "events_cpu": int(sum(events_cpu)), "events_cuda": int(sum(events_gpu)),
            "events_equal": events_gpu == events_cpu, **kpis,
            "lot_slots": {"cuda_start": on_gpu.lot_slots, "cuda_end": gpu.lot_slots, "cpu": cpu.lot_slots},
            "cuda_compile_s": round(gpu.compile_seconds, 1), "cpu_compile_s": round(cpu.compile_seconds, 1),
            "ok": events_gpu == events_cpu and not kpis["kpis_outside_ci"]}


def _events_per_rep(result) -> list:
    from kernels import layout as K

    try:
        return [int(x) for x in result.stats["rep_i"][:, K.R_EVENTS]]
    except (KeyError, AttributeError, IndexError, TypeError):  # another state layout: the total only
        return [int(result.events)]


def compare_kpis(gpu, cpu) -> dict:
    """Every KPI of the two runs: the means' agreement and the largest per-replication relative difference."""
    import numpy as np

    from twin import kpis

    a, b = kpis.per_replication(gpu), kpis.per_replication(cpu)
    keys = [k for k in sorted(set(a) & set(b)) if np.shape(a[k]) == np.shape(b[k]) and np.isfinite(a[k]).any()]
    max_rel = 0.0
    for key in keys:
        x, y = np.asarray(a[key], float), np.asarray(b[key], float)
        both = np.isfinite(x) & np.isfinite(y)
        if both.any():
            max_rel = max(max_rel, float(np.max(np.abs(x[both] - y[both]) / np.maximum(np.abs(y[both]), 1e-12))))
    outside = _means_outside_ci({k: a[k] for k in keys}, {k: b[k] for k in keys})
    return {"kpis_compared": len(keys), "kpis_outside_ci": outside, "max_rel_diff_per_replication": max_rel}


def _means_outside_ci(a: dict, b: dict) -> list:
    """KPIs whose |mean difference| exceeds the 95% half-width of the difference of two independent means."""
    import math

    from twin import kpis

    outside = []
    for key in a:
        sa, sb = kpis.summarize(a[key]), kpis.summarize(b[key])
        if sa["mean"] is None or sb["mean"] is None:
            continue
        half = math.hypot(sa["ci95"] or 0.0, sb["ci95"] or 0.0) + 1e-9 * max(1.0, abs(sb["mean"]))
        if abs(sa["mean"] - sb["mean"]) > half:
            outside.append(key)
    return outside


def steady_rate(c, backend, reps: int, window, repeats: int) -> dict:
    """Replication-days per second over the simulated window [h1, h2], from medians of interleaved runs."""
    from twin.runner import run_line

    h1, h2 = window
    args = dict(replicas=reps, warmup_days=0.0, seed=3, backend=backend, snapshot_minutes=0, segments=1,
                chunk_replicas=reps)
    first = run_line(c, horizon_days=h1, **args)  # warm-up: compile or cache load, first launch
    t1, t2, events = [], [], []
    for _ in range(repeats):
        t1.append(run_line(c, horizon_days=h1, **args).wall_seconds)
        r2 = run_line(c, horizon_days=h2, **args)
        t2.append(r2.wall_seconds)
        events.append(r2.events)
    m1, m2 = statistics.median(t1), statistics.median(t2)
    dt = m2 - m1
    rate = reps * (h2 - h1) / dt if dt > 0 else None
    note = {} if rate else {"note": "h2 ran no slower than h1: the window is too short to time"}
    return {**note, "replicas": reps, "window_days": [h1, h2], "repeats": repeats, "median_s_h1": round(m1, 4),
            "median_s_h2": round(m2, 4), "times_h1": [round(t, 4) for t in t1], "times_h2": [round(t, 4) for t in t2],
            "replication_days_per_s": rate, "events_h2": int(events[-1]),
            "events_per_s": (events[-1] - first.events) / dt if dt > 0 else None,
            "compile_s": round(first.compile_seconds, 1), "device": backend.device_name, "ok": rate is not None}


class Precompiles:
    """The engine's kernels compiled in background processes, into numba's disk caches, while this one works.

    Each CUDA advance kernel takes about 2 minutes of single-threaded libNVVM (offline, sm_90: 125 s each
    for the thread and the warp kernel on a 2.6 GHz Xeon), which would eat most of the check's 6 minutes
    if this process compiled them one after the other. A process per launcher (CPU, CUDA thread, CUDA
    warp) runs a one-replication run of the small line, so every kernel of that launcher compiles in
    parallel on the host's other cores; a step that needs a launcher waits for its process, then loads
    from the cache (a kernel compiled for one line serves every line: the types are the same). Nothing
    is timed until every process has ended, so no compile competes with a measurement.
    """

    def __init__(self, lanes: int):
        self.lanes = lanes
        self.started = time.perf_counter()
        self.started_unix = time.time()  # the children report when they ended on this clock
        self.procs: dict[str, subprocess.Popen] = {}
        self.report: dict[str, dict] = {}

    def start(self, simulator: bool) -> None:
        """One process per launcher; the CUDA ones run under the simulator only in a dry run."""
        backends = {"cuda_thread": "resolve_backend('cuda')",
                    "cuda_warp": f"resolve_backend('cuda', lanes={self.lanes})",
                    "cuda_wave": "resolve_backend('cuda', wavefront=True)",
                    "cuda_persistent": "resolve_backend('cuda', persistent=True)",
                    "cpu": "resolve_backend('cpu')"}
        mode = "simulator" if simulator else _compute_mode()
        if mode not in ("simulator", "Default"):  # an exclusive device would refuse this process's context
            for name in ("cuda_thread", "cuda_warp", "cuda_wave", "cuda_persistent"):
                backends.pop(name)
                self.report[name] = {"ok": False, "skipped": f"compute mode {mode or 'unknown'}: this process compiles"}
        plain = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
        for name, backend in backends.items():
            env = os.environ if simulator and name != "cpu" else plain
            self.procs[name] = subprocess.Popen([sys.executable, "-c", _PRECOMPILE % (str(ROOT), backend)],
                                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait(self, *names: str, timeout: float = 300.0) -> None:
        """Wait for the named processes (all when none is named); one that fails or overruns is recorded,
        and the step that needed it compiles for itself."""
        for name in names or tuple(self.procs):
            proc = self.procs.pop(name, None)
            if proc is None:
                continue
            try:
                out, err = proc.communicate(timeout=max(1.0, timeout - (time.perf_counter() - self.started)))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                self.report[name] = {"ok": False, "error": f"still compiling after {timeout:.0f} s; killed"}
                continue
            try:
                child = json.loads(out.strip().splitlines()[-1]) if proc.returncode == 0 else None
            except (IndexError, ValueError):  # it printed something else last: a failure, not the step's
                child = None
            if child is None:
                self.report[name] = {"ok": False, "returncode": proc.returncode, "error": (out + err)[-1500:]}
            else:
                ended = round(child.pop("ended_unix") - self.started_unix, 2)
                self.report[name] = {"ok": True, **child, "ended_after_s": ended}

    def stop(self) -> None:
        """Kill what is still running (the check ended early)."""
        for name, proc in self.procs.items():
            proc.kill()
            proc.communicate()
            self.report[name] = {"ok": False, "error": "stopped: the check ended first"}
        self.procs.clear()


_PRECOMPILE = """import json, sys, time
sys.path.insert(0, %r)
started = time.perf_counter()
from benchmarks.gpu_check import small_line
from twin.backend import resolve_backend
from twin.runner import run_line
r = run_line(small_line(), 1, 0.01, 0.0, 1, %s, snapshot_minutes=0)
print(json.dumps({"compile_s": round(r.compile_seconds, 1), "wall_s": round(time.perf_counter() - started, 1),
                  "ended_unix": time.time()}))
"""

PRECOMPILES: Precompiles | None = None  # started by run_check


def _wait_for(*names: str) -> None:
    if PRECOMPILES is not None:
        PRECOMPILES.wait(*names)


def runner_bytes(c) -> int:
    """State bytes of one replication as a chunk starts (the lot table near the live WIP)."""
    from twin import runner

    return runner.bytes_per_replication(c)


def resident_replicas(c, backend) -> int:
    """The largest replication count one chunk holds in free device memory (the backend's own estimate)."""
    return int(backend.chunk_size(runner_bytes(c), 10**9))


# ----------------------------------------------------------------------------- driver


def run_check(args, doc: dict | None = None) -> dict:
    """Run every step into ``doc`` (filled in place, so a saver sees each step as it ends)."""
    global PRECOMPILES
    sizes = DRY if args.dry_run else REAL
    PRECOMPILES = Precompiles(sizes["lanes"])
    PRECOMPILES.start(simulator=args.dry_run)
    try:
        return _run_steps(args, sizes, {} if doc is None else doc)
    finally:
        PRECOMPILES.stop()


def _run_steps(args, sizes: dict, doc: dict) -> dict:
    budget = Budget(args.budget_s)
    doc |= {"schema": "fabtwin-gpucheck/1", "check": "gpu_check", "started_utc": _now(), "dry_run": args.dry_run,
            "budget_s": args.budget_s,
           "commit": _commit(), "sizes": {k: list(v) if isinstance(v, tuple) else v for k, v in sizes.items()},
           "measured": "on this host: every time below is a measurement, nothing is modelled", "steps": {}}
    steps = doc["steps"]
    _step(steps, "preflight", budget, 0.0, preflight)
    steps["precompile"] = PRECOMPILES.report  # filled in as each background compile ends
    doc["device"] = steps["preflight"].get("device", "unknown")
    if not steps["preflight"].get("ok"):
        return doc
    small = small_line()
    _step(steps, "small_line", budget, 30.0,
          lambda: compare_backends(small, sizes["small_reps"], sizes["small_days"], sizes["small_warmup"], grow=True))
    folder = smt2020_dir(args.smt2020_dir)
    timed = small
    if folder is None:
        steps["hvlm"] = {"skipped": "no SMT2020 folder (use --smt2020-dir, FABTWIN_SMT2020_DIR or .data/smt2020)"}
    else:
        hvlm = hvlm_line(folder)
        timed = small if args.dry_run else hvlm  # the simulator runs HVLM at ~0.01 replication-days/s
        _step(steps, "hvlm", budget, 20.0, lambda: {
            "data_dir": str(folder), **compare_backends(hvlm, sizes["hvlm_reps"], sizes["hvlm_days"], 0.0)})
    doc["timed_line"] = timed.line.name
    _warp_checks(steps, budget, small, None if args.dry_run or folder is None else hvlm, sizes)
    _step(steps, "kernel_resources", budget, 0.0, kernel_resources)
    _rates(steps, budget, timed, sizes, args)
    _speedup(steps)
    return doc


def kernel_resources() -> dict:
    """What the device's own compile of each advance kernel uses: registers and local memory per thread,
    and the resident warps per SM its registers allow (tests/test_cuda_report.py derives its bound from
    the same count). The offline report compiles with the wheel's ptxas; this is the driver's."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return {"skipped": "the simulator compiles nothing"}
    from kernels import launch_cuda, launch_warp

    kernels = {"thread": launch_cuda._advance_kernel}
    kernels.update({f"warp_{lanes}": built.advance_kernel for lanes, built in launch_warp._BUILT.items()})
    if "kernels.launch_wave" in sys.modules:  # imported by a wave step that ran
        wave = sys.modules["kernels.launch_wave"]
        kernels.update({f"wave_{k.py_func.__name__.strip('_')}": k for k in wave.stage_kernels()})
    if "kernels.launch_persistent" in sys.modules:
        persistent = sys.modules["kernels.launch_persistent"]
        kernels.update({f"persistent_{k.py_func.__name__.strip('_')}": k for k in persistent.stage_kernels()})
    return compiled_resources(kernels)


def compiled_resources(kernels: dict) -> dict:
    """``{name: {registers, local_bytes, warps_per_sm_by_registers}}`` of each kernel's compiled signature
    (numba-cuda keeps them in ``overloads``; each advance kernel is launched with one); sm_90 allocates
    registers per warp in units of 256."""
    out = {}
    for name, kernel in kernels.items():
        for compiled in kernel.overloads.values():
            registers = int(compiled.regs_per_thread)
            per_warp = -(-registers * 32 // 256) * 256
            out[name] = {"registers": registers, "local_bytes": int(compiled.local_mem_per_thread),
                         "warps_per_sm_by_registers": min(64, 65_536 // per_warp)}
    return out


def _warp_checks(steps, budget, small, hvlm, sizes):
    """CPU against the warp-per-replication launcher, the wavefront and persistent warps: the small line
    (its CUDA lot table growing on the device), then HVLM. Persistent warps' lists rest on the memory
    model across SMs, which only a device shows; should they lose a replication there, the launch
    raises within seconds (kernels/launch_persistent.py)."""
    launchers = {"warp": {"lanes": sizes["lanes"]}, "wave": {"wavefront": True}, "persistent": {"persistent": True}}
    for name, launcher in launchers.items():
        _step(steps, f"small_line_{name}", budget, 30.0,
              lambda: compare_backends(small, sizes["small_reps"], sizes["small_days"], sizes["small_warmup"],
                                       grow=True, **launcher))
        if hvlm is not None:
            _step(steps, f"hvlm_{name}", budget, 20.0,
                  lambda: compare_backends(hvlm, sizes["hvlm_reps"], sizes["hvlm_days"], 0.0, **launcher))


class _RateLadder:
    """One launcher's rates at rising counts; each count's time is estimated from the last one's rate."""

    def __init__(self, prefix: str, backend, sizes: dict):
        self.prefix, self.backend = prefix, backend
        self.window, self.repeats = sizes["window_days"], sizes["repeats"]
        self.rate, self.fixed = None, 0.0  # replication-days/s; seconds per run and replication outside the window

    def estimate(self, n: int) -> float:
        if self.rate is None:
            return 30.0
        days_per_rep = self.window[0] + self.repeats * (self.window[0] + self.window[1])  # warm-up, then h1, h2
        return n * (days_per_rep / self.rate + (1 + 2 * self.repeats) * self.fixed) + 5.0

    def run(self, steps, budget, c, n: int) -> None:
        step = _step(steps, f"{self.prefix}_{n}", budget, self.estimate(n),
                     lambda: steady_rate(c, self.backend, n, self.window, self.repeats))
        if step.get("replication_days_per_s"):
            self.rate = step["replication_days_per_s"]
            self.fixed = max(0.0, step["median_s_h1"] - n * self.window[0] / self.rate) / n


def _rates(steps, budget, c, sizes, args):
    """Rates from the smallest count up, both launchers at each count, the all-cores CPU after the first,
    so that what the guard leaves out is the largest counts, never the comparison."""
    from twin.backend import resolve_backend

    thread = _RateLadder("cuda_rate", resolve_backend("cuda"), sizes)
    warp = _RateLadder("cuda_warp_rate", resolve_backend("cuda", lanes=sizes["lanes"]), sizes)
    wave = _RateLadder("cuda_wave_rate", resolve_backend("cuda", wavefront=True), sizes)
    persistent = _RateLadder("cuda_persistent_rate", resolve_backend("cuda", persistent=True), sizes)
    counts = list(sizes["counts"])
    try:
        resident = resident_replicas(c, thread.backend)
        steps["resident_estimate"] = {"replicas": resident, "lot_slots": c.lot_slots,
                                      "bytes_per_replication": runner_bytes(c)}
        if resident > counts[-1] and not args.dry_run:
            counts.append(resident)
    except Exception as err:
        steps["resident_estimate"] = {"error": f"{type(err).__name__}: {err}"}
    _wait_for()  # every background compile has ended: nothing competes with the timing
    for i, n in enumerate(counts):
        thread.run(steps, budget, c, n)
        if i == 0:
            cores = os.cpu_count() or 1
            reps = max(2, cores * (1 if args.dry_run else 8))
            cpu = resolve_backend("cpu", 0)
            _step(steps, "cpu_rate", budget, 20.0, lambda: {"threads": cores, **steady_rate(
                c, cpu, reps, thread.window, thread.repeats)})
        if n in sizes["warp_counts"]:
            warp.run(steps, budget, c, n)
        wave.run(steps, budget, c, n)  # the wavefront is for many replications: every count
        persistent.run(steps, budget, c, n)  # and so are persistent warps


def _speedup(steps):
    best = max((s.get("replication_days_per_s") or 0.0 for k, s in steps.items()
                if k.startswith(("cuda_rate_", "cuda_warp_rate_", "cuda_wave_rate_", "cuda_persistent_rate_"))),
               default=0.0)
    cpu_rate = steps.get("cpu_rate", {}).get("replication_days_per_s")
    if best and cpu_rate:
        steps["speedup"] = {"best_cuda_over_all_cores_cpu": best / cpu_rate, "goal": 10.0}


_SAVE = None  # called with nothing after every step: the JSON on disk is never more than one step behind


def _step(steps: dict, name: str, budget: Budget, estimate: float, fn) -> dict:
    try:
        return _run_step(steps, name, budget, estimate, fn)
    finally:
        if _SAVE is not None:
            _SAVE()


def _run_step(steps: dict, name: str, budget: Budget, estimate: float, fn) -> dict:
    if not budget.fits(estimate):
        steps[name] = {"skipped": f"time guard: needs about {estimate:.0f} s, {budget.left():.0f} s left"}
        return steps[name]
    started = time.perf_counter()
    try:
        steps[name] = fn()
    except Exception as err:
        steps[name] = {"ok": False, "error": f"{type(err).__name__}: {err}",
                       "traceback": traceback.format_exc()[-3000:]}
    steps[name]["seconds"] = round(time.perf_counter() - started, 2)
    if PRECOMPILES is not None:  # on the clock of the background compiles' "ended_after_s"
        steps[name]["started_after_s"] = round(started - PRECOMPILES.started, 2)
    print(f"[gpu_check] {name}: {_summary(steps[name])}", file=sys.stderr, flush=True)
    return steps[name]


def _summary(step: dict) -> str:
    keys = ("ok", "events_equal", "replication_days_per_s", "device", "error", "skipped", "seconds")
    return ", ".join(f"{k}={step[k]}" for k in keys if k in step)


def write_result(doc: dict, out_dir: Path) -> Path:
    """Atomic write of the check's JSON, named by time and device."""
    out_dir.mkdir(parents=True, exist_ok=True)
    device = doc.get("device") or doc.get("steps", {}).get("preflight", {}).get("device", "unknown")
    slug = re.sub(r"[^a-z0-9]+", "-", str(device).lower()).strip("-") or "unknown"
    path = out_dir / f"{doc['started_utc']}_gpucheck_{slug}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    os.replace(tmp, path)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--smt2020-dir", help="folder holding HVLM/ (default: $FABTWIN_SMT2020_DIR, .data/smt2020)")
    parser.add_argument("--budget-s", type=float, default=330.0, help="time guard in seconds (default 330)")
    parser.add_argument("--out", help="results folder (default benchmarks/results)")
    parser.add_argument("--dry-run", action="store_true", help="numba's CUDA simulator, tiny line and counts")
    args = parser.parse_args(argv)
    if args.budget_s <= 0:
        print(f"gpu_check: --budget-s {args.budget_s}: must be > 0 seconds", file=sys.stderr)
        return 2
    if args.dry_run:
        if "numba" in sys.modules and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
            print("gpu_check: --dry-run needs NUMBA_ENABLE_CUDASIM=1 before numba is imported", file=sys.stderr)
            return 2
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    sys.path.insert(0, str(ROOT))
    import warnings

    warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
    global _SAVE
    doc = {}
    out_dir = Path(args.out) if args.out else RESULTS
    _SAVE = lambda: write_result(doc, out_dir)  # noqa: E731  (a killed run keeps its finished steps)
    doc.update(run_check(args, doc))
    doc["finished_utc"] = _now()
    path = write_result(doc, out_dir)
    print(path)
    failed = [k for k, s in doc["steps"].items() if isinstance(s, dict) and (
        "error" in s or (s.get("ok") is False and "_rate" not in k and k != "cpu_rate"))]
    if failed:
        print(f"gpu_check: failed steps: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


# ----------------------------------------------------------------------------- helpers


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _version(dist: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return None


def _cpu_model() -> str:
    try:
        from twin.backend import cpu_model

        return cpu_model()
    except Exception:
        return platform.processor()


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except Exception:
        return "unknown"


def _compute_mode() -> str:
    """The first GPU's compute mode ("Default", "Exclusive_Process", ...), or "" if nvidia-smi cannot say."""
    out = _nvidia_smi("compute_mode")
    return out.splitlines()[0].strip() if out else ""


def _nvidia_smi(fields: str = "name,driver_version,memory.total,clocks.max.sm") -> str:
    """``nvidia-smi --query-gpu=FIELDS`` as CSV without a header, or "" where it cannot run."""
    try:
        return subprocess.run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""


if __name__ == "__main__":
    sys.exit(main())
