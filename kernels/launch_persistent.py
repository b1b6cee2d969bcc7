"""CUDA launcher with persistent warps: a warp runs one stage of an event for up to 32 replications
that are at that stage, and no replication waits for the others between its events.

The wavefront (kernels/launch_wave.py) runs each stage of an event as a kernel over every replication,
so a wave lasts as long as the slowest replication of the GPU at each stage: HVLM's longest dispatch
holds up tens of thousands of replications (docs/ARCHITECTURE.md, "The wavefront"). Here one kernel
of resident warps loops until every replication's segment has ended. Each replication waits in the
list of the stage it is at: ``take`` (the calendar's next event), one list per event kind (its
handler), ``dispatch``. A free warp claims up to :data:`LANES` replications from the longest list,
runs that stage for them, a lane each (so the lanes run the same code), and each lane appends its
replication to the list of its next stage. A batch waits only for its own slowest lane.

The stages are :class:`kernels.engine.EventStages`' functions, the ones ``advance_rep`` calls in its
loop, so the model is written once and each replication sees its events in the same order: a run is
the other launchers' run, event for event (tests/test_engine_persistent.py). What is new lies below
the model: the lists and the loop that claims from them.

**The lists.** Each is a ring of ``R`` slots. The slots from the oldest claimed but unread one to
the newest reserved hold distinct replications, none of them the one being appended, so they span
fewer than ``R`` and no slot is written again before it is read. Appending reserves a slot with an atomic on the list's tail, writes the replication, and then
marks the slot with its number plus one; a warp claims slots by a compare-and-swap on the list's head,
and each lane waits for its slot's mark before it reads it. The mark is written after a fence, and
read (by an atomic, which no cache keeps) before one, so the lane that takes a replication sees the
state the last stage left, whichever SM ran it: the release and acquire of CUDA's memory model (PTX
ISA, "Memory Consistency Model"). Whether a GPU keeps it, only the device check can say
(benchmarks/gpu_check.py compares every event count with the CPU's).

**Progress.** A lane that reserved a slot marks it without waiting for anything, so a waiting lane
always sees its mark come. A warp that claims nothing claims again; every warp ends when no
replication's segment goes on. Should the lists lose a replication on some device, no wait is
endless: a lane gives up a mark after :data:`SPIN_LIMIT` reads, a warp after :data:`IDLE_LIMIT`
claims in a row that found every list empty (a warp holding work never is), and the host, finding a
segment unfinished after the kernel, raises instead of returning a run. Under numba's CUDA simulator, which runs the blocks one after the
other, the first block does all the work and the others find it done; a block there is
:data:`LANES` = 4 threads (Python threads), on a GPU one warp, so ``syncthreads`` is the warp's
barrier on both.
"""
from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
from numba import cuda, float64, int64

from kernels import launch_cuda
from kernels.lanes import WARP
from kernels.layout import ERR_ROW_WIDTH, N_EVENT_KINDS, R_ERROR
from kernels.target import CUDA, device_jit, keyed_cache_dir

keyed_cache_dir()

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
LANES = 4 if SIMULATOR else WARP  # threads of a block: one warp on a GPU
TAKE = 0  # the take list; event kind k's list is 1 + k
DISPATCH = N_EVENT_KINDS + 1
N_STAGES = N_EVENT_KINDS + 2
WARPS_PER_SM = 16  # resident at the 128-register bound (tests/test_cuda_report.py); more would only wait
SIMULATED_WARPS = 2  # blocks under the simulator: the second finds the work done
SPIN_LIMIT = 1 << 24  # reads of a slot's mark before a lane gives it up (a mark comes within microseconds)
# claims in a row that find every list empty before a warp ends: seconds on a GPU; under the simulator a
# block finds a list empty only when the work is done or lost
IDLE_LIMIT = 1 << 10 if SIMULATOR else 1 << 20


