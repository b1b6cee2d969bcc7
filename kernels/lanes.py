"""Scans of contiguous values and of tools: the primitives below the model that may differ by target.

On the CPU, and on CUDA with one thread per replication, a primitive is a plain loop (lane width 1).
The warp launcher (kernels/launch_warp.py) gives its own, whose lanes share each scan; the model above
them (the calendar, the handlers, the statistics) stays written once. Both forms give the same results
exactly: a minimum of floats is exact in any order, and an index is the lowest one that matches.
"""
from __future__ import annotations

import math

from kernels.layout import QB_COUNT, T_STATE
from kernels.selection import make_selection

LANE_GROUP = 4  # scans run four independent minima, so a core is not held up by one chain of compares
WARP = 32
MAIL_HEAD = 8  # a warp's scan request (kernels/launch_warp.py)
MAIL_SIZE = MAIL_HEAD + 4 * WARP  # the request and four rows of per-lane results; unused here


def make_lanes(jit):
    """``(block_min, first_equal, first_in_state, queue_block)``:

    - ``block_min(values, start, count, mail)``: the minimum of ``values[start:start+count]`` (``count``
      a multiple of :data:`LANE_GROUP`);
    - ``first_equal(values, start, count, target, mail)``: ``(offset, matches)``, the offset of the first
      value equal to ``target`` and how many values equal it;
    - ``first_in_state(ti, start, count, state, mail)``: the offset of the first tool of
      ``start .. start+count-1`` whose state is ``state``, or -1 (dispatching finds standby tools so);
    - ``queue_block(gi, si, sf, ti, li, lf, qb, step_wafers, g, t, now, rule, current, hold_setup,
      top_priority, block, mail)``: the verdicts of queue block ``block``'s lots folded in order
      (kernels/selection.py): ``(best_k, best_key, same_k, same_key, ready_at, stopped)``.

    ``mail`` is where the lanes of a warp exchange a scan; a loop needs none.
    """

    @jit
    def block_min(values, start, count, mail):
        a = values[start]
        b = values[start + 1]
        c = values[start + 2]
        d = values[start + 3]
        for k in range(start + 4, start + count, 4):
            a = min(a, values[k])
            b = min(b, values[k + 1])
            c = min(c, values[k + 2])
            d = min(d, values[k + 3])
        return min(min(a, b), min(c, d))

    @jit
    def first_equal(values, start, count, target, mail):
        offset = -1
        matches = 0
        for k in range(count):
            if values[start + k] == target:
                if offset < 0:
                    offset = k
                matches += 1
        return offset, matches

    @jit
    def first_in_state(ti, start, count, state, mail):
        for k in range(count):
            if ti[start + k, T_STATE] == state:
                return k
        return -1

    _, _, _, lot_verdict, fold_verdict = make_selection(jit)
    INF = math.inf

    @jit
    def queue_block(gi, si, sf, ti, li, lf, qb, step_wafers, g, t, now, rule, current, hold_setup, top_priority,
                    block, mail):
        best_k, best_key, same_k, same_key, ready = -1, INF, -1, INF, INF
        for k in range(qb[block, QB_COUNT]):
            key, k_same_key, k_ready, stop = lot_verdict(gi, si, sf, ti, li, lf, step_wafers, g, t, now, rule,
                                                         current, hold_setup, top_priority, qb[block, k])
            best_k, best_key, same_k, same_key, ready = fold_verdict(best_k, best_key, same_k, same_key, ready,
                                                                     k, key, k_same_key, k_ready)
            if stop:
                return best_k, best_key, same_k, same_key, ready, True
        return best_k, best_key, same_k, same_key, ready, False

    return block_min, first_equal, first_in_state, queue_block
