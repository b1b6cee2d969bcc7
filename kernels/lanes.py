"""Scans of contiguous values and of tools: the primitives below the model that may differ by target.

On the CPU, and on CUDA with one thread per replication, a primitive is a plain loop (lane width 1).
The warp launcher (kernels/launch_warp.py) gives its own, whose lanes share each scan; the model above
them (the calendar, the handlers, the statistics) stays written once. Both forms give the same results
exactly: a minimum of floats is exact in any order, and an index is the lowest one that matches.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from kernels.layout import QB_COUNT, T_STATE
from kernels.selection import make_selection

INF = math.inf
WARP = 32
MAIL_HEAD = 8  # a warp's scan request (kernels/launch_warp.py)
MAIL_SIZE = MAIL_HEAD + 4 * WARP  # the request and four rows of per-lane results; unused here


class Scans(NamedTuple):
    """The primitives a launcher gives the model (:func:`make_lanes` says what each computes)."""

    arg_min: object
    first_in_state: object
    queue_block: object


def make_arg_min_step(jit):
    """``arg_min_step(low, first, matches, rest, value, k)``: an arg-min (``first`` -1 before any
    value) with value ``k`` more; the loop and each lane of a warp's scan fold their values with it."""

    @jit
    def arg_min_step(low, first, matches, rest, value, k):
        if first < 0:
            return value, k, 1, rest
        if value < low:
            return value, k, 1, min(rest, low)
        return low, first, matches + (1 if value == low else 0), min(rest, value)

    return arg_min_step


def make_lanes(jit):
    """:class:`Scans` as plain loops:

    - ``arg_min(values, start, count, mail)``: ``(low, offset, matches, rest)`` of
      ``values[start:start+count]``: its minimum, the offset of the first value equal to it, how many
      values equal it, and the minimum of the values other than that first one (the calendar takes an
      event and knows its block's new minimum from the same read, kernels/calendar.py);
    - ``first_in_state(ti, start, count, state, mail)``: the offset of the first tool of
      ``start .. start+count-1`` whose state is ``state``, or -1 (dispatching finds standby tools so);
    - ``queue_block(gi, si, sf, ti, li, lf, qb, step_wafers, g, t, now, rule, current, hold_setup,
      top_priority, block, mail)``: the verdicts of queue block ``block``'s lots folded in order
      (kernels/selection.py): ``(best_k, best_key, same_k, same_key, ready_at, stopped)``.

    ``mail`` is where the lanes of a warp exchange a scan; a loop needs none.
    """

    arg_min_step = make_arg_min_step(jit)

    @jit
    def arg_min(values, start, count, mail):
        low, first, matches, rest = INF, -1, 0, INF
        for k in range(count):
            low, first, matches, rest = arg_min_step(low, first, matches, rest, values[start + k], k)
        return low, first, matches, rest

    @jit
    def first_in_state(ti, start, count, state, mail):
        for k in range(count):
            if ti[start + k, T_STATE] == state:
                return k
        return -1

    _, _, _, lot_verdict, fold_verdict = make_selection(jit)

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

    return Scans(arg_min, first_in_state, queue_block)
