"""A warp per replication: the lanes share the calendar's scans and the run is the CPU's, event for event.

Under numba's CUDA simulator (CI has no GPU) the warp launcher is built with a block of 2 or 4 threads,
each a Python thread; its barrier is ``syncthreads`` there and ``syncwarp`` on a GPU, where the
32-lane build runs (marker ``cuda``). The scans are checked against NumPy on values with many ties,
then the whole engine against the CPU's heap engine.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cuda_check import run_script

TESTS = Path(__file__).resolve().parent

SCANS = textwrap.dedent("""
    import numpy as np
    from numba import cuda, float64
    from kernels.lanes import MAIL_SIZE
    from kernels.launch_warp import make_warp_scans
    from kernels.layout import N_TI, T_STATE

    lanes = {lanes}
    block_min, first_equal, first_in_state, serve, stop = make_warp_scans(lanes, {simulator})

    @cuda.jit
    def kernel(values, tools, starts, counts, targets, states, out):
        mail = cuda.shared.array(MAIL_SIZE, float64)
        if cuda.threadIdx.x == 0:
            for i in range(starts.shape[0]):
                out[i, 0] = block_min(values, starts[i], counts[i], mail)
                k, n = first_equal(values, starts[i], counts[i], targets[i], mail)
                out[i, 1] = k
                out[i, 2] = n
                out[i, 3] = first_in_state(tools, starts[i], counts[i], states[i], mail)
            stop(mail)
        else:
            serve(values, tools, mail)

    rng = np.random.default_rng(4)
    values = rng.integers(0, 6, 200).astype(np.float64)  # ties everywhere
    values[rng.random(200) < 0.2] = np.inf
    starts = np.array([0, 32, 40, 100, 7, 160], np.int64)
    counts = np.array([32, 32, 4, 64, 20, 8], np.int64)
    targets = np.array([values[s:s + n].min() for s, n in zip(starts, counts)])
    targets[3] = 99.0  # a value that is not there
    tools = np.zeros((200, N_TI), np.int32)
    tools[:, T_STATE] = rng.integers(0, 6, 200)
    tools[100:164, T_STATE] = 9  # a run of 64 tools in no state asked for: two empty rounds at 32 lanes
    tools[160, T_STATE] = 3
    states = np.array([0, 1, 2, 3, 7, 4], np.int64)  # 3: found in the second round of 32; 7: nowhere
    out = np.zeros((len(starts), 4))
    kernel[1, lanes](values, tools, starts, counts, targets, states, out)
    for i, (s, n, t, state) in enumerate(zip(starts, counts, targets, states)):
        part = values[s:s + n]
        hits = np.flatnonzero(part == t)
        assert out[i, 0] == part.min(), (i, out[i], part.min())
        assert out[i, 1] == (hits[0] if hits.size else -1), (i, out[i], hits)
        assert out[i, 2] == hits.size, (i, out[i], hits)
        in_state = np.flatnonzero(tools[s:s + n, T_STATE] == state)
        assert out[i, 3] == (in_state[0] if in_state.size else -1), (i, out[i], in_state)
    print("OK scans", lanes)
""")

ENGINE = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import numpy as np
    from lines import every_feature_line
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.runner import run_line

    compiled = compile_line(every_feature_line())
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
    proc = run_script(SCANS.format(lanes=lanes, simulator=True), simulator=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"OK scans {lanes}" in proc.stdout


def test_the_warp_engine_gives_the_cpu_run_under_the_simulator():
    proc = run_script(ENGINE.format(tests=str(TESTS), lanes=2, days=0.3), simulator=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK engine" in proc.stdout


@pytest.mark.cuda
def test_warp_scans_equal_the_loops_on_a_real_gpu():
    proc = run_script(SCANS.format(lanes=32, simulator=False), simulator=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.cuda
def test_the_warp_engine_gives_the_cpu_run_on_a_real_gpu():
    proc = run_script(ENGINE.format(tests=str(TESTS), lanes=32, days=3.0), simulator=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
