"""Die evaluations per second of the wafer Monte Carlo, and how close they come to the floor.

Work model (docs/yield.md, "Speed"): a wafer at killer density D carries
N = D / theta * pi R^2 defects, drawn as candidates on a region a little larger
than the disk; each candidate costs 4 uniforms (x, y, size, kill test), a
sqrt, and a branch-free die lookup and bitmask update (L1-resident).  The
kernel reads 8 bytes and writes 4 per wafer, so memory is no limit; the
binding floor is the random numbers: the *RNG floor* is the time the same generator takes, on the same
device and threads, to draw exactly those uniforms (measured by a kernel that
does nothing else).  The *memory floor* counts the bytes that must cross DRAM
per die (density in, good count out, per-wafer scratch) against a measured
copy bandwidth.  Timings are medians of repeats after a warm-up; JIT compile
time is measured apart in a fresh process with an empty numba cache.

    python benchmarks/bench_yield.py [--quick] [--save]
"""
from __future__ import annotations

import functools
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from twin.yield_model import YieldSpec, simulate_wafers  # noqa: E402

cuda = None  # numba.cuda, imported by _cuda_rows only
NO_GPU = "not measured: no GPU available"
AD = 0.5  # A D of the benchmark wafers: die yield exp(-0.5) = 0.61 (random) / 0.64 (alpha 2)


