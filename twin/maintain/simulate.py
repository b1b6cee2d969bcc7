"""Launch :mod:`kernels.maintenance` over every (candidate, replication) item, chunk by chunk."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from kernels import maintenance as M
from twin.maintain.candidates import Candidates, make_candidates
from twin.maintain.tool import ToolModel


@dataclass
class Raw:
    """Item outputs: ``out`` [candidates, replications, N_OUT], lead histogram pooled over replications."""

    out: np.ndarray
    hist: np.ndarray  # int64 [candidates, bins]
    horizon_hours: float
    seconds: float


def stream_seeds(seed: int) -> np.ndarray:
    """Three independent stream seeds (renewal draws, down durations, path + sensor) from one seed."""
    from kernels.rng import splitmix64_host

    return np.array([splitmix64_host((seed << 2) + k) for k in range(3)], np.uint64)


def simulate(tool: ToolModel, candidates: Candidates, replicas: int, horizon_hours: float, seed: int,
             backend=None, crn: bool = True, rep0: int = 0, chunk_items: int = 0) -> Raw:
    """Run every (candidate, replication) item; results depend on the seed and keys only, not on chunks.

    With ``crn`` item ``(i, r)`` is keyed by replication ``rep0 + r`` alone, so
    candidates share random streams; without, by ``i * 2**32 + rep0 + r``.
    """
    gi, gf = tool.tables(horizon_hours)
    n_cand = len(candidates)
    out = np.zeros((n_cand, replicas, M.N_OUT), np.float64)
    hist = np.zeros((n_cand, tool.warn_bins), np.int64)
    from twin.backend import cpu_threads, on_cuda

    cuda = on_cuda(backend)  # backend: the engine's twin.backend.Backend (None: the CPU)
    chunk = chunk_items or (1 << 20 if cuda else 1 << 18)
    per = max(1, chunk // replicas)
    stride = 0 if crn else 1 << 32
    seeds = stream_seeds(seed)
    run = _cuda_chunk(gi, gf, candidates, seeds) if cuda else _cpu_chunk
    started = time.perf_counter()
    with cpu_threads(backend):
        for a in range(0, n_cand, per):
            b = min(a + per, n_cand)
            o, h = run(gi, gf, candidates, seeds, a, b, replicas, rep0, stride)
            out[a:b] = o.reshape(b - a, replicas, M.N_OUT)
            hist[a:b] = h.reshape(b - a, replicas, -1).sum(axis=1)
    return Raw(out, hist, horizon_hours, time.perf_counter() - started)


def _cpu_chunk(gi, gf, cands, seeds, a, b, replicas, rep0, stride):
    n = (b - a) * replicas
    out = np.zeros((n, M.N_OUT), np.float64)
    hist = np.zeros((n, gi[M.GI_BINS]), np.int32)
    rng = np.zeros((n, 3, 2), np.uint64)
    M.simulate_cpu(gi, gf, cands.kinds, cands.params, seeds, a, replicas, rep0, stride, out, hist, rng)
    return out, hist


def _cuda_chunk(gi, gf, cands, seeds):
    """A chunk runner holding the static tables on the device (uploaded once)."""
    from numba import cuda

    launch = M.cuda_launcher()
    d_static = [cuda.to_device(np.ascontiguousarray(x)) for x in (gi, gf, cands.kinds, cands.params, seeds)]

    def run(gi, gf, cands, seeds, a, b, replicas, rep0, stride):
        n = (b - a) * replicas
        d_out = cuda.device_array((n, M.N_OUT), np.float64)
        d_hist = cuda.device_array((n, int(gi[M.GI_BINS])), np.int32)
        d_rng = cuda.device_array((n, 3, 2), np.uint64)
        launch(*d_static, a, replicas, rep0, stride, d_out, d_hist, d_rng)
        return d_out.copy_to_host(), d_hist.copy_to_host()

    return run


def warm_up(tool: ToolModel, backend) -> float:
    """Compile (or load from the cache) the kernel on one tiny item; returns seconds."""
    started = time.perf_counter()
    cands = make_candidates("run_to_failure", {})
    simulate(tool, cands, 2, 1.0, 0, backend=backend)
    return time.perf_counter() - started
