"""benchmarks/wave_trace.py: the stages it counts are the engine's run, and its wave model adds up.

The trace runs the engine's event stages one by one over counting offset views (in a numba cache of its
own, as benchmarks/access_count.py requires); it must see exactly the events the engine processes, or
its counts describe another run (an earlier form of it, with the stages inlined where the view was
built, saw 4,342 of HVLM's 129,081 events in two days).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import wave_trace as W  # noqa: E402

SAME_RUN = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import numpy as np
    from lines import every_feature_line
    from benchmarks import wave_trace as W
    from twin.compile import compile_line

    compiled = compile_line(every_feature_line())
    trace = W.trace_events(compiled, 2.0, seed=4)
    assert trace.shape[0] == {events} > 500, (trace.shape[0], {events})
    assert len(set(trace[:, W.KIND])) >= 5, np.bincount(trace[:, W.KIND])  # most kinds occur
    assert (trace[:, W.TAKE] > 0).all() and (trace[:, W.HANDLE] > 0).all()
    assert (trace[:, W.CALENDAR_SCANS] == 0).all()  # the heap scans nothing
    blocked = W.trace_events(compiled, 2.0, seed=4, calendar=W.BLOCKED)  # the warp launcher's calendar
    same = [W.KIND, W.MINUTE, W.GROUP, W.WAITING, W.TAKEN]
    assert blocked.shape == trace.shape and (blocked[:, same] == trace[:, same]).all()
    # every take finds the next event in three arg-min scans (the super-blocks, a block's minima, a slot's)
    # whose rests are the new minima; only a tie in time needs the two scans that refresh them
    scans = blocked[:, W.CALENDAR_SCANS]
    assert np.isin(scans, (3, 5)).all() and (scans == 3).mean() > 0.9, np.bincount(scans)
    assert (blocked[:, W.CALENDAR_ACCESSES] < blocked[:, W.TAKE]).all()
    for t in trace, blocked:  # every event reads something of its own; a line holds many reads
        accesses = t[:, W.TAKE] + t[:, W.HANDLE] + t[:, W.DISPATCH].clip(0)
        assert (t[:, W.LEADER_LINES] >= 1).all() and (t[:, W.LEADER_LINES] <= t[:, W.LEADER_READS]).all()
        assert (t[:, W.LEADER_READS] <= accesses).all() and (t[:, W.SECTORS_TOUCHED] <= accesses).all()
        assert t[:, W.LEADER_LINES].sum() < t[:, W.LEADER_READS].sum() / 2
        stage_reads = 0
        for stage, reads, lines in ((W.TAKE, W.TAKE_READS, W.TAKE_LINES), (W.HANDLE, W.HANDLE_READS, W.HANDLE_LINES),
                                    (W.DISPATCH, W.DISPATCH_READS, W.DISPATCH_LINES)):
            assert (t[:, lines] <= t[:, reads]).all() and (t[:, reads] <= t[:, stage].clip(0)).all()
            stage_reads = stage_reads + t[:, reads]
        assert (t[:, W.TAKE_LINES] >= 1).all() and (t[:, W.HANDLE_LINES] >= 1).all()
        for lines, sectors in ((W.LEADER_LINES, W.LEADER_SECTORS), (W.TAKE_LINES, W.TAKE_SECTORS),
                               (W.HANDLE_LINES, W.HANDLE_SECTORS), (W.DISPATCH_LINES, W.DISPATCH_SECTORS)):
            assert (t[:, lines] <= t[:, sectors]).all() and (t[:, sectors] <= 4 * t[:, lines]).all()
        assert (t[:, W.LEADER_TABLE_SECTORS:].sum(axis=1) == t[:, W.LEADER_SECTORS]).all()
        assert (t[t[:, W.DISPATCH] < 0, W.DISPATCH_READS] == 0).all()
        assert (t[:, W.LEADER_READS] <= stage_reads).all()  # lane 0 reads what one thread reads, less the scans
    print("OK", trace.shape[0])
""")