def work_model(spec: YieldSpec, density: float) -> dict:
    """Expected uniforms, scalar operations and DRAM bytes per die evaluation (random or clustered wafers).

    Every candidate defect costs 4 uniforms (x, y, size, kill test) whether it
    lands on the wafer or not: the random pattern draws on the disk's bounding
    square (4/pi candidates per defect), the clustered one on the die blocks
    that touch the disk, plus a gamma (~3 uniforms) and a Poisson draw per block.
    """
    from twin.yield_model import die_grid

    g = die_grid(spec)
    radius = g.wafer_radius_mm
    dens_mm2 = density / spec.kill_fraction / 100.0  # all defects per mm^2
    defects = dens_mm2 * math.pi * radius**2
    w = spec.weights
    candidates = w[0] * defects * 4.0 / math.pi
    per_wafer_uniforms = 2.5 if w[0] > 0 else 0.0
    if w[1] > 0:
        b = spec.cluster_block_dies or max(g.shape)
        bw, bh = b * g.pitch_mm[0], b * g.pitch_mm[1]
        nby, nbx = -(-g.shape[0] // b), -(-g.shape[1] // b)
        y0 = g.origin_mm[1] + np.arange(nby)[:, None] * bh
        x0 = g.origin_mm[0] + np.arange(nbx)[None, :] * bw
        dy = np.maximum(0.0, np.maximum(y0, -(y0 + bh)))
        dx = np.maximum(0.0, np.maximum(x0, -(x0 + bw)))
        blocks = int((dx * dx + dy * dy < radius * radius).sum())
        lam = w[1] * dens_mm2 * bw * bh
        candidates += blocks * lam
        per_wafer_uniforms += blocks * (3.0 + (lam + 1.0 if lam < 10 else 2.5))
    gross = g.n_dies
    uniforms = 4.0 * candidates + per_wafer_uniforms
    # per candidate: 4 x (xoroshiro128+ step 9 + conversion 4) + position 4 + size/kill (sqrt, div, clamp) 8
    # + die lookup and bitmask select 25 scalar operations
    ops = candidates * (4 * 13 + 4 + 8 + 25) + per_wafer_uniforms * 13
    words = (gross + 63) // 64
    wafer_bytes = 8 + 4 + 2 * 16 + 3 * 8 * words  # density in, good out, rng + bitmask scratch (alloc, clear, use)
    return {
        "defects_per_wafer": defects,
        "candidates_per_wafer": candidates,
        "defects_per_die": defects / gross,
        "uniforms_per_die": uniforms / gross,
        "ops_per_die": ops / gross,
        "bytes_per_die": wafer_bytes / gross,
    }


# ----------------------------------------------------------------------------- floors

def _rng_kernels():
    import numba
    from numba import prange

    from kernels.rng import make_rng

    seed_state, _, uniform = make_rng(numba.njit(nogil=True))

    @numba.njit(parallel=True)
    def draw_cpu(n_items, per_item, out):
        for k in prange(n_items):
            st = np.zeros(2, np.uint64)
            seed_state(st, 1, k)
            acc = 0.0
            for _ in range(per_item):
                acc += uniform(st)
            out[k] = acc

    return draw_cpu


def rng_rate_cpu(threads: int, draws_per_item: int, items: int, repeats: int) -> float:
    """Uniforms per second of the shared generator on ``threads`` CPU threads (median)."""
    import numba

    numba.set_num_threads(threads)
    draw = _rng_kernels()
    out = np.zeros(items)
    draw(4, 8, out)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        draw(items, draws_per_item, out)
        times.append(time.perf_counter() - t)
    return items * draws_per_item / statistics.median(times)


def copy_bandwidth_cpu(mb: int = 256, repeats: int = 5) -> float:
    """Bytes per second of a NumPy copy (read + write counted)."""
    a = np.ones(mb * (1 << 20) // 8)
    b = np.empty_like(a)
    np.copyto(b, a)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(b, a)
        times.append(time.perf_counter() - t)
    return 2.0 * a.nbytes / statistics.median(times)


def compile_seconds(backend: str = "cpu") -> dict:
    """JIT compile time: first call in a fresh process with an empty numba cache, minus a second call."""
    import tempfile

    code = ("import time, numpy as np\n"
            "t0 = time.perf_counter()\n"
            "from twin.backend import resolve_backend\n"
            "from twin.yield_model import YieldSpec, simulate_wafers\n"
            "t1 = time.perf_counter()\n"
            f"simulate_wafers(YieldSpec(alpha=2.0), np.full(2, 0.5), 1, backend=resolve_backend({backend!r}))\n"
            "t2 = time.perf_counter()\n"
            f"simulate_wafers(YieldSpec(alpha=2.0), np.full(2, 0.5), 1, backend=resolve_backend({backend!r}))\n"
            "t3 = time.perf_counter()\n"
            "print(t1 - t0, t2 - t1 - (t3 - t2))\n")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        return {"error": proc.stderr[-400:]}
    imp, comp = (float(x) for x in proc.stdout.split()[-2:])
    return {"import_seconds": imp, "compile_seconds": comp}


# ----------------------------------------------------------------------------- timed runs

def _time_cpu(spec, wafers, density, threads, repeats):
    import numba

    numba.set_num_threads(threads)
    dens = np.full(wafers, density)
    simulate_wafers(spec, dens[:64], seed=1)  # warm-up (compile or cache load)
    times, busy = [], []
    for r in range(repeats):
        c, t = time.process_time(), time.perf_counter()
        mc = simulate_wafers(spec, dens, seed=1 + r, chunk=1 << 16)
        times.append(time.perf_counter() - t)
        busy.append((time.process_time() - c) / times[-1])
    return statistics.median(times), mc, statistics.median(busy)


def _cpu_model() -> str:
    try:
        from twin.backend import cpu_model

        return cpu_model()
    except Exception:  # pragma: no cover
        import platform

        return platform.processor()


def _row(name, backend, device, threads, spec, wafers, density, seconds, die_yield_mean, model, rng_rate, bandwidth,
         repeats):
    die_evals = wafers * spec.gross_dies / seconds
    rng_floor = rng_rate / model["uniforms_per_die"]
    mem_floor = bandwidth / model["bytes_per_die"]
    return {
        "benchmark": name, "backend": backend, "device": device, "threads": threads,
        "wafers": wafers, "dies_per_wafer": spec.gross_dies, "AD": AD, "alpha": None if math.isinf(spec.alpha) else spec.alpha,
        "repeats": repeats, "seconds_median": seconds,
        "die_evals_per_s": die_evals, "defects_per_s": die_evals * model["defects_per_die"],
        "die_yield_mean": die_yield_mean,
        **{k: round(v, 4) for k, v in model.items()},
        "rng_uniforms_per_s": rng_rate, "rng_floor_die_evals_per_s": rng_floor,
        "fraction_of_rng_floor": die_evals / rng_floor,
        "memory_bandwidth_Bps": bandwidth, "memory_floor_die_evals_per_s": mem_floor,
        "fraction_of_memory_floor": die_evals / mem_floor,
        "ops_per_s_estimate": die_evals * model["ops_per_die"],
    }


def _cpu_rows(quick: bool) -> list[dict]:
    import numba

    wafers = 20_000 if quick else 200_000
    repeats = 3 if quick else 5
    bandwidth = copy_bandwidth_cpu(64 if quick else 256)
    rows = []
    all_threads = numba.config.NUMBA_NUM_THREADS
    for label, spec in (("random", YieldSpec()), ("clustered_alpha2", YieldSpec(alpha=2.0))):
        density = AD / spec.die_area_cm2
        model = work_model(spec, density)
        per_item = int(round(model["uniforms_per_die"] * spec.gross_dies))
        for threads in sorted({all_threads, 1}, reverse=True):
            n = wafers if threads > 1 else wafers // 4
            seconds, mc, busy = _time_cpu(spec, n, density, threads, repeats)
            rng_rate = rng_rate_cpu(threads, per_item, max(256, n // 8), repeats)
            row = _row(f"yield_mc_{label}", "cpu", f"{_cpu_model()}, {threads} threads", threads, spec, n,
                       density, seconds, float(mc.die_yield.mean()), model, rng_rate, bandwidth, repeats)
            row["cpu_busy_threads"] = busy  # process CPU time / wall time: < threads when the cores were shared
            rows.append(row)
    numba.set_num_threads(all_threads)
    return rows


LOT_WAFERS = 25  # wafers per lot in the CUDA rows (the report's lots)


def _cuda_rows(quick: bool, wafers: int | None = None, copy_words: int = 1 << 26) -> list[dict]:
    """The report's CUDA path timed on a real GPU: :func:`simulate_lots` end to end, after a warm-up.

    Per-lot densities go in; the per-wafer expansion, the kernel and the CuPy
    reductions run on the device; per-lot sums and summaries come back (the call
    returns host values, and ``cuda.synchronize()`` runs before the clock stops).
    Arrays come from ``array_module`` (CuPy on a GPU), so the run's arrays and
    the floors' share CuPy's pool.
    """
    global cuda
    from numba import cuda  # a module global, so numba's CUDA simulator can swap it inside kernels

    from kernels.rng import make_rng
    from kernels.target import CUDA, cuda_device_name, device_jit
    from twin.backend import array_module, resolve_backend
    from twin.yield_model import simulate_lots

    backend = resolve_backend("cuda")
    xp = array_module(backend)
    seed_state, _, uniform = make_rng(device_jit(CUDA))

    @cuda.jit
    def draw(per_item, out):
        k = cuda.grid(1)
        if k < out.shape[0]:
            st = cuda.local.array(2, np.uint64)
            seed_state(st, 1, k)
            acc = 0.0
            for _ in range(per_item):
                acc += uniform(st)
            out[k] = acc

    def timed(call, repeats):
        call()  # warm-up: compile or cache load, and CuPy's pool holds the blocks
        cuda.synchronize()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            result = call()
            cuda.synchronize()
            times.append(time.perf_counter() - t)
        return statistics.median(times), result

    wafers = wafers or (200_000 if quick else 2_000_000)
    n_lots = max(1, wafers // LOT_WAFERS)
    wafers = n_lots * LOT_WAFERS
    repeats = 3 if quick else 7
    src = xp.ones(copy_words)
    dst = xp.empty_like(src)

    def copy():
        dst[...] = src

    copy_seconds, _ = timed(copy, repeats)
    bandwidth = 2.0 * src.nbytes / copy_seconds
    rows = []
    for label, spec in (("random", YieldSpec()), ("clustered_alpha2", YieldSpec(alpha=2.0))):
        density = AD / spec.die_area_cm2
        model = work_model(spec, density)
        lot_density, lot_wafers = np.full(n_lots, density), np.full(n_lots, LOT_WAFERS)
        seconds, mc = timed(functools.partial(simulate_lots, spec, lot_density, lot_wafers, 1, backend=backend), repeats)
        per_item = int(round(model["uniforms_per_die"] * spec.gross_dies))
        out = xp.empty(wafers)
        blocks = (wafers + 127) // 128
        draw_seconds, _ = timed(functools.partial(draw[blocks, 128], per_item, out), repeats)
        rng_rate = wafers * per_item / draw_seconds
        row = _row(f"yield_mc_{label}", "cuda", cuda_device_name(), 0, spec, wafers, density, seconds,
                   mc.summary.die_yield_mean, model, rng_rate, bandwidth, repeats)
        row["timed"] = ("simulate_lots end to end: per-lot densities in, per-wafer expansion, kernel and "
                        "reductions on the device, per-lot sums and summaries out")
        rows.append(row)
    return rows


def run(quick: bool) -> list[dict]:
    """Benchmark rows (one dict per backend, pattern and thread count); CUDA only on a real GPU."""
    from kernels.target import cuda_usable

    load = os.getloadavg()[0]  # other processes share the cores: recorded with the results
    rows = _cpu_rows(quick)
    comp = compile_seconds("cpu")
    for r in rows:
        r.update(comp, load_average_1min_before=load)
    if cuda_usable() and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        rows += _cuda_rows(quick)
    else:
        rows.append({"benchmark": "yield_mc", "backend": "cuda", "note": NO_GPU})
    return rows


def _print(rows):
    print(f"{'benchmark':28s} {'backend':5s} {'thr':>3s} {'wafers':>8s} {'Mdie/s':>8s} {'Mdefect/s':>9s} "
          f"{'RNG floor Mdie/s':>16s} {'of floor':>8s} {'mem floor':>10s} {'busy':>5s}")
    for r in rows:
        if "die_evals_per_s" not in r:
            print(f"{r['benchmark']:28s} {r['backend']:5s} {r.get('note', '')}")
            continue
        print(f"{r['benchmark']:28s} {r['backend']:5s} {r['threads']:3d} {r['wafers']:8d} {r['die_evals_per_s'] / 1e6:8.2f} "
              f"{r['defects_per_s'] / 1e6:9.2f} {r['rng_floor_die_evals_per_s'] / 1e6:16.2f} "
              f"{100 * r['fraction_of_rng_floor']:7.1f}% {100 * r['fraction_of_memory_floor']:9.3f}% "
              f"{r.get('cpu_busy_threads', float('nan')):5.2f}")
    comp = next((r for r in rows if "compile_seconds" in r), None)
    if comp:
        print(f"JIT compile {comp['compile_seconds']:.1f} s (import {comp['import_seconds']:.1f} s), measured apart")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rows = run(quick="--quick" in argv)
    _print(rows)
    if "--save" in argv:
        path = ROOT / "benchmarks" / "results" / "bench_yield.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows, indent=1))
        print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
