"""The engine refuses state whose row widths are not kernels/layout.py's, before any event.

``advance_rep`` tests the widths first so that the compiler may fold them into every index
(kernels/engine.py, ``rows_have_layout_widths``); a state saved by other kernels must then stop
with a clear error, not run on misread columns.
"""
from __future__ import annotations

import numpy as np
import pytest

import kernels.layout as K
from lines import exp_step, open_line, station
from kernels.state import RepState
from twin.backend import resolve_backend
from twin.compile import compile_line
from twin.runner import STATE_ORDER, _raise_on_capacity, _RepZeroBuffers, state_shapes


def _advance(extra_li_columns: int):
    c = compile_line(open_line([station("a", 1)], [exp_step("a", 5.0)], 10.0))
    backend = resolve_backend("cpu", 1)
    shapes = state_shapes(c)
    lots, width = shapes["li"][0]
    shapes["li"] = ((lots, width + extra_li_columns), shapes["li"][1])
    state = RepState(**{name: backend.zeros(1, *shapes[name]) for name in STATE_ORDER})
    logs = backend.rep_zero(_RepZeroBuffers(c, 600.0, 1, 60.0), True)
    launch = backend.launchers()
    launch.init_all(backend.static(c), backend.wip(c), state, np.uint64(1), 0, 0.0, 600.0)
    launch.advance_all(backend.static(c), state, logs, 0, 600.0, 0.0, 600.0)
    return c, state


def test_the_layout_widths_run():
    _, state = _advance(0)
    assert state.rep_i[0, K.R_ERROR] == K.ERR_NONE and state.rep_i[0, K.R_EVENTS] > 10


def test_a_wider_lot_row_is_refused_before_any_event():
    c, state = _advance(1)
    assert state.rep_i[0, K.R_ERROR] == K.ERR_ROW_WIDTH
    assert state.rep_i[0, K.R_EVENTS] == 0
    with pytest.raises(RuntimeError, match="row widths"):
        _raise_on_capacity(state.rep_i, c, state.s_i)
