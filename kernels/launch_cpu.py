"""CPU launchers: one ``prange`` iteration per replication (per replication and tool group for the
group sums), replication axis leading."""
from __future__ import annotations

import numba
from numba import prange

from kernels.engine import make_engine
from kernels.reduce import make_group_sum
from kernels.target import CPU, device_jit

_init_rep, _advance_rep, _finalize_rep = make_engine(device_jit(CPU))
_group_sum = make_group_sum(device_jit(CPU))


@numba.njit(parallel=True, cache=True)
def init_all(gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport, wip,
             rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, step_wafers, step_defects,
             s_i, s_f, ct_hist, log, seed, rep0, warmup, horizon):
    for r in prange(rng.shape[0]):
        _init_rep(gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport, wip,
                  rng[r], rep_i[r], ht[r], hc[r], ti[r], tf[r], tlots[r], li[r], lf[r], qi[r], qf[r],
                  step_wafers[r], step_defects[r], s_i[r], s_f[r], ct_hist[r], log, seed, rep0 + r, warmup, horizon)


@numba.njit(parallel=True, cache=True)
def advance_all(gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport,
                rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, step_wafers, step_defects,
                s_i, s_f, ct_hist, log, snap_t, snap_tool, snap_queue, rep0, until, warmup, horizon):
    for r in prange(rng.shape[0]):
        log_on = 1 if rep0 + r == 0 else 0
        _advance_rep(gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport,
                     rng[r], rep_i[r], ht[r], hc[r], ti[r], tf[r], tlots[r], li[r], lf[r], qi[r], qf[r],
                     step_wafers[r], step_defects[r], s_i[r], s_f[r], ct_hist[r], log,
                     snap_t, snap_tool, snap_queue, until, warmup, horizon, log_on)


@numba.njit(parallel=True, cache=True)
def finalize_all(ti, tf, qi, qf, s_i, s_f, warmup, horizon):
    for r in prange(ti.shape[0]):
        _finalize_rep(ti[r], tf[r], qi[r], qf[r], s_i[r], s_f[r], warmup, horizon)


@numba.njit(parallel=True, cache=True)
def group_sums(gi, x, fields, out):
    """``out[r, g, j]``: column ``fields[j]`` of ``x[r]`` (``[R, tools, columns]``) summed over group g's tools."""
    groups = out.shape[1]
    for k in prange(out.shape[0] * groups):
        r = k // groups
        g = k - r * groups
        _group_sum(gi, x[r], fields, out[r, g], g)
