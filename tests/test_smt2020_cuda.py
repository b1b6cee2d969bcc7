"""The SMT2020 readings on CUDA are the CPU's: cascading (both occupancy readings), busy-while-inside time,
least setup before hot lots, strict minimum runs and dedication released while its tool is down, under
numba's CUDA simulator (a subprocess, as in test_engine_cuda.py), or on a real GPU (marker ``cuda``)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cuda_check import run_script

TESTS = Path(__file__).resolve().parent

SCRIPT = textwrap.dedent("""
    import dataclasses, sys
    sys.path.insert(0, {tests!r})
    import numpy as np
    from lines import exp_step, station
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.line import parse_line
    from twin.runner import run_line

    failures = {{"ttf": {{"dist": "exponential", "mean": 200.0}}, "repair": {{"dist": "exponential", "mean": 40.0}}}}
    pm = [{{"every_minutes": 300.0, "duration": {{"dist": "constant", "value": 25}}}}]
    groups = [
        {{**station("C", 2, dispatch="setup_hot_lot", setup={{"minutes": 8, "min_run": 2}}), "load_minutes": 1.0,
          "unload_minutes": 1.0, "tool_choice": "least_setup"}},
        station("L", 2, failures=failures, pm=pm),
        station("D", 3),
    ]
    cascade = {{"interval": 0.5, "per": "wafer"}}
    route_a = [{{"group": "C", "time": 6.0, "per": "lot", "setup": "a", "cascade": cascade}},
               exp_step("L", 8.0), exp_step("D", 20.0), {{**exp_step("L", 8.0), "dedicate_to_step": 2}},
               {{"group": "C", "time": 5.0, "per": "lot", "setup": "b", "cascade": {{"interval": 3.0}}}}]
    route_b = [{{"group": "C", "time": 6.0, "per": "lot", "setup": "b", "cascade": cascade}}, exp_step("L", 9.0)]
    releases = [{{"name": "a", "product": "a", "kind": "poisson", "interval_minutes": 25.0, "lot_size": 4, "due_days": 2}},
                {{"name": "hot_b", "product": "b", "kind": "poisson", "interval_minutes": 60.0, "lot_size": 4,
                  "priority": "hot", "due_days": 1}}]
    line = parse_line({{"name": "readings", "tool_groups": groups, "releases": releases,
                       "products": [{{"name": "a", "route": route_a}}, {{"name": "b", "route": route_b}}]}})
    for changes in ({{"cascade_load": True}}, {{"cascade_load": False, "dedication_release": True, "strict_min_run": True}}):
        g = tuple(dataclasses.replace(x, **changes) for x in line.tool_groups)
        compiled = compile_line(dataclasses.replace(line, tool_groups=g))
        args = dict(replicas=2, horizon_days=1.5, warmup_days=0.3, seed=9, snapshot_minutes=60)
        gpu = run_line(compiled, backend=resolve_backend("cuda"), **args)
        cpu = run_line(compiled, backend=resolve_backend("cpu"), **args)
        assert gpu.events > 500, gpu.events
        for key in cpu.stats:
            np.testing.assert_allclose(gpu.stats[key], cpu.stats[key], rtol=1e-9, atol=1e-9, err_msg=key)
        assert len(gpu.lot_log) == len(cpu.lot_log) > 0
    print("OK", gpu.backend, gpu.device_name, gpu.events)
""")


def test_readings_on_cuda_match_cpu_under_the_simulator():
    proc = run_script(SCRIPT.format(tests=str(TESTS)), simulator=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK cuda numba CUDA simulator" in proc.stdout


@pytest.mark.cuda
def test_readings_on_cuda_match_cpu_on_a_real_gpu():
    proc = run_script(SCRIPT.format(tests=str(TESTS)), simulator=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
