"""CPU launchers: one ``prange`` iteration per replication (per replication and tool group for the
group sums), replication axis leading."""
from __future__ import annotations

import types

import numba
import numpy as np
from numba import prange

from kernels.calendar import BLOCKED, HEAP
from kernels.engine import make_engine
from kernels.reduce import make_group_sum
from kernels.state import make_state_views
from kernels.target import CPU, device_jit, inline_jit

# the heap: fastest from cache; the dispatch path and the calendar inlined (kernels.target.inline_jit)
_init_rep, _advance_rep, _finalize_rep = make_engine(device_jit(CPU), HEAP, inline=inline_jit(CPU))
_replication = make_state_views(device_jit(CPU))
_group_sum = make_group_sum(device_jit(CPU))


@numba.njit(parallel=True, cache=True)
def init_all(line, wip, state, seed, rep0, warmup, horizon):
    for r in prange(state.rng.shape[0]):
        _init_rep(line, wip, _replication(state, r), seed, rep0 + r, warmup, horizon)


@numba.njit(parallel=True, cache=True)
def advance_all(line, state, rep_zero, rep0, until, warmup, horizon):
    mail = np.zeros(1)  # a loop's scans exchange nothing
    for r in prange(state.rng.shape[0]):
        log_on = 1 if rep0 + r == 0 else 0
        _advance_rep(line, _replication(state, r), rep_zero, mail, until, warmup, horizon, log_on)


@numba.njit(parallel=True, cache=True)
def finalize_all(state, warmup, horizon):
    for r in prange(state.rng.shape[0]):
        _finalize_rep(_replication(state, r), warmup, horizon)


@numba.njit(parallel=True, cache=True)
def group_sums(gi, x, fields, out):
    """``out[r, g, j]``: column ``fields[j]`` of ``x[r]`` (``[R, tools, columns]``) summed over group g's tools."""
    groups = out.shape[1]
    for k in prange(out.shape[0] * groups):
        r = k // groups
        g = k - r * groups
        _group_sum(gi, x[r], fields, out[r, g], g)


class _Launchers:
    """The launchers above, compiled again over an engine with another calendar form."""

    def __init__(self, calendar):
        engine = dict(zip(("_init_rep", "_advance_rep", "_finalize_rep"), make_engine(device_jit(CPU), calendar)))
        for launcher in (init_all, advance_all, finalize_all):
            source = launcher.py_func
            function = types.FunctionType(source.__code__, dict(source.__globals__, **engine), source.__name__)
            setattr(self, source.__name__, numba.njit(parallel=True)(function))

    def __getattr__(self, name):  # the launchers that do not run the engine (group sums)
        try:
            return globals()[name]
        except KeyError:
            raise AttributeError(name) from None


def blocked_launchers():
    """The CPU launchers over the blocked calendar (built on first use, not cached), so that tests and
    benchmarks can check on the CPU that both forms give the same events."""
    global _BLOCKED
    if _BLOCKED is None:
        _BLOCKED = _Launchers(BLOCKED)
    return _BLOCKED


_BLOCKED = None
