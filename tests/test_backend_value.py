"""The yield and maintenance kernels take the engine's Backend value, and leave numba's thread count alone."""
from __future__ import annotations

import numba
import numpy as np
import pytest

from kernels import maintenance as M
from twin.backend import resolve_backend
from twin.maintain import Candidates, simulate
from twin.yield_model import YieldSpec, simulate_wafers

SPEC = YieldSpec(wafer_diameter_mm=100.0, die_width_mm=5.0, die_height_mm=4.0)


@pytest.mark.parametrize("lanes", [1, 3, 64, -1, 2.0])  # 1: a leader with no helper to scan
def test_a_bad_lane_count_is_refused_before_compute(lanes):
    from twin.errors import ConfigError

    with pytest.raises(ConfigError, match="backend.lanes"):
        resolve_backend("cpu", lanes=lanes)


def test_a_backend_name_string_is_refused():
    with pytest.raises(TypeError, match="Backend"):
        simulate_wafers(SPEC, np.full(4, 0.3), seed=1, backend="cpu")


def test_cpu_threads_apply_only_while_the_kernel_runs():
    one = resolve_backend("cpu", 1)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    a = simulate_wafers(SPEC, np.full(64, 0.3), seed=1, backend=one)
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    b = simulate_wafers(SPEC, np.full(64, 0.3), seed=1)  # None: the CPU with the caller's threads
    np.testing.assert_array_equal(a.good, b.good)  # keyed streams: the thread count changes nothing


def small_tool():
    from twin.distributions import Dist
    from twin.maintain import ToolModel

    return ToolModel("all", 20.0, utilisation=0.8, drift=2e-3, noise=1e-2, step_wafers=25.0,
                     life=Dist("weibull", (1.5, 200.0)), threshold=Dist("lognormal", (1.0, 0.1)),
                     hazard_h0=1e-3, hazard_b=2.0, repair=Dist("exponential", (5.0,)),
                     pm_duration=Dist("constant", (2.0,)), sensor_noise=0.05, forget=0.9, min_readings=3,
                     d0=0.2, gross_dies=100.0, price_pm=1.0, price_repair=5.0, price_down_hour=0.1,
                     warn_level=1.0, warn_horizon=6.0, warn_window=12.0, warn_bins=4)


def test_maintenance_takes_the_same_backend_value():
    cands = Candidates(("rtf",), np.array([M.RUN_TO_FAILURE], np.int32), np.zeros((1, 3)))
    one = resolve_backend("cpu", 1)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    raw = simulate(small_tool(), cands, 2, 200.0, 1, backend=one)
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    assert raw.out[..., M.O_FAILS].sum() > 0
    with pytest.raises(TypeError, match="Backend"):
        simulate(small_tool(), cands, 2, 200.0, 1, backend="cuda")


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two threads to tell counts apart")
def test_building_a_backend_leaves_the_thread_count_alone():
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    resolve_backend("cpu", 1)
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two threads to tell counts apart")
def test_the_engine_runs_on_the_backend_s_threads_and_restores_the_caller_s(monkeypatch):
    from kernels import launch_cpu
    from lines import exp_step, open_line, station
    from twin.compile import compile_line
    from twin.runner import run_line

    seen = []
    advance = launch_cpu.advance_all

    def counting_advance(*args):
        seen.append(numba.get_num_threads())
        return advance(*args)

    monkeypatch.setattr(launch_cpu, "advance_all", counting_advance)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    line = compile_line(open_line([station("A", 1)], [exp_step("A", 10.0)], 15.0))
    run_line(line, 2, horizon_days=1.0, warmup_days=0.0, seed=1, backend=resolve_backend("cpu", 1))
    assert seen and set(seen) == {1}
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
