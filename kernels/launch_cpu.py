"""CPU launchers: one ``prange`` iteration per replication, replication axis leading."""
from __future__ import annotations

import numba
from numba import prange

from kernels.engine import make_engine
from kernels.state import make_state_views
from kernels.target import CPU, device_jit

_init_rep, _advance_rep, _finalize_rep = make_engine(device_jit(CPU))
_replication = make_state_views(device_jit(CPU))


@numba.njit(parallel=True, cache=True)
def init_all(line, wip, state, seed, rep0, warmup, horizon):
    for r in prange(state.rng.shape[0]):
        _init_rep(line, wip, _replication(state, r), seed, rep0 + r, warmup, horizon)


@numba.njit(parallel=True, cache=True)
def advance_all(line, state, rep_zero, rep0, until, warmup, horizon):
    for r in prange(state.rng.shape[0]):
        log_on = 1 if rep0 + r == 0 else 0
        _advance_rep(line, _replication(state, r), rep_zero, until, warmup, horizon, log_on)


@numba.njit(parallel=True, cache=True)
def finalize_all(state, warmup, horizon):
    for r in prange(state.rng.shape[0]):
        _finalize_rep(_replication(state, r), warmup, horizon)
