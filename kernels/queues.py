"""A tool group's queue as a list of blocks of lot ids, in arrival order (an unrolled linked list).

Each block is one 128-byte row of ``qb`` (:data:`kernels.layout.QB_LOTS` lot ids, their count, and the
links to the group's previous and next block), so a scan of a queue reads whole lines of lot ids instead
of chasing one link per lot: the loads of a block are independent (a core overlaps them; a warp reads a
block in one round). ``li[lot, L_QBLOCK]`` remembers the block that holds a waiting lot.

Removal keeps arrival order (the later ids of the block shift down) and then keeps the invariant that
every two neighbouring blocks of a queue hold more than ``QB_LOTS`` lots together, merging them when they
do not. So a queue of ``n`` lots uses at most ``2 n / (QB_LOTS + 1) + 1`` blocks, and
:func:`queue_block_count` blocks always suffice for a lot table of ``L`` slots (tests/test_queues.py).
"""
from __future__ import annotations

from kernels.layout import (ERR_QUEUE_BLOCKS, L_QBLOCK, N_QB, Q_HEAD, Q_TAIL, QB_COUNT, QB_LOTS, QB_NEXT,
                            QB_PREV, R_ERROR, R_QBLOCK_FREE)


def queue_block_count(lot_slots: int, groups: int) -> int:
    """Blocks that hold any split of ``lot_slots`` lots over ``groups`` queues under the invariant."""
    return 2 * (lot_slots // (QB_LOTS + 1)) + groups + 1


def make_queues(jit):
    """``(queue_clear, queue_push, queue_remove)`` over ``(rep_i, li, qi, qb)``; the first lot of a
    queue is ``qb[qi[g, Q_HEAD], 0]``, and blocks are never empty."""

    @jit
    def queue_clear(rep_i, qi, qb):
        """Every queue empty, every block free."""
        for g in range(qi.shape[0]):
            qi[g, Q_HEAD] = -1
            qi[g, Q_TAIL] = -1
        n = qb.shape[0]
        for b in range(n):
            qb[b, QB_COUNT] = 0
            qb[b, QB_NEXT] = b + 1 if b + 1 < n else -1
        rep_i[R_QBLOCK_FREE] = 0 if n > 0 else -1

    @jit
    def unlink(rep_i, qi, qb, g, b):
        """Take block ``b`` out of group ``g``'s list and free it."""
        prev = qb[b, QB_PREV]
        nxt = qb[b, QB_NEXT]
        if prev >= 0:
            qb[prev, QB_NEXT] = nxt
        else:
            qi[g, Q_HEAD] = nxt
        if nxt >= 0:
            qb[nxt, QB_PREV] = prev
        else:
            qi[g, Q_TAIL] = prev
        qb[b, QB_COUNT] = 0  # a free block holds no lots (kernels/growth.py finds the free list's tail by it)
        qb[b, QB_NEXT] = rep_i[R_QBLOCK_FREE]
        rep_i[R_QBLOCK_FREE] = b

    @jit
    def absorb(rep_i, li, qi, qb, g, b, nxt):
        """Append block ``nxt`` (``b``'s successor) to ``b`` and free it."""
        n = qb[b, QB_COUNT]
        for k in range(qb[nxt, QB_COUNT]):
            lot = qb[nxt, k]
            qb[b, n + k] = lot
            li[lot, L_QBLOCK] = b
        qb[b, QB_COUNT] = n + qb[nxt, QB_COUNT]
        unlink(rep_i, qi, qb, g, nxt)

    @jit
    def settle(rep_i, li, qi, qb, g, b):
        """Restore the invariant around block ``b``, which just lost a lot: free it if empty, then merge
        the one neighbouring pair that may now fit in a block (after one merge no other pair can)."""
        prev = qb[b, QB_PREV]
        if qb[b, QB_COUNT] == 0:
            unlink(rep_i, qi, qb, g, b)
            first, second = prev, (qb[prev, QB_NEXT] if prev >= 0 else -1)
        elif prev >= 0 and qb[prev, QB_COUNT] + qb[b, QB_COUNT] <= QB_LOTS:
            first, second = prev, b
        else:
            first, second = b, qb[b, QB_NEXT]
        if first >= 0 and second >= 0 and qb[first, QB_COUNT] + qb[second, QB_COUNT] <= QB_LOTS:
            absorb(rep_i, li, qi, qb, g, first, second)

    @jit
    def queue_push(rep_i, li, qi, qb, g, lot):
        """Append ``lot`` to group ``g``'s queue; False (and ``ERR_QUEUE_BLOCKS``) if no block is free,
        which the sizing of :func:`queue_block_count` rules out."""
        b = qi[g, Q_TAIL]
        if b < 0 or qb[b, QB_COUNT] == QB_LOTS:
            fresh = rep_i[R_QBLOCK_FREE]
            if fresh < 0:
                rep_i[R_ERROR] = ERR_QUEUE_BLOCKS
                return False
            rep_i[R_QBLOCK_FREE] = qb[fresh, QB_NEXT]
            qb[fresh, QB_COUNT] = 0
            qb[fresh, QB_PREV] = b
            qb[fresh, QB_NEXT] = -1
            if b >= 0:
                qb[b, QB_NEXT] = fresh
            else:
                qi[g, Q_HEAD] = fresh
            qi[g, Q_TAIL] = fresh
            b = fresh
        n = qb[b, QB_COUNT]
        qb[b, n] = lot
        qb[b, QB_COUNT] = n + 1
        li[lot, L_QBLOCK] = b
        return True

    @jit
    def queue_remove(rep_i, li, qi, qb, g, lot):
        """Take ``lot`` out of group ``g``'s queue, keeping the others in arrival order."""
        b = li[lot, L_QBLOCK]
        n = qb[b, QB_COUNT]
        k = 0
        while qb[b, k] != lot:
            k += 1
        for j in range(k, n - 1):
            qb[b, j] = qb[b, j + 1]
        qb[b, QB_COUNT] = n - 1
        settle(rep_i, li, qi, qb, g, b)

    assert N_QB == QB_LOTS + 3
    return queue_clear, queue_push, queue_remove
