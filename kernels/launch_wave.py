"""CUDA launchers as a wavefront: each stage of an event is a kernel of its own, run over the
replications that need it.

One thread per replication walks a chain of dependent loads, and the 32 threads of a warp diverge
wherever their events differ: in kind (an arrival and a job's end run different code) and in length.
The wavefront splits an event into the stages ``advance_rep`` runs in a loop (kernels/engine.py,
:class:`kernels.engine.EventStages`) and runs each stage for every replication at once. A wave
advances every running replication by one event:

1. ``take``: each running replication takes its next event (``take_next``) and adds itself to the
   list of that event's kind; one with no event due by ``until``, or paused for lot room, ends its
   segment (``end_segment``) and stops running;
2. one kernel per event kind, over that kind's list: the kind's handler. A replication whose handler
   named a group to dispatch adds itself to the dispatch list; the others push the events they
   scheduled (``after_event`` with no group);
3. ``dispatch``, over the dispatch list: ``after_event``.

So the threads of a warp run one kind's handler, and each kernel holds only its stage's code, which
ptxas allocates registers for on its own (benchmarks/cuda_report.py reports each). The model is
the engine's, written once: every stage is a function ``advance_rep`` calls, and each replication
sees its events in the same order, so a run equals the other launchers' event for event
(tests/test_engine_wave.py). What a wave costs on a GPU, and whether it beats a thread or a warp per
replication, only the device check measures (docs/ARCHITECTURE.md, "The wavefront").

The lists are built with atomics, so a kind's list holds its replications in no fixed order; no
replication reads another's state, so the order changes nothing. The host launches waves in batches
and reads one counter after each batch: the replications still running. A wave with nothing to do
costs its launches and an early return per thread.
"""
from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
from numba import cuda, float64

from kernels import launch_cuda
from kernels.layout import (ERR_ROW_WIDTH, EV_ACTIVITY_END, EV_ARRIVE, EV_BATCH_TIMEOUT, EV_FAIL, EV_LOT_DONE,
                            EV_PM_DUE, EV_RELEASE, N_EVENT_KINDS, R_ERROR)
from kernels.target import CUDA, device_jit, keyed_cache_dir

keyed_cache_dir()

THREADS_PER_BLOCK = 64
DISPATCH = N_EVENT_KINDS  # the dispatch list's row in ``lists`` and ``counts``
RUNNING = N_EVENT_KINDS + 1  # ``counts[RUNNING]``: replications that took an event this wave
WAVES_PER_CHECK = 64  # waves launched between two reads of ``counts[RUNNING]`` on a GPU


class WaveWork(NamedTuple):
    """The launcher's own arrays for one chunk (not model state: every replication is at rest between
    two launches, so checkpoints and growth never see them)."""

    running: np.ndarray  # [R] int32: 1 while the replication's segment goes on
    now: np.ndarray  # [R] float64: the time of the event it took this wave
    code: np.ndarray  # [R] int64: that event's code
    group: np.ndarray  # [R] int64: the group its handler named for dispatch (-1: none)
    lists: np.ndarray  # [N_EVENT_KINDS + 1, R] int32: the replications of each kind, then those to dispatch
    counts: np.ndarray  # [N_EVENT_KINDS + 2] int32: each list's length, then RUNNING


_stages = launch_cuda.STAGES  # typed once with the thread launcher's kernels
_has_layout_widths = launch_cuda.has_layout_widths


_replication_at = launch_cuda.replication_at
_take_next, _after_event, _end_segment = _stages.take_next, _stages.after_event, _stages.end_segment


@device_jit(CUDA)
def _log_on(rep0, r):
    return 1 if rep0 + r == 0 else 0


@cuda.jit(cache=True)
def _start_kernel(line, state, rep_zero, offsets, work):
    """Every replication runs, after the layout check; the events init_rep scheduled are pushed."""
    r = cuda.grid(1)
    if r < work.running.shape[0]:
        view = _replication_at(state, offsets, r)
        if not _has_layout_widths(line, view, rep_zero):
            view.rep_i[R_ERROR] = ERR_ROW_WIDTH
            work.running[r] = 0
            return
        mail = cuda.local.array(1, float64)  # one thread's scans exchange nothing
        _after_event(line, view, mail, -1, 0.0, 0.0, 0.0)  # no group: only the calendar's out-box
        work.running[r] = 1


@cuda.jit(cache=True)
def _clear_kernel(counts):
    k = cuda.grid(1)
    if k < counts.shape[0]:
        counts[k] = 0


@cuda.jit(cache=True)
def _take_kernel(line, state, rep_zero, offsets, work, rep0, until):
    r = cuda.grid(1)
    if r < work.running.shape[0] and work.running[r] != 0:
        view = _replication_at(state, offsets, r)
        mail = cuda.local.array(1, float64)
        now, code = _take_next(line, view, rep_zero, mail, until, _log_on(rep0, r))
        if code < 0:
            _end_segment(view, rep_zero, until, _log_on(rep0, r))
            work.running[r] = 0
            return
        work.now[r] = now
        work.code[r] = code
        kind = code & 15
        work.lists[kind, cuda.atomic.add(work.counts, kind, 1)] = r
        cuda.atomic.add(work.counts, RUNNING, 1)


