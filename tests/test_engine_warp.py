"""A warp per replication: the lanes share the calendar's scans and the run is the CPU's, event for event.

Under numba's CUDA simulator (CI has no GPU) the warp launcher is built with a block of 2 or 4 threads,
each a Python thread; its barrier is ``syncthreads`` there and ``syncwarp`` on a GPU, where the
32-lane build runs (marker ``cuda``). The scans are checked against NumPy on values with many ties,
then the whole engine against the CPU's heap engine, once with queues of several blocks whose lots a
rule other than FIFO takes from inside them (the shared queue scan).
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cuda_check import run_script

TESTS = Path(__file__).resolve().parent

SCANS = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import numpy as np
    from numba import cuda, float64
    from lines import every_feature_line
    from kernels.lanes import MAIL_SIZE
    from kernels.launch_warp import make_warp_scans
    from kernels.layout import N_TI, T_STATE
    from kernels.state import LineTables, RepState
    from twin.compile import compile_line
    from twin.runner import state_shapes

    lanes = {lanes}
    scans, serve, stop = make_warp_scans(lanes, {simulator})
    arg_min, first_in_state = scans.arg_min, scans.first_in_state

    @cuda.jit
    def kernel(line, view, values, tools, starts, counts, states, out):
        mail = cuda.shared.array(MAIL_SIZE, float64)
        if cuda.threadIdx.x == 0:
            for i in range(starts.shape[0]):
                low, k, n, rest = arg_min(values, starts[i], counts[i], mail)
                out[i, 0] = low
                out[i, 1] = k
                out[i, 2] = n
                out[i, 3] = rest
                out[i, 4] = first_in_state(tools, starts[i], counts[i], states[i], mail)
            stop(mail)
        else:
            serve(line, view, mail)  # the scans read the view's times (ht) and tools (ti)

    rng = np.random.default_rng(4)
    values = rng.integers(0, 6, 200).astype(np.float64)  # ties everywhere
    values[rng.random(200) < 0.2] = np.inf
    values[190:198] = np.inf  # a range of +inf only (an empty calendar block)
    starts = np.array([0, 32, 40, 100, 7, 160, 190, 60], np.int64)
    counts = np.array([32, 32, 4, 64, 20, 8, 8, 1], np.int64)
    tools = np.zeros((200, N_TI), np.int32)
    tools[:, T_STATE] = rng.integers(0, 6, 200)
    tools[100:164, T_STATE] = 9  # a run of 64 tools in no state asked for: two empty rounds at 32 lanes
    tools[160, T_STATE] = 3
    states = np.array([0, 1, 2, 3, 7, 4, 0, 1], np.int64)  # 3: found in the second round of 32; 7: nowhere
    out = np.zeros((len(starts), 5))
    compiled = compile_line(every_feature_line())
    line = LineTables(*compiled.static_tables())
    tables = {{name: np.zeros(shape, dt) for name, (shape, dt) in state_shapes(compiled).items()}}
    view = RepState(**{{**tables, "ht": values, "ti": tools}})
    kernel[1, lanes](line, view, values, tools, starts, counts, states, out)
    for i, (s, n, state) in enumerate(zip(starts, counts, states)):
        part = values[s:s + n]
        first = int(np.argmin(part))  # NumPy's first place of the minimum
        rest = np.delete(part, first).min() if n > 1 else np.inf
        assert tuple(out[i, :4]) == (part.min(), first, (part == part.min()).sum(), rest), (i, out[i])
        in_state = np.flatnonzero(tools[s:s + n, T_STATE] == state)
        assert out[i, 4] == (in_state[0] if in_state.size else -1), (i, out[i], in_state)
    print("OK scans", lanes)
""")

