"""Growing a chunk's lot table while it runs, so that the table can start near the live WIP.

A release that finds no free lot slot pauses its replication before the event (``ERR_LOT_ROOM``,
kernels/engine.py); the host then gives every replication of the chunk more slots with
:func:`grow_lot_table` and launches the segment again. A run gives the same events and statistics,
bit for bit, with any table that never runs short (tests/test_lot_growth.py):

- a slot's random stream is keyed by the lot it takes (kernels/rng.py), not by the slot;
- the free lists of lot slots and of queue blocks hand out entries from their head and take freed
  ones back there, so entries never used lie at the tail in index order. A table of ``n`` entries
  therefore hands out the same ones as a larger table for as long as it has any, and the new entries
  go at the tail of each free list: the grown state is the state the larger table would have;
- the calendar holds the same events in any slot (:func:`kernels.calendar.grow_calendar`).

Every function takes the array module ``xp`` of the state (NumPy, or CuPy on a GPU), so a GPU grows
its state without copying it to the host; ``rep_i`` is always a host copy of the replications'
scalars, which the caller writes back.
"""
from __future__ import annotations

import math

from kernels.calendar import grow_calendar
from kernels.layout import FREE, L_NEXT, L_STATUS, QB_COUNT, QB_NEXT, R_FREE_HEAD, R_QBLOCK_FREE


SLOT_STEP = 32  # lot tables come in whole multiples of this many slots


def whole_slots(n: float) -> int:
    """``n`` lot slots rounded up to a whole multiple of :data:`SLOT_STEP`."""
    return -(-math.ceil(n) // SLOT_STEP) * SLOT_STEP


def table_slots(state) -> int:
    """Lot slots of a chunk's state (a dict or bundle of ``[R, ...]`` arrays)."""
    li = state["li"] if isinstance(state, dict) else state.li
    return int(li.shape[1])


def grow_lot_table(xp, state: dict, rep_i, slots: int, queue_blocks: int, calendar_capacity: int) -> dict:
    """The lot-sized arrays of ``state`` (name -> array) for ``slots`` lot slots, ``queue_blocks``
    queue blocks and ``calendar_capacity`` pending events; the other arrays are returned as they are.
    ``rep_i`` (host, ``[R, N_RI_STATE]``) gets the new free-list heads."""
    old = state["li"].shape[1]
    grown = dict(state)
    grown["li"] = _grown_lot_rows(xp, state["li"], rep_i, slots)
    grown["lf"] = _grown_rows(xp, state["lf"], slots)
    grown["rng"] = _grown_rows(xp, state["rng"], state["rng"].shape[1] + slots - old)  # lot streams come last
    grown["ht"], grown["hc"] = grow_calendar(xp, state["ht"], state["hc"], calendar_capacity)
    grown["qb"] = grow_queue_blocks(xp, state["qb"], rep_i, queue_blocks)
    return grown


def _grown_lot_rows(xp, li, rep_i, slots: int):
    """``li`` with free slots ``old .. slots - 1`` (as ``init_rep`` writes them: free, linked in order)."""
    new = _grown_rows(xp, li, slots)
    new[:, li.shape[1]:, L_STATUS] = FREE
    tail = (li[:, :, L_STATUS] == FREE) & (li[:, :, L_NEXT] == -1)
    _append_to_free_lists(xp, new, L_NEXT, tail, rep_i, R_FREE_HEAD, li.shape[1])
    return new


def grow_queue_blocks(xp, qb, rep_i, count: int):
    """``qb`` with ``count`` blocks, the new ones empty (as ``queue_clear`` writes them) at the tail of each
    free list. A free block holds no lots, and a block in a queue always holds some (kernels/queues.py)."""
    if count <= qb.shape[1]:
        return qb
    new = _grown_rows(xp, qb, count)
    tail = (qb[:, :, QB_COUNT] == 0) & (qb[:, :, QB_NEXT] == -1)
    _append_to_free_lists(xp, new, QB_NEXT, tail, rep_i, R_QBLOCK_FREE, qb.shape[1])
    return new


def _grown_rows(xp, table, rows: int):
    """``table`` (``[R, rows, columns]``) with zero rows appended up to ``rows``."""
    new = xp.zeros((table.shape[0], rows, table.shape[2]), table.dtype)
    new[:, :table.shape[1]] = table
    return new


def _append_to_free_lists(xp, new, link, tail, rep_i, head, old: int) -> None:
    """Link rows ``old ..`` of ``new`` in order, and hang them after each replication's free-list tail
    (``tail``: ``[R, old]``, true at the free entry whose link is -1), or make them the list where it is
    empty (``rep_i[:, head] < 0``)."""
    rows = new.shape[1]
    new[:, old:rows - 1, link] = xp.arange(old + 1, rows, dtype=new.dtype)
    new[:, rows - 1, link] = -1
    listed = xp.flatnonzero(tail.any(axis=1))
    new[listed, tail.argmax(axis=1)[listed], link] = old
    rep_i[rep_i[:, head] < 0, head] = old