class PersistentWork(NamedTuple):
    """The launcher's own arrays for one chunk (not model state: every replication is at rest between
    two launches, so checkpoints and growth never see them)."""

    now: np.ndarray  # [R] float64: the time of the event the replication took
    code: np.ndarray  # [R] int64: that event's code
    group: np.ndarray  # [R] int64: the group its handler named for dispatch
    items: np.ndarray  # [N_STAGES, R] int64: each list's ring of replications
    marks: np.ndarray  # [N_STAGES, R] int64: a slot's number plus one, once it holds its replication
    heads: np.ndarray  # [N_STAGES] int64: slots claimed
    tails: np.ndarray  # [N_STAGES] int64: slots reserved
    remaining: np.ndarray  # [1] int64: replications whose segment goes on


_stages = launch_cuda.STAGES  # typed once with the thread launcher's kernels
_take_next, _handle_event, _after_event, _end_segment = (_stages.take_next, _stages.handle_event,
                                                          _stages.after_event, _stages.end_segment)
_has_layout_widths = launch_cuda.has_layout_widths
_replication_at = launch_cuda.replication_at


@device_jit(CUDA)
def _load(array, index):
    """An atomic read: a spinning lane sees other warps' writes, and no cache of an SM keeps it."""
    return cuda.atomic.add(array, index, 0)


@device_jit(CUDA)
def _append(work, stage, r):
    slot = cuda.atomic.add(work.tails, stage, 1)
    k = slot % work.items.shape[1]
    cuda.atomic.exch(work.items, (stage, k), r)
    cuda.threadfence()  # release: the replication's state and the slot before the mark
    cuda.atomic.exch(work.marks, (stage, k), slot + 1)


@device_jit(CUDA)
def _take_slot(work, stage, slot):
    """The replication in ``slot``, once its mark is there (-1: it never came)."""
    k = slot % work.items.shape[1]
    spins = 0
    while _load(work.marks, (stage, k)) != slot + 1:
        spins += 1
        if spins > SPIN_LIMIT:
            return -1
    cuda.threadfence()  # acquire: what the appending lane wrote before its mark
    return _load(work.items, (stage, k))


@device_jit(CUDA)
def _claim(work, claim, idle):
    """Lane 0: ``claim`` = (stage, first slot, slots) from the longest list, (stage, 0, 0) when the
    claim found nothing, or (-1, 0, 0) when every segment has ended (or ``idle``, the claims in a row
    that found every list empty, passed :data:`IDLE_LIMIT`). Returns the new ``idle``."""
    claim[1] = 0
    claim[2] = 0
    if _load(work.remaining, 0) == 0 or idle > IDLE_LIMIT:
        claim[0] = -1
        return idle
    best, most = 0, 0
    for stage in range(N_STAGES):
        waiting = _load(work.tails, stage) - _load(work.heads, stage)
        if waiting > most:
            best, most = stage, waiting
    claim[0] = best
    if most <= 0:
        return idle + 1
    head = _load(work.heads, best)
    count = min(LANES, _load(work.tails, best) - head)
    if count > 0 and cuda.atomic.cas(work.heads, best, head, head + count) == head:
        claim[1] = head
        claim[2] = count
    return 0


@device_jit(CUDA)
def _run_stage(line, state, rep_zero, offsets, work, mail, stage, r, rep0, until, warmup, horizon):
    """One stage of replication ``r``'s event, then ``r`` into the list of its next stage."""
    view = _replication_at(state, offsets, r)
    log_on = 1 if rep0 + r == 0 else 0
    if stage == TAKE:
        now, code = _take_next(line, view, rep_zero, mail, until, log_on)
        if code < 0:
            _end_segment(view, rep_zero, until, log_on)
            cuda.threadfence()
            cuda.atomic.add(work.remaining, 0, -1)
            return
        work.now[r] = now
        work.code[r] = code
        _append(work, 1 + (code & 15), r)
    elif stage == DISPATCH:
        _after_event(line, view, mail, work.group[r], work.now[r], warmup, horizon)
        _append(work, TAKE, r)
    else:
        now = work.now[r]
        group = _handle_event(line, view, rep_zero, mail, now, work.code[r], warmup, horizon, log_on)
        if group >= 0:
            work.group[r] = group
            _append(work, DISPATCH, r)
        else:
            _after_event(line, view, mail, -1, now, warmup, horizon)  # no group: the calendar's out-box
            _append(work, TAKE, r)


