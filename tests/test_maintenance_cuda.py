"""The CUDA maintenance kernel is the CPU kernel: same device functions, same keyed streams, same numbers.

Runs under numba's CUDA simulator in a subprocess (the variable must be set before numba is imported) on
every policy kind with every failure cause, the sensor and the warnings on; on a machine with a real GPU
(marker ``cuda``) the same script runs on the device.
"""
from __future__ import annotations

import textwrap

import pytest

from cuda_check import run_script

SCRIPT = textwrap.dedent("""
    import warnings
    warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
    import numpy as np
    from kernels.target import cuda_usable
    from twin.backend import resolve_backend
    from kernels import maintenance as M
    from twin.distributions import Dist
    from twin.maintain import Candidates, ToolModel, simulate

    assert cuda_usable()
    tool = ToolModel("all", 20.0, utilisation=0.8, drift=2e-3, noise=1e-2, step_wafers=25.0,
                     life=Dist("weibull", (1.5, 200.0)), threshold=Dist("lognormal", (1.0, 0.1)),
                     hazard_h0=1e-3, hazard_b=2.0, repair=Dist("exponential", (5.0,)),
                     pm_duration=Dist("triangular", (1.0, 2.0, 3.0)), sensor_noise=0.05, forget=0.9, min_readings=3,
                     d0=0.2, gross_dies=100.0, price_pm=1.0, price_repair=5.0, price_down_hour=0.1,
                     warn_level=1.0, warn_horizon=6.0, warn_window=12.0, warn_bins=8)
    kinds = np.array([M.RUN_TO_FAILURE, M.AGE, M.BLOCK, M.WAFERS, M.CONDITION, M.PREDICTIVE, M.CALENDAR_AGE],
                     np.int32)
    params = np.array([[0, 0, 0], [20, 0, 0], [25, 0, 0], [300, 0, 0], [0.6, 0.5, 0], [3, 0.9, 0], [22, 0, 0]],
                      np.float64)
    cands = Candidates(("x",) * 7, kinds, params)
    args = dict(replicas=3, horizon_hours=80.0, seed=17, rep0=5)
    gpu = simulate(tool, cands, backend=resolve_backend("cuda"), chunk_items=7, **args)
    cpu = simulate(tool, cands, backend=resolve_backend("cpu"), **args)
    np.testing.assert_allclose(gpu.out, cpu.out, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(gpu.hist, cpu.hist)
    s = cpu.out.sum(axis=1)
    assert s[0, M.O_FAILS] > 0 and s[1:, M.O_PMS].min() > 0 and s[:, M.O_TRUE].sum() > 0
    print("OK", s[:, M.O_FAILS], s[:, M.O_PMS])
""")




def test_cuda_maintenance_kernel_matches_cpu_under_the_simulator():
    proc = run_script(SCRIPT, simulator=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout


@pytest.mark.cuda
def test_cuda_maintenance_kernel_matches_cpu_on_the_gpu():
    proc = run_script(SCRIPT, simulator=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
