"""Checkpoints on the CUDA layout (replication axis last): resume and cut-short runs equal the uninterrupted run.

Under numba's CUDA simulator in CI (a subprocess, see cuda_check.py); on a real GPU with marker ``cuda``.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cuda_check import run_script

TESTS = Path(__file__).resolve().parent

SCRIPT = textwrap.dedent("""
    import sys, tempfile
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    import numpy as np
    from lines import exp_step, open_line, station
    from twin import runner
    from twin.backend import resolve_backend
    runner.SEGMENT_TARGET_SECONDS = 0.0  # one segment a launch: a boundary after each of the 10
    from twin.compile import compile_line

    failures = {{"ttf": {{"dist": "exponential", "mean": 300.0}}, "repair": {{"dist": "exponential", "mean": 30.0}}}}
    line = open_line([station("A", 2, failures=failures), station("B", 1)], [exp_step("A", 20.0), exp_step("B", 15.0)], 30.0)
    c = compile_line(line)
    gpu = resolve_backend("cuda")
    args = dict(replicas=3, horizon_days=1.0, warmup_days=0.2, seed=5, snapshot_minutes=60, backend=gpu, segments=10)
    whole = runner.run_line(c, **args)
    key, settings = runner.checkpoint_key(c, "cuda", 3, 1.0, 0.2, 5, 60.0, 10)
    path = Path(tempfile.mkdtemp()) / "checkpoint.npz"
    asks = iter(range(100))
    cut = runner.run_line(c, checkpoint=runner.Checkpoint(path, key, settings, 0), stop=lambda: next(asks) >= 5, **args)
    assert cut.interrupted and cut.replicas == 3 and abs(cut.horizon_days - 0.6) < 1e-12, (cut.replicas, cut.horizon_days)
    resumed = runner.run_line(c, checkpoint=runner.Checkpoint(path, key, settings, 0, resume=True), **args)
    for k in (*runner.RESULT_FIELDS, *runner.REP0_FIELDS):
        np.testing.assert_array_equal(resumed.stats[k], whole.stats[k], err_msg=k)
    np.testing.assert_array_equal(resumed.lot_log, whole.lot_log)
    np.testing.assert_array_equal(resumed.snapshots["tool_state"], whole.snapshots["tool_state"])
    print("OK", whole.events)
""")


def test_cuda_checkpoint_resume_equals_the_uninterrupted_run_under_the_simulator():
    proc = run_script(SCRIPT.format(tests=str(TESTS)), simulator=True)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.cuda
def test_cuda_checkpoint_resume_equals_the_uninterrupted_run_on_the_gpu():
    proc = run_script(SCRIPT.format(tests=str(TESTS)), simulator=False)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr
