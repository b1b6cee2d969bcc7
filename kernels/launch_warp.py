"""CUDA launchers with one warp per replication: lane 0 runs the model, the other lanes share its scans.

Lane 0 runs the engine (kernels/engine.py) with the blocked calendar (kernels/calendar.py) and is the
only thread that writes the replication's state. The other lanes wait in :func:`serve`. At a scan,
lane 0 writes the request to shared memory and meets them at a barrier; each helper scans its share
of the values (helper ``i`` of ``lanes - 1`` reads values ``i - 1``, ``i - 1 + lanes - 1``, ...: one
coalesced round for 31 values, a second load for one lane at 32); a second barrier hands lane 0 the
partial results, which it combines. A queue scan works the same way one queue block at a time: each
helper judges its lots of the block (kernels/selection.py's verdict: rule key, key without a setup
change, batch ready time, whether the walk may stop), and lane 0 folds the verdicts in queue order as
the plain loop does, so the choice is the loop's. Lane 0 scans nothing itself: without its own share, which was
inlined at every scan of the model, the advance kernel took 122 registers instead of 132 (offline
sm_90; 128 with the queue blocks and the shared queue scan), within the bound of tests/test_cuda_report.py. A minimum of floats is exact in
any order and an index is the lowest that matches, so each scan gives the plain loop's answer, and a
run gives the CPU's, event for event (the calendar's ``(time, code)`` order).

Why not every lane running the model: under numba's CUDA simulator, threads that all write the same
values still race on a read-modify-write (``rep_i[R_EVENTS] += 1`` by a thread one step ahead lands
between another's read and write), and CUDA's memory model promises no better on a GPU.

The barrier is the one primitive that differs by target: ``syncwarp`` on a GPU (threads may reach it
from different instructions on sm_70 and later; the leader and the helpers do), ``syncthreads`` under
the simulator, which has no ``syncwarp`` (a block holds one replication's lanes, so it is the same
barrier). ``lanes`` is a build parameter, a power of two from 2 (a leader needs a helper): 32 on a
GPU; tests under the simulator, which runs each thread as a Python thread, build 2 or 4.
"""
from __future__ import annotations

import math
import os

from numba import cuda, float64

from kernels.calendar import BLOCKED
from kernels.engine import make_engine
from kernels.lanes import MAIL_HEAD, MAIL_SIZE, WARP, Scans, make_arg_min_step
from kernels.layout import ERR_ROW_WIDTH, QB_COUNT, R_ERROR, T_STATE
from kernels.selection import make_selection
from kernels.state import make_layout_check
from kernels.target import CUDA, device_jit, keyed_cache_dir

keyed_cache_dir()

OP_STOP, OP_ARG_MIN, OP_TOOL, OP_QUEUE = range(4)
_BUILT: dict = {}


def build(lanes: int = WARP):
    """The launchers (``init_all``, ``advance_all``, ``finalize_all``, ``group_sums``) for ``lanes``."""
    if lanes < 2 or lanes > WARP or lanes & (lanes - 1):
        raise ValueError(f"lanes must be a power of two from 2 to {WARP} (lane 0 leads, the others scan), got {lanes}")
    if lanes not in _BUILT:
        _BUILT[lanes] = _Launchers(lanes)
    return _BUILT[lanes]


def cuda_launcher():
    """The 32-lane build (what a GPU runs; the resource report compiles it)."""
    return build(WARP)


