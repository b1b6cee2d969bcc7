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
    from lines import every_feature_line
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.runner import run_line

    line = every_feature_line()
    compiled = compile_line(line)
    args = dict(replicas=2, horizon_days=1.5, warmup_days=0.5, seed=5, snapshot_minutes=60)
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