def make_kind_stage(kind: int):
    """The device function of one event kind's kernel: that kind's handler over its list."""
    handler = _stages.kind_handlers[kind]

    @device_jit(CUDA)
    def kind_stage(line, state, rep_zero, offsets, work, rep0, warmup, horizon):
        k = cuda.grid(1)
        if k < work.counts[kind]:
            r = work.lists[kind, k]
            view = _replication_at(state, offsets, r)
            mail = cuda.local.array(1, float64)
            code = work.code[r]
            now = work.now[r]
            group = handler(line, view, rep_zero, mail, (code >> 4) & 0xFFFFFFFF, code >> 36, now, warmup, horizon,
                            _log_on(rep0, r))
            if group >= 0:
                work.group[r] = group
                work.lists[DISPATCH, cuda.atomic.add(work.counts, DISPATCH, 1)] = r
            else:
                _after_event(line, view, mail, -1, now, warmup, horizon)

    return kind_stage


# One kernel per kind, each compiled with its handler alone; written out so that each is cached on disk.
_release_stage, _arrive_stage, _end_stage, _fail_stage, _pm_stage, _timeout_stage, _lot_done_stage = (
    make_kind_stage(kind) for kind in (EV_RELEASE, EV_ARRIVE, EV_ACTIVITY_END, EV_FAIL, EV_PM_DUE,
                                       EV_BATCH_TIMEOUT, EV_LOT_DONE))


@cuda.jit(cache=True)
def _release_kernel(line, state, rep_zero, offsets, work, rep0, warmup, horizon):
    _release_stage(line, state, rep_zero, offsets, work, rep0, warmup, horizon)


@cuda.jit(cache=True)
def _arrive_kernel(line, state, rep_zero, offsets, work, rep0, warmup, horizon):
    _arrive_stage(line, state, rep_zero, offsets, work, rep0, warmup, horizon)


@cuda.jit(cache=True)
def _activity_end_kernel(line, state, rep_zero, offsets, work, rep0, warmup, horizon):
    _end_stage(line, state, rep_zero, offsets, work, rep0, warmup, horizon)


@cuda.jit(cache=True)
def _fail_kernel(line, state, rep_zero, offsets, work, rep0, warmup, horizon):
    _fail_stage(line, state, rep_zero, offsets, work, rep0, warmup, horizon)


@cuda.jit(cache=True)
def _pm_due_kernel(line, state, rep_zero, offsets, work, rep0, warmup, horizon):
    _pm_stage(line, state, rep_zero, offsets, work, rep0, warmup, horizon)


@cuda.jit(cache=True)
def _batch_timeout_kernel(line, state, rep_zero, offsets, work, rep0, warmup, horizon):
    _timeout_stage(line, state, rep_zero, offsets, work, rep0, warmup, horizon)


@cuda.jit(cache=True)
def _lot_done_kernel(line, state, rep_zero, offsets, work, rep0, warmup, horizon):
    _lot_done_stage(line, state, rep_zero, offsets, work, rep0, warmup, horizon)


KIND_KERNELS = {EV_RELEASE: _release_kernel, EV_ARRIVE: _arrive_kernel, EV_ACTIVITY_END: _activity_end_kernel,
                EV_FAIL: _fail_kernel, EV_PM_DUE: _pm_due_kernel, EV_BATCH_TIMEOUT: _batch_timeout_kernel,
                EV_LOT_DONE: _lot_done_kernel}


@cuda.jit(cache=True)
def _dispatch_kernel(line, state, rep_zero, offsets, work, warmup, horizon):
    k = cuda.grid(1)
    if k < work.counts[DISPATCH]:
        r = work.lists[DISPATCH, k]
        view = _replication_at(state, offsets, r)
        mail = cuda.local.array(1, float64)
        _after_event(line, view, mail, work.group[r], work.now[r], warmup, horizon)


def stage_kernels() -> list:
    """Every kernel a wave launches, in order (the device check reads their resources)."""
    return [_start_kernel, _clear_kernel, _take_kernel, *KIND_KERNELS.values(), _dispatch_kernel]


_WORK: dict = {}


def chunk_work(n: int) -> WaveWork:
    """The wave arrays for a chunk of ``n`` replications, allocated once per size."""
    return launch_cuda.kept(_WORK, n, lambda: WaveWork(
        cuda.device_array(n, np.int32), cuda.device_array(n, np.float64), cuda.device_array(n, np.int64),
        cuda.device_array(n, np.int64), cuda.device_array((N_EVENT_KINDS + 1, n), np.int32),
        cuda.to_device(np.zeros(N_EVENT_KINDS + 2, np.int32))))


def waves_per_check() -> int:
    """Under the simulator every wave runs as Python threads: read the counter after each one."""
    return 1 if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else WAVES_PER_CHECK


def advance_all(line, state, rep_zero, rep0, until, warmup, horizon):
    n = state.rng.shape[0]
    offsets, work, grid = launch_cuda.device_offsets(state), chunk_work(n), launch_cuda.small_blocks(n)
    _start_kernel[grid](line, state, rep_zero, offsets, work)
    while True:
        for _ in range(waves_per_check()):
            _clear_kernel[1, N_EVENT_KINDS + 2](work.counts)
            _take_kernel[grid](line, state, rep_zero, offsets, work, rep0, until)
            for kernel in KIND_KERNELS.values():
                kernel[grid](line, state, rep_zero, offsets, work, rep0, warmup, horizon)
            _dispatch_kernel[grid](line, state, rep_zero, offsets, work, warmup, horizon)
        if work.counts.copy_to_host()[RUNNING] == 0:
            break


# Starting a replication, closing its statistics and the group sums are one stage each: the
# thread-per-replication kernels.
init_all, finalize_all, group_sums = launch_cuda.init_all, launch_cuda.finalize_all, launch_cuda.group_sums