def make_warp_scans(lanes: int, simulator: bool):
    """``(scans, serve, stop)``: kernels/lanes.py's :class:`~kernels.lanes.Scans` for lane 0, and
    ``serve(line, view, mail)``, ``stop(mail)`` for the protocol.

    ``mail`` (float64, :data:`kernels.lanes.MAIL_SIZE`) is a shared array the kernel allocates: the
    request (operation, start, count, target, time) and four rows of per-lane results. The calendar's
    scans read its times, the tool scan the state column of the tools, the queue scan a queue block
    and its lots' rows.
    """
    INF = math.inf
    mask = (1 << lanes) - 1
    PART = MAIL_HEAD  # first result row; row i starts at PART + i * WARP
    _, _, queue_context, lot_verdict, fold_verdict = make_selection(cuda.jit(device=True))
    arg_min_step = make_arg_min_step(cuda.jit(device=True))

    @cuda.jit(device=True)
    def barrier():
        if simulator:
            cuda.syncthreads()
        else:
            cuda.syncwarp(mask)

    @cuda.jit(device=True)
    def share_arg_min(values, start, count, lane, mail):
        """Helper ``lane`` (1 to ``lanes - 1``): kernels/lanes.py's ``arg_min`` of its share of
        ``values[start:start + count]``, offsets in the whole range (``count`` where it has none)."""
        low, first, matches, rest = INF, -1, 0, INF
        for k in range(lane - 1, count, lanes - 1):
            low, first, matches, rest = arg_min_step(low, first, matches, rest, values[start + k], k)
        if first < 0:
            first = count
        mail[PART + lane] = low
        mail[PART + WARP + lane] = first
        mail[PART + 2 * WARP + lane] = matches
        mail[PART + 3 * WARP + lane] = rest

    @cuda.jit(device=True)
    def share_tool(ti, start, count, state, lane, mail):
        """Rounds of ``lanes`` tools, every lane one tool, until a round finds one in ``state``: the
        first standby tool is usually among the first few, so a round ends the scan early. Every lane
        combines the same partials, so all take the same number of rounds (and barriers)."""
        found = count
        for base in range(0, count, lanes):
            k = base + lane
            mail[PART + lane] = k if k < count and ti[start + k, T_STATE] == state else count
            barrier()  # every lane's tool is in
            for other in range(lanes):
                found = min(found, int(mail[PART + other]))
            barrier()  # every lane has read the round before any writes the next
            if found < count:
                break
        return found

    @cuda.jit(device=True)
    def share_queue(line, view, block, g, t, now, lane, mail):
        """Helper ``lane``: the verdicts of its lots of queue block ``block`` (kernels/selection.py), one
        per position (a block holds at most 29 lots: one round for 31 helpers)."""
        rule, current, hold_setup, top_priority = queue_context(line.gi, view.ti, view.qi, g, t)
        for k in range(lane - 1, view.qb[block, QB_COUNT], lanes - 1):
            key, same_key, ready, stop = lot_verdict(line.gi, line.si, line.sf, view.ti, view.li, view.lf,
                                                     view.step_wafers, g, t, now, rule, current, hold_setup,
                                                     top_priority, view.qb[block, k])
            mail[PART + k] = key
            mail[PART + WARP + k] = same_key
            mail[PART + 2 * WARP + k] = ready
            mail[PART + 3 * WARP + k] = 1.0 if stop else 0.0

    @cuda.jit(device=True)
    def ask(op, start, count, target, mail):
        mail[0] = op
        mail[1] = start
        mail[2] = count
        mail[3] = target
        barrier()  # the request, and every write lane 0 made before it, is visible to the helpers

    @cuda.jit(device=True)
    def arg_min(values, start, count, mail):
        """Lane 0: the helpers read ``values`` (the argument keeps kernels/lanes.py's signature); the
        first place is the lowest of the helpers' at the minimum, and every value but the one there
        (a helper's other values, and the minimum of every other helper) is in ``rest``."""
        ask(OP_ARG_MIN, start, count, 0.0, mail)
        barrier()  # every helper's share is in
        low = INF
        first = count
        for lane in range(1, lanes):
            low = min(low, mail[PART + lane])
        matches = 0
        for lane in range(1, lanes):
            if mail[PART + lane] == low:
                first = min(first, int(mail[PART + WARP + lane]))
                matches += int(mail[PART + 2 * WARP + lane])
        rest = INF
        for lane in range(1, lanes):
            rest = min(rest, mail[PART + 3 * WARP + lane])
            if int(mail[PART + WARP + lane]) != first:
                rest = min(rest, mail[PART + lane])
        return low, first, matches, rest

    @cuda.jit(device=True)
    def first_in_state(ti, start, count, state, mail):
        ask(OP_TOOL, start, count, state, mail)
        found = share_tool(ti, start, count, state, 0, mail)
        return found if found < count else -1

    @cuda.jit(device=True)
    def queue_block(gi, si, sf, ti, li, lf, qb, step_wafers, g, t, now, rule, current, hold_setup, top_priority,
                    block, mail):
        """Lane 0: the helpers judge the block's lots (they read the context themselves), lane 0 folds
        the verdicts in queue order as kernels/lanes.py's loop does."""
        mail[4] = now
        ask(OP_QUEUE, block, g, t, mail)
        barrier()  # every verdict is in
        best_k, best_key, same_k, same_key, ready = -1, INF, -1, INF, INF
        for k in range(qb[block, QB_COUNT]):
            best_k, best_key, same_k, same_key, ready = fold_verdict(
                best_k, best_key, same_k, same_key, ready, k, mail[PART + k], mail[PART + WARP + k],
                mail[PART + 2 * WARP + k])
            if mail[PART + 3 * WARP + k] != 0.0:
                return best_k, best_key, same_k, same_key, ready, True
        return best_k, best_key, same_k, same_key, ready, False

    @cuda.jit(device=True)
    def serve(line, view, mail):
        """A helper lane: share each scan lane 0 asks for, until it says stop."""
        lane = cuda.threadIdx.x
        while True:
            barrier()
            op = int(mail[0])
            if op == OP_STOP:
                break
            start = int(mail[1])
            count = int(mail[2])
            if op == OP_TOOL:
                share_tool(view.ti, start, count, int(mail[3]), lane, mail)  # its barriers are its own
                continue
            if op == OP_ARG_MIN:
                share_arg_min(view.ht, start, count, lane, mail)
            else:
                share_queue(line, view, start, count, int(mail[3]), mail[4], lane, mail)
            barrier()

    @cuda.jit(device=True)
    def stop(mail):
        mail[0] = OP_STOP
        barrier()

    return Scans(arg_min, first_in_state, queue_block), serve, stop


