"""The persistent-warp launcher: warps claim replications from the list of the stage they are at, with
no barrier between events, and the run is the CPU's, event for event.

Under numba's CUDA simulator (CI has no GPU) a block is 4 Python threads, and the blocks run one
after the other, so the first does all the work: the lists, the claims and the marks are exercised,
the concurrency of warps on several SMs is not (the device check compares every event count). The
cases: three and five replications of the line with every feature of the SMT2020 tables (more than
a block's 4 lanes, so claims are partial and lists hold replications from several stages), once with
queues of several blocks that earliest-due-date takes lots from inside, once with a lot table that
must grow (a replication pauses in the take stage, the table grows, the launch goes on). Every
statistic, the lot log and the snapshots must equal the CPU's.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cuda_check import assert_same_run_as_cpu, run_script

TESTS = Path(__file__).resolve().parent


def run_case(simulator=True, **case):
    assert_same_run_as_cpu('resolve_backend("cuda", persistent=True)', simulator, **case)


def test_persistent_warps_give_the_cpu_run_under_the_simulator():
    run_case(reps=5, days=0.5, line_args="", grow=False)


def test_persistent_warps_take_lots_from_inside_queue_blocks_and_grow_the_table_under_the_simulator():
    """70 lots wait at time 0 (queues of three blocks); the table starts one slot above the initial WIP."""
    run_case(reps=3, days=0.3, line_args="'edd', 70", grow=True)


LOST = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from lines import every_feature_line
    from kernels import launch_persistent as P
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.runner import run_line

    start = P._start_kernel

    class LosesOne:  # the start kernel, then one more segment than the lists will ever hand out
        def __getitem__(self, grid):
            def launch(*args):
                start[grid](*args)
                args[-1].remaining[0] += 1
            return launch

    P._start_kernel = LosesOne()
    try:
        run_line(compile_line(every_feature_line()), replicas=2, horizon_days=0.05, warmup_days=0.0, seed=5,
                 snapshot_minutes=0, backend=resolve_backend("cuda", persistent=True))
    except RuntimeError as err:
        assert "segments unfinished" in str(err) and "use another CUDA launcher" in str(err), err
        print("OK raised")
""")


def test_a_lost_replication_ends_the_kernel_and_raises_instead_of_waiting_forever():
    """Were a device's lists to lose a replication, the warps would find every list empty while a
    segment goes on: each ends after IDLE_LIMIT such claims, and the host raises."""
    proc = run_script(LOST.format(tests=str(TESTS)), simulator=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK raised" in proc.stdout, proc.stdout


@pytest.mark.parametrize("other", [{"lanes": 32}, {"wavefront": True}])
def test_a_persistent_warp_runs_a_thread_per_replication(other):
    from twin.backend import resolve_backend
    from twin.errors import ConfigError

    with pytest.raises(ConfigError, match="backend.persistent"):
        resolve_backend("cpu", persistent=True, **other)


@pytest.mark.cuda
def test_persistent_warps_give_the_cpu_run_on_a_real_gpu():
    run_case(simulator=False, reps=256, days=3.0, line_args="'edd', 70", grow=True)
