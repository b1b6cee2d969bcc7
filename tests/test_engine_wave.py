"""The wavefront launcher: each stage of an event a kernel over the replications that need it, and the
run is the CPU's, event for event.

Under numba's CUDA simulator (CI has no GPU) each kernel runs as Python threads, so the cases are
small: two and three replications of the line with every feature of the SMT2020 tables, once with
queues of several blocks that earliest-due-date takes lots from inside, once with a lot table that
must grow (a replication pauses in the take stage, the table grows, the launch goes on). Every
statistic, the lot log and the snapshots must equal the CPU's.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cuda_check import run_script

TESTS = Path(__file__).resolve().parent

ENGINE = textwrap.dedent("""
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
    wave = run_line(compiled, backend=resolve_backend("cuda", wavefront=True), **args)
    assert wave.events == cpu.events > 200, (wave.events, cpu.events)
    assert (wave.lot_slots > compiled.lot_slots) == {grow}, wave.lot_slots
    for key in (*RESULT_FIELDS, *REP0_FIELDS):
        np.testing.assert_array_equal(wave.stats[key], cpu.stats[key], err_msg=key)
    np.testing.assert_array_equal(wave.lot_log, cpu.lot_log)
    for key in cpu.snapshots:
        np.testing.assert_array_equal(wave.snapshots[key], cpu.snapshots[key], err_msg=key)
    print("OK wave", wave.events, wave.lot_slots)
""")


def run_case(simulator=True, **case):
    proc = run_script(ENGINE.format(tests=str(TESTS), **case), simulator=simulator)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK wave" in proc.stdout, proc.stdout


def test_the_wavefront_gives_the_cpu_run_under_the_simulator():
    run_case(reps=2, days=1.0, line_args="", grow=False)


def test_the_wavefront_takes_lots_from_inside_queue_blocks_and_grows_the_table_under_the_simulator():
    """70 lots wait at time 0 (queues of three blocks); the table starts one slot above the initial WIP."""
    run_case(reps=3, days=0.3, line_args="'edd', 70", grow=True)


def test_a_wavefront_needs_a_thread_per_replication():
    from twin.backend import resolve_backend
    from twin.errors import ConfigError

    with pytest.raises(ConfigError, match="backend.wavefront"):
        resolve_backend("cpu", lanes=32, wavefront=True)


@pytest.mark.cuda
def test_the_wavefront_gives_the_cpu_run_on_a_real_gpu():
    run_case(simulator=False, reps=64, days=3.0, line_args="'edd', 70", grow=True)
