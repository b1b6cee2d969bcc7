"""The fab-line engine: one replication's discrete-event simulation, written once.

``make_engine(jit)`` returns three device functions over one replication's
state views (the bundles of :mod:`kernels.state`) — ``init_rep``,
``advance_rep`` (process every event up to a time) and ``finalize_rep`` (close
time-weighted statistics at the horizon).  The launchers
(:mod:`kernels.launch_cpu`, :mod:`kernels.launch_cuda`, :mod:`kernels.launch_warp`) call them once per
replication, in a ``prange`` loop on the CPU or one CUDA thread (or warp) per replication;
:func:`make_event_stages` also gives the stages of one event, which :mod:`kernels.launch_wave` runs as
kernels of their own.

Event semantics (docs/ARCHITECTURE.md has the full list):

- a lot joins its tool group's queue (blocks of lot ids in arrival order, kernels/queues.py) on arrival; each
  standby tool takes the lot with the smallest dispatch key, tools in index
  order, or (``tool_choice: least_setup``) in order of the setup time that
  lot needs on them;
- a batch step serves lots of the same step together, in queue order, up to
  ``batch_max`` wafers; it starts once ``batch_min`` wafers wait or the oldest
  lot has waited ``batch_max_wait``;
- a setup happens at job start when the step's setup family differs from the
  tool's; ``min_run`` lots are served before a voluntary change;
- a failure interrupts setup or processing, which resumes after the repair
  with the time it had left (preemptive-resume); a failure due during PM
  happens when the PM ends; PM due on a busy tool waits for the job to end;
- on a watched group, condition grows with each job's wafers and is read by a
  noisy sensor after the job: reaching the life's failure level fails the tool
  there and then; a reading over the threshold, or a predicted failure within
  the lead time, asks for a PM like any other; PM and repair renew the tool;
- a move between steps takes the transport law of the (from, to) locations of
  the two steps' groups;
- statistics count only the window ``[warmup, horizon]``.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from kernels.calendar import HEAP, UNKNOWN, make_calendar
from kernels.condition import make_condition
from kernels.distributions import make_sampler
from kernels.lanes import make_lanes
from kernels.layout import *  # noqa: F401,F403  (column constants)
from kernels.queues import make_queues
from kernels.rng import LOT_INITIAL, LOT_RELEASED, TOOL_CONDITION, TOOL_FAILURE, TOOL_PM, make_rng, make_streams
from kernels.selection import make_selection

INF = math.inf
VER_MASK = 0x7FFFFFF


def make_engine(jit, calendar=HEAP, scans=None, inline=None):
    """``(init_rep, advance_rep, finalize_rep)`` of :func:`make_event_stages`."""
    stages = make_event_stages(jit, calendar, scans, inline)
    return stages.init_rep, stages.advance_rep, stages.finalize_rep


class EventStages(NamedTuple):
    """The engine's entry points, and the stages of one event that ``advance_rep`` runs in a loop
    (``take_next``, ``handle_event`` or one kind's handler, ``after_event``, then ``end_segment``):
    the wavefront launcher (kernels/launch_wave.py) runs each stage as a kernel of its own."""

    init_rep: object
    advance_rep: object
    finalize_rep: object
    take_next: object
    handle_event: object
    kind_handlers: tuple  # by event kind (EV_ codes); each takes (line, state, rep_zero, mail, ident, ver, now, warmup, horizon, log_on)
    after_event: object
    end_segment: object


def make_event_stages(jit, calendar=HEAP, scans=None, inline=None):
    """Compile the engine's device functions with ``jit`` (CPU or CUDA); ``calendar``: the event
    calendar's form (kernels/calendar.py; every form gives the same events in the same order);
    ``scans``: the scan primitives of the calendar, the tool scan and the queue scan (kernels/lanes.py's
    loops unless a launcher whose threads share the scans gives its own, kernels/launch_warp.py); ``inline``: the decorator of
    the per-event path (calendar, dispatch, rule key), inlined into its callers on the CPU
    (kernels.target.inline_jit; default ``jit``)."""
    inline = inline or jit
    seed_state, next_u64, uniform = make_rng(jit)
    seed_streams, seed_lot, tool_row, release_row, lot_row = make_streams(jit)
    sample, standard_normal = make_sampler(jit, uniform)
    advance_condition = make_condition(jit, standard_normal)
    may_use, bound_tool_down, queue_context, _, _ = make_selection(jit, inline)
    queue_clear, queue_push, queue_remove = make_queues(jit)

    # ------------------------------------------------------------------ event calendar (kernels/calendar.py)
    scans = scans or make_lanes(inline)
    first_in_state = scans.first_in_state  # the next standby tool of a group (kernels/lanes.py)
    queue_block = scans.queue_block  # a queue block's verdicts, folded (kernels/lanes.py)
    calendar_clear, calendar_first, calendar_take, calendar_put, calendar_flush, calendar_find = make_calendar(
        inline, calendar, scans)

    @jit
    def schedule(ht, hc, rep_i, t, kind, ident, ver):
        """Put event (``kind``, ``ident``, version ``ver``) in the calendar at time ``t``."""
        # explicit int64: the CUDA simulator follows NumPy's rules, where int32 << 36 overflows
        code = np.int64(kind) + (np.int64(ident) << 4) + ((np.int64(ver) & VER_MASK) << 36)
        calendar_put(ht, hc, rep_i, t, code)

    @jit
    def cancel_failure(ht, hc, rep_i, ti, t, mail):
        """Take tool ``t``'s pending calendar failure out (a wear-out repair re-arms the clock; left in,
        the stale event stayed until its time and long runs overflowed the calendar)."""
        calendar_flush(ht, hc, rep_i)
        code = np.int64(EV_FAIL) + (np.int64(t) << 4) + ((np.int64(ti[t, T_FAIL_VER]) & VER_MASK) << 36)
        slot = calendar_find(ht, hc, rep_i, code)
        if slot >= 0:
            calendar_take(ht, hc, rep_i, slot, UNKNOWN, UNKNOWN, mail)

    # ------------------------------------------------------------------ time-weighted statistics

    @jit
    def overlap(a, b, lo, hi):
        """Length of [a, b] inside the statistics window [lo, hi]."""
        if a < lo:
            a = lo
        if b > hi:
            b = hi
        return b - a if b > a else 0.0

    @jit
    def set_tool_state(ti, tf, qi, tool_group, t, new_state, now, warmup, horizon):
        old = ti[t, T_STATE]
        if old == STANDBY:  # standby with a cascaded lot still inside counts as busy (docs/smt2020.md)
            tf[t, TF_STANDBY_LOADED] += overlap(tf[t, TF_SINCE], min(now, tf[t, TF_INSIDE_UNTIL]), warmup, horizon)
        tf[t, TF_E10_0 + old] += overlap(tf[t, TF_SINCE], now, warmup, horizon)
        tf[t, TF_SINCE] = now
        g = tool_group[t]
        if old == STANDBY:
            qi[g, Q_IDLE] -= 1
        if new_state == STANDBY:
            qi[g, Q_IDLE] += 1
        ti[t, T_STATE] = new_state

    @jit
    def queue_area(qi, qf, g, now, warmup, horizon):
        qf[g, QF_AREA] += qi[g, Q_LEN] * overlap(qf[g, QF_SINCE], now, warmup, horizon)
        qf[g, QF_SINCE] = now

    @jit
    def wip_change(s_i, s_f, s, delta, now, warmup, horizon):
        s_f[s, SS_WIP_AREA] += s_i[s, S_WIP] * overlap(s_f[s, SS_WIP_SINCE], now, warmup, horizon)
        s_f[s, SS_WIP_SINCE] = now
        s_i[s, S_WIP] += delta

    # ------------------------------------------------------------------ queues (intrusive FIFO lists)

    @jit
    def count_priority(qi, g, priority, delta):
        if priority >= 1:
            qi[g, Q_HOT] += delta
        if priority >= 2:
            qi[g, Q_SUPER_HOT] += delta

    @jit
    def enqueue(rep_i, li, lf, qi, qf, qb, step_wafers, g, lot, now, warmup, horizon):
        queue_area(qi, qf, g, now, warmup, horizon)
        if not queue_push(rep_i, li, qi, qb, g, lot):
            return
        qi[g, Q_LEN] += 1
        count_priority(qi, g, li[lot, L_PRIORITY], 1)
        li[lot, L_STATUS] = QUEUED
        lf[lot, LF_ENTRY] = now
        step_wafers[li[lot, L_STEP]] += li[lot, L_WAFERS]

    @inline
    def dequeue(rep_i, li, lf, qi, qf, qb, step_wafers, g, lot, now, warmup, horizon):
        queue_area(qi, qf, g, now, warmup, horizon)
        queue_remove(rep_i, li, qi, qb, g, lot)
        qi[g, Q_LEN] -= 1
        count_priority(qi, g, li[lot, L_PRIORITY], -1)
        li[lot, L_STATUS] = IN_PROCESS
        step_wafers[li[lot, L_STEP]] -= li[lot, L_WAFERS]
        if now >= warmup:
            qf[g, QF_WAIT_SUM] += now - lf[lot, LF_ENTRY]
            qi[g, Q_WAIT_N] += 1

    # ------------------------------------------------------------------ lots

    @jit
    def alloc_lot(rep_i, li):
        lot = rep_i[R_FREE_HEAD]
        if lot < 0:
            rep_i[R_ERROR] = ERR_LOT_CAPACITY
            return -1
        rep_i[R_FREE_HEAD] = li[lot, L_NEXT]
        rep_i[R_LOTS_ALIVE] += 1
        return lot

    @jit
    def needs_lot_room(ri, rep_i, s_i, code):
        """The event ``code`` is a release that would find the lot table full: the replication pauses
        before it, so the host can grow the table and run on from the same event (kernels/growth.py)."""
        if (code & 15) != EV_RELEASE or rep_i[R_FREE_HEAD] >= 0:
            return False
        s = (code >> 4) & 0xFFFFFFFF
        return s_i[s, S_RELEASED] < ri[s, RI_MAX_LOTS]

    @jit
    def free_lot(rep_i, li, lot):
        li[lot, L_STATUS] = FREE
        li[lot, L_NEXT] = rep_i[R_FREE_HEAD]
        rep_i[R_FREE_HEAD] = lot
        rep_i[R_LOTS_ALIVE] -= 1

    @jit
    def sampled_step(si, sf, rng, step, last):
        """First step from ``step`` on that the lot really does (sampling); -1 past the end."""
        while step <= last:
            p = sf[step, SF_SAMPLING]
            if p >= 1.0 or uniform(rng) < p:
                return step
            step += 1
        return -1

    @jit
    def die_yield(defects, area, alpha):
        """Negative-binomial die yield; Poisson (exp) when alpha is infinite."""
        if alpha <= 0.0 or alpha > 1.0e12:
            return math.exp(-area * defects)
        return math.pow(1.0 + area * defects / alpha, -alpha)

    # ------------------------------------------------------------------ one big argument bundle
    # Device functions below take the replication's state in this fixed order:
    #   static line: gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport
    #   state:       rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, qb, step_wafers, step_defects,
    #                s_i, s_f, ct_hist, log
    #   scalars:     now, warmup, horizon, log_on

    @jit
    def complete_lot(gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport,
                     rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, qb, step_wafers, step_defects,
                     s_i, s_f, ct_hist, log, lot, now, warmup, horizon, log_on):
        s = li[lot, L_STREAM]
        wafers = li[lot, L_WAFERS]
        release = lf[lot, LF_RELEASE]
        defects = lf[lot, LF_DEFECTS]
        if now >= warmup:
            s_f[s, SS_DONE] += 1.0
            s_f[s, SS_WAFERS_DONE] += wafers
            s_f[s, SS_GOOD_DIES] += wafers * rf[s, RF_GROSS_DIES] * die_yield(defects, rf[s, RF_DIE_AREA], rf[s, RF_ALPHA])
            if release >= 0.0:
                ct = now - release
                s_f[s, SS_CT_N] += 1.0
                s_f[s, SS_CT_SUM] += ct
                s_f[s, SS_CT_SQ] += ct * ct
                if now <= lf[lot, LF_DUE]:
                    s_f[s, SS_ONTIME] += 1.0
                if release >= warmup:
                    s_f[s, SS_WINDOW_DONE] += 1.0
                b = int(ct / rf[s, RF_CT_BIN])
                if b >= ct_hist.shape[1]:
                    b = ct_hist.shape[1] - 1
                ct_hist[s, b] += 1.0
        if log_on != 0:
            k = rep_i[R_LOG_N]
            if k < log.shape[0]:
                log[k, LOG_STREAM] = s
                log[k, LOG_RELEASE] = release
                log[k, LOG_DONE] = now
                log[k, LOG_DUE] = lf[lot, LF_DUE]
                log[k, LOG_PRIORITY] = ri[s, RI_PRIORITY]
                log[k, LOG_WAFERS] = wafers
                log[k, LOG_DEFECTS] = defects
            rep_i[R_LOG_N] = k + 1
        s_i[s, S_DONE] += 1
        wip_change(s_i, s_f, s, -1, now, warmup, horizon)
        free_lot(rep_i, li, lot)

    @jit
    def new_lot(rep_i, li, lf, ri, rf, s_i, s_f, s, step, release, due, now, warmup, horizon):
        lot = alloc_lot(rep_i, li)
        if lot < 0:
            return -1
        li[lot, L_STREAM] = s
        li[lot, L_STEP] = step
        li[lot, L_WAFERS] = ri[s, RI_LOT_SIZE]
        li[lot, L_PRIORITY] = ri[s, RI_PRIORITY]
        for k in range(MAX_DED):
            li[lot, L_DED_TOOL0 + k] = -1
        li[lot, L_QT_ANCHOR] = -1
        li[lot, L_REWORKED] = 0
        li[lot, L_STATUS] = IN_TRANSIT
        lf[lot, LF_RELEASE] = release
        lf[lot, LF_DUE] = due
        lf[lot, LF_DEFECTS] = 0.0
        lf[lot, LF_QT_T] = 0.0
        wip_change(s_i, s_f, s, 1, now, warmup, horizon)
        return lot

    # ------------------------------------------------------------------ dispatching

    @inline
    def select_lot(gi, si, sf, ti, li, lf, qi, qb, step_wafers, g, t, now, mail):
        """Best waiting lot for standby tool ``t`` under its group's rule (-1 if none is eligible), and
        the earliest time a batch that is not ready yet may start anyway (INF if none; the caller
        arms the group's batch time-out: ``arm_batch_timeout``). Each block's verdicts are folded by
        the ``queue_block`` primitive (kernels/selection.py, kernels/lanes.py), the blocks here in order."""
        rule, current, hold_setup, top_priority = queue_context(gi, ti, qi, g, t)
        best = -1
        best_key = INF
        best_same = -1
        best_same_key = INF
        next_timeout = INF
        block = qi[g, Q_HEAD]  # kernels/queues.py: blocks of lot ids in arrival order, none empty
        while block >= 0:
            k, key, k_same, same_key, ready, stopped = queue_block(gi, si, sf, ti, li, lf, qb, step_wafers, g, t,
                                                                   now, rule, current, hold_setup, top_priority,
                                                                   block, mail)
            if key < best_key:
                best_key = key
                best = qb[block, k]
            if same_key < best_same_key:
                best_same_key = same_key
                best_same = qb[block, k_same]
            next_timeout = min(next_timeout, ready)
            if stopped:
                break
            block = qb[block, QB_NEXT]
        if hold_setup and (best_same >= 0 or gi[g, GI_STRICT_MIN_RUN] != 0):
            return best_same, next_timeout  # strict minimum run: the tool waits for a lot of its setup
        return best, next_timeout

    @jit
    def arm_batch_timeout(qf, ht, hc, rep_i, g, at):
        """Schedule group ``g``'s batch time-out at ``at`` unless an earlier one is pending."""
        if at < qf[g, QF_TIMEOUT_AT]:
            qf[g, QF_TIMEOUT_AT] = at
            schedule(ht, hc, rep_i, at, EV_BATCH_TIMEOUT, g, 0)

    @inline
    def begin_phase(gi, tool_group, ht, hc, rep_i, ti, tf, qi, t, state, duration, now, warmup, horizon):
        """Enter setup or processing for ``duration`` minutes; arm a busy-time failure if one falls inside."""
        set_tool_state(ti, tf, qi, tool_group, t, state, now, warmup, horizon)
        tf[t, TF_PHASE_END] = now + duration
        schedule(ht, hc, rep_i, now + duration, EV_ACTIVITY_END, t, ti[t, T_VER])
        if gi[tool_group[t], GI_FAIL_BASIS] == FAIL_BUSY:
            tf[t, TF_BUSY_START] = now
            if tf[t, TF_TTF_LEFT] < duration:
                ti[t, T_FAIL_VER] += 1
                schedule(ht, hc, rep_i, now + tf[t, TF_TTF_LEFT], EV_FAIL, t, ti[t, T_FAIL_VER])

    @jit
    def end_busy(gi, tool_group, ti, tf, t, now):
        """Charge busy time against a busy-basis failure clock."""
        if gi[tool_group[t], GI_FAIL_BASIS] == FAIL_BUSY:
            tf[t, TF_TTF_LEFT] -= now - tf[t, TF_BUSY_START]

    @jit
    def add_defects(si, li, lf, qf, step_defects, g, s, t, lot, density, now, warmup):
        """Killer defects of step ``s`` on tool ``t`` (density already scaled by its condition)."""
        w = li[lot, L_WAFERS]
        lf[lot, LF_DEFECTS] += density
        if now >= warmup:
            step_defects[s] += density * w
            qf[g, QF_DEFECT_WAFERS] += density * w
        if si[s, SI_DED_ANCHOR] != 0:
            li[lot, L_DED_TOOL0 + si[s, SI_DED_SLOT]] = t

    @inline
    def start_job(gi, gf, si, sf, setup_mat, ri, tool_group, rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, qb,
                  step_wafers, step_defects, s_f, g, t, pick, now, warmup, horizon):
        s = li[pick, L_STEP]
        tlots[t, 0] = pick
        n = 1
        wafers = li[pick, L_WAFERS]
        if si[s, SI_BMAX] > 0:
            # the batch's other lots in queue order, chosen before any leaves the queue (a removal moves
            # lot ids between blocks; the choice does not depend on the removals)
            block = qi[g, Q_HEAD]
            k = 0
            while block >= 0 and n < tlots.shape[1]:
                lot = qb[block, k]
                usable = may_use(si, li, s, lot, t) or bound_tool_down(gi, si, ti, li, g, s, lot)
                if (lot != pick and li[lot, L_STEP] == s and usable
                        and wafers + li[lot, L_WAFERS] <= si[s, SI_BMAX]):
                    tlots[t, n] = lot
                    n += 1
                    wafers += li[lot, L_WAFERS]
                k += 1
                if k == qb[block, QB_COUNT]:
                    block = qb[block, QB_NEXT]
                    k = 0
        for k in range(n):  # the pick first, then the batch's others in queue order
            dequeue(rep_i, li, lf, qi, qf, qb, step_wafers, g, tlots[t, k], now, warmup, horizon)
        for k in range(n):
            lot = tlots[t, k]
            anchor = si[s, SI_QT_FROM]
            if anchor >= 0 and li[lot, L_QT_ANCHOR] == anchor and now - lf[lot, LF_QT_T] > sf[s, SF_QT_LIMIT]:
                if now >= warmup:
                    s_f[li[lot, L_STREAM], SS_QT_VIOL] += 1.0
        ti[t, T_NLOTS] = n
        ti[t, T_STEP] = s
        family = si[s, SI_SETUP]
        setup_time = 0.0
        if family >= 0 and family != ti[t, T_SETUP]:
            row = ti[t, T_SETUP] if ti[t, T_SETUP] >= 0 else setup_mat.shape[0] - 1
            setup_time = setup_mat[row, family]
            ti[t, T_SETUP] = family
            ti[t, T_RUN] = 0
        ti[t, T_RUN] += n
        ti[t, T_JOB_WAFERS] = wafers
        process = sample(si[s, SI_TIME_KIND], sf[s, SF_T0], sf[s, SF_T1], sf[s, SF_T2],
                         rng[lot_row(tool_group.shape[0], ri.shape[0], pick)])
        for k in range(1, n):  # each lot of a batch draws too, so its later draws stay aligned across scenarios
            sample(si[s, SI_TIME_KIND], sf[s, SF_T0], sf[s, SF_T1], sf[s, SF_T2],
                   rng[lot_row(tool_group.shape[0], ri.shape[0], tlots[t, k])])
        if si[s, SI_PER] == PER_WAFER:
            process *= wafers
        tf[t, TF_PROC_PENDING] = gf[g, GF_LOAD] + process + gf[g, GF_UNLOAD]
        if sf[s, SF_CASCADE] > 0.0:
            # Cascading tool: each lot finishes after its full time, the tool is free after the interval.
            done_at = now + setup_time + tf[t, TF_PROC_PENDING]
            density = sf[s, SF_DEFECT] * (1.0 + tf[t, TF_COND])
            for k in range(n):
                lot = tlots[t, k]
                add_defects(si, li, lf, qf, step_defects, g, s, t, lot, density, now, warmup)
                schedule(ht, hc, rep_i, done_at, EV_LOT_DONE, lot, 0)
            per = wafers if si[s, SI_CASCADE_PER_WAFER] != 0 else n
            tf[t, TF_PROC_PENDING] = gf[g, GF_CASCADE_LOAD] + sf[s, SF_CASCADE] * per
            ti[t, T_NLOTS] = 0
        if setup_time > 0.0:
            begin_phase(gi, tool_group, ht, hc, rep_i, ti, tf, qi, t, SETUP, setup_time, now, warmup, horizon)
        else:
            begin_phase(gi, tool_group, ht, hc, rep_i, ti, tf, qi, t, PRODUCTIVE, tf[t, TF_PROC_PENDING], now, warmup, horizon)
        if sf[s, SF_CASCADE] > 0.0:  # after begin_phase closed the standby spell: this job's lots leave then
            tf[t, TF_INSIDE_UNTIL] = max(tf[t, TF_INSIDE_UNTIL], now + setup_time + gf[g, GF_LOAD] + process + gf[g, GF_UNLOAD])

    @jit
    def go_down(tool_group, rep_i, ht, hc, ti, tf, qi, t, state, duration, counter, now, warmup, horizon):
        """PM or repair: the tool is down ``duration`` minutes; stale activity ends are voided."""
        ti[t, T_VER] += 1
        set_tool_state(ti, tf, qi, tool_group, t, state, now, warmup, horizon)
        tf[t, TF_PHASE_END] = now + duration
        schedule(ht, hc, rep_i, now + duration, EV_ACTIVITY_END, t, ti[t, T_VER])
        if now >= warmup:
            ti[t, counter] += 1

    @jit
    def score_warning(gf, tf, qf, t, g, failed, now, warmup):
        """A life ends (failure, or PM start): match its warning, as the tool-level twin does. A failure
        within the window after the warning is a true warning; a warning older than the window is a
        false one; a PM inside the window pre-empts it (neither)."""
        window = gf[g, GF_WARN_WINDOW]
        if window <= 0.0:
            return  # no warnings on this group
        warned_at = tf[t, TF_WARN_T]
        tf[t, TF_WARN_T] = -1.0
        if warned_at < 0.0 or now < warmup:
            return
        lead = now - warned_at
        if failed and lead <= window:
            qf[g, QF_WARN_TRUE] += 1.0
            qf[g, QF_WARN_LEAD_SUM] += lead
            b = int(lead / window * N_LEAD_BINS)
            qf[g, QF_LEAD_H0 + min(max(b, 0), N_LEAD_BINS - 1)] += 1.0
        elif lead > window:
            qf[g, QF_WARN_FALSE] += 1.0
        else:
            qf[g, QF_WARN_PREEMPTED] += 1.0

    @jit
    def has_age_pm(pmi, g):
        for slot in range(MAX_PM):
            if pmi[g * MAX_PM + slot, PI_KIND] == PM_AGE:
                return True
        return False

    @jit
    def restart_age(pmi, pmf, rep_i, ht, hc, ti, tf, t, g, now):
        """The tool was renewed at ``now``: each age PM is due ``every`` from now (its slot's
        TF_PM_W holds the due time, so an earlier due event is recognised as stale)."""
        for slot in range(MAX_PM):
            row = g * MAX_PM + slot
            if pmi[row, PI_KIND] == PM_AGE:
                due = now + pmf[row, PF_EVERY]
                tf[t, TF_PM_W0 + slot] = due
                ti[t, T_PM_PENDING] &= ~(1 << slot)
                schedule(ht, hc, rep_i, due, EV_PM_DUE, t * MAX_PM + slot, 0)

    @jit
    def start_pm(gi, gf, pmi, pmf, tool_group, rng, rep_i, ht, hc, ti, tf, qi, qf, t, now, warmup, horizon):
        """Start the lowest pending PM: a calendar slot, else the condition-based one (CBM_SLOT)."""
        pending = ti[t, T_PM_PENDING]
        slot = 0
        while slot < CBM_SLOT and (pending >> slot) & 1 == 0:
            slot += 1
        ti[t, T_PM_PENDING] = pending & ~(1 << slot)
        g = tool_group[t]
        if has_age_pm(pmi, g):
            ti[t, T_FAIL_VER] += 1  # age replacement: the failure clock stops now and restarts new at the PM's end
        score_warning(gf, tf, qf, t, g, False, now, warmup)
        pm_rng = rng[tool_row(tool_group.shape[0], TOOL_PM, t)]
        if slot == CBM_SLOT:
            duration = sample(gi[g, GI_CBM_DUR_KIND], gf[g, GF_CBM_DUR0], gf[g, GF_CBM_DUR1], gf[g, GF_CBM_DUR2], pm_rng)
        else:
            row = g * MAX_PM + slot
            tf[t, TF_PM_W0 + slot] = 0.0
            duration = sample(pmi[row, PI_DUR_KIND], pmf[row, PF_DUR0], pmf[row, PF_DUR1], pmf[row, PF_DUR2], pm_rng)
        go_down(tool_group, rep_i, ht, hc, ti, tf, qi, t, SCHED_DOWN, duration, T_PMS, now, warmup, horizon)

    @jit
    def start_repair(gi, gf, tool_group, rng, rep_i, ht, hc, ti, tf, qi, qf, t, now, warmup, horizon):
        g = tool_group[t]
        score_warning(gf, tf, qf, t, g, True, now, warmup)
        duration = sample(gi[g, GI_REP_KIND], gf[g, GF_REP0], gf[g, GF_REP1], gf[g, GF_REP2],
                          rng[tool_row(tool_group.shape[0], TOOL_FAILURE, t)])
        go_down(tool_group, rep_i, ht, hc, ti, tf, qi, t, UNSCHED_DOWN, duration, T_FAILS, now, warmup, horizon)

    @jit
    def arm_failure(gi, gf, tool_group, rng, rep_i, ht, hc, ti, tf, t, now, first):
        """Draw the next time to failure (the first-occurrence law at t=0)."""
        g = tool_group[t]
        basis = gi[g, GI_FAIL_BASIS]
        if basis == FAIL_NONE:
            return
        fail_rng = rng[tool_row(tool_group.shape[0], TOOL_FAILURE, t)]
        if first:
            ttf = sample(gi[g, GI_FIRST_KIND], gf[g, GF_FIRST0], gf[g, GF_FIRST1], gf[g, GF_FIRST2], fail_rng)
        else:
            ttf = sample(gi[g, GI_TTF_KIND], gf[g, GF_TTF0], gf[g, GF_TTF1], gf[g, GF_TTF2], fail_rng)
        if basis == FAIL_CALENDAR:
            ti[t, T_FAIL_VER] += 1
            schedule(ht, hc, rep_i, now + ttf, EV_FAIL, t, ti[t, T_FAIL_VER])
        else:
            tf[t, TF_TTF_LEFT] = ttf

    # ------------------------------------------------------------------ tool condition and its maintenance

    @jit
    def renew_tool(gi, gf, rng, ti, tf, t, g, now):
        """PM or repair leaves the tool as good as new: condition 0, a fresh failure level, no readings."""
        tf[t, TF_COND] = 0.0
        if gi[g, GI_HEALTH] == 0:
            return
        level = INF
        if gi[g, GI_LEVEL_KIND] >= 0:
            level = sample(gi[g, GI_LEVEL_KIND], gf[g, GF_LEVEL0], gf[g, GF_LEVEL1], gf[g, GF_LEVEL2],
                           rng[tool_row(ti.shape[0], TOOL_CONDITION, t)])
        tf[t, TF_LEVEL] = level
        tf[t, TF_RENEW_T] = now
        tf[t, TF_RENEW_W] = 0.0
        tf[t, TF_FIT_N] = 0.0
        tf[t, TF_FIT_SW] = 0.0
        tf[t, TF_FIT_SWW] = 0.0
        tf[t, TF_FIT_SY] = 0.0
        tf[t, TF_FIT_SWY] = 0.0
        tf[t, TF_WARN_T] = -1.0

    @jit
    def predicted_minutes_left(gi, gf, tf, t, g, level, now):
        """Least-squares line through this life's readings, extrapolated to ``level``,
        turned into minutes at the tool's wafer rate since its renewal; INF without a rising fit."""
        n = tf[t, TF_FIT_N]
        w = tf[t, TF_RENEW_W]
        if n < gi[g, GI_CBM_MIN_READINGS] or w <= 0.0:
            return INF
        sw = tf[t, TF_FIT_SW]
        det = n * tf[t, TF_FIT_SWW] - sw * sw
        if det <= 0.0:
            return INF
        slope = (n * tf[t, TF_FIT_SWY] - sw * tf[t, TF_FIT_SY]) / det
        if slope <= 0.0:
            return INF
        fitted = (tf[t, TF_FIT_SY] - slope * sw) / n + slope * w
        wafers_left = (level - fitted) / slope
        if wafers_left <= 0.0:
            return 0.0
        return wafers_left * (now - tf[t, TF_RENEW_T]) / w

    @jit
    def after_wear(gi, gf, rng, ti, tf, t, g, wafers, now):
        """After a job: read the sensor, flag a condition-based or predictive PM, raise a failure
        warning; True if the tool failed (its condition reached this life's failure level)."""
        c = tf[t, TF_COND]
        w = tf[t, TF_RENEW_W] + wafers
        tf[t, TF_RENEW_W] = w
        reading = c
        if gf[g, GF_SENSOR_SD] > 0.0:
            reading += gf[g, GF_SENSOR_SD] * standard_normal(rng)
        tf[t, TF_FIT_N] += 1.0
        tf[t, TF_FIT_SW] += w
        tf[t, TF_FIT_SWW] += w * w
        tf[t, TF_FIT_SY] += reading
        tf[t, TF_FIT_SWY] += w * reading
        if c >= tf[t, TF_LEVEL]:
            return True
        policy = gi[g, GI_CBM_POLICY]
        if policy == CBM_CONDITION and reading >= gf[g, GF_CBM_THRESHOLD]:
            ti[t, T_PM_PENDING] |= 1 << CBM_SLOT
        elif policy == CBM_PREDICTIVE:
            if predicted_minutes_left(gi, gf, tf, t, g, gf[g, GF_CBM_TARGET], now) <= gf[g, GF_CBM_LEAD]:
                ti[t, T_PM_PENDING] |= 1 << CBM_SLOT
        if (gf[g, GF_WARN_WINDOW] > 0.0 and tf[t, TF_WARN_T] < 0.0
                and predicted_minutes_left(gi, gf, tf, t, g, gf[g, GF_WARN_LEVEL], now) <= gf[g, GF_WARN_HORIZON]):
            tf[t, TF_WARN_T] = now
        return False

    # ------------------------------------------------------------------ the big handlers

    @jit
    def change_minutes(si, setup_mat, ti, t, s):
        """Setup time tool ``t`` needs before step ``s``: 0 when it holds the step's family."""
        family = si[s, SI_SETUP]
        current = ti[t, T_SETUP]
        if family < 0 or family == current:
            return 0.0
        return setup_mat[current if current >= 0 else setup_mat.shape[0] - 1, family]

    @jit
    def dispatch_least_setup(gi, gf, si, sf, setup_mat, ri, tool_group, rng, rep_i, ht, hc, ti, tf, tlots, li, lf,
                             qi, qf, qb, step_wafers, step_defects, s_f, g, now, warmup, horizon, mail):
        """Idle tools start in order of the setup their choice needs: a tool needing none starts at
        once; otherwise the one with the shortest setup starts and the others choose again."""
        first = gi[g, GI_FIRST_TOOL]
        end = first + gi[g, GI_NTOOLS]
        while True:
            best_t = -1
            best_pick = -1
            best_time = INF
            started = False
            t = first
            while t < end:
                if qi[g, Q_LEN] == 0 or qi[g, Q_IDLE] == 0:
                    return
                offset = first_in_state(ti, t, end - t, STANDBY, mail)
                if offset < 0:
                    break
                t += offset
                pick, ready_at = select_lot(gi, si, sf, ti, li, lf, qi, qb, step_wafers, g, t, now, mail)
                arm_batch_timeout(qf, ht, hc, rep_i, g, ready_at)
                if pick < 0:
                    if gi[g, GI_DEDICATED] == 0 and gi[g, GI_STRICT_MIN_RUN] == 0:
                        return  # eligibility depends on the tool only through dedication or a strict min run
                    t += 1
                    continue
                minutes = change_minutes(si, setup_mat, ti, t, li[pick, L_STEP])
                if minutes <= 0.0:
                    start_job(gi, gf, si, sf, setup_mat, ri, tool_group, rng, rep_i, ht, hc, ti, tf, tlots, li, lf,
                              qi, qf, qb, step_wafers, step_defects, s_f, g, t, pick, now, warmup, horizon)
                    started = True
                elif not started and minutes < best_time:
                    best_t = t
                    best_pick = pick
                    best_time = minutes
                t += 1
            if not started:
                if best_t < 0:
                    return
                start_job(gi, gf, si, sf, setup_mat, ri, tool_group, rng, rep_i, ht, hc, ti, tf, tlots, li, lf,
                          qi, qf, qb, step_wafers, step_defects, s_f, g, best_t, best_pick, now, warmup, horizon)

    @jit
    def may_dispatch(qi, g):
        """True when group ``g`` has both a waiting lot and a standby tool. Checked before calling
        ``dispatch_group``: a call copies some 20 array structs, more than most events' work."""
        return qi[g, Q_LEN] > 0 and qi[g, Q_IDLE] > 0

    @inline
    def dispatch_group(gi, gf, si, sf, setup_mat, ri, tool_group, rng, rep_i, ht, hc, ti, tf, tlots, li, lf,
                       qi, qf, qb, step_wafers, step_defects, s_f, g, now, warmup, horizon, mail):
        """Standby tools of group ``g`` choose lots, in tool order, while lots and standby tools remain
        (the next standby tool is a scan the lanes of a warp share: ``first_in_state``)."""
        if gi[g, GI_TOOL_CHOICE] == CHOICE_LEAST_SETUP:
            dispatch_least_setup(gi, gf, si, sf, setup_mat, ri, tool_group, rng, rep_i, ht, hc, ti, tf, tlots, li, lf,
                                 qi, qf, qb, step_wafers, step_defects, s_f, g, now, warmup, horizon, mail)
            return
        t = gi[g, GI_FIRST_TOOL]
        end = t + gi[g, GI_NTOOLS]
        while t < end and qi[g, Q_LEN] > 0 and qi[g, Q_IDLE] > 0:
            offset = first_in_state(ti, t, end - t, STANDBY, mail)
            if offset < 0:
                return
            t += offset
            pick, ready_at = select_lot(gi, si, sf, ti, li, lf, qi, qb, step_wafers, g, t, now, mail)
            arm_batch_timeout(qf, ht, hc, rep_i, g, ready_at)
            if pick < 0 and gi[g, GI_DEDICATED] == 0 and gi[g, GI_STRICT_MIN_RUN] == 0:
                return  # eligibility depends on the tool only through dedication or a strict min run
            if pick >= 0:
                start_job(gi, gf, si, sf, setup_mat, ri, tool_group, rng, rep_i, ht, hc, ti, tf, tlots, li, lf,
                          qi, qf, qb, step_wafers, step_defects, s_f, g, t, pick, now, warmup, horizon)
            t += 1

    @jit
    def join_queue(si, rep_i, li, lf, qi, qf, qb, step_wafers, lot, now, warmup, horizon):
        """The lot joins the queue of its step's group; returns the group (the caller dispatches it)."""
        g = si[li[lot, L_STEP], SI_GROUP]
        enqueue(rep_i, li, lf, qi, qf, qb, step_wafers, g, lot, now, warmup, horizon)
        return g

    @inline
    def release_tool(gi, gf, pmi, pmf, tool_group, rng, rep_i, ht, hc, ti, tf, qi, qf, t, now, warmup, horizon):
        """A tool became available: pending PM first; True when its group should then dispatch."""
        set_tool_state(ti, tf, qi, tool_group, t, STANDBY, now, warmup, horizon)
        if ti[t, T_PM_PENDING] != 0:
            start_pm(gi, gf, pmi, pmf, tool_group, rng, rep_i, ht, hc, ti, tf, qi, qf, t, now, warmup, horizon)
            if gi[tool_group[t], GI_DED_RELEASE] == 0:
                return False
        return may_dispatch(qi, tool_group[t])

    @jit
    def release_lot(gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport,
                    rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, qb, step_wafers, step_defects,
                    s_i, s_f, ct_hist, log, s, now, warmup, horizon, log_on, mail):
        if s_i[s, S_RELEASED] >= ri[s, RI_MAX_LOTS]:
            return
        first = ri[s, RI_FIRST_STEP]
        lot = new_lot(rep_i, li, lf, ri, rf, s_i, s_f, s, first, now, now + rf[s, RF_DUE], now, warmup, horizon)
        if lot < 0:
            return
        own = lot_row(tool_group.shape[0], ri.shape[0], lot)
        seed_lot(rng, own, LOT_RELEASED, (np.int64(s) << 32) + s_i[s, S_RELEASED])
        step = sampled_step(si, sf, rng[own], first, si[first, SI_LAST])
        s_i[s, S_RELEASED] += 1
        if now >= warmup:
            s_f[s, SS_RELEASED] += 1.0
        if step < 0:
            complete_lot(gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport,
                         rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, qb, step_wafers, step_defects,
                         s_i, s_f, ct_hist, log, lot, now, warmup, horizon, log_on)
            return
        li[lot, L_STEP] = step
        g = join_queue(si, rep_i, li, lf, qi, qf, qb, step_wafers, lot, now, warmup, horizon)
        if may_dispatch(qi, g):
            dispatch_group(gi, gf, si, sf, setup_mat, ri, tool_group, rng, rep_i, ht, hc, ti, tf, tlots, li, lf,
                           qi, qf, qb, step_wafers, step_defects, s_f, g, now, warmup, horizon, mail)

    @jit
    def reworks(si, sf, li, rng, lot, s):
        """Draw the rework after step ``s``; a rework-once step the lot was reworked at draws no more."""
        p = sf[s, SF_REWORK_P]
        if p <= 0.0:
            return False
        bit = si[s, SI_REWORK_BIT]
        if bit >= 0 and (li[lot, L_REWORKED] >> bit) & 1 != 0:
            return False
        if uniform(rng) >= p:
            return False
        if bit >= 0:
            li[lot, L_REWORKED] |= 1 << bit
        return True

    @jit
    def leave_line(gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport,
                   rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, qb, step_wafers, step_defects,
                   s_i, s_f, ct_hist, log, lot, now, warmup, horizon, log_on, mail):
        """The lot finished its route: count it; a CONWIP stream releases the next lot."""
        stream = li[lot, L_STREAM]
        complete_lot(gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport,
                     rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, qb, step_wafers, step_defects,
                     s_i, s_f, ct_hist, log, lot, now, warmup, horizon, log_on)
        if ri[stream, RI_KIND] == REL_CONWIP:
            release_lot(gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport,
                        rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, qb, step_wafers, step_defects,
                        s_i, s_f, ct_hist, log, stream, now, warmup, horizon, log_on, mail)

    @inline
    def lot_done(si, sf, ri, tool_group, transport, rng, rep_i, ht, hc, li, lf, lot, now):
        """A lot's processing at its current step ended: start queue-time clocks, then rework
        loop-back or the next sampled step after a transport delay. True when the route is done
        (the caller then calls ``leave_line``: a call that passes every array, so only then)."""
        s = li[lot, L_STEP]
        if si[s, SI_QT_ANCHOR] != 0:
            li[lot, L_QT_ANCHOR] = s
            lf[lot, LF_QT_T] = now
        own = rng[lot_row(tool_group.shape[0], ri.shape[0], lot)]
        if reworks(si, sf, li, own, lot, s):
            nxt = si[s, SI_REWORK_TO]
        else:
            nxt = sampled_step(si, sf, own, s + 1, si[s, SI_LAST])
        if nxt < 0:
            return True
        li[lot, L_STEP] = nxt
        li[lot, L_STATUS] = IN_TRANSIT
        row = si[s, SI_MOVE_FROM] + si[nxt, SI_MOVE_TO]
        delay = sample(int(transport[row, 0]), transport[row, 1], transport[row, 2], transport[row, 3], own)
        schedule(ht, hc, rep_i, now + delay, EV_ARRIVE, lot, 0)
        return False

    @inline
    def wear_tool(gi, gf, pmi, pmf, rng, ti, tf, t, g, wafers, now):
        """After a job of ``wafers``: condition advances, a watched tool is read, wafer-count PMs arm.
        True when the tool wore out (it fails there and then)."""
        wear = rng[tool_row(ti.shape[0], TOOL_CONDITION, t)]
        tf[t, TF_COND] = advance_condition(tf[t, TF_COND], wafers, gf[g, GF_DRIFT], gf[g, GF_NOISE], wear)
        worn_out = False
        if gi[g, GI_HEALTH] != 0:
            worn_out = after_wear(gi, gf, wear, ti, tf, t, g, wafers, now)
        for slot in range(MAX_PM):
            row = g * MAX_PM + slot
            if pmi[row, PI_KIND] == PM_WAFERS:
                tf[t, TF_PM_W0 + slot] += wafers
                if tf[t, TF_PM_W0 + slot] >= pmf[row, PF_EVERY]:
                    ti[t, T_PM_PENDING] |= 1 << slot
        return worn_out

    @jit
    def on_activity_end(gi, gf, pmi, pmf, tool_group, rng, rep_i, ht, hc, ti, tf, qi, qf, t, now, warmup, horizon):
        """Setup, PM or repair ended (processing ends are handled in the event loop); True when the
        tool's group should dispatch."""
        state = ti[t, T_STATE]
        if state == SETUP:
            end_busy(gi, tool_group, ti, tf, t, now)
            begin_phase(gi, tool_group, ht, hc, rep_i, ti, tf, qi, t, PRODUCTIVE, tf[t, TF_PROC_PENDING], now, warmup, horizon)
        elif state == SCHED_DOWN:
            renew_tool(gi, gf, rng, ti, tf, t, tool_group[t], now)
            if ti[t, T_FAIL_PENDING] != 0:
                ti[t, T_FAIL_PENDING] = 0
                ti[t, T_INTERRUPTED] = -1
                start_repair(gi, gf, tool_group, rng, rep_i, ht, hc, ti, tf, qi, qf, t, now, warmup, horizon)
                return False
            if has_age_pm(pmi, tool_group[t]):
                arm_failure(gi, gf, tool_group, rng, rep_i, ht, hc, ti, tf, t, now, False)
                restart_age(pmi, pmf, rep_i, ht, hc, ti, tf, t, tool_group[t], now)
            return release_tool(gi, gf, pmi, pmf, tool_group, rng, rep_i, ht, hc, ti, tf, qi, qf, t, now, warmup, horizon)
        elif state == UNSCHED_DOWN:
            renew_tool(gi, gf, rng, ti, tf, t, tool_group[t], now)
            arm_failure(gi, gf, tool_group, rng, rep_i, ht, hc, ti, tf, t, now, False)
            if has_age_pm(pmi, tool_group[t]):
                restart_age(pmi, pmf, rep_i, ht, hc, ti, tf, t, tool_group[t], now)
            resumed = ti[t, T_INTERRUPTED]
            if resumed >= 0:
                ti[t, T_INTERRUPTED] = -1
                begin_phase(gi, tool_group, ht, hc, rep_i, ti, tf, qi, t, resumed, tf[t, TF_PHASE_LEFT], now, warmup, horizon)
                return False
            return release_tool(gi, gf, pmi, pmf, tool_group, rng, rep_i, ht, hc, ti, tf, qi, qf, t, now, warmup, horizon)
        return False

    @jit
    def on_fail(gi, gf, tool_group, rng, rep_i, ht, hc, ti, tf, qi, qf, t, now, warmup, horizon):
        state = ti[t, T_STATE]
        if state == UNSCHED_DOWN:
            return
        if state == SCHED_DOWN:
            ti[t, T_FAIL_PENDING] = 1
            return
        if state == SETUP or state == PRODUCTIVE:
            end_busy(gi, tool_group, ti, tf, t, now)
            ti[t, T_INTERRUPTED] = state
            tf[t, TF_PHASE_LEFT] = tf[t, TF_PHASE_END] - now
        else:
            ti[t, T_INTERRUPTED] = -1
        start_repair(gi, gf, tool_group, rng, rep_i, ht, hc, ti, tf, qi, qf, t, now, warmup, horizon)

    @jit
    def on_pm_due(gi, gf, pmi, pmf, tool_group, rng, rep_i, ht, hc, ti, tf, qi, qf, ident, now, warmup, horizon):
        """A PM fell due; True when the tool's group should dispatch (its lots bound to the tool may
        move to another under ``dedication: release_when_down``)."""
        t = ident // MAX_PM
        slot = ident - t * MAX_PM
        row = tool_group[t] * MAX_PM + slot
        if pmi[row, PI_KIND] == PM_AGE:
            if now != tf[t, TF_PM_W0 + slot]:
                return False  # stale: the tool was renewed since this due time was set
        else:
            schedule(ht, hc, rep_i, now + pmf[row, PF_EVERY], EV_PM_DUE, ident, 0)
        ti[t, T_PM_PENDING] |= 1 << slot
        if ti[t, T_STATE] == STANDBY:
            start_pm(gi, gf, pmi, pmf, tool_group, rng, rep_i, ht, hc, ti, tf, qi, qf, t, now, warmup, horizon)
            return gi[tool_group[t], GI_DED_RELEASE] != 0 and may_dispatch(qi, tool_group[t])
        return False

    # ------------------------------------------------------------------ snapshots (replication 0)

    @jit
    def record_snapshots(ti, qi, rep_i, snap_t, snap_tool, snap_queue, until, inclusive):
        """Record the snapshots due before ``until`` (and at it, if ``inclusive``): the state
        a snapshot shows at time t is the one after every event at t."""
        k = rep_i[R_SNAP_I]
        while k < snap_t.shape[0] and (snap_t[k] < until or (inclusive != 0 and snap_t[k] == until)):
            for t in range(snap_tool.shape[1]):
                snap_tool[k, t] = ti[t, T_STATE]
            for g in range(snap_queue.shape[1]):
                snap_queue[k, g] = qi[g, Q_LEN]
            k += 1
        rep_i[R_SNAP_I] = k

    # ------------------------------------------------------------------ entry points

    @jit
    def init_rep(line, wip, state, seed, rep, warmup, horizon):
        """Fresh replication ``rep`` (``state``: its views): empty fab, initial WIP queued at t=0,
        first events armed."""
        gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport = line
        rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, step_wafers, step_defects, s_i, s_f, ct_hist, qb = state
        seed_streams(rng, seed, rep, tool_group, gi, ri.shape[0])
        calendar_clear(ht, hc, rep_i)
        n_lots = li.shape[0]
        for lot in range(n_lots):
            li[lot, L_NEXT] = lot + 1 if lot + 1 < n_lots else -1
            li[lot, L_STATUS] = FREE
        rep_i[R_FREE_HEAD] = 0
        queue_clear(rep_i, qi, qb)
        for g in range(qi.shape[0]):
            qi[g, Q_IDLE] = gi[g, GI_NTOOLS]
            qf[g, QF_TIMEOUT_AT] = INF
        for t in range(ti.shape[0]):
            ti[t, T_STATE] = STANDBY
            ti[t, T_SETUP] = -1
            ti[t, T_INTERRUPTED] = -1
            arm_failure(gi, gf, tool_group, rng, rep_i, ht, hc, ti, tf, t, 0.0, True)
            g = tool_group[t]
            renew_tool(gi, gf, rng, ti, tf, t, g, 0.0)
            share = (t - gi[g, GI_FIRST_TOOL] + 1.0) / gi[g, GI_NTOOLS]  # tool k of n: first PM at (k+1)/n
            for slot in range(MAX_PM):
                row = g * MAX_PM + slot
                if pmi[row, PI_KIND] == PM_TIME or pmi[row, PI_KIND] == PM_AGE:
                    if pmi[row, PI_KIND] == PM_AGE:
                        tf[t, TF_PM_W0 + slot] = pmf[row, PF_FIRST] * share  # the due time of an age PM
                    schedule(ht, hc, rep_i, pmf[row, PF_FIRST] * share, EV_PM_DUE, t * MAX_PM + slot, 0)
                elif pmi[row, PI_KIND] == PM_WAFERS:
                    tf[t, TF_PM_W0 + slot] = pmf[row, PF_EVERY] - pmf[row, PF_FIRST] * share
        for s in range(ri.shape[0]):
            copies = ri[s, RI_WIP_CAP] if ri[s, RI_KIND] == REL_CONWIP else 1
            for _ in range(copies):
                schedule(ht, hc, rep_i, rf[s, RF_START], EV_RELEASE, s, 0)
        for w in range(wip.shape[0]):
            s = int(wip[w, W_STREAM])
            step = int(wip[w, W_STEP])
            due = wip[w, W_DUE]
            if math.isnan(due):  # no own due date: the share of the route still to run
                first = ri[s, RI_FIRST_STEP]
                due = rf[s, RF_DUE] * sf[step, SF_REMAIN] / max(sf[first, SF_REMAIN], 1e-9)
            lot = new_lot(rep_i, li, lf, ri, rf, s_i, s_f, s, step, -1.0, due, 0.0, warmup, horizon)
            if lot < 0:
                return
            seed_lot(rng, lot_row(tool_group.shape[0], ri.shape[0], lot), LOT_INITIAL, w)
            s_i[s, S_INITIAL] += 1
            schedule(ht, hc, rep_i, 0.0, EV_ARRIVE, lot, 0)

    @inline
    def take_next(line, state, rep_zero, mail, until, log_on):
        """Take the next event due by ``until`` from the calendar: ``(time, code)``, with code -1 when the
        segment ends before it (no event left, an error, past ``until``, or a release that must wait for
        lot room: ``ERR_LOT_ROOM``, the event left in the calendar, docs/ARCHITECTURE.md)."""
        rep_i, ht, hc = state.rep_i, state.ht, state.hc
        if rep_i[R_HEAP_N] == 0 or rep_i[R_ERROR] != 0:
            return 0.0, -1
        slot, block_low, super_low = calendar_first(ht, hc, mail)
        now = ht[slot]
        if now > until:
            return now, -1
        code = hc[slot]
        if needs_lot_room(line.ri, rep_i, state.s_i, code):
            rep_i[R_ERROR] = ERR_LOT_ROOM
            return now, -1
        calendar_take(ht, hc, rep_i, slot, block_low, super_low, mail)
        snap_t = rep_zero.snap_t
        if log_on != 0 and rep_i[R_SNAP_I] < snap_t.shape[0] and snap_t[rep_i[R_SNAP_I]] < now:
            record_snapshots(state.ti, state.qi, rep_i, snap_t, rep_zero.snap_tool, rep_zero.snap_queue, now, 0)
        rep_i[R_EVENTS] += 1
        return now, code

    # Each event kind's handler (one signature for all, so a launcher may run any of them) returns the
    # group that may start work after it (-1: none), which
    # dispatches at one call site (``after_event``): a call that passes every array costs more than most
    # handlers, so on the CPU they are inlined into the loop (``inline``), and on CUDA the wavefront
    # launcher (kernels/launch_wave.py) runs each kind in a kernel of its own.

    @inline
    def on_arrive_event(line, state, rep_zero, mail, ident, ver, now, warmup, horizon, log_on):
        return join_queue(line.si, state.rep_i, state.li, state.lf, state.qi, state.qf, state.qb, state.step_wafers,
                          ident, now, warmup, horizon)

    @inline
    def on_activity_end_event(line, state, rep_zero, mail, ident, ver, now, warmup, horizon, log_on):
        gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport = line
        rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, step_wafers, step_defects, s_i, s_f, ct_hist, qb = state
        if ver != (ti[ident, T_VER] & VER_MASK):
            return -1
        if ti[ident, T_STATE] != PRODUCTIVE:
            if on_activity_end(gi, gf, pmi, pmf, tool_group, rng, rep_i, ht, hc, ti, tf, qi, qf, ident, now,
                               warmup, horizon):
                return tool_group[ident]
            return -1
        # processing ended: lots move on, the tool wears, wafer-count PMs arm, it serves again
        t = ident
        end_busy(gi, tool_group, ti, tf, t, now)
        g = tool_group[t]
        s = ti[t, T_STEP]
        density = sf[s, SF_DEFECT] * (1.0 + tf[t, TF_COND])
        wafers = ti[t, T_JOB_WAFERS]
        n = ti[t, T_NLOTS]
        ti[t, T_NLOTS] = 0
        for k in range(n):
            lot = tlots[t, k]
            add_defects(si, li, lf, qf, step_defects, g, s, t, lot, density, now, warmup)
            if lot_done(si, sf, ri, tool_group, transport, rng, rep_i, ht, hc, li, lf, lot, now):
                leave_line(gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport,
                           rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, qb, step_wafers,
                           step_defects, s_i, s_f, ct_hist, rep_zero.log, lot, now, warmup, horizon, log_on, mail)
        if wear_tool(gi, gf, pmi, pmf, rng, ti, tf, t, g, wafers, now):
            ti[t, T_INTERRUPTED] = -1
            if gi[g, GI_FAIL_BASIS] == FAIL_CALENDAR:
                cancel_failure(ht, hc, rep_i, ti, t, mail)
            start_repair(gi, gf, tool_group, rng, rep_i, ht, hc, ti, tf, qi, qf, t, now, warmup, horizon)
        elif release_tool(gi, gf, pmi, pmf, tool_group, rng, rep_i, ht, hc, ti, tf, qi, qf, t, now, warmup, horizon):
            return g
        return -1

    @inline
    def on_fail_event(line, state, rep_zero, mail, ident, ver, now, warmup, horizon, log_on):
        gi, tool_group, ti = line.gi, line.tool_group, state.ti
        if ver != (ti[ident, T_FAIL_VER] & VER_MASK):
            return -1
        on_fail(gi, line.gf, tool_group, state.rng, state.rep_i, state.ht, state.hc, ti, state.tf, state.qi,
                state.qf, ident, now, warmup, horizon)
        return tool_group[ident] if gi[tool_group[ident], GI_DED_RELEASE] != 0 else -1

    @inline
    def on_release_event(line, state, rep_zero, mail, ident, ver, now, warmup, horizon, log_on):
        gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport = line
        rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, step_wafers, step_defects, s_i, s_f, ct_hist, qb = state
        release_lot(gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport,
                    rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, qb, step_wafers, step_defects,
                    s_i, s_f, ct_hist, rep_zero.log, ident, now, warmup, horizon, log_on, mail)
        if ri[ident, RI_KIND] != REL_CONWIP and s_i[ident, S_RELEASED] < ri[ident, RI_MAX_LOTS]:
            gap = rf[ident, RF_INTERVAL]
            if ri[ident, RI_KIND] == REL_POISSON:
                gap = -gap * math.log(uniform(rng[release_row(tool_group.shape[0], ident)]))
            schedule(ht, hc, rep_i, now + gap, EV_RELEASE, ident, 0)
        return -1

    @inline
    def on_pm_due_event(line, state, rep_zero, mail, ident, ver, now, warmup, horizon, log_on):
        if on_pm_due(line.gi, line.gf, line.pmi, line.pmf, line.tool_group, state.rng, state.rep_i, state.ht,
                     state.hc, state.ti, state.tf, state.qi, state.qf, ident, now, warmup, horizon):
            return line.tool_group[ident // MAX_PM]
        return -1

    @inline
    def on_lot_done_event(line, state, rep_zero, mail, ident, ver, now, warmup, horizon, log_on):
        gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport = line
        rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, step_wafers, step_defects, s_i, s_f, ct_hist, qb = state
        if lot_done(si, sf, ri, tool_group, transport, rng, rep_i, ht, hc, li, lf, ident, now):
            leave_line(gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport,
                       rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, qb, step_wafers, step_defects,
                       s_i, s_f, ct_hist, rep_zero.log, ident, now, warmup, horizon, log_on, mail)
        return -1

    @inline
    def on_batch_timeout_event(line, state, rep_zero, mail, ident, ver, now, warmup, horizon, log_on):
        qf = state.qf
        if qf[ident, QF_TIMEOUT_AT] <= now:
            qf[ident, QF_TIMEOUT_AT] = INF
        return ident

    @inline
    def handle_event(line, state, rep_zero, mail, now, code, warmup, horizon, log_on):
        """Run the handler of the event ``code`` at ``now``; returns the group that may dispatch (-1: none)."""
        kind = code & 15
        ident = (code >> 4) & 0xFFFFFFFF
        ver = code >> 36
        if kind == EV_ARRIVE:
            return on_arrive_event(line, state, rep_zero, mail, ident, ver, now, warmup, horizon, log_on)
        if kind == EV_ACTIVITY_END:
            return on_activity_end_event(line, state, rep_zero, mail, ident, ver, now, warmup, horizon, log_on)
        if kind == EV_FAIL:
            return on_fail_event(line, state, rep_zero, mail, ident, ver, now, warmup, horizon, log_on)
        if kind == EV_RELEASE:
            return on_release_event(line, state, rep_zero, mail, ident, ver, now, warmup, horizon, log_on)
        if kind == EV_PM_DUE:
            return on_pm_due_event(line, state, rep_zero, mail, ident, ver, now, warmup, horizon, log_on)
        if kind == EV_LOT_DONE:
            return on_lot_done_event(line, state, rep_zero, mail, ident, ver, now, warmup, horizon, log_on)
        if kind == EV_BATCH_TIMEOUT:
            return on_batch_timeout_event(line, state, rep_zero, mail, ident, ver, now, warmup, horizon, log_on)
        return -1

    @inline
    def after_event(line, state, mail, dispatch_g, now, warmup, horizon):
        """Dispatch the group an event's handler named, if a lot and a standby tool wait there, then push
        the events the event scheduled (the calendar's out-box)."""
        gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport = line
        rng, rep_i, ht, hc, ti, tf, tlots, li, lf, qi, qf, step_wafers, step_defects, s_i, s_f, ct_hist, qb = state
        if dispatch_g >= 0 and may_dispatch(qi, dispatch_g):
            dispatch_group(gi, gf, si, sf, setup_mat, ri, tool_group, rng, rep_i, ht, hc, ti, tf, tlots, li, lf,
                           qi, qf, qb, step_wafers, step_defects, s_f, dispatch_g, now, warmup, horizon, mail)
        calendar_flush(ht, hc, rep_i)

    @inline
    def end_segment(state, rep_zero, until, log_on):
        """Replication 0 records the snapshots due by ``until``, unless it paused before it for lot room."""
        if log_on != 0 and state.rep_i[R_ERROR] != ERR_LOT_ROOM:
            record_snapshots(state.ti, state.qi, state.rep_i, rep_zero.snap_t, rep_zero.snap_tool,
                             rep_zero.snap_queue, until, 1)

    @jit
    def advance_rep(line, state, rep_zero, mail, until, warmup, horizon, log_on):
        """Process every event with time <= ``until`` (the rest stays in the calendar), in time order
        (ties: docs/ARCHITECTURE.md, Event tie order); ``log_on``: this is replication 0, which
        writes ``rep_zero`` (lot log, snapshots); ``mail``: the calendar scans' exchange area."""
        calendar_flush(state.ht, state.hc, state.rep_i)  # the events init_rep scheduled
        while True:
            now, code = take_next(line, state, rep_zero, mail, until, log_on)
            if code < 0:
                break
            dispatch_g = handle_event(line, state, rep_zero, mail, now, code, warmup, horizon, log_on)
            after_event(line, state, mail, dispatch_g, now, warmup, horizon)
        end_segment(state, rep_zero, until, log_on)

    @jit
    def finalize_rep(state, warmup, horizon):
        """Close every time-weighted statistic at the horizon."""
        ti, tf, qi, qf, s_i, s_f = state.ti, state.tf, state.qi, state.qf, state.s_i, state.s_f
        for t in range(ti.shape[0]):
            state = ti[t, T_STATE]
            if state == STANDBY:
                tf[t, TF_STANDBY_LOADED] += overlap(tf[t, TF_SINCE], min(horizon, tf[t, TF_INSIDE_UNTIL]), warmup, horizon)
            tf[t, TF_E10_0 + state] += overlap(tf[t, TF_SINCE], horizon, warmup, horizon)
            tf[t, TF_SINCE] = horizon
        for g in range(qi.shape[0]):
            qf[g, QF_AREA] += qi[g, Q_LEN] * overlap(qf[g, QF_SINCE], horizon, warmup, horizon)
            qf[g, QF_SINCE] = horizon
        for s in range(s_i.shape[0]):
            s_f[s, SS_WIP_AREA] += s_i[s, S_WIP] * overlap(s_f[s, SS_WIP_SINCE], horizon, warmup, horizon)
            s_f[s, SS_WIP_SINCE] = horizon

    handlers = [None] * N_EVENT_KINDS  # by event kind (kernels/layout.py's EV_ codes)
    handlers[EV_RELEASE], handlers[EV_ARRIVE], handlers[EV_ACTIVITY_END] = on_release_event, on_arrive_event, on_activity_end_event
    handlers[EV_FAIL], handlers[EV_PM_DUE], handlers[EV_BATCH_TIMEOUT] = on_fail_event, on_pm_due_event, on_batch_timeout_event
    handlers[EV_LOT_DONE] = on_lot_done_event
    handlers = tuple(handlers)
    return EventStages(init_rep, advance_rep, finalize_rep, take_next, handle_event, handlers, after_event,
                       end_segment)