@cuda.jit(cache=True)
def _reset_kernel(work, n):
    k = cuda.grid(1)
    if k < work.marks.size:
        work.marks[k // n, k % n] = 0
    if k < N_STAGES:
        work.heads[k] = 0
        work.tails[k] = 0
    if k == 0:
        work.remaining[0] = n


@cuda.jit(cache=True)
def _start_kernel(line, state, rep_zero, offsets, work):
    """Every replication into the take list, after the layout check and the push of the events
    init_rep scheduled."""
    r = cuda.grid(1)
    if r < work.now.shape[0]:
        view = _replication_at(state, offsets, r)
        if not _has_layout_widths(line, view, rep_zero):
            view.rep_i[R_ERROR] = ERR_ROW_WIDTH
            cuda.atomic.add(work.remaining, 0, -1)
            return
        mail = cuda.local.array(1, float64)  # one thread's scans exchange nothing
        _after_event(line, view, mail, -1, 0.0, 0.0, 0.0)
        _append(work, TAKE, r)


@cuda.jit(cache=True)
def _persistent_kernel(line, state, rep_zero, offsets, work, rep0, until, warmup, horizon):
    lane = cuda.threadIdx.x
    claim = cuda.shared.array(3, int64)
    mail = cuda.local.array(1, float64)
    idle = 0
    while True:
        if lane == 0:
            idle = _claim(work, claim, idle)
        cuda.syncthreads()  # the claim is in
        stage, first, count = claim[0], claim[1], claim[2]
        cuda.syncthreads()  # every lane has read it before lane 0 claims again
        if stage < 0:
            return
        if lane < count:
            r = _take_slot(work, stage, first + lane)
            if r >= 0:
                _run_stage(line, state, rep_zero, offsets, work, mail, stage, r, rep0, until, warmup, horizon)


def stage_kernels() -> list:
    """Every kernel a launch runs, in order (the device check reads their resources)."""
    return [_reset_kernel, _start_kernel, _persistent_kernel]


_WORK: dict = {}


def chunk_work(n: int) -> PersistentWork:
    """The lists and per-replication fields for a chunk of ``n`` replications, allocated once per size."""
    return launch_cuda.kept(_WORK, n, lambda: PersistentWork(
        cuda.device_array(n, np.float64), cuda.device_array(n, np.int64), cuda.device_array(n, np.int64),
        cuda.device_array((N_STAGES, n), np.int64), cuda.device_array((N_STAGES, n), np.int64),
        cuda.device_array(N_STAGES, np.int64), cuda.device_array(N_STAGES, np.int64), cuda.device_array(1, np.int64)))


def resident_warps(n: int) -> int:
    """Blocks of one warp to launch: as many as the SMs hold at the register bound, or as the
    replications fill."""
    if SIMULATOR:
        return max(1, min(SIMULATED_WARPS, -(-n // LANES)))
    return max(1, min(WARPS_PER_SM * cuda.get_current_device().MULTIPROCESSOR_COUNT, -(-n // LANES)))


def advance_all(line, state, rep_zero, rep0, until, warmup, horizon):
    n = state.rng.shape[0]
    offsets, work = launch_cuda.device_offsets(state), chunk_work(n)
    _reset_kernel[launch_cuda.small_blocks(N_STAGES * n)](work, n)
    _start_kernel[launch_cuda.small_blocks(n)](line, state, rep_zero, offsets, work)
    _persistent_kernel[resident_warps(n), LANES](line, state, rep_zero, offsets, work, rep0, until, warmup, horizon)
    unfinished = int(work.remaining.copy_to_host()[0])
    if unfinished:
        raise RuntimeError(f"persistent warps ended with {unfinished} of {n} replications' segments unfinished: "
                           "the lists lost a replication on this device (kernels/launch_persistent.py); "
                           "use another CUDA launcher")


# Starting a replication, closing its statistics and the group sums are one stage each: the
# thread-per-replication kernels.
init_all, finalize_all, group_sums = launch_cuda.init_all, launch_cuda.finalize_all, launch_cuda.group_sums
