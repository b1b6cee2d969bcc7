"""The CUDA wafer kernel is the CPU kernel: same device functions, same keyed streams.

Runs under numba's CUDA simulator in a subprocess (the variable must be set
before numba is imported) on a few small wafers with every pattern on; on a
machine with a real GPU (marker ``cuda``) the same script runs on the device.
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
    from twin.yield_model import YieldSpec, simulate_wafers

    assert cuda_usable()
    spec = YieldSpec(wafer_diameter_mm=100.0, edge_exclusion_mm=2.0, die_width_mm=5.0, die_height_mm=4.0,
                     alpha=1.5, cluster_block_dies=2, patterns=(0.3, 0.3, 0.15, 0.15, 0.1), scratch_probability=0.5,
                     scratch_length_mm=40.0)
    density = np.array([0.0, 0.1, 0.3, 0.5, 0.2, 0.4])
    args = dict(seed=21, key0=1000, sample=[1, 3, 4])
    gpu = simulate_wafers(spec, density, backend=resolve_backend("cuda"), chunk=4, **args)
    cpu = simulate_wafers(spec, density, backend=resolve_backend("cpu"), **args)
    np.testing.assert_array_equal(gpu.good, cpu.good)
    np.testing.assert_array_equal(gpu.die_pass, cpu.die_pass)
    np.testing.assert_array_equal(gpu.n_defects, cpu.n_defects)
    for a, b in zip(gpu.defects, cpu.defects):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert gpu.good[0] == spec.gross_dies and cpu.good[1:].min() < spec.gross_dies and sum(gpu.n_defects) > 30
    print("OK", list(gpu.good))
""")




def test_cuda_wafer_kernel_matches_cpu_under_the_simulator():
    proc = run_script(SCRIPT, simulator=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout


@pytest.mark.cuda
def test_cuda_wafer_kernel_matches_cpu_on_the_gpu():
    proc = run_script(SCRIPT, simulator=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
