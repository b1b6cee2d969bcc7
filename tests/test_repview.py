"""The offset views of kernels/repview.py, which the CUDA kernels use, index the state as plain views do.

The views are numba types with their own indexing; the CUDA compile gives them the same lowering apart
from one load (an inline-asm ``ld`` there, a plain load here). So the engine is run on the CPU twice from
the same initial state, once over plain views (``state.table[r]``) and once over offset views, and every
state table, the lot log and the snapshots must agree bit for bit. The line has every feature of the
SMT2020 tables (tests/lines.py), so every handler and every table is indexed.
"""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.access_count import fresh_state as _fresh
from benchmarks.access_count import make_runner
from kernels import launch_cpu
from kernels.layout import R_EVENTS
from kernels.state import STATE_FIELDS, RepState, RepZero, view_offsets
from lines import every_feature_line
from twin.compile import compile_line

_run_over_offset_views = make_runner()


def _run_over_plain_views(compiled, state, rep_zero, seed, warmup, horizon):
    line = compiled.static_tables()
    launch_cpu.init_all(line, compiled.wip, state, seed, 0, warmup, horizon)
    launch_cpu.advance_all(line, state, rep_zero, 0, horizon, warmup, horizon)
    launch_cpu.finalize_all(state, warmup, horizon)


def test_view_offsets_point_at_each_replications_block():
    state = RepState(*(np.zeros((3, 4, 5)) for _ in STATE_FIELDS))
    offsets = view_offsets(state)
    assert offsets.shape == (3, len(STATE_FIELDS))
    assert (offsets[:, 0] == [0, 20, 40]).all() and (offsets[:, -1] == [0, 20, 40]).all()
    flat = state.ti.reshape(-1)
    flat[offsets[2, STATE_FIELDS.index("ti")] + 3 * 5 + 1] = 7.0
    assert state.ti[2, 3, 1] == 7.0


@pytest.mark.slow
def test_the_engine_over_offset_views_gives_the_plain_views_state_bit_for_bit():
    compiled = compile_line(every_feature_line())
    replicas, seed, warmup, horizon = 2, np.uint64(5), 0.5 * 1440.0, 1.5 * 1440.0
    plain, plain_zero = _fresh(compiled, replicas, horizon)
    _run_over_plain_views(compiled, plain, plain_zero, seed, warmup, horizon)
    offset, offset_zero = _fresh(compiled, replicas, horizon)
    _run_over_offset_views(compiled.static_tables(), compiled.wip, offset, view_offsets(offset), offset_zero,
                           np.zeros(1), seed, horizon, warmup, horizon)
    assert plain.rep_i[:, R_EVENTS].min() > 500  # every replication ran
    for name in STATE_FIELDS:
        np.testing.assert_array_equal(getattr(offset, name), getattr(plain, name), err_msg=name)
    for name in RepZero._fields:
        np.testing.assert_array_equal(getattr(offset_zero, name), getattr(plain_zero, name), err_msg=name)
