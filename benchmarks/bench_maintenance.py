"""Maintenance-study throughput: candidate-policy x replication-years simulated per second.

Two workloads: the degrading etch chamber (configs/maintain/tool/etch.yaml, condition-based candidates, a
sensor reading every lot, warnings on) and the event-driven Weibull age-replacement case
(weibull_renewal.yaml, time-based candidates, no readings).  Each runs on the CPU with one thread and
with all cores, and on CUDA when a real GPU is usable (never under the simulator).  JIT compile time is
measured apart, in a fresh process with an empty numba cache; the timed runs are warmed up first and the
median of the repeats is reported.  CUDA timings end with the copy of the results to the host, which
synchronises.

    python benchmarks/bench_maintenance.py [--quick] [--json results.json]

``run(quick)`` returns the rows, so ``twin bench`` can call it.
"""
from __future__ import annotations

import argparse
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

WORKLOADS = {  # name: (overrides, candidates, replications, years) for (quick, full)
    "etch_condition_based": (["tool=etch", "policy=condition_based", "search=random"], (64, 16, 0.5), (512, 32, 1.0)),
    "weibull_age": (["tool=weibull_renewal", "policy=time_based", "search=random"], (256, 32, 2.0), (2048, 64, 5.0)),
}


def compile_seconds() -> float:
    """JIT compile of the CPU kernel in a fresh process with an empty numba cache."""
    code = ("import time; t = time.perf_counter(); from twin.maintain import compose_config, load_study, warm_up;"
            "s = load_study(compose_config(['backend=cpu'])); t0 = time.perf_counter(); warm_up(s.tool, s.backend);"
            "print(time.perf_counter() - t0)")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _study(overrides, n_cand, replicas, years):
    from twin.maintain import compose_config, load_study

    return load_study(compose_config([*overrides, "backend=cpu", f"samples={n_cand}", f"replicas={replicas}",
                                      f"horizon_years={years}", "baseline=false"]))


def _time(study, backend, repeats) -> tuple[list[float], float]:
    """Wall seconds of each repeat (results copied to the host, so CUDA is synchronised) and the readings taken."""
    from kernels import maintenance as M
    from twin.maintain import HOURS_PER_YEAR, simulate, warm_up

    warm_up(study.tool, backend)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        raw = simulate(study.tool, study.candidates, study.replicas, study.horizon_years * HOURS_PER_YEAR,
                       study.seed, backend=backend)
        times.append(time.perf_counter() - started)
    return times, float(raw.out[..., M.O_READINGS].sum())


def _targets():
    """(backend, threads, device) to measure: CPU 1 thread, CPU all cores, CUDA when a real GPU is usable."""
    import numba

    from kernels.target import cuda_device_name
    from twin.backend import cpu_model

    cores = numba.config.NUMBA_NUM_THREADS
    out = [("cpu", 1, f"{cpu_model()}, 1 thread"), ("cpu", cores, f"{cpu_model()}, {cores} threads")]
    if gpu_usable():
        out.append(("cuda", 0, cuda_device_name()))
    return out


def gpu_usable() -> bool:
    """A real GPU: numba's simulator also answers cuda_usable(), but its timings mean nothing."""
    from kernels.target import cuda_usable

    return cuda_usable() and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1"


def run(quick: bool = False) -> list[dict]:
    """Benchmark rows: one per workload and target, plus the JIT compile time of the CPU kernel."""
    import numba

    from twin.backend import resolve_backend

    repeats = 3 if quick else 5
    rows = [{"benchmark": "maintenance_jit_compile", "backend": "cpu", "compile_seconds": round(compile_seconds(), 3)}]
    try:
        for name, (overrides, q, full) in WORKLOADS.items():
            n_cand, replicas, years = q if quick else full
            study = _study(overrides, n_cand, replicas, years)
            for backend, threads, device in _targets():
                if backend == "cpu":
                    numba.set_num_threads(threads)
                times, readings = _time(study, resolve_backend(backend, threads), repeats)
                work = len(study.candidates) * replicas * years
                median = statistics.median(times)
                rows.append({"benchmark": f"maintenance_{name}", "backend": backend, "threads": threads,
                             "device": device, "candidates": len(study.candidates), "replications": replicas,
                             "horizon_years": years, "repeats": repeats, "seconds_median": round(median, 4),
                             "candidate_replication_years_per_second": round(work / median, 1),
                             "sensor_readings_per_second": round(readings / median, 1)})
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    if not gpu_usable():
        rows.append({"benchmark": "maintenance", "backend": "cuda", "note": "no GPU was available"})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads, 3 repeats")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    rows = run(args.quick)
    print(f"JIT compile (CPU kernel, empty cache): {rows[0]['compile_seconds']:.1f} s")
    print(f"{'benchmark':<34}{'backend':<8}{'device':<30}{'cand x reps x yr':>17}{'median s':>10}"
          f"{'cand-rep-yr/s':>15}{'readings/s':>14}")
    for r in rows[1:]:
        if "note" in r:
            print(f"{r['benchmark']:<34}{r['backend']:<8}{r['note']}")
            continue
        items = f"{r['candidates']}x{r['replications']}x{r['horizon_years']:g}"
        print(f"{r['benchmark']:<34}{r['backend']:<8}{r['device'][:29]:<30}{items:>17}{r['seconds_median']:>10.3f}"
              f"{r['candidate_replication_years_per_second']:>15,.0f}{r['sensor_readings_per_second']:>14.3g}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