QUEUE_SCAN = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import numpy as np
    from numba import cuda, float64
    from lines import every_feature_line
    from kernels import layout as K
    from kernels.dispatch import RULE_IDS
    from kernels.lanes import MAIL_SIZE, make_lanes
    from kernels.launch_warp import make_warp_scans
    from kernels.selection import make_selection
    from kernels.state import LineTables, RepState
    from kernels.target import CPU, device_jit
    from twin.compile import compile_line
    from twin.runner import state_shapes

    lanes = {lanes}
    scans, serve, stop = make_warp_scans(lanes, True)
    queue_block = scans.queue_block
    loop_block = make_lanes(device_jit(CPU)).queue_block
    queue_context = make_selection(device_jit(CPU))[2]

    @cuda.jit
    def kernel(line, view, cases, out):
        mail = cuda.shared.array(MAIL_SIZE, float64)
        if cuda.threadIdx.x == 0:
            for i in range(cases.shape[0]):
                g, t, block, rule = int(cases[i, 0]), int(cases[i, 1]), int(cases[i, 2]), int(cases[i, 3])
                line.gi[g, K.GI_RULE] = rule  # the helpers read the rule after the request's barrier
                r = queue_block(line.gi, line.si, line.sf, view.ti, view.li, view.lf, view.qb, view.step_wafers,
                                g, t, cases[i, 4], rule, 0, False, 0, block, mail)
                for j in range(6):
                    out[i, j] = r[j]
            stop(mail)
        else:
            serve(line, view, mail)

    compiled = compile_line(every_feature_line())
    line = LineTables(*(np.array(a) for a in compiled.static_tables()))
    tables = state_shapes(compiled, compiled.lot_capacity)  # room for the 76 lots of the blocks below
    view = RepState(**{{name: np.zeros(shape, dt) for name, (shape, dt) in tables.items()}})
    rng = np.random.default_rng(7)
    g = 1  # group B: a setup step and a batch step (kernels/selection.py's every branch)
    steps = np.flatnonzero(line.si[:, K.SI_GROUP] == g)
    lots = view.li.shape[0]
    view.li[:, K.L_STEP] = rng.choice(steps, lots)
    view.li[:, K.L_PRIORITY] = rng.integers(0, 3, lots)
    view.li[:, K.L_DED_TOOL0:] = -1
    view.lf[:, K.LF_ENTRY] = rng.uniform(0.0, 500.0, lots)
    view.lf[:, K.LF_DUE] = np.round(rng.uniform(100.0, 900.0, lots), -1)  # ties in due dates
    view.step_wafers[:] = rng.integers(0, 3, view.step_wafers.shape[0])
    counts = (29, 17, 29, 1)
    order = rng.permutation(lots)
    for b, n in enumerate(counts):
        view.qb[b, :n] = order[sum(counts[:b]):sum(counts[:b]) + n]
        view.qb[b, K.QB_COUNT] = n
    for b in (0, 2):  # a block's last lot is the earliest due and the earliest in: some rules choose it
        last = view.qb[b, counts[b] - 1]
        view.li[last, K.L_STEP] = steps[0]  # not a batch step: eligible
        view.lf[last, K.LF_DUE] = 50.0
        view.lf[last, K.LF_ENTRY] = 0.0
    first_tool = line.gi[g, K.GI_FIRST_TOOL]
    view.ti[first_tool, K.T_SETUP] = 0
    cases = np.array([(g, first_tool + tool, b, rule, now) for tool in (0, 1) for b in range(len(counts))
                      for rule in sorted(RULE_IDS.values()) for now in (400.0, 600.0)], dtype=np.float64)
    out = np.zeros((len(cases), 6))
    kernel[1, lanes](line, view, cases, out)
    stopped = last_chosen = 0
    for i, (g_, t, b, rule, now) in enumerate(cases):
        line.gi[g, K.GI_RULE] = int(rule)
        rule_, current, hold, top = queue_context(line.gi, view.ti, view.qi, g, int(t))
        want = loop_block(line.gi, line.si, line.sf, view.ti, view.li, view.lf, view.qb, view.step_wafers, g,
                          int(t), now, rule_, current, hold, top, int(b), np.zeros(1))
        assert tuple(out[i]) == tuple(float(x) for x in want), (i, cases[i], out[i], want)
        stopped += bool(want[5])
        last_chosen += want[0] == counts[int(b)] - 1
    assert 0 < stopped < len(cases), stopped  # some folds stopped early, some ran the block through
    assert last_chosen > 0  # a block's last lot won (the helper with the highest share)
    print("OK queue scan", lanes, len(cases))
""")

ENGINE = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import numpy as np
    from lines import every_feature_line
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.runner import run_line

    compiled = compile_line(every_feature_line({line_args}))
    args = dict(replicas=2, horizon_days={days}, warmup_days=0.1, seed=5, snapshot_minutes=60)
    warp = run_line(compiled, backend=resolve_backend("cuda", lanes={lanes}), **args)
    cpu = run_line(compiled, backend=resolve_backend("cpu"), **args)
    assert warp.events > 200, warp.events
    for key in cpu.stats:
        np.testing.assert_array_equal(warp.stats[key], cpu.stats[key], err_msg=key)
    np.testing.assert_array_equal(warp.lot_log, cpu.lot_log)
    np.testing.assert_array_equal(warp.snapshots["tool_state"], cpu.snapshots["tool_state"])
    print("OK engine", warp.events)
""")


@pytest.mark.parametrize("lanes", [2, 32])
def test_warp_scans_equal_the_loops_under_the_simulator(lanes):
    proc = run_script(SCANS.format(tests=str(TESTS), lanes=lanes, simulator=True), simulator=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"OK scans {lanes}" in proc.stdout


@pytest.mark.parametrize("lanes", [2, 4])
def test_the_warp_queue_scan_folds_as_the_loop_under_the_simulator(lanes):
    """Blocks of 29, 17, 29 and 1 lots with random steps, priorities, due dates and batch readiness;
    every rule, two tools (one with a setup), two times: the helpers' verdicts folded by lane 0 equal
    kernels/lanes.py's loop, value for value."""
    proc = run_script(QUEUE_SCAN.format(tests=str(TESTS), lanes=lanes), simulator=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"OK queue scan {lanes}" in proc.stdout


def test_the_warp_engine_gives_the_cpu_run_under_the_simulator():
    proc = run_script(ENGINE.format(tests=str(TESTS), lanes=2, days=0.3, line_args=""), simulator=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK engine" in proc.stdout


def test_the_warp_queue_scan_gives_the_cpu_choices_over_blocks_under_the_simulator():
    """70 lots wait at time 0 (a queue of three blocks, kernels/queues.py) and earliest due date takes
    them from inside the blocks: three helpers judge each block's lots, lane 0 folds them."""
    proc = run_script(ENGINE.format(tests=str(TESTS), lanes=4, days=0.3, line_args="'edd', 70"), simulator=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK engine" in proc.stdout


@pytest.mark.cuda
def test_warp_scans_equal_the_loops_on_a_real_gpu():
    proc = run_script(SCANS.format(tests=str(TESTS), lanes=32, simulator=False), simulator=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.cuda
def test_the_warp_engine_gives_the_cpu_run_on_a_real_gpu():
    proc = run_script(ENGINE.format(tests=str(TESTS), lanes=32, days=3.0, line_args="'edd', 70"), simulator=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