class _Launchers:
    """Kernels built for one lane count (not cached on disk: they are closures over it)."""

    def __init__(self, lanes):
        from kernels import launch_cuda

        simulator = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
        scans, serve, stop = make_warp_scans(lanes, simulator)
        init_rep, advance_rep, _ = make_engine(device_jit(CUDA), BLOCKED, scans)
        replication_at = launch_cuda.make_launch_views()
        has_layout_widths = make_layout_check(device_jit(CUDA))

        @cuda.jit
        def init_kernel(line, wip, state, offsets, seed, rep0, warmup, horizon):
            r = cuda.blockIdx.x
            view = replication_at(state, offsets, r)
            mail = cuda.shared.array(MAIL_SIZE, float64)
            if cuda.threadIdx.x == 0:
                init_rep(line, wip, view, seed, rep0 + r, warmup, horizon)
                stop(mail)
            else:
                serve(line, view, mail)

        @cuda.jit
        def advance_kernel(line, state, rep_zero, offsets, rep0, until, warmup, horizon):
            r = cuda.blockIdx.x
            view = replication_at(state, offsets, r)
            mail = cuda.shared.array(MAIL_SIZE, float64)
            if not has_layout_widths(line, view, rep_zero):  # every lane returns (kernels/state.py)
                if cuda.threadIdx.x == 0:
                    view.rep_i[R_ERROR] = ERR_ROW_WIDTH
                return
            if cuda.threadIdx.x == 0:
                advance_rep(line, view, rep_zero, mail, until, warmup, horizon, 1 if rep0 + r == 0 else 0)
                stop(mail)
            else:
                serve(line, view, mail)

        def init_all(line, wip, state, seed, rep0, warmup, horizon):
            offsets = launch_cuda.device_offsets(state)
            init_kernel[state.rng.shape[0], lanes](line, wip, state, offsets, seed, rep0, warmup, horizon)

        def advance_all(line, state, rep_zero, rep0, until, warmup, horizon):
            offsets = launch_cuda.device_offsets(state)
            advance_kernel[state.rng.shape[0], lanes](line, state, rep_zero, offsets, rep0, until, warmup, horizon)

        self.init_all, self.advance_all = init_all, advance_all
        self.advance_kernel = advance_kernel  # the device check reads its resources
        # closing the statistics and the group sums touch no calendar: the thread-per-replication kernels
        self.finalize_all, self.group_sums = launch_cuda.finalize_all, launch_cuda.group_sums
