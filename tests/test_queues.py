"""The group queues' blocks (kernels/queues.py) behave as first-in-first-out lists with removal anywhere.

The reference is a Python list per group, which keeps arrival order by definition. Random pushes and
removals (from the front, as FIFO dispatching takes them, and from anywhere, as a batch or a rule does)
must leave each queue's lots, read block after block, equal to its list; every block must be non-empty,
every two neighbours must hold more than QB_LOTS lots (the invariant behind the sizing), each lot's
L_QBLOCK must name the block that holds it, and the blocks in use must stay within
queue_block_count, with the pool sized to exactly that and every lot slot queued at the worst moment.
"""
from __future__ import annotations

import numba
import numpy as np
import pytest

from kernels import layout as K
from kernels.queues import make_queues, queue_block_count
from kernels.target import CPU, device_jit

clear, push, remove = make_queues(device_jit(CPU))


@numba.njit
def apply(ops, rep_i, li, qi, qb):
    """ops rows (kind, group, lot): 0 = push, 1 = remove."""
    for i in range(ops.shape[0]):
        if ops[i, 0] == 0:
            if not push(rep_i, li, qi, qb, ops[i, 1], ops[i, 2]):
                return False
        else:
            remove(rep_i, li, qi, qb, ops[i, 1], ops[i, 2])
    return True


def read_queue(qi, qb, g):
    lots, blocks = [], []
    b = qi[g, K.Q_HEAD]
    prev = -1
    while b >= 0:
        assert qb[b, K.QB_PREV] == prev, "a block's back link names its predecessor"
        blocks.append(int(qb[b, K.QB_COUNT]))
        lots.extend(int(x) for x in qb[b, :qb[b, K.QB_COUNT]])
        prev, b = b, qb[b, K.QB_NEXT]
    assert qi[g, K.Q_TAIL] == prev
    return lots, blocks


def random_ops(rng, lots, groups, steps, front_share, every):
    """A valid sequence: each lot waits in at most one queue; removals from the front or anywhere.
    Also the lists after every ``every`` operations."""
    where = {}  # lot -> group
    model = [[] for _ in range(groups)]
    ops, snapshots = [], []
    for step in range(steps):
        free = [lot for lot in range(lots) if lot not in where]
        if free and (not where or rng.random() < 0.55):
            lot = int(rng.choice(free))
            g = int(rng.integers(groups)) if rng.random() < 0.3 else 0  # one group takes most lots
            where[lot] = g
            model[g].append(lot)
            ops.append((0, g, lot))
        else:
            g = int(rng.choice(sorted({where[lot] for lot in where})))
            lot = model[g][0] if rng.random() < front_share else int(rng.choice(model[g]))
            model[g].remove(lot)
            del where[lot]
            ops.append((1, g, lot))
        if (step + 1) % every == 0:
            snapshots.append([list(q) for q in model])
    return np.array(ops, dtype=np.int64), snapshots


@pytest.mark.parametrize("front_share", [0.9, 0.0])
@pytest.mark.parametrize("seed", [1, 2])
def test_blocks_keep_arrival_order_and_the_bound(seed, front_share):
    rng = np.random.default_rng(seed)
    lots, groups = 400, 5
    blocks = queue_block_count(lots, groups)
    rep_i = np.zeros(K.N_RI_STATE, np.int64)
    li = np.full((lots, K.N_LI), -7, np.int32)
    qi = np.zeros((groups, K.N_QI), np.int32)
    qb = np.zeros((blocks, K.N_QB), np.int32)
    clear(rep_i, qi, qb)
    every = 500
    ops, snapshots = random_ops(rng, lots, groups, 6000, front_share, every)
    checks = 0
    for cut, expected in zip(range(0, len(ops), every), snapshots):  # the lists at points along the way
        assert apply(ops[cut:cut + every], rep_i, li, qi, qb), "a push found no free block"
        used = 0
        for g in range(groups):
            queued, counts = read_queue(qi, qb, g)
            assert queued == expected[g]
            assert all(n > 0 for n in counts)
            assert all(a + b > K.QB_LOTS for a, b in zip(counts, counts[1:]))
            assert all(n <= K.QB_LOTS for n in counts)
            for lot in queued:
                b = li[lot, K.L_QBLOCK]
                assert lot in qb[b, :qb[b, K.QB_COUNT]]
            used += len(counts)
        assert used <= queue_block_count(sum(len(q) for q in expected), groups)
        checks += 1
    assert checks == 12


def test_every_slot_queued_fits_the_pool():
    """The worst case of the sizing: every lot slot waits, spread so that blocks end up half full."""
    lots, groups = 300, 7
    rep_i = np.zeros(K.N_RI_STATE, np.int64)
    li = np.zeros((lots, K.N_LI), np.int32)
    qi = np.zeros((groups, K.N_QI), np.int32)
    qb = np.zeros((queue_block_count(lots, groups), K.N_QB), np.int32)
    clear(rep_i, qi, qb)
    # fill, then empty every other run of QB_LOTS // 2 + 1 lots in each queue, then refill the freed slots
    ops = [(0, lot % groups, lot) for lot in range(lots)]
    gone = [lot for lot in range(lots) if (lot // groups) % (K.QB_LOTS // 2 + 1) < K.QB_LOTS // 2 and lot % 3]
    ops += [(1, lot % groups, lot) for lot in gone] + [(0, lot % groups, lot) for lot in gone]
    assert apply(np.array(ops, dtype=np.int64), rep_i, li, qi, qb)
    assert rep_i[K.R_ERROR] == K.ERR_NONE
    assert sum(qi[g, K.Q_HEAD] >= 0 for g in range(groups)) == groups
    assert sorted(lot for g in range(groups) for lot in read_queue(qi, qb, g)[0]) == list(range(lots))
