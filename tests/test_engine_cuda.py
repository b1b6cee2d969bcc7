"""The CUDA kernels are the CPU kernels: same device functions, same keyed streams.

In CI there is no GPU, so the CUDA launchers run under numba's CUDA simulator
(set before numba is imported, hence a subprocess) on a tiny case.  With a
real GPU (marker ``cuda``) the same comparison runs on the device.
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
    from lines import exp_step, open_line, station
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.runner import run_line

    failures = {{"ttf": {{"dist": "exponential", "mean": 300.0}}, "repair": {{"dist": "exponential", "mean": 30.0}}}}
    pm = [{{"name": "w", "every_wafers": 40, "duration": {{"dist": "constant", "value": 15}}}},
          {{"name": "age", "age_minutes": 400, "duration": {{"dist": "uniform", "low": 5, "high": 9}}}}]
    wear = {{"drift_per_wafer": 0.01, "noise_per_wafer": 0.02, "sensor_sd": 0.05,
             "failure_level": {{"dist": "uniform", "low": 0.4, "high": 0.8}},
             "warning": {{"level": 0.4, "horizon_minutes": 120}}}}
    a = {{**station("A", 2, failures=failures, pm=pm), "location": "X", "condition": wear,
          "maintenance": {{"policy": "condition", "threshold": 0.3, "duration": 12}}}}
    b = {{**station("B", 2, setup={{"minutes": 5}}), "location": "Y", "tool_choice": "least_setup", "condition": wear,
          "maintenance": {{"policy": "predictive", "target_level": 0.5, "lead_minutes": 90, "duration": 10}}}}
    transport = {{"default": 2.0, "table": [{{"from": "X", "to": "Y", "time": {{"dist": "uniform", "low": 1, "high": 3}}}}]}}
    line = open_line(
        [a, b],
        [exp_step("A", 20.0), exp_step("B", 15.0, setup="x"),
         exp_step("A", 10.0, rework={{"prob": 0.3, "to_step": 2, "once": True}}),
         {{"group": "B", "time": 12.0, "per": "batch", "batch": {{"min": 2, "max": 3, "max_wait": 30}}, "setup": "y"}}],
        30.0, lot_size=1, transport=transport,
        initial_wip=[{{"release": "p", "step": 2, "lots": 2, "due_minutes": [60.0, 5.0]}}, {{"release": "p", "step": 3, "lots": 1}}])
    compiled = compile_line(line)
    args = dict(replicas=3, horizon_days=2.0, warmup_days=0.5, seed=5, snapshot_minutes=60)
    gpu = run_line(compiled, backend=resolve_backend("cuda"), **args)
    cpu = run_line(compiled, backend=resolve_backend("cpu"), **args)
    assert gpu.events > 500, gpu.events
    for key in cpu.stats:
        np.testing.assert_allclose(gpu.stats[key], cpu.stats[key], rtol=1e-9, atol=1e-9, err_msg=key)
    np.testing.assert_array_equal(gpu.snapshots["tool_state"], cpu.snapshots["tool_state"])
    assert len(gpu.lot_log) == len(cpu.lot_log) > 0
    print("OK", gpu.backend, gpu.device_name, gpu.events)
""")




def test_cuda_kernels_match_cpu_under_the_simulator():
    proc = run_script(SCRIPT.format(tests=str(TESTS)), simulator=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK cuda numba CUDA simulator" in proc.stdout


@pytest.mark.cuda
def test_cuda_kernels_match_cpu_on_a_real_gpu():
    proc = run_script(SCRIPT.format(tests=str(TESTS)), simulator=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
