"""The CUDA wafer kernel is the CPU kernel: same device functions, same keyed streams.

Runs under numba's CUDA simulator in a subprocess (the variable must be set
before numba is imported) on a few small wafers with every pattern on; on a
machine with a real GPU (marker ``cuda``) the same script runs on the device.
The lot path (simulate_lots) is checked the same way; on a GPU it runs with
CuPy arrays and device reductions, and the yield report is compared too.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cuda_check import run_script

TESTS = str(Path(__file__).resolve().parent)

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


# simulate_lots on the CUDA backend: on a GPU every per-wafer array is a CuPy array and the reductions run
# on the device (under the simulator NumPy stands in, with the same code). Integer results must equal the
# CPU's exactly; the wafer die-yield mean and sd are CuPy reductions, equal to NumPy's to rounding.
LOTS = textwrap.dedent("""
    import math, sys, warnings
    warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
    import numpy as np
    from twin.backend import array_module, resolve_backend
    from twin.yield_model import YieldSpec, simulate_lots

    simulator = {simulator}
    cuda, cpu = resolve_backend("cuda"), resolve_backend("cpu")
    spec = YieldSpec(wafer_diameter_mm=100.0, edge_exclusion_mm=2.0, die_width_mm=5.0, die_height_mm=4.0,
                     alpha=1.5, cluster_block_dies=2, patterns=(0.3, 0.3, 0.15, 0.15, 0.1), scratch_probability=0.5)
    rng = np.random.default_rng(3)
    n_lots = 4 if simulator else 3000
    dens = rng.uniform(0.0, 0.6, n_lots)
    wafers = rng.integers(0, 26, n_lots)
    wafers[1] = 0
    args = dict(seed=21, key0=5000, sample=[1, 2, int(wafers.sum()) - 1])
    gpu = simulate_lots(spec, dens, wafers, backend=cuda, chunk=3 if simulator else 10007, **args)
    ref = simulate_lots(spec, dens, wafers, backend=cpu, **args)
    np.testing.assert_array_equal(gpu.summary.lot_good, ref.summary.lot_good)
    assert gpu.summary.good_total == ref.summary.good_total and gpu.summary.wafers == ref.summary.wafers
    assert math.isclose(gpu.summary.die_yield_mean, ref.summary.die_yield_mean, rel_tol=1e-12)
    assert math.isclose(gpu.summary.die_yield_sd, ref.summary.die_yield_sd, rel_tol=1e-10)
    np.testing.assert_array_equal(gpu.sample_good, ref.sample_good)
    np.testing.assert_array_equal(gpu.die_pass, ref.die_pass)
    np.testing.assert_array_equal(gpu.n_defects, ref.n_defects)
    for a, b in zip(gpu.defects, ref.defects):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert ref.summary.lot_good.min() < ref.summary.lot_good.max()
    if simulator:
        assert array_module(cuda) is np and "cupy" not in sys.modules
    else:
        import cupy
        assert array_module(cuda) is cupy
        # the wafers' arrays came from CuPy's pool: at least density (8 B), slot and good (4 B each) per wafer
        assert cupy.get_default_memory_pool().total_bytes() >= 16 * int(wafers.sum())
        sys.path.insert(0, {tests!r})
        from test_yield_report import fake_result, two_product_line
        from twin.yield_report import yield_report
        import tempfile
        line = two_product_line()
        res = fake_result(line, n_lots=400)
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            on_gpu, on_cpu = (yield_report(res, d, be, seed=3, sample_wafers=60) for d, be in ((a, cuda), (b, cpu)))
        for name in on_cpu["products"]:
            g, c = on_gpu["products"][name], on_cpu["products"][name]
            assert g["wafers"] == c["wafers"] and g["lot_yield"] == c["lot_yield"] and g["die_yield"] == c["die_yield"]
            assert math.isclose(g["wafer_yield"]["mean"], c["wafer_yield"]["mean"], rel_tol=1e-12)
            assert g["good_dies_per_day_mc_rep0"] == c["good_dies_per_day_mc_rep0"]
    print("OK lots", gpu.summary.wafers)
""")


def test_cuda_wafer_kernel_matches_cpu_under_the_simulator():
    proc = run_script(SCRIPT, simulator=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout


@pytest.mark.cuda
def test_cuda_wafer_kernel_matches_cpu_on_the_gpu():
    proc = run_script(SCRIPT, simulator=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cuda_lot_path_matches_cpu_under_the_simulator():
    proc = run_script(LOTS.format(simulator=True, tests=TESTS), simulator=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK lots" in proc.stdout


@pytest.mark.cuda
def test_cupy_lot_path_matches_cpu_on_the_gpu():
    """Per-lot sums, totals and sampled wafers equal the CPU's exactly; the report's lot numbers too."""
    proc = run_script(LOTS.format(simulator=False, tests=TESTS), simulator=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK lots" in proc.stdout