def test_the_trace_sees_every_event_of_the_engine_run(tmp_path):
    """The engine's run here, in this process's numba cache; the trace in a child with a cache of its own,
    with either calendar: the same events, and the blocked form's scans counted."""
    from lines import every_feature_line
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.runner import run_line

    run = run_line(compile_line(every_feature_line()), replicas=1, horizon_days=2.0, warmup_days=0.0, seed=4,
                   snapshot_minutes=0, backend=resolve_backend("cpu"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_CACHE_DIR": str(tmp_path),
           W.PRIVATE_CACHE: str(tmp_path)}
    script = SAME_RUN.format(tests=str(ROOT / "tests"), events=run.events)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "OK" in proc.stdout


def test_the_wave_model_is_each_stage_slowest_chain_or_issue_time_plus_its_launch():
    """1,000 replications whose events are all arrivals of 10 take and 10 handler accesses: take and the
    arrival stage each last 10 round trips (every replication's chain; 1,000 threads are resident, so
    issuing is no longer), the six other kinds and dispatch only their launch, and the counters' two."""
    trace = np.zeros((50, W.N_COLUMNS), np.int64)
    trace[:, W.KIND], trace[:, W.TAKE], trace[:, W.HANDLE], trace[:, W.DISPATCH] = W.EV_ARRIVE, 10, 10, -1
    model = W.wave_model(trace, 1000, 1.0)
    stage = W.LAUNCH_US + 10 * W.LATENCY_US
    assert model["stage_us"]["take"] == model["stage_us"]["arrive"] == round(stage, 1)
    assert model["wave_us"] == round(2 * stage + 7 * W.LAUNCH_US + 2 * W.LAUNCH_US, 1)
    assert np.isclose(model["events_per_s"], 1000 / (2 * stage + 9 * W.LAUNCH_US) * 1e6)


def test_a_warp_dispatch_chain_replaces_each_scan_by_its_rounds():
    """A dispatch of 500 accesses, 300 of them the verdicts of 10 queue blocks and 40 the tools of 2 tool
    rounds: a warp's leader makes the other 160 itself, waits one verdict and its fold per block and
    a tool and its combine per round."""
    row = np.zeros((1, W.N_COLUMNS), np.int64)
    row[0, [W.DISPATCH, W.QUEUE_ACCESSES, W.QUEUE_BLOCKS, W.TOOLS_READ, W.TOOL_ROUNDS]] = 500, 300, 10, 40, 2
    assert W.warp_chain(row)[0] == 160 + 10 * (W.VERDICT_ACCESSES + 1) + 2 * 2


def test_split_sends_the_dispatches_of_queues_over_one_block_to_a_warp():
    trace = np.zeros((4, W.N_COLUMNS), np.int64)
    trace[:, W.KIND], trace[:, W.DISPATCH], trace[:, W.WAITING] = W.EV_ARRIVE, [5, 6, 7, -1], [29, 30, 100, -1]
    samples = W.stage_samples(trace, "split")
    assert list(samples["dispatch"]) == [5] and len(samples["dispatch_warp"]) == 2
    assert len(W.stage_samples(trace, "thread")["dispatch"]) == 3 and "dispatch_warp" not in W.stage_samples(trace)


def test_persistent_warps_with_equal_chains_run_each_lane_back_to_back():
    """Every event an arrival of 10 take and 10 handler accesses, plus the lists' round trips at each
    stage: two warps over 64 replications fill every batch, and each replication does an event every
    two stages; 1,000 replications fill 32 warps by default."""
    trace = np.zeros((50, W.N_COLUMNS), np.int64)
    trace[:, W.KIND], trace[:, W.TAKE], trace[:, W.HANDLE], trace[:, W.DISPATCH] = W.EV_ARRIVE, 10, 10, -1
    model = W.persistent_model(trace, 64, 1.0, warps=2)
    assert model["lanes_per_batch"] == W.WARP
    assert np.isclose(model["events_per_s"], 64 / (2 * (10 + W.STAGE_LIST_ROUND_TRIPS) * W.LATENCY_US) * 1e6)
    assert W.persistent_model(trace, 1000, 1.0)["warps"] == 32


def test_a_persistent_warp_waits_for_its_own_lanes_only():
    """One event in a hundred has a dispatch of 1,000 accesses, the others none. Under a barrier every
    wave over 3,200 replications would wait for one (about 32 of them a wave); persistent warps lose
    only the warps that hold one (those replications' dispatches share batches), so the rate stays near
    that of no dispatch at all."""
    trace = np.zeros((100, W.N_COLUMNS), np.int64)
    trace[:, W.KIND], trace[:, W.TAKE], trace[:, W.HANDLE], trace[:, W.DISPATCH] = W.EV_ARRIVE, 10, 10, -1
    trace[0, W.DISPATCH] = 1000
    barrier_us = (10 + 10 + 1000) * W.LATENCY_US  # take, arrivals and the slowest dispatch of a wave
    persistent = W.persistent_model(trace, 3200, 1.0, warps=100)["events_per_s"]
    without_dispatch = 3200 / (2 * (10 + W.STAGE_LIST_ROUND_TRIPS) * W.LATENCY_US) * 1e6
    assert 0.5 * without_dispatch < persistent <= without_dispatch
    assert persistent > 5 * 3200 / barrier_us * 1e6


def test_lockstep_lanes_wait_for_each_kind_present_in_the_warp():
    """Half the events arrivals (10 handler accesses), half job ends (30), every take 10: a warp of 32
    lanes almost surely holds both kinds, so an iteration is 10 + 10 + 30 = 50 accesses against the
    30 of a lane alone (divergence 5/3); 1,000 replications keep 32 warps in work."""
    trace = np.zeros((100, W.N_COLUMNS), np.int64)
    trace[:, W.TAKE], trace[:, W.DISPATCH] = 10, -1
    trace[::2, W.KIND], trace[::2, W.HANDLE] = W.EV_ARRIVE, 10
    trace[1::2, W.KIND], trace[1::2, W.HANDLE] = W.EV_ACTIVITY_END, 30
    model = W.lockstep_model(trace, 1000, 1.0)
    assert model["warps_in_work"] == 32 and np.isclose(model["divergence"], 5 / 3, atol=0.01)
    assert np.isclose(model["events_per_s"], 32 * W.WARP / (50 * W.LATENCY_US) * 1e6)


def test_resident_threads_follow_the_register_allocation():
    """sm_90: 126 registers -> 4,096 a warp -> 16 warps = 512 threads; 40 -> 1,280 -> 51 warps, in
    blocks of two warps 50 = 1,600 threads; 21 -> 64 warps (the limit) = 2,048."""
    assert [W.resident_threads(r) for r in (126, 40, 21)] == [512, 1600, 2048]


def test_bad_skip_days_exit_2_before_any_compile(tmp_path):
    (tmp_path / "HVLM").mkdir()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.wave_trace", "--days", "2", "--skip-days", "3",
                           "--smt2020-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "--skip-days 3.0" in proc.stderr and "Traceback" not in proc.stderr


def test_a_warp_per_replication_runs_each_event_as_take_handler_and_its_warp_dispatch():
    """Two arrivals (take 10, handler 5 with the pushes) and two events that dispatch (take 10, handler 4,
    a dispatch of 100 accesses, 60 of them in 2 queue blocks and 20 tools in one round): the chains are
    15, 15 and 100 - 60 - 20 + 2 x 11 + 2 + 14 = 58, a mean of 36.5 round trips. 1,000 replications fill
    1,000 warps; 5,000 only the 132 x 16 that 128 registers leave resident."""
    trace = np.zeros((4, W.N_COLUMNS), np.int64)
    trace[:, W.TAKE] = 10
    trace[:, W.HANDLE] = 5, 5, 4, 4
    trace[:, W.DISPATCH] = -1, -1, 100, 100
    trace[2:, W.QUEUE_ACCESSES], trace[2:, W.QUEUE_BLOCKS], trace[2:, W.TOOLS_READ], trace[2:, W.TOOL_ROUNDS] = 60, 2, 20, 1
    assert list(W.event_chains_of_a_warp(trace)) == [15, 15, 58, 58]
    model = W.warp_launcher_model(trace, 1000, 1.0)
    assert model["warps"] == 1000 and model["chain_per_event"] == 36.5
    assert np.isclose(model["events_per_s"], 1000 / (36.5 * W.LATENCY_US) * 1e6)
    assert W.warp_launcher_model(trace, 5000, 1.0)["warps"] == 132 * 16


def test_a_warp_shares_the_blocked_calendars_scans_one_round_each():
    """A take of 80 accesses, 64 of them in 6 scans: the leader's 16, and 2 for each scan (a load a lane
    and the combine), 28. With the handler's 5 the event's chain is 33."""
    trace = np.zeros((1, W.N_COLUMNS), np.int64)
    trace[0, [W.TAKE, W.HANDLE, W.DISPATCH, W.CALENDAR_ACCESSES, W.CALENDAR_SCANS]] = 80, 5, -1, 64, 6
    assert list(W.take_chains_of_a_warp(trace)) == [28]
    assert list(W.event_chains_of_a_warp(trace)) == [33]


def test_a_touch_counts_each_line_and_sector_once_an_event():
    """Reads of float64 elements 0..19 of a table: 20 reads in two 128-byte lines (16 elements each) and
    five 32-byte sectors (4 each). A write touches a sector but reads no line; a read inside a shared
    scan touches its sector but is no read of the leader's, and the leader's read there after it hits
    (the helpers' loads fill the SM's L1). A new event sees every line afresh."""
    from benchmarks import access_count as A
    from kernels.state import RepState

    state = RepState(*(np.zeros((1, 64), np.float64) for _ in A.STATE_FIELDS))
    offsets = A.counting_offsets(state)
    k = 3
    offsets[0, A.EVENT] = 1
    for at in range(20):
        A._touch(offsets, 0, k, at, 8, True)
    assert offsets[0, [A.READS_ALONE, A.LINES_ALONE, A.SECTORS]].tolist() == [20, 2, 5]
    assert offsets[0, A.SECTORS_ALONE] == 5  # elements 0-19: bytes 0-159, sectors 0-4
    A._touch(offsets, 0, k, 40, 8, False)  # a write, in line 2 and sector 10
    offsets[0, A.IN_SCAN] = 1
    A._touch(offsets, 0, k, 44, 8, True)  # a scan's read, sector 11
    offsets[0, A.IN_SCAN] = 0
    A._touch(offsets, 0, k, 45, 8, True)  # lane 0 reads sector 11, which the scan brought into L1: a hit
    A._touch(offsets, 0, k + 1, 0, 8, True)  # another table: lines of its own
    assert offsets[0, [A.READS_ALONE, A.LINES_ALONE, A.SECTORS]].tolist() == [22, 3, 8]
    assert offsets[0, A.SECTORS_ALONE] == 6 and offsets[0, A.TABLE_SECTORS + k:A.TABLE_SECTORS + k + 2].tolist() == [5, 1]
    # the stage's count sees every read, the scan's too: lines 0 and 1 (elements 0-19), 2 (44), table k+1's;
    # sectors 0-4, 11 and table k+1's
    assert offsets[0, [A.READS, A.LINES, A.STAGE_SECTORS]].tolist() == [23, 4, 7]
    offsets[0, A.EVENT] = 2
    offsets[0, [A.READS_ALONE, A.LINES_ALONE, A.SECTORS_ALONE, A.SECTORS]] = 0
    A._touch(offsets, 0, k, 1, 8, True)
    assert offsets[0, [A.READS_ALONE, A.LINES_ALONE, A.SECTORS_ALONE, A.SECTORS]].tolist() == [1, 1, 1, 1]
    assert offsets[0, [A.READS, A.LINES, A.STAGE_SECTORS]].tolist() == [24, 4, 7]  # the same stage: seen in it
    offsets[0, A.STAGE] = 1
    A._touch(offsets, 0, k, 2, 8, True)
    assert offsets[0, [A.READS, A.LINES, A.STAGE_SECTORS]].tolist() == [25, 5, 8]  # a new stage: new again


def test_by_lines_a_warp_waits_for_each_new_line_each_round_and_each_blocks_verdict():
    """An event whose lane 0 reads 40 times in 10 lines, with 6 calendar scans, one tool round and two
    queue blocks: 10 + 30 h + 7 (1 + h) + 2 (3 + 8 h) round trips, h an L1 hit's share of a round trip."""
    trace = np.zeros((1, W.N_COLUMNS), np.int64)
    trace[0, [W.LEADER_READS, W.LEADER_LINES, W.CALENDAR_SCANS, W.TOOL_ROUNDS, W.QUEUE_BLOCKS]] = 40, 10, 6, 1, 2
    h = W.L1_HIT_US / W.LATENCY_US
    assert np.isclose(W.event_round_trips_of_a_warp(trace)[0], 10 + 30 * h + 7 * (1 + h) + 2 * (3 + 8 * h))
    model = W.warp_launcher_model(trace, 1000, W.LINES)
    assert model["round_trips_per_access"] == W.LINES
    assert np.isclose(model["events_per_s"], 1000 / (W.event_round_trips_of_a_warp(trace)[0] * W.LATENCY_US) * 1e6)
    trace[0, W.LEADER_SECTORS] = 16  # by sectors: 16 misses, 24 hits
    assert np.isclose(W.event_round_trips_of_a_warp(trace, W.SECTORS)[0], 16 + 24 * h + 7 * (1 + h) + 2 * (3 + 8 * h))
    assert W.warp_launcher_model(trace, 1000, W.SECTORS)["events_per_s"] < model["events_per_s"]


def test_by_lines_a_stage_waits_for_each_line_it_reads_and_hits_l1_for_its_other_reads():
    """A take reading 30 times in 6 lines, a handler 10 in 4, and a dispatch 50 in 12: 6 + 24 h, 4 + 6 h and
    12 + 38 h round trips; an event that does not dispatch keeps -1 there. Per access, the accesses times
    the cost."""
    trace = np.zeros((2, W.N_COLUMNS), np.int64)
    trace[:, [W.TAKE, W.HANDLE]] = 40, 12
    trace[:, [W.TAKE_READS, W.TAKE_LINES, W.HANDLE_READS, W.HANDLE_LINES]] = 30, 6, 10, 4
    trace[0, [W.DISPATCH, W.DISPATCH_READS, W.DISPATCH_LINES]] = 60, 50, 12
    trace[1, W.DISPATCH] = -1
    h = W.L1_HIT_US / W.LATENCY_US
    chains = W.stage_round_trips(trace, W.LINES)
    assert np.allclose(chains[:, [W.TAKE, W.HANDLE]], [[6 + 24 * h, 4 + 6 * h]] * 2)
    assert np.isclose(chains[0, W.DISPATCH], 12 + 38 * h) and chains[1, W.DISPATCH] == -1
    trace[:, [W.TAKE_SECTORS, W.HANDLE_SECTORS]] = 9, 5  # by sectors: the same reads, more misses
    trace[0, W.DISPATCH_SECTORS] = 20
    chains = W.stage_round_trips(trace, W.SECTORS)
    assert np.allclose(chains[:, [W.TAKE, W.HANDLE]], [[9 + 21 * h, 5 + 5 * h]] * 2)
    assert np.isclose(chains[0, W.DISPATCH], 20 + 30 * h) and chains[1, W.DISPATCH] == -1
    per_access = W.stage_round_trips(trace, 0.5)
    assert per_access[:, [W.TAKE, W.HANDLE, W.DISPATCH]].tolist() == [[20, 6, 30], [20, 6, -1]]
