"""What each wave stage of an HVLM event does, counted on the CPU, and what that gives a GPU (a model).

    python -m benchmarks.wave_trace [--days 2] [--smt2020-dir DIR] [--json FILE]

The wavefront launcher (kernels/launch_wave.py) runs an event as stages: ``take`` (the calendar),
the event kind's handler, and ``dispatch`` for the replications whose handler named a group. A
stage's kernel lasts as long as its slowest thread, and it has as many threads as replications in
that stage. This script runs the CPU engine through the same stages (kernels/engine.py's
``EventStages``) on one replication of SMT2020 HVLM, over the offset views the CUDA kernels index,
with each view's offset load counting itself (benchmarks/access_count.py), and records for every
event its kind and the state element accesses of each stage, as a replication other than 0 runs
them (without the lot log and the hourly snapshots). For a dispatch it also records its group and
queue, and what a warp's lanes would share of its scans (:func:`counting_scans`). **Measured:** the
kind mix, the share of events that dispatch, and each stage's accesses (mean, tail, maximum).

**Modelled** from those counts (:func:`wave_model`, every parameter named there): the time of one
wave over R replications on an H200, and the events per second it gives. Each stage's kernel takes
the longer of (a) its longest dependent chain, the slowest of its replications, and (b) the time to
issue all its accesses with one access in flight per resident thread; plus a launch. The accesses are
element accesses, not DRAM round trips (fields of one row share a line; the ec80624 trace counted about
55 round trips against 166 accesses here), so the model is given at both ends. The dispatch is
modelled run by a thread (as built), by a warp, or by a warp only for queues over one block
(:data:`DISPATCH_BY`). :func:`lockstep_model` models the thread launcher (a warp's lanes in
lockstep), :func:`persistent_model` persistent warps with no barrier between waves
(kernels/launch_persistent.py), its schedule simulated, and :func:`warp_launcher_model` a warp per
replication (kernels/launch_warp.py).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import access_count as counts  # noqa: E402
from benchmarks.access_count import (EVENT, IN_SCAN, LINES_ALONE, N_TABLES, PRIVATE_CACHE, READS_ALONE, SCANS,  # noqa: E402
                                     SECTORS_ALONE, STAGE, STAGE_SECTORS, TABLE_SECTORS, counting_offsets, fresh_state,
                                     in_private_cache, offset_views)
# a stage's reads and lines, and an event's sectors (this module's LINES and SECTORS: costs)
STAGE_READS, STAGE_LINES, EVENT_SECTORS = counts.READS, counts.LINES, counts.SECTORS
from kernels.calendar import BLOCKED, HEAP  # noqa: E402
from kernels.engine import make_event_stages  # noqa: E402
from kernels.lanes import WARP, Scans, make_lanes  # noqa: E402
from kernels.state import STATE_FIELDS  # noqa: E402
from kernels.layout import Q_LEN, EV_ACTIVITY_END, EV_ARRIVE, EV_BATCH_TIMEOUT, EV_FAIL, EV_LOT_DONE, EV_PM_DUE, EV_RELEASE  # noqa: E402
from kernels.target import CPU, device_jit  # noqa: E402

KIND_NAMES = {EV_RELEASE: "release", EV_ARRIVE: "arrive", EV_ACTIVITY_END: "activity_end", EV_FAIL: "fail",
              EV_PM_DUE: "pm_due", EV_BATCH_TIMEOUT: "batch_timeout", EV_LOT_DONE: "lot_done"}
# The trace's columns. DISPATCH, GROUP and WAITING (the group's queue before the dispatch) are -1 for an
# event that does not dispatch. Its dispatch's queue scans: QUEUE_ACCESSES inside ``queue_block`` over
# QUEUE_BLOCKS blocks; its tool scans: TOOLS_READ tools in TOOL_ROUNDS rounds of a warp's 32 lanes. The
# blocked calendar's scans in the event's take (kernels/calendar.py; 0 with the heap): CALENDAR_ACCESSES
# element reads inside ``arg_min``, in CALENDAR_SCANS scans, each one round for a warp.
# The event's lines and sectors (benchmarks/access_count.py's touches): LEADER_READS, its reads outside the
# scans a warp's lanes share (lane 0's, were a warp to run it), LEADER_LINES, the distinct 128-byte lines
# they read, and SECTORS_TOUCHED, the distinct 32-byte sectors all its accesses touched. Each stage's
# reads, scans included, and the distinct lines they read (a thread's, running the stage alone):
# TAKE_READS and TAKE_LINES, HANDLE_... (with the pushes when it does not dispatch), DISPATCH_... (0 when
# it does not); TAKE_SECTORS, HANDLE_SECTORS, DISPATCH_SECTORS, the distinct 32-byte sectors of those reads,
# and LEADER_SECTORS, of lane 0's. LEADER_TABLE_SECTORS + k: of LEADER_SECTORS, those of state table k
# (kernels/state.py's order).
(KIND, TAKE, HANDLE, DISPATCH, MINUTE, TAKEN, GROUP, WAITING, QUEUE_ACCESSES, QUEUE_BLOCKS, TOOLS_READ, TOOL_ROUNDS,
 CALENDAR_ACCESSES, CALENDAR_SCANS, LEADER_READS, LEADER_LINES, SECTORS_TOUCHED, TAKE_READS, TAKE_LINES, HANDLE_READS,
 HANDLE_LINES, DISPATCH_READS, DISPATCH_LINES, TAKE_SECTORS, HANDLE_SECTORS, DISPATCH_SECTORS, LEADER_SECTORS,
 LEADER_TABLE_SECTORS) = range(28)
N_COLUMNS = LEADER_TABLE_SECTORS + N_TABLES
N_DISPATCH_SCANNED = 4  # the first four: the dispatch's scans (the last two: the take's)
SCANNED = SCANS  # the offsets array's columns where the counting scans add up (it is their ``mail``)
assert SCANNED + CALENDAR_SCANS - QUEUE_ACCESSES < EVENT  # the six scan columns fit before the touches'

# Model parameters (not measurements): an H200 (sm_90), and the latency the GPU design section uses.
SMS = 132
REGISTERS_PER_SM = 65_536
MAX_WARPS_PER_SM = 64
LATENCY_US = 0.6  # one dependent global-memory round trip, DRAM (docs/ARCHITECTURE.md)
LAUNCH_US = 4.0  # one kernel launch back to back on a stream, assumed
ROUND_TRIPS_PER_ACCESS = (1.0, 55.0 / 166.0)  # every access a round trip; the ec80624 trace's ratio
# Or a chain from the distinct 128-byte lines it reads, or from its distinct 32-byte sectors: an L1 miss
# fetches only the sectors it lacks, not the whole line, so a line's other sectors are misses too
# (:func:`event_round_trips_of_a_warp`, :func:`stage_round_trips`). Each names the trace's columns of
# misses: lane 0's in an event, and a thread's in each stage.
LINES, SECTORS = "lines", "sectors"
GRANULES = {LINES: (LEADER_LINES, {TAKE: TAKE_LINES, HANDLE: HANDLE_LINES, DISPATCH: DISPATCH_LINES}),
            SECTORS: (LEADER_SECTORS, {TAKE: TAKE_SECTORS, HANDLE: HANDLE_SECTORS, DISPATCH: DISPATCH_SECTORS})}
COSTS = (*ROUND_TRIPS_PER_ACCESS, LINES, SECTORS)  # every cost the models are given at
L1_HIT_US = 0.025  # assumed: an L1 hit, about 40 cycles at 1.7 GHz
BANDWIDTH_TB_S = 4.8  # an H200's HBM3e
# Registers per thread of each stage's kernel, offline sm_90 (benchmarks/cuda_report.py, this commit)
# ("dispatch_warp" is not built: the warp advance kernel's 128, the bound of tests/test_cuda_report.py)
STAGE_REGISTERS = {"take": 40, "release": 126, "arrive": 30, "activity_end": 115, "fail": 40, "pm_due": 42,
                   "batch_timeout": 21, "lot_done": 120, "dispatch": 126, "dispatch_warp": 128}
THREAD_REGISTERS = 111  # the thread launcher's advance kernel, offline sm_90 (blocks of 64 threads)
WARP_LAUNCHER_REGISTERS = 128  # kernels/launch_warp.py's advance kernel, offline sm_90 (blocks of one warp)
# kernels/launch_persistent.py launches 16 warps an SM (its kernel takes 118 registers offline, sm_90: 17 fit)
PERSISTENT_WARPS_PER_SM = 16
DISPATCH_BY = ("thread", "warp", "split")  # who runs a dispatch in the model (:func:`stage_samples`)
SPLIT_LOTS = 29  # a queue block's lots (kernels/queues.py): a longer queue goes to a warp under "split"
# The state accesses of one lot's verdict at most (kernels/selection.py's lot_verdict: its id in the
# block, L_STEP, the dedicated tool twice, that tool's state twice, the step's wafers, LF_ENTRY,
# L_PRIORITY and LF_DUE); the leader's fold of the block's verdicts in shared memory counts one more.
VERDICT_ACCESSES = 10
# Of those, the DRAM round trips one after the other: the block's ids, the lot's row, its tool's state
# (the step's row is a line table's, shared by every replication); the others hit L1 after them
VERDICT_MISSES = 3
# Persistent warps (persistent_model): a batch's round trips for the lists of kernels/launch_persistent.py,
# whatever an access costs: lane 0's claim (18 counter reads and a compare-and-swap, atomics served by
# L2 at about a quarter of a DRAM round trip each: about 5), a lane's mark and slot, and its append
# (reserve, write, fence, mark): about 2
STAGE_LIST_ROUND_TRIPS = 7


@numba.njit
def counted(offsets):
    """Every state element access so far (benchmarks/access_count.py's columns)."""
    total = 0
    for k in range(N_TABLES):
        total += offsets[0, N_TABLES + k]
    return total


def counting_scans():
    """kernels/lanes.py's loops, each adding to ``mail`` (the tracer passes the offsets array there) what
    a warp would share among its lanes: the accesses of each queue block's verdicts and the blocks (a
    block holds at most 29 lots: one round of 31 helpers, kernels/launch_warp.py), and the tools a tool
    scan reads and its rounds of 32, and the calendar's scans (each one round: a helper reads at most
    two of its 32 values, independent loads)."""
    arg_min, first_in_state, queue_block = make_lanes(device_jit(CPU))

    @device_jit(CPU)
    def counted_arg_min(values, start, count, mail):
        before = counted(mail)
        mail[0, IN_SCAN] = 1
        found = arg_min(values, start, count, mail)
        mail[0, IN_SCAN] = 0
        mail[0, SCANNED + 4] += counted(mail) - before
        mail[0, SCANNED + 5] += 1
        return found

    @device_jit(CPU)
    def counted_first_in_state(ti, start, count, state, mail):
        mail[0, IN_SCAN] = 1
        k = first_in_state(ti, start, count, state, mail)
        mail[0, IN_SCAN] = 0
        scanned = count if k < 0 else k + 1
        mail[0, SCANNED + 2] += scanned
        mail[0, SCANNED + 3] += (scanned + WARP - 1) // WARP
        return k

    @device_jit(CPU)
    def counted_queue_block(gi, si, sf, ti, li, lf, qb, step_wafers, g, t, now, rule, current, hold_setup,
                            top_priority, block, mail):
        before = counted(mail)
        mail[0, IN_SCAN] = 1
        verdict = queue_block(gi, si, sf, ti, li, lf, qb, step_wafers, g, t, now, rule, current, hold_setup,
                              top_priority, block, mail)
        mail[0, IN_SCAN] = 0
        mail[0, SCANNED] += counted(mail) - before
        mail[0, SCANNED + 1] += 1
        return verdict

    return Scans(counted_arg_min, counted_first_in_state, counted_queue_block)


def make_tracer(replication_at, stages):
    init_rep, take_next, handle_event, after_event = stages.init_rep, stages.take_next, stages.handle_event, stages.after_event

    @numba.njit(_nrt=False)
    def start_stage(offsets):
        """A thread starts a stage: its reads and lines counted afresh (benchmarks/access_count.py)."""
        offsets[0, STAGE] += 1
        offsets[0, STAGE_READS] = 0
        offsets[0, STAGE_LINES] = 0
        offsets[0, STAGE_SECTORS] = 0

    @numba.njit(_nrt=False)
    def stage_reads(offsets, trace, n, reads, lines, sectors):
        """Row ``n`` of ``trace`` gets the stage's reads and the distinct lines and sectors they read."""
        trace[n, reads] = offsets[0, STAGE_READS]
        trace[n, lines] = offsets[0, STAGE_LINES]
        trace[n, sectors] = offsets[0, STAGE_SECTORS]

    @numba.njit(_nrt=False)
    def start_event(offsets):
        """An event starts: its calendar scans, lane 0's reads and lines and its sectors counted afresh."""
        offsets[0, SCANNED + 4] = 0
        offsets[0, SCANNED + 5] = 0
        offsets[0, EVENT] += 1
        offsets[0, READS_ALONE] = 0
        offsets[0, LINES_ALONE] = 0
        offsets[0, SECTORS_ALONE] = 0
        offsets[0, EVENT_SECTORS] = 0
        for k in range(N_TABLES):
            offsets[0, TABLE_SECTORS + k] = 0
        start_stage(offsets)

    @numba.njit(_nrt=False)
    def trace_view(line, view, offsets, queues, rep_zero, mail, until, warmup, horizon, log_on, trace):
        """The stages take the view as an argument: numba's IR inlining (the CPU's ``inline_jit``) of
        the stages into the function that builds an offset view gave a different run (4,342 events in
        HVLM's first 2 days instead of 129,081); with the view passed in, as in ``advance_rep``, the
        run is the engine's. ``queues``: the group queues' plain array, which the trace reads uncounted."""
        after_event(line, view, mail, -1, 0.0, warmup, horizon)  # the events init_rep scheduled
        n = 0
        while n < trace.shape[0]:
            start_event(offsets)
            before = counted(offsets)
            now, code = take_next(line, view, rep_zero, mail, until, log_on)
            if code < 0:
                break
            taken = counted(offsets)
            trace[n, CALENDAR_ACCESSES] = offsets[0, SCANNED + 4]  # the take's own scans only: a handler's
            trace[n, CALENDAR_SCANS] = offsets[0, SCANNED + 5]  # rare cancellation stays in its accesses
            stage_reads(offsets, trace, n, TAKE_READS, TAKE_LINES, TAKE_SECTORS)
            start_stage(offsets)
            group = handle_event(line, view, rep_zero, mail, now, code, warmup, horizon, log_on)
            handled = counted(offsets)
            waiting = -1
            if group >= 0:  # the kind's kernel puts it on the dispatch list: the dispatch is a stage
                waiting = queues[group, Q_LEN]
                stage_reads(offsets, trace, n, HANDLE_READS, HANDLE_LINES, HANDLE_SECTORS)
                start_stage(offsets)
            for k in range(N_DISPATCH_SCANNED):
                offsets[0, SCANNED + k] = 0
            after_event(line, view, mail, group, now, warmup, horizon)
            done = counted(offsets)
            for k in range(N_DISPATCH_SCANNED):
                trace[n, QUEUE_ACCESSES + k] = offsets[0, SCANNED + k]
            trace[n, LEADER_READS] = offsets[0, READS_ALONE]
            trace[n, LEADER_LINES] = offsets[0, LINES_ALONE]
            trace[n, LEADER_SECTORS] = offsets[0, SECTORS_ALONE]
            trace[n, SECTORS_TOUCHED] = offsets[0, EVENT_SECTORS]
            for k in range(N_TABLES):
                trace[n, LEADER_TABLE_SECTORS + k] = offsets[0, TABLE_SECTORS + k]
            trace[n, GROUP] = group
            trace[n, WAITING] = waiting
            trace[n, KIND] = code & 15
            trace[n, MINUTE] = int(now)
            trace[n, TAKE] = taken - before
            if group >= 0:
                trace[n, TAKEN] = waiting - queues[group, Q_LEN]  # lots the dispatch started
                trace[n, HANDLE] = handled - taken
                trace[n, DISPATCH] = done - handled
                stage_reads(offsets, trace, n, DISPATCH_READS, DISPATCH_LINES, DISPATCH_SECTORS)
            else:  # the kind's kernel pushes its events itself
                trace[n, HANDLE] = done - taken
                trace[n, DISPATCH] = -1
                stage_reads(offsets, trace, n, HANDLE_READS, HANDLE_LINES, HANDLE_SECTORS)
            n += 1
        return n

    @numba.njit(_nrt=False)
    def trace_run(line, wip, state, offsets, rep_zero, mail, seed, until, warmup, horizon, log_on, trace):
        """Replication 0 through the wave's stages, one row of ``trace`` per event; returns the events.
        ``log_on`` 0: the run of any replication but 0, which alone writes the lot log and the hourly
        snapshots (an hourly snapshot reads every tool and queue: about 1,600 accesses)."""
        view = replication_at(state, offsets, 0)
        init_rep(line, wip, view, seed, 0, warmup, horizon)
        return trace_view(line, view, offsets, state.qi[0], rep_zero, mail, until, warmup, horizon, log_on, trace)

    return trace_run


def trace_events(compiled, days: float, seed: int = 1, log_on: int = 0, calendar: str = HEAP) -> np.ndarray:
    """``[events, N_COLUMNS]``: kind, take, handle and dispatch accesses, the minute, the lots a dispatch
    started, the group it dispatched, that group's queue before it, the dispatch's scans and the calendar's,
    the leader's reads, lines and sectors, the sectors touched, each stage's reads, lines and sectors and
    the leader's sectors by table, of each
    event of one replication (``log_on`` 1: replication 0's, which also logs), its calendar in ``calendar``
    form (kernels/calendar.py: the thread and stage launchers keep the heap, the warp launcher the
    blocked form; the events are the same)."""
    horizon = days * 1440.0
    state, rep_zero = fresh_state(compiled, 1, horizon)
    offsets = counting_offsets(state)
    # compiled as the CUDA kernels compile the stages: no inlining in numba's IR (the CPU's inline_jit
    # changes no access, and doubled this compile)
    stages = make_event_stages(device_jit(CPU), calendar, counting_scans())
    tracer = make_tracer(offset_views(counting=True), stages)
    trace = np.zeros((int(days * 80_000) + 10_000, N_COLUMNS), np.int64)  # HVLM: about 60 k events a day
    n = tracer(compiled.static_tables(), compiled.wip, state, offsets, rep_zero, offsets, np.uint64(seed),
               horizon, 0.0, horizon, log_on, trace)
    if n == trace.shape[0]:
        raise RuntimeError("the trace filled up before the horizon: more rows are needed")
    return trace[:n]


def warp_chain(dispatched: np.ndarray) -> np.ndarray:
    """Each dispatch's chain of accesses were a warp to run it (kernels/launch_warp.py's protocol): the
    leader's own accesses; for each queue block, the longest verdict of a helper and the leader's
    fold; for each round of a tool scan, one tool a lane and the combine."""
    return (dispatched[:, DISPATCH] - dispatched[:, QUEUE_ACCESSES] - dispatched[:, TOOLS_READ]
            + dispatched[:, QUEUE_BLOCKS] * (VERDICT_ACCESSES + 1) + dispatched[:, TOOL_ROUNDS] * 2)


def stage_samples(trace: np.ndarray, dispatch_by: str = "thread") -> dict:
    """``{stage: accesses of every call}``: take for every event, each kind's handler, dispatch.
    ``dispatch_by`` (:data:`DISPATCH_BY`): who runs a dispatch. "thread", the wavefront as built;
    "warp", every dispatch a warp's (stage ``dispatch_warp``, its chain :func:`warp_chain`); "split",
    a warp's when the group's queue holds more than one block (:data:`SPLIT_LOTS`), else a thread's."""
    out = {"take": trace[:, TAKE]}
    for kind, name in KIND_NAMES.items():
        out[name] = trace[trace[:, KIND] == kind, HANDLE]
    dispatched = trace[trace[:, DISPATCH] >= 0]
    to_warp = {"thread": np.zeros(len(dispatched), bool), "warp": np.ones(len(dispatched), bool),
               "split": dispatched[:, WAITING] > SPLIT_LOTS}[dispatch_by]
    out["dispatch"] = dispatched[~to_warp, DISPATCH]
    if dispatch_by != "thread":
        out["dispatch_warp"] = warp_chain(dispatched[to_warp])
    return out


def summarise(trace: np.ndarray) -> dict:
    events = trace.shape[0]
    rows = {}
    for name, calls in stage_samples(trace).items():
        rows[name] = {"calls_per_event": calls.size / events,
                      **({"mean": float(calls.mean()), "p99": float(np.percentile(calls, 99)),
                          "max": int(calls.max())} if calls.size else {})}
    dispatched = trace[trace[:, DISPATCH] >= 0]
    longest = dispatched[np.argsort(dispatched[:, DISPATCH])[-max(1, dispatched.shape[0] // 1000):]]
    rows["dispatch"]["lots_started_mean"] = float(dispatched[:, TAKEN].mean()) if dispatched.size else 0.0
    rows["dispatch"]["lots_started_longest_0.1%"] = float(longest[:, TAKEN].mean()) if dispatched.size else 0.0
    if dispatched.size:
        chains = warp_chain(dispatched)
        rows["dispatch"]["warp_chain"] = {"mean": float(chains.mean()), "p99": float(np.percentile(chains, 99)),
                                          "max": int(chains.max())}
        rows["dispatch"]["share_queue_over_one_block"] = float((dispatched[:, WAITING] > SPLIT_LOTS).mean())
    return {"events": events, "accesses_per_event": float(trace[:, TAKE:MINUTE].clip(0).sum() / events), "stages": rows}


def resident_threads(registers: int, block: int = 64) -> int:
    """Threads an SM holds by registers (allocated per warp in units of 256) and the 64-warp limit."""
    per_warp = -(-registers * 32 // 256) * 256
    warps = min(MAX_WARPS_PER_SM, REGISTERS_PER_SM // per_warp)
    return warps // (block // 32) * block


def wave_model(trace: np.ndarray, replicas: int, round_trips_per_access: float, dispatch_by: str = "thread") -> dict:
    """Microseconds of one wave over ``replicas`` replications, and events per second (a model). A
    warp's stage keeps one chain in flight per resident warp, a thread's one per resident thread."""
    events = trace.shape[0]
    rng = np.random.default_rng(0)
    total_us = 0.0
    per_stage = {}
    for name, calls in stage_samples(trace, dispatch_by).items():
        n = int(round(replicas * calls.size / events))
        if n == 0 or calls.size == 0:
            per_stage[name] = LAUNCH_US
            total_us += LAUNCH_US
            continue
        drawn = rng.choice(calls, size=n) * round_trips_per_access
        chain_us = drawn.max() * LATENCY_US  # the slowest replication of this stage
        if name == "dispatch_warp":
            in_flight = min(n, SMS * resident_threads(STAGE_REGISTERS[name], WARP) // WARP)
        else:
            in_flight = min(n, SMS * resident_threads(STAGE_REGISTERS[name]))
        issue_us = drawn.sum() / in_flight * LATENCY_US  # every resident thread (or warp) keeps one chain going
        per_stage[name] = LAUNCH_US + max(chain_us, issue_us)
        total_us += per_stage[name]
    total_us += 2 * LAUNCH_US  # clearing the counters; the stage order is fixed
    return {"replicas": replicas, "round_trips_per_access": round(round_trips_per_access, 3), "dispatch_by": dispatch_by,
            "wave_us": round(total_us, 1), "events_per_s": replicas / total_us * 1e6,
            "stage_us": {k: round(v, 1) for k, v in per_stage.items()}}


def stage_round_trips(trace: np.ndarray, round_trips_per_access: float | str) -> np.ndarray:
    """A float copy of ``trace`` whose TAKE, HANDLE and DISPATCH hold each stage's chain in round trips
    for a thread running it: its accesses times ``round_trips_per_access``, or with :data:`LINES` (or
    :data:`SECTORS`) a round trip for each distinct line (or sector) the stage reads and an L1 hit
    (:data:`L1_HIT_US`) for each of its other reads (its writes do not wait; a line read in an earlier
    stage counts as a miss again). DISPATCH stays -1 where the event does not dispatch."""
    out = trace.astype(np.float64)
    if round_trips_per_access in GRANULES:
        hit = L1_HIT_US / LATENCY_US
        misses = GRANULES[round_trips_per_access][1]
        for stage, reads in ((TAKE, TAKE_READS), (HANDLE, HANDLE_READS), (DISPATCH, DISPATCH_READS)):
            out[:, stage] = trace[:, misses[stage]] + hit * (trace[:, reads] - trace[:, misses[stage]])
    else:
        out[:, [TAKE, HANDLE, DISPATCH]] *= round_trips_per_access
    out[:, DISPATCH] = np.where(trace[:, DISPATCH] >= 0, out[:, DISPATCH], -1)
    return out


def cost_label(round_trips_per_access: float | str):
    """A model's cost of an access as its JSON records it."""
    return round_trips_per_access if round_trips_per_access in GRANULES else round(round_trips_per_access, 3)


def cost_text(model: dict) -> str:
    cost = model["round_trips_per_access"]
    return f"by {cost}" if cost in GRANULES else f"{cost:.2f} round trips an access"


def lockstep_model(trace: np.ndarray, replicas: int, round_trips_per_access: float | str) -> dict:
    """Events per second of the thread launcher as built (kernels/launch_cuda.py; a model).

    A warp's 32 lanes, each a replication, run ``advance_rep``'s loop together: in an iteration every
    lane takes an event, the lanes of each kind present run its handler, those that dispatch run the
    dispatch, and the lanes meet again after each (the branches reconverge). So an iteration lasts the
    slowest lane's take, plus the slowest lane of each kind present, plus the slowest dispatch. A lane
    that does not dispatch pushes its events in its handler's count here, one that does in its
    dispatch's: counted twice where both occur, so the model errs slow."""
    events = trace.shape[0]
    chains = stage_round_trips(trace, round_trips_per_access)
    rng = np.random.default_rng(0)
    rows = chains[rng.integers(0, events, size=(4_096, WARP))]
    iteration = rows[:, :, TAKE].max(axis=1)
    for kind in KIND_NAMES:
        iteration += np.where(rows[:, :, KIND] == kind, rows[:, :, HANDLE], 0).max(axis=1)
    iteration += np.where(rows[:, :, DISPATCH] >= 0, rows[:, :, DISPATCH], 0).max(axis=1)
    iteration_us = iteration.mean() * LATENCY_US
    warps = min(SMS * resident_threads(THREAD_REGISTERS) // WARP, -(-replicas // WARP))
    divergence = iteration.mean() / (chains[:, TAKE:MINUTE].clip(0).sum() / events)  # against one lane alone
    return {"replicas": replicas, "round_trips_per_access": cost_label(round_trips_per_access), "warps_in_work": warps,
            "divergence": round(float(divergence), 2), "events_per_s": warps * WARP / iteration_us * 1e6}


def take_chains_of_a_warp(trace: np.ndarray) -> np.ndarray:
    """Each take's chain were a warp to run it: the leader's own accesses, and for each of the calendar's
    scans (a trace of the blocked form) one load a lane and the combine, as a tool scan's round."""
    return trace[:, TAKE] - trace[:, CALENDAR_ACCESSES] + 2 * trace[:, CALENDAR_SCANS]


def event_chains_of_a_warp(trace: np.ndarray) -> np.ndarray:
    """Each event's chain of dependent accesses were a warp to run its replication alone: its
    :func:`take_chains_of_a_warp`, its handler (with the pushes, when it does not dispatch), and its
    dispatch's :func:`warp_chain`."""
    dispatched = trace[:, DISPATCH] >= 0
    return take_chains_of_a_warp(trace) + trace[:, HANDLE] + np.where(dispatched, warp_chain(trace), 0)


def event_round_trips_of_a_warp(trace: np.ndarray, granule: str = LINES) -> np.ndarray:
    """Each event's chain in DRAM round trips were a warp to run it, from the lines (or, ``granule``
    :data:`SECTORS`, the sectors) lane 0 reads: a read of a line it has not read in the event is a round
    trip, its other reads L1 hits (:data:`L1_HIT_US`), and its writes do not wait. A round of a shared
    scan (the calendar's, a tool scan's) is a round trip and its combine an L1 hit; a queue block is a
    verdict's :data:`VERDICT_MISSES` round trips (a depth: its loads of one row overlap), the rest of the
    verdict and lane 0's fold L1 hits. A line read in an earlier event counts as a miss again: the model
    leaves L1 and L2 hits across events out (the pessimistic side), and counts lane 0's misses one after
    another, though some of its loads do not depend on each other (pessimistic too)."""
    hit = L1_HIT_US / LATENCY_US
    misses, reads = trace[:, GRANULES[granule][0]], trace[:, LEADER_READS]
    rounds = trace[:, CALENDAR_SCANS] + trace[:, TOOL_ROUNDS]
    blocks = trace[:, QUEUE_BLOCKS]
    return (misses + hit * (reads - misses) + rounds * (1 + hit)
            + blocks * (VERDICT_MISSES + hit * (VERDICT_ACCESSES + 1 - VERDICT_MISSES)))


def leader_sectors_by_table(trace: np.ndarray) -> dict:
    """``{state table: lane 0's distinct sectors of it an event}``, most first: where :data:`LEADER_SECTORS` go."""
    means = trace[:, LEADER_TABLE_SECTORS:LEADER_TABLE_SECTORS + N_TABLES].mean(axis=0)
    return {STATE_FIELDS[k]: round(float(means[k]), 3) for k in np.argsort(-means)}


def warp_launcher_model(trace: np.ndarray, replicas: int, round_trips_per_access: float | str) -> dict:
    """Events per second of a warp per replication (kernels/launch_warp.py, as built; a model).

    Lane 0 runs the model and the other lanes share the dispatch's queue and tool scans, so an event
    lasts :func:`event_chains_of_a_warp` times ``round_trips_per_access`` (or, with :data:`LINES` or
    :data:`SECTORS`, :func:`event_round_trips_of_a_warp`): no lanes of other replications to wait for and no barrier.
    Every resident warp keeps its replication's chain going; a replication beyond them waits for a warp
    to end. ``trace``: a trace of the blocked calendar, the launcher's (:func:`trace_events`), whose
    scans the lanes share; a heap trace gives the heap's take."""
    if round_trips_per_access in GRANULES:
        chain = event_round_trips_of_a_warp(trace, round_trips_per_access).mean()
    else:
        chain = event_chains_of_a_warp(trace).mean() * round_trips_per_access
    warps = min(replicas, SMS * resident_threads(WARP_LAUNCHER_REGISTERS, WARP) // WARP)
    return {"replicas": replicas, "round_trips_per_access": cost_label(round_trips_per_access), "warps": warps,
            "chain_per_event": round(float(chain), 1), "events_per_s": warps / (chain * LATENCY_US) * 1e6}


def bandwidth_ceiling(trace: np.ndarray) -> float:
    """Events per second were the GPU's memory bandwidth the only bound: each event moves the sectors it
    touches (:data:`SECTORS_TOUCHED`; each once, as though none stayed in a cache across events)."""
    return BANDWIDTH_TB_S * 1e12 / (trace[:, SECTORS_TOUCHED].mean() * 32)


def persistent_model(trace: np.ndarray, replicas: int, round_trips_per_access: float | str, warps: int | None = None,
                     events_per_replica: int = 12, seed: int = 0) -> dict:
    """Events per second of persistent warps with no barrier between waves (kernels/launch_persistent.py; a model).

    Each replication waits in the list of the stage it is at (take, its event's kind, dispatch). A
    free warp takes up to 32 replications from the longest list, runs that stage for them (each lane
    one, so the lanes run the same code) and, when its slowest lane is done, puts each in the list of
    its next stage. A batch costs the longest chain of its lanes plus :data:`STAGE_LIST_ROUND_TRIPS`.
    The schedule is simulated: replications draw their events from the trace, ``warps`` (default: as
    many as kernels/launch_persistent.py launches, or as the replications fill)
    take work as they come free, and the rate is counted over ``events_per_replica`` events a
    replication after two of warm-up. A replication in a lane is not in a list, so with as many
    replications as resident lanes the lists run short and batches are partial: the simulation shows
    what that costs."""
    import heapq
    from collections import deque

    events = trace.shape[0]
    rng = np.random.default_rng(seed)
    chains = stage_round_trips(trace, round_trips_per_access)
    stage_of_kind = {kind: 1 + k for k, kind in enumerate(KIND_NAMES)}
    kind_stage = np.array([stage_of_kind.get(int(k), 1) for k in trace[:, KIND]])
    take, handle, dispatch = chains[:, TAKE], chains[:, HANDLE], chains[:, DISPATCH]
    dispatch_stage = 1 + len(KIND_NAMES)
    if warps is None:
        warps = min(SMS * PERSISTENT_WARPS_PER_SM, -(-replicas // WARP))
    draws = iter(rng.integers(0, events, size=replicas * (events_per_replica + 4)))
    row = np.zeros(replicas, np.int64)
    lists = [deque() for _ in range(dispatch_stage + 1)]
    lists[0].extend(range(replicas))
    running, idle = [], list(range(warps))
    done, start_at, start_done = 0, None, 2 * replicas
    now, batches, lanes = 0.0, 0, 0

    def start_batches(now):
        nonlocal batches, lanes
        while idle:
            stage = max(range(len(lists)), key=lambda k: len(lists[k]))
            if not lists[stage]:
                return
            batch = [lists[stage].popleft() for _ in range(min(WARP, len(lists[stage])))]
            if stage == 0:
                for r in batch:
                    row[r] = next(draws)
                chain = take[row[batch]].max()
            elif stage == dispatch_stage:
                chain = dispatch[row[batch]].max()
            else:
                chain = handle[row[batch]].max()
            batch_us = (chain + STAGE_LIST_ROUND_TRIPS) * LATENCY_US
            heapq.heappush(running, (now + batch_us, idle.pop(), stage, batch))
            if start_at is not None:
                batches, lanes = batches + 1, lanes + len(batch)

    start_batches(now)
    while done < start_done + events_per_replica * replicas:
        now, warp, stage, batch = heapq.heappop(running)
        for r in batch:
            if stage == 0:
                lists[kind_stage[row[r]]].append(r)
            elif stage != dispatch_stage and dispatch[row[r]] >= 0:
                lists[dispatch_stage].append(r)
            else:
                lists[0].append(r)
                done += 1
        if start_at is None and done >= start_done:
            start_at, start_done = now, done
        idle.append(warp)
        start_batches(now)
    return {"replicas": replicas, "round_trips_per_access": cost_label(round_trips_per_access), "warps": warps,
            "lanes_per_batch": round(lanes / max(1, batches), 1), "events_per_s": (done - start_done) / (now - start_at) * 1e6}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.wave_trace", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=2.0, help="simulated days (default 2)")
    parser.add_argument("--smt2020-dir", default=os.environ.get("FABTWIN_SMT2020_DIR"),
                        help="folder holding HVLM/ (default: $FABTWIN_SMT2020_DIR)")
    parser.add_argument("--skip-days", type=float, default=1.0,
                        help="leave out the events of the first days: the initial WIP's dispatches at time 0 are "
                             "not a steady state (default 1)")
    parser.add_argument("--json", help="also write the counts and the model here")
    args = parser.parse_args(argv)
    if not args.smt2020_dir or not (Path(args.smt2020_dir) / "HVLM").is_dir():
        print(f"wave_trace: --smt2020-dir {args.smt2020_dir!r}: no HVLM/ folder there", file=sys.stderr)
        return 2
    if not 0 <= args.skip_days < args.days:
        print(f"wave_trace: --skip-days {args.skip_days}: must be >= 0 and below --days {args.days}", file=sys.stderr)
        return 2
    if not args.days > 0:
        print(f"wave_trace: --days {args.days}: must be > 0", file=sys.stderr)
        return 2
    if os.environ.get(PRIVATE_CACHE) is None:
        return in_private_cache("benchmarks.wave_trace", argv)
    from twin.compile import compile_line
    from twin.smt2020 import load_smt2020

    compiled = compile_line(load_smt2020({"loader": "smt2020", "dataset": "HVLM", "data_dir": args.smt2020_dir}))
    trace, blocked = (trace_events(compiled, args.days, calendar=form) for form in (HEAP, BLOCKED))
    trace = trace[trace[:, MINUTE] >= args.skip_days * 1440.0]
    blocked = blocked[blocked[:, MINUTE] >= args.skip_days * 1440.0]
    found = summarise(trace)
    print(f"SMT2020 HVLM, days {args.skip_days:g} to {args.days:g}, one replication: {found['events']:,} events, "
          f"{found['accesses_per_event']:.1f} state element accesses per event (measured)")
    print(f"  {'stage':14s} {'calls/event':>11s} {'mean':>7s} {'p99':>7s} {'max':>6s}")
    for name, row in found["stages"].items():
        print(f"  {name:14s} {row['calls_per_event']:11.3f} {row.get('mean', 0):7.1f} {row.get('p99', 0):7.0f} "
              f"{row.get('max', 0):6d}")
    d = found["stages"]["dispatch"]
    print(f"  a dispatch starts {d['lots_started_mean']:.2f} lots on average; the longest 0.1% start "
          f"{d['lots_started_longest_0.1%']:.1f}")
    w = d["warp_chain"]
    print(f"  were a warp to run each dispatch, its chain: mean {w['mean']:.1f}, p99 {w['p99']:.0f}, max {w['max']}; "
          f"{d['share_queue_over_one_block']:.1%} of dispatches find more than {SPLIT_LOTS} lots waiting")
    models = [wave_model(trace, n, k, by) for by in DISPATCH_BY for k in ROUND_TRIPS_PER_ACCESS
              for n in (1_000, 16_000, 67_584)]
    print(f"model, not a measurement (H200: {SMS} SMs, {LATENCY_US} us a round trip, {LAUNCH_US} us a launch):")
    for m in models:
        slowest = max(m["stage_us"], key=m["stage_us"].get)
        print(f"  dispatch by {m['dispatch_by']:6s} {m['replicas']:6d} replications, {m['round_trips_per_access']:.2f} "
              f"round trips an access: a wave {m['wave_us']:8.1f} us, {m['events_per_s'] / 1e6:7.1f} M events/s "
              f"(slowest stage {slowest}, {m['stage_us'][slowest]:.0f} us)")
    dispatched = trace[:, DISPATCH] >= 0
    rows = {"take": (slice(None), TAKE_READS, TAKE_LINES, TAKE_SECTORS),
            "handler": (slice(None), HANDLE_READS, HANDLE_LINES, HANDLE_SECTORS),
            "dispatch": (dispatched, DISPATCH_READS, DISPATCH_LINES, DISPATCH_SECTORS)}
    found["thread_reads_and_lines"] = {stage: {"reads": float(trace[which, reads].mean()),
                                               "lines": float(trace[which, lines].mean()),
                                               "sectors": float(trace[which, sectors].mean())}
                                       for stage, (which, reads, lines, sectors) in rows.items()}
    print("a thread's reads of a stage and the distinct 128-byte lines and 32-byte sectors they read (measured): "
          + ", ".join(f"{stage} {r['reads']:.1f} in {r['lines']:.1f} lines, {r['sectors']:.1f} sectors"
                      for stage, r in found["thread_reads_and_lines"].items()) + " (a dispatch's, where there is one)")
    lockstep = [lockstep_model(trace, n, k) for k in COSTS for n in (1_000, 16_000, 67_584)]
    print("model of the thread launcher (a warp's 32 lanes in lockstep; the same H200 parameters):")
    for m in lockstep:
        print(f"  {m['replicas']:6d} replications, {cost_text(m)}: "
              f"{m['warps_in_work']:5d} warps in work, {m['divergence']:.1f}x divergence, "
              f"{m['events_per_s'] / 1e6:7.1f} M events/s")
    persistent = [persistent_model(trace, n, k, warps) for k in COSTS
                  for n, warps in ((1_000, None), (16_000, None), (67_584, None), (67_584, 1_056), (67_584, 528))]
    print("model of persistent warps (no barrier between waves, the schedule simulated; the same H200 parameters):")
    for m in persistent:
        print(f"  {m['replicas']:6d} replications, {m['warps']:5d} warps, {cost_text(m)}: "
              f"{m['lanes_per_batch']:4.1f} lanes a batch, {m['events_per_s'] / 1e6:7.1f} M events/s")
    take = {"events": blocked.shape[0], "take_mean": float(blocked[:, TAKE].mean()),
            "scans_per_take": float(blocked[:, CALENDAR_SCANS].mean()),
            "scanned_per_take": float(blocked[:, CALENDAR_ACCESSES].mean()),
            "take_chain_of_a_warp": float(take_chains_of_a_warp(blocked).mean()),
            "event_chain_of_a_warp": float(event_chains_of_a_warp(blocked).mean()),
            "leader_reads_per_event": float(blocked[:, LEADER_READS].mean()),
            "leader_lines_per_event": float(blocked[:, LEADER_LINES].mean()),
            "leader_sectors_per_event": float(blocked[:, LEADER_SECTORS].mean()),
            "leader_sectors_by_table": leader_sectors_by_table(blocked),
            "event_round_trips_of_a_warp": float(event_round_trips_of_a_warp(blocked).mean()),
            "event_round_trips_of_a_warp_by_sectors": float(event_round_trips_of_a_warp(blocked, SECTORS).mean())}
    print(f"the blocked calendar (measured, the same days: {take['events']:,} events): a take makes "
          f"{take['take_mean']:.1f} accesses, {take['scanned_per_take']:.1f} of them in {take['scans_per_take']:.2f} "
          f"scans; a warp's chain: {take['take_chain_of_a_warp']:.1f} a take (the heap's: "
          f"{found['stages']['take']['mean']:.1f}), {take['event_chain_of_a_warp']:.1f} an event")
    print(f"  lane 0's reads of an event (measured): {take['leader_reads_per_event']:.1f}, in "
          f"{take['leader_lines_per_event']:.1f} distinct 128-byte lines and {take['leader_sectors_per_event']:.1f} "
          f"distinct 32-byte sectors; a warp's event is {take['event_round_trips_of_a_warp']:.1f} round trips by lines, "
          f"{take['event_round_trips_of_a_warp_by_sectors']:.1f} by sectors (model)")
    print("  of those sectors, each table's (measured): " + ", ".join(
        f"{name} {n:.2f}" for name, n in take["leader_sectors_by_table"].items() if n >= 0.05))
    sectors = {form: {"sectors_per_event": float(t[:, SECTORS_TOUCHED].mean()),
                      "bandwidth_ceiling_events_per_s": bandwidth_ceiling(t)}
               for form, t in ((HEAP, trace), (BLOCKED, blocked))}
    for form, found_form in sectors.items():
        print(f"  {form} calendar: an event touches {found_form['sectors_per_event']:.1f} distinct 32-byte sectors "
              f"(measured); at {BANDWIDTH_TB_S} TB/s, {found_form['bandwidth_ceiling_events_per_s'] / 1e9:.2f} G "
              f"events/s were bandwidth the bound (model)")
    warp = [warp_launcher_model(blocked, n, k) for k in COSTS
            for n in (1_000, 16_000, 67_584)]
    events_per_day = found["events"] / (args.days - args.skip_days)
    print("model of a warp per replication (the warp launcher as built, its blocked calendar; the same H200 "
          "parameters):")
    for m in warp:
        goal = f"; 1,000 x 730 days: {1_000 * 730 * events_per_day / m['events_per_s']:,.0f} s" \
            if m["replicas"] == 1_000 else ""
        print(f"  {m['replicas']:6d} replications, {cost_text(m)}: "
              f"{m['warps']:5d} warps, {m['chain_per_event']:.0f} round trips an event, "
              f"{m['events_per_s'] / 1e6:7.1f} M events/s{goal}")
    if args.json:
        Path(args.json).write_text(json.dumps({"measured": found, "events_per_day": events_per_day, "model": models,
                                               "lockstep_model": lockstep, "persistent_model": persistent,
                                               "blocked_calendar": take, "sectors": sectors,
                                               "warp_launcher_model": warp}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
