"""Which waiting lot a standby tool takes: the per-lot verdict and its fold, written once.

``select_lot`` (kernels/engine.py) walks a group's queue block by block (kernels/queues.py). Each lot
gets a *verdict* that depends on that lot alone: its rule key (INF when the tool may not take it),
its key among lots that need no setup change, the time a batch not yet full may start anyway, and
whether the walk may stop after it. The verdicts are then *folded* in queue order: the smallest key
wins, the earliest lot among equal keys, and the fold ends at the first lot that stops it.

Because a verdict reads nothing another verdict writes, the lanes of a warp may compute a block's
verdicts together (kernels/launch_warp.py) while lane 0 folds them in order: the same answer as the
plain loop of kernels/lanes.py, which computes and folds one lot at a time.
"""
from __future__ import annotations

import math

from kernels.dispatch import RULE_IDS, make_rule_key
from kernels.layout import (GI_DED_RELEASE, GI_MIN_RUN, GI_RULE, L_DED_TOOL0, L_PRIORITY, L_STEP, LF_DUE,
                            LF_ENTRY, Q_HOT, Q_SUPER_HOT, SCHED_DOWN, SF_BWAIT, SF_MEAN, SF_REMAIN, SI_BMAX,
                            SI_BMIN, SI_DED_SLOT, SI_DEDICATE, SI_PRIORITY, SI_SETUP, T_RUN, T_SETUP, T_STATE,
                            UNSCHED_DOWN)

INF = math.inf
RULE_FIFO = RULE_IDS["fifo"]
RULE_HOT_LOT_SETUP = RULE_IDS["hot_lot_setup"]


def make_selection(jit, inline=None):
    """``(may_use, bound_tool_down, queue_context, lot_verdict, fold_verdict)``; ``inline`` decorates
    the per-lot path (default ``jit``)."""
    inline = inline or jit
    rule_key = make_rule_key(inline)

    @jit
    def may_use(si, li, s, lot, t):
        """False when step ``s`` is dedicated and the lot's chain already chose another tool."""
        if si[s, SI_DEDICATE] < 0:
            return True
        chosen = li[lot, L_DED_TOOL0 + si[s, SI_DED_SLOT]]
        return chosen < 0 or chosen == t

    @jit
    def bound_tool_down(gi, si, ti, li, g, s, lot):
        """True when the group releases dedication and the tool the lot is bound to at step ``s`` is down."""
        if gi[g, GI_DED_RELEASE] == 0 or si[s, SI_DEDICATE] < 0:
            return False
        chosen = li[lot, L_DED_TOOL0 + si[s, SI_DED_SLOT]]
        return chosen >= 0 and (ti[chosen, T_STATE] == SCHED_DOWN or ti[chosen, T_STATE] == UNSCHED_DOWN)

    @inline
    def queue_context(gi, ti, qi, g, t):
        """``(rule, current setup, hold_setup, top_priority)`` of standby tool ``t`` at group ``g``:
        hold_setup while the tool's minimum run is not done; top_priority, the queue's highest."""
        current = ti[t, T_SETUP]
        hold_setup = current >= 0 and ti[t, T_RUN] < gi[g, GI_MIN_RUN]
        top_priority = 2 if qi[g, Q_SUPER_HOT] > 0 else (1 if qi[g, Q_HOT] > 0 else 0)
        return gi[g, GI_RULE], current, hold_setup, top_priority

    @inline
    def lot_verdict(gi, si, sf, ti, li, lf, step_wafers, g, t, now, rule, current, hold_setup, top_priority,
                    lot):
        """``(key, same_key, ready_at, stop)`` of one waiting lot (the module docstring)."""
        s = li[lot, L_STEP]
        if not may_use(si, li, s, lot, t) and not bound_tool_down(gi, si, ti, li, g, s, lot):
            return INF, INF, INF, False
        if si[s, SI_BMAX] > 0 and step_wafers[s] < si[s, SI_BMIN]:
            ready_at = lf[lot, LF_ENTRY] + sf[s, SF_BWAIT]
            if ready_at > now:
                return INF, INF, ready_at, False
        family = si[s, SI_SETUP]
        needs_setup = 1 if (family >= 0 and family != current) else 0
        priority = li[lot, L_PRIORITY]
        key = rule_key(rule, now, lf[lot, LF_ENTRY], lf[lot, LF_DUE], priority,
                       sf[s, SF_MEAN], sf[s, SF_REMAIN], si[s, SI_PRIORITY], needs_setup)
        same_key = key if (family >= 0 and needs_setup == 0) else INF
        # the queue is in arrival order: under FIFO the first eligible lot is the choice; hot_lot_setup
        # ranks (priority, setup change, arrival), so its first lot of the top priority needing no change is
        stop = ((rule == RULE_FIFO and not hold_setup)
                or (rule == RULE_HOT_LOT_SETUP and needs_setup == 0 and priority == top_priority
                    and (family >= 0 or not hold_setup)))
        return key, same_key, INF, stop

    @inline
    def fold_verdict(best_k, best_key, same_k, same_key, ready, k, key, k_same_key, k_ready):
        """One lot's verdict folded into the block's so far: strict ``<``, so the earliest lot wins a tie."""
        if key < best_key:
            best_key = key
            best_k = k
        if k_same_key < same_key:
            same_key = k_same_key
            same_k = k
        return best_k, best_key, same_k, same_key, min(ready, k_ready)

    return may_use, bound_tool_down, queue_context, lot_verdict, fold_verdict
