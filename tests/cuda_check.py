"""Run a script that compares CUDA and CPU kernels, under numba's simulator or on a real GPU.

The simulator must be switched on before numba is imported, hence a subprocess; it
imports the same source tree the tests import.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def run_script(script: str, simulator: bool) -> subprocess.CompletedProcess:
    import twin

    root = str(Path(twin.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root}
    if simulator:
        pytest.importorskip("numba.cuda")
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    else:
        require_real_gpu()
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)


def require_real_gpu() -> None:
    from kernels.target import cuda_usable

    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or not cuda_usable():
        pytest.skip("no real CUDA GPU on this machine")


SAME_RUN_AS_CPU = textwrap.dedent("""
    import dataclasses, sys
    sys.path.insert(0, {tests!r})
    import numpy as np
    from lines import every_feature_line
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.runner import REP0_FIELDS, RESULT_FIELDS, run_line

    compiled = compile_line(every_feature_line({line_args}))
    args = dict(replicas={reps}, horizon_days={days}, warmup_days=0.1, seed=5, snapshot_minutes=60)
    cpu = run_line(dataclasses.replace(compiled, lot_slots=compiled.lot_capacity), backend=resolve_backend("cpu"),
                   **args)
    if {grow}:
        compiled = dataclasses.replace(compiled, lot_slots=compiled.wip.shape[0] + 1)
    gpu = run_line(compiled, backend={backend}, **args)
    assert gpu.events == cpu.events > 200, (gpu.events, cpu.events)
    assert (gpu.lot_slots > compiled.lot_slots) == {grow}, gpu.lot_slots
    for key in (*RESULT_FIELDS, *REP0_FIELDS):
        np.testing.assert_array_equal(gpu.stats[key], cpu.stats[key], err_msg=key)
    np.testing.assert_array_equal(gpu.lot_log, cpu.lot_log)
    for key in cpu.snapshots:
        np.testing.assert_array_equal(gpu.snapshots[key], cpu.snapshots[key], err_msg=key)
    print("OK same run", gpu.events, gpu.lot_slots)
""")


def assert_same_run_as_cpu(backend: str, simulator: bool = True, **case) -> None:
    """The line with every SMT2020 feature run by ``backend`` (a ``resolve_backend(...)`` expression)
    equals the CPU's run: every statistic, the lot log and the snapshots. ``case``: ``reps``, ``days``,
    ``line_args`` (of ``every_feature_line``) and ``grow`` (the CUDA lot table starts one slot above the
    initial WIP, so it must grow)."""
    proc = run_script(SAME_RUN_AS_CPU.format(tests=str(TESTS), backend=backend, **case), simulator=simulator)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK same run" in proc.stdout, proc.stdout
