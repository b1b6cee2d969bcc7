"""A CUDA advance kernel refuses state whose row widths are not kernels/layout.py's, before any event.

The kernels test the widths first so that the compiler may fold them into every index
(kernels/state.py, ``make_layout_check``); a state saved by other kernels must then stop with a clear
error, not run on misread columns. Under numba's CUDA simulator (a subprocess), both launchers.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cuda_check import run_script

TESTS = Path(__file__).resolve().parent

SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import numpy as np
    import kernels.layout as K
    from lines import exp_step, open_line, station
    from kernels.state import RepState
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.runner import STATE_ORDER, _raise_on_capacity, _RepZeroBuffers, state_shapes

    c = compile_line(open_line([station("a", 1)], [exp_step("a", 5.0)], 10.0))
    for lanes, extra in ((0, 0), (0, 1), (2, 0), (2, 1)):  # a thread, or a warp of 2 lanes, per replication
        backend = resolve_backend("cuda", lanes=lanes)
        shapes = state_shapes(c)
        (lots, width), dtype = shapes["li"]
        shapes["li"] = ((lots, width + extra), dtype)
        state = RepState(**{{name: backend.zeros(1, *shapes[name]) for name in STATE_ORDER}})
        logs = backend.rep_zero(_RepZeroBuffers(c, 120.0, 1, 60.0), True)
        launch = backend.launchers()
        launch.init_all(backend.static(c), backend.wip(c), state, np.uint64(1), 0, 0.0, 120.0)
        launch.advance_all(backend.static(c), state, logs, 0, 120.0, 0.0, 120.0)
        rep_i = backend.to_host(state.rep_i)
        if extra:
            assert rep_i[0, K.R_ERROR] == K.ERR_ROW_WIDTH and rep_i[0, K.R_EVENTS] == 0, (lanes, rep_i[0])
            try:
                _raise_on_capacity(rep_i, c, backend.to_host(state.s_i))
            except RuntimeError as err:
                assert "row widths" in str(err)
            else:
                raise AssertionError("no error")
        else:
            assert rep_i[0, K.R_ERROR] == K.ERR_NONE and rep_i[0, K.R_EVENTS] > 5, (lanes, rep_i[0])
    print("OK")
""")


def test_a_wider_lot_row_is_refused_before_any_event_under_the_simulator():
    proc = run_script(SCRIPT.format(tests=str(TESTS)), simulator=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout


@pytest.mark.cuda
def test_a_wider_lot_row_is_refused_before_any_event_on_a_real_gpu():
    proc = run_script(SCRIPT.format(tests=str(TESTS)), simulator=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_rows_an_event_reads_are_whole_sectors_with_each_hot_group_in_one():
    """kernels/layout.py's sector rule: an L1 miss fetches 32-byte sectors, so the rows of the tables an
    event reads are whole sectors (every replication's block starts on one), and the fields an event
    reads together lie in one sector of their row: what every event reads of the replication's scalars,
    a state change's two tool times, a job's phase times, a lot's queue and verdict fields."""
    import kernels.layout as K

    sector = 32
    for name, width, itemsize in (("ti", K.N_TI, 4), ("tf", K.N_TF, 8), ("li", K.N_LI, 4), ("qi", K.N_QI, 4),
                                  ("rep_i", K.N_RI_STATE, 8), ("qb", K.N_QB, 4)):
        assert width * itemsize % sector == 0, (name, width * itemsize)

    def one_sector(columns, itemsize):
        return len({c * itemsize // sector for c in columns}) == 1

    assert one_sector((K.R_HEAP_N, K.R_OUTBOX_N, K.R_ERROR, K.R_EVENTS), 8)
    for state in (K.PRODUCTIVE, K.STANDBY, K.SETUP):  # the usual states: their time beside TF_SINCE
        assert one_sector((K.TF_SINCE, K.TF_E10_0 + state), 8), state
    assert one_sector((K.TF_PHASE_END, K.TF_PROC_PENDING, K.TF_TTF_LEFT, K.TF_BUSY_START), 8)
    assert one_sector((K.L_STEP, K.L_STATUS, K.L_QBLOCK, K.L_WAFERS, K.L_PRIORITY), 4)
    assert one_sector((K.T_STATE, K.T_SETUP, K.T_RUN, K.T_NLOTS, K.T_STEP, K.T_VER), 4)
