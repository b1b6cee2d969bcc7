"""The wavefront launcher: each stage of an event a kernel over the replications that need it, and the
run is the CPU's, event for event.

Under numba's CUDA simulator (CI has no GPU) each kernel runs as Python threads, so the cases are
small: two and three replications of the line with every feature of the SMT2020 tables, once with
queues of several blocks that earliest-due-date takes lots from inside, once with a lot table that
must grow (a replication pauses in the take stage, the table grows, the launch goes on). Every
statistic, the lot log and the snapshots must equal the CPU's.
"""
from __future__ import annotations

import pytest

from cuda_check import assert_same_run_as_cpu


def run_case(simulator=True, **case):
    assert_same_run_as_cpu('resolve_backend("cuda", wavefront=True)', simulator, **case)


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
