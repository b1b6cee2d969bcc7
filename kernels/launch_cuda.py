"""CUDA launchers: one thread per replication (per replication and tool group for the group sums),
replication axis leading (as on the CPU).

Imported only when the CUDA backend is used.  The kernel bodies are the same
device functions the CPU launchers call (:func:`kernels.engine.make_engine`),
on the same bundles (:mod:`kernels.state`).  Kernels are cached on disk
(``cache=True``) in the folder :func:`kernels.target.keyed_cache_dir` keys by
every kernel source, so a second process loads them instead of recompiling.
"""
from __future__ import annotations

import os

import numpy as np
from numba import cuda, float64

from kernels.calendar import HEAP
from kernels.engine import make_event_stages
from kernels.layout import ERR_ROW_WIDTH, R_ERROR
from kernels.reduce import make_group_sum
from kernels.state import make_layout_check, make_offset_views, make_state_views, view_offsets
from kernels.target import CUDA, device_jit, keyed_cache_dir

keyed_cache_dir()  # the on-disk cache folder is keyed by every kernel source (device functions included)

THREADS_PER_BLOCK = 64

# One thread per replication keeps the heap: the blocked calendar's scans pay only when a warp's lanes
# share them (offline sm_90: 246 registers with it, 196 with the heap; docs/ARCHITECTURE.md).
# The thread, wavefront and persistent launchers share these device functions (STAGES, replication_at,
# has_layout_widths): numba types a device function once per process, and typing the model, not NVVM,
# is most of a kernel's compile (benchmarks/cuda_report.py compiles all three in one process).
STAGES = make_event_stages(device_jit(CUDA), HEAP)
_init_rep, _advance_rep, _finalize_rep = STAGES.init_rep, STAGES.advance_rep, STAGES.finalize_rep


def make_launch_views():
    """``replication_at(state, offsets, r)`` for the kernels: offset views (kernels/repview.py) when compiled
    for a GPU; under numba's simulator, which runs the kernels as Python, the plain views (tests/test_repview.py
    checks the offset views against them on the CPU)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        return make_offset_views(device_jit(CUDA), CUDA)
    plain = make_state_views(device_jit(CUDA))

    @device_jit(CUDA)
    def replication_at(state, offsets, r):
        return plain(state, r)

    return replication_at


replication_at = make_launch_views()
has_layout_widths = make_layout_check(device_jit(CUDA))
_group_sum = make_group_sum(device_jit(CUDA))


@cuda.jit(cache=True)
def _init_kernel(line, wip, state, offsets, seed, rep0, warmup, horizon):
    r = cuda.grid(1)
    if r < state.rng.shape[0]:
        _init_rep(line, wip, replication_at(state, offsets, r), seed, rep0 + r, warmup, horizon)


@cuda.jit(cache=True)
def _advance_kernel(line, state, rep_zero, offsets, rep0, until, warmup, horizon):
    r = cuda.grid(1)
    if r < state.rng.shape[0]:
        log_on = 1 if rep0 + r == 0 else 0
        mail = cuda.local.array(1, float64)  # one thread's scans exchange nothing
        view = replication_at(state, offsets, r)
        if not has_layout_widths(line, view, rep_zero):
            view.rep_i[R_ERROR] = ERR_ROW_WIDTH
            return
        _advance_rep(line, view, rep_zero, mail, until, warmup, horizon, log_on)


@cuda.jit(cache=True)
def _finalize_kernel(state, offsets, warmup, horizon):
    r = cuda.grid(1)
    if r < state.rng.shape[0]:
        _finalize_rep(replication_at(state, offsets, r), warmup, horizon)


def _blocks(n):
    return (n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK, THREADS_PER_BLOCK


def small_blocks(n):
    """``(blocks, threads)`` for ``n`` threads, a block no larger than ``n``: the simulator runs every
    thread of a block, needed or not (the stage launchers' small kernels)."""
    threads = max(1, min(THREADS_PER_BLOCK, n))
    return (n + threads - 1) // threads, threads


def kept(cache: dict, key, build):
    """``cache[key]``, from ``build()`` the first time; a few keys are kept (a run has at most two chunk
    sizes; a study may change lines)."""
    if key not in cache:
        if len(cache) > 4:
            cache.clear()
        cache[key] = build()
    return cache[key]


_OFFSETS = {}


def device_offsets(state):
    """The state's :func:`kernels.state.view_offsets` on the device, uploaded once per state shape."""
    return kept(_OFFSETS, tuple(table.shape for table in state), lambda: cuda.to_device(view_offsets(state)))


def init_all(line, wip, state, seed, rep0, warmup, horizon):
    offsets = device_offsets(state)
    _init_kernel[_blocks(state.rng.shape[0])](line, wip, state, offsets, seed, rep0, warmup, horizon)


def advance_all(line, state, rep_zero, rep0, until, warmup, horizon):
    offsets = device_offsets(state)
    _advance_kernel[_blocks(state.rng.shape[0])](line, state, rep_zero, offsets, rep0, until, warmup, horizon)


def finalize_all(state, warmup, horizon):
    _finalize_kernel[_blocks(state.rng.shape[0])](state, device_offsets(state), warmup, horizon)


@cuda.jit(cache=True)
def _group_sum_kernel(gi, x, fields, out):
    k = cuda.grid(1)
    groups = out.shape[1]
    if k < out.shape[0] * groups:
        r = k // groups
        g = k - r * groups
        _group_sum(gi, x[r], fields, out[r, g], g)


def group_sums(gi, x, fields, out):
    """``out[r, g, j]``: column ``fields[j]`` of ``x[r]`` summed over group g's tools, one thread per (r, g).

    ``x`` (``[R, tools, columns]``) and ``out`` (``[R, groups, len(fields)]``) are device arrays, numba's or
    any with ``__cuda_array_interface__`` (CuPy); ``fields`` may be a host array (it is a few integers).
    """
    if isinstance(fields, np.ndarray):
        fields = cuda.to_device(np.ascontiguousarray(fields, np.int64))
    n = out.shape[0] * out.shape[1]
    if n:
        _group_sum_kernel[_blocks(n)](gi, x, fields, out)
