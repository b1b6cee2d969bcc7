"""CUDA launchers: one thread per replication (per replication and tool group for the group sums),
replication axis leading (as on the CPU).

Imported only when the CUDA backend is used.  The kernel bodies are the same
device functions the CPU launchers call (:func:`kernels.engine.make_engine`).
Kernels are cached on disk (``cache=True``) in the folder
:func:`kernels.target.keyed_cache_dir` keys by every kernel source, so a second
process loads them instead of recompiling.
"""
from __future__ import annotations

from numba import cuda

import numpy as np

from kernels.engine import make_engine
from kernels.reduce import make_group_sum
from kernels.target import CUDA, device_jit, keyed_cache_dir

keyed_cache_dir()  # the on-disk cache folder is keyed by every kernel source (device functions included)

THREADS_PER_BLOCK = 64

_init_rep, _advance_rep, _finalize_rep = make_engine(device_jit(CUDA))
_group_sum = make_group_sum(device_jit(CUDA))


@cuda.jit(cache=True)
def _init_kernel(gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport, wip,
                 rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, step_wafers, step_defects,
                 s_i, s_f, ct_hist, log, seed, rep0, warmup, horizon):
    r = cuda.grid(1)
    if r < rng.shape[0]:
        _init_rep(gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport, wip,
                  rng[r], rep_i[r], ht[r], hc[r], ti[r], tf[r], tlots[r],
                  li[r], lf[r], qi[r], qf[r], step_wafers[r], step_defects[r],
                  s_i[r], s_f[r], ct_hist[r], log, seed, rep0 + r, warmup, horizon)


@cuda.jit(cache=True)
def _advance_kernel(gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport,
                    rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, step_wafers, step_defects,
                    s_i, s_f, ct_hist, log, snap_t, snap_tool, snap_queue, rep0, until, warmup, horizon):
    r = cuda.grid(1)
    if r < rng.shape[0]:
        log_on = 1 if rep0 + r == 0 else 0
        _advance_rep(gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport,
                     rng[r], rep_i[r], ht[r], hc[r], ti[r], tf[r], tlots[r],
                     li[r], lf[r], qi[r], qf[r], step_wafers[r], step_defects[r],
                     s_i[r], s_f[r], ct_hist[r], log, snap_t, snap_tool, snap_queue,
                     until, warmup, horizon, log_on)


@cuda.jit(cache=True)
def _finalize_kernel(ti, tf, qi, qf, s_i, s_f, warmup, horizon):
    r = cuda.grid(1)
    if r < ti.shape[0]:
        _finalize_rep(ti[r], tf[r], qi[r], qf[r], s_i[r], s_f[r], warmup, horizon)


def _blocks(n):
    return (n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK, THREADS_PER_BLOCK


def init_all(*args):
    n = args[12].shape[0]  # rng: [R, streams, 2]
    _init_kernel[_blocks(n)](*args)


def advance_all(*args):
    n = args[11].shape[0]  # rng: [R, streams, 2]
    _advance_kernel[_blocks(n)](*args)


def finalize_all(ti, tf, qi, qf, s_i, s_f, warmup, horizon):
    _finalize_kernel[_blocks(ti.shape[0])](ti, tf, qi, qf, s_i, s_f, warmup, horizon)


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
