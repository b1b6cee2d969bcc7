"""The event calendar, in two forms that give the same events in the same order.

Events are taken in the order of ``(time, code)`` (``code`` packs kind, id and version into one
int64): a total order that depends on the events alone, not on the structure that holds them. So
each target may keep the calendar in the form that suits it — a primitive below the model — and the
CPU and CUDA still process identical events:

- :data:`HEAP` (the CPU, and CUDA with one thread per replication): a binary min-heap. Its pop is a chain of about 10 dependent loads, which
  a CPU core serves from cache (a pop plus a push: about 85 ns on one AMD EPYC core, against about
  155 ns for the blocked form; micro-benchmark, docs/ARCHITECTURE.md).
- :data:`BLOCKED` (for a warp per replication): event slots in blocks of 32 with block and super-block minima. The next
  event is found by three arg-min scans (super-blocks, then the blocks of one, then the slots of one)
  of contiguous values whose loads do not depend on each other, instead of a 10-level walk where each
  level waits a global-memory round trip; one warp per replication reads each scan in one coalesced
  round (docs/ARCHITECTURE.md, "GPU-native engine design"). Each scan also gives the minimum of its
  values but the one found, so taking that event writes its block's and super-block's new minima
  without reading anything again (a cancelled event, or a tie in time, takes two more scans).
  Scheduling writes a free slot, and the flush after the handler lowers the minima above it. A single
  thread walks each scan itself, so one thread per replication keeps the heap.

Both live in one replication's two calendar arrays, sized by :func:`calendar_sizes` the same way for
both forms (a checkpoint's arrays have one shape everywhere):

- ``ht`` (float64): slot times | block minima | super-block minima (the heap uses the slots only);
- ``hc`` (int64): slot codes | the blocked form's stack of free slots.

``rep_i[R_HEAP_N]`` counts the pending events; ``mail`` is the scans' exchange area (kernels/lanes.py). Each factory returns ``(clear, first, take, put,
flush, find)``: ``put`` schedules an event, ``flush`` completes the events put since the last flush
(the heap pushes its out-box there; call it before ``first``, ``take`` or ``find``), ``first`` gives
``(slot, block_low, super_low)``: the slot of the next event and what its block's and super-block's
minima become once it is taken (:data:`UNKNOWN` where it cannot tell, and always with the heap),
``take(..., slot, block_low, super_low, mail)`` removes the event in a slot: the next one, with
``first``'s minima and nothing changed in between, or a cancelled one that ``find`` located, with
:data:`UNKNOWN`.
"""
from __future__ import annotations

import math

import numpy as np

from kernels.layout import ERR_HEAP_CAPACITY, R_ERROR, R_HEAP_N, R_OUTBOX_N

HEAP, BLOCKED = "heap", "blocked"
BLOCK = 32  # slots per block, blocks per super-block: one warp's width
SUPER_GROUP = 4  # super-blocks come in whole groups of four (the shape checkpoints hold)
UNKNOWN = math.nan  # a minimum ``first`` cannot tell: ``take`` scans for it


def calendar_shape(capacity: int) -> tuple[int, int, int]:
    """``(slots, blocks, supers)`` for at least ``capacity`` pending events (whole groups of
    :data:`SUPER_GROUP` super-blocks)."""
    supers = SUPER_GROUP * max(1, math.ceil(capacity / (BLOCK * BLOCK * SUPER_GROUP)))
    blocks = supers * BLOCK
    return blocks * BLOCK, blocks, supers


def calendar_sizes(capacity: int) -> tuple[int, int]:
    """Lengths of the ``ht`` (float) and ``hc`` (int) arrays of one replication."""
    slots, blocks, supers = calendar_shape(capacity)
    return slots + blocks + supers, 2 * slots


def grow_calendar(xp, ht, hc, capacity: int):
    """Every replication's calendar (``ht``, ``hc``: ``[R, ...]`` arrays of module ``xp``) laid out
    again for ``capacity`` pending events, holding the same events; either form reads it as it is.

    Slots keep their index and the new slots are free (time +inf). The blocked form's minima move to
    their new places (the new blocks' minima are +inf), and its free stack gets the new slots at the
    bottom, under the old stack, so the next puts take the slots they would have taken. Which slot an
    event sits in never changes the event order, ``(time, code)``. The heap reads only the slots."""
    r, old_len = hc.shape
    old_slots, old_blocks, old_supers = calendar_shape(old_len // 2)
    slots, blocks, supers = calendar_shape(capacity)
    if slots <= old_slots:
        return ht, hc
    new_ht = xp.full((r, slots + blocks + supers), math.inf, ht.dtype)
    new_ht[:, :old_slots] = ht[:, :old_slots]
    new_ht[:, slots:slots + old_blocks] = ht[:, old_slots:old_slots + old_blocks]
    new_ht[:, slots + blocks:slots + blocks + old_supers] = ht[:, old_slots + old_blocks:]
    new_hc = xp.zeros((r, 2 * slots), hc.dtype)
    new_hc[:, :old_slots] = hc[:, :old_slots]
    added = slots - old_slots
    new_hc[:, slots:slots + added] = xp.arange(slots - 1, old_slots - 1, -1, dtype=hc.dtype)
    new_hc[:, slots + added:] = hc[:, old_slots:]
    return new_ht, new_hc


def make_calendar(jit, form, scans):
    """The calendar's device functions in ``form`` (:data:`HEAP` or :data:`BLOCKED`); ``scans``:
    kernels/lanes.py's primitives (the calendar uses ``arg_min``)."""
    if form == HEAP:
        return _make_heap(jit)
    if form == BLOCKED:
        return _make_blocked(jit, scans.arg_min)
    raise ValueError(f"calendar form must be {HEAP!r} or {BLOCKED!r}, got {form!r}")


def _make_earlier(jit):
    @jit
    def earlier(t, code, other_t, other_code):
        """The event order: by time, then by code."""
        return t < other_t or (t == other_t and code < other_code)

    return earlier


def _make_heap(jit):
    earlier = _make_earlier(jit)

    @jit
    def clear(ht, hc, rep_i):
        rep_i[R_HEAP_N] = 0
        rep_i[R_OUTBOX_N] = 0

    @jit
    def first(ht, hc, mail):
        return 0, UNKNOWN, UNKNOWN

    @jit
    def sift_up(ht, hc, i, t, code):
        while i > 0:
            parent = (i - 1) >> 1
            above = ht[parent]
            if above < t or (above == t and hc[parent] <= code):  # times seldom tie: one predictable test
                break
            ht[i] = above
            hc[i] = hc[parent]
            i = parent
        ht[i] = t
        hc[i] = code

    @jit
    def put(ht, hc, rep_i, t, code):
        """Into the out-box, the slots after the heap's last entry: ``flush`` pushes it after each
        event, so the push code exists once (not at every scheduling site) and stays in cache."""
        if t == math.inf:  # never happens: neither form keeps it
            return
        slot = rep_i[R_HEAP_N] + rep_i[R_OUTBOX_N]
        if slot >= hc.shape[0] // 2:
            rep_i[R_ERROR] = ERR_HEAP_CAPACITY
            return
        ht[slot] = t
        hc[slot] = code
        rep_i[R_OUTBOX_N] += 1

    @jit
    def flush(ht, hc, rep_i):
        """Push the out-box, oldest first (pushing slot n + k writes only slots <= n + k)."""
        n = rep_i[R_HEAP_N]
        for k in range(rep_i[R_OUTBOX_N]):
            sift_up(ht, hc, n + k, ht[n + k], hc[n + k])
        rep_i[R_HEAP_N] = n + rep_i[R_OUTBOX_N]
        rep_i[R_OUTBOX_N] = 0

    @jit
    def sift_down(ht, hc, i, n, t, code):
        """Put (``t``, ``code``) in the hole at ``i`` of a heap of ``n`` entries, moving it down."""
        while True:
            child = 2 * i + 1
            if child >= n:
                break
            smaller = ht[child]
            if child + 1 < n:
                right = ht[child + 1]
                take_right = right < smaller  # a coin toss: selected without a branch
                if right == smaller:  # seldom
                    take_right = hc[child + 1] < hc[child]
                child += np.int64(take_right)
                smaller = min(smaller, right)  # the chosen child's time, without loading it again
            if smaller > t or (smaller == t and hc[child] >= code):
                break
            ht[i] = smaller
            hc[i] = hc[child]
            i = child
        ht[i] = t
        hc[i] = code

    @jit
    def take(ht, hc, rep_i, slot, block_low, super_low, mail):
        """Fill the hole at ``slot`` with the last entry, sifted up or down (a heap has no minima)."""
        n = rep_i[R_HEAP_N] - 1
        rep_i[R_HEAP_N] = n
        if slot == n:
            return
        t = ht[n]
        code = hc[n]
        if slot > 0 and earlier(t, code, ht[(slot - 1) >> 1], hc[(slot - 1) >> 1]):
            sift_up(ht, hc, slot, t, code)
        else:
            sift_down(ht, hc, slot, n, t, code)

    @jit
    def find(ht, hc, rep_i, code):
        for i in range(rep_i[R_HEAP_N]):
            if hc[i] == code:
                return i
        return -1

    return clear, first, take, put, flush, find


def _make_blocked(jit, arg_min):
    INF = math.inf

    @jit
    def geometry(hc):
        """(slots, first block minimum, first super-block minimum, supers) from the array sizes."""
        slots = hc.shape[0] // 2
        blocks = slots // BLOCK
        return slots, slots, slots + blocks, blocks // BLOCK

    @jit
    def clear(ht, hc, rep_i):
        """No pending event: every slot free (slot 0 on top of the free stack), every minimum +inf."""
        slots = hc.shape[0] // 2
        for i in range(ht.shape[0]):
            ht[i] = INF
        for k in range(slots):
            hc[slots + k] = slots - 1 - k
        rep_i[R_HEAP_N] = 0
        rep_i[R_OUTBOX_N] = 0

    @jit
    def first_of_ties(ht, hc, low):
        """Among the slots at time ``low``, the one with the smallest code (every block whose minimum is
        that time is searched)."""
        slots, block0, super0, supers = geometry(hc)
        best = -1
        best_code = 0
        for s in range(supers):
            if ht[super0 + s] == low:
                for b in range(s * BLOCK, s * BLOCK + BLOCK):
                    if ht[block0 + b] == low:
                        for slot in range(b * BLOCK, b * BLOCK + BLOCK):
                            if ht[slot] == low and (best < 0 or hc[slot] < best_code):
                                best = slot
                                best_code = hc[slot]
        return best

    @jit
    def first(ht, hc, mail):
        """``(slot, block_low, super_low)`` of the next event: the earliest time, and among equal times
        the smallest code. Three arg-min scans find the super-block, block and slot at the earliest
        time, and give the minima that remain without it; only when one of them saw that time twice
        (seldom) is every tied slot compared by code, and ``take`` scans for the minima."""
        slots, block0, super0, supers = geometry(hc)
        low, s, tied_supers, _ = arg_min(ht, super0, supers, mail)
        _, b, tied_blocks, other_blocks_low = arg_min(ht, block0 + s * BLOCK, BLOCK, mail)
        block = s * BLOCK + b
        _, k, tied_slots, block_low = arg_min(ht, block * BLOCK, BLOCK, mail)
        if tied_supers == 1 and tied_blocks == 1 and tied_slots == 1:
            return block * BLOCK + k, block_low, min(other_blocks_low, block_low)
        return first_of_ties(ht, hc, low), UNKNOWN, UNKNOWN

    @jit
    def take(ht, hc, rep_i, slot, block_low, super_low, mail):
        """Free ``slot`` (read its time and code first) and set the minima above it: ``first``'s, or
        scanned for when :data:`UNKNOWN`."""
        slots, block0, super0, supers = geometry(hc)
        ht[slot] = INF
        hc[slots + slots - rep_i[R_HEAP_N]] = slot  # onto the free stack
        rep_i[R_HEAP_N] -= 1
        b = slot // BLOCK
        s = b // BLOCK
        if math.isnan(block_low):
            ht[block0 + b] = arg_min(ht, b * BLOCK, BLOCK, mail)[0]
            super_low = arg_min(ht, block0 + s * BLOCK, BLOCK, mail)[0]
        else:
            ht[block0 + b] = block_low
        ht[super0 + s] = super_low

    @jit
    def put(ht, hc, rep_i, t, code):
        """Write ``code`` at ``t`` into the free slot on top of the stack (the lowest slots fill first);
        ``flush`` lowers the minima above it, so that code exists once, not at every scheduling site."""
        if t == INF:  # never happens: neither form keeps it (a slot at +inf is a free slot)
            return
        slots = hc.shape[0] // 2
        n = rep_i[R_HEAP_N]
        if n >= slots:
            rep_i[R_ERROR] = ERR_HEAP_CAPACITY
            return
        slot = hc[slots + slots - 1 - n]
        ht[slot] = t
        hc[slot] = code
        rep_i[R_HEAP_N] = n + 1
        rep_i[R_OUTBOX_N] += 1

    @jit
    def flush(ht, hc, rep_i):
        """Lower the block and super-block minima above the slots ``put`` filled since the last flush:
        they are the entries just taken off the free stack (nothing is freed in between)."""
        slots, block0, super0, supers = geometry(hc)
        n = rep_i[R_HEAP_N]
        for k in range(n - rep_i[R_OUTBOX_N], n):
            slot = hc[slots + slots - 1 - k]
            t = ht[slot]
            b = slot // BLOCK
            if t < ht[block0 + b]:
                ht[block0 + b] = t
                s = b // BLOCK
                if t < ht[super0 + s]:
                    ht[super0 + s] = t
        rep_i[R_OUTBOX_N] = 0

    @jit
    def find(ht, hc, rep_i, code):
        """Slot holding ``code``, or -1 (a scan of every slot: only for rare cancellations)."""
        slots = hc.shape[0] // 2
        for i in range(slots):
            if hc[i] == code and ht[i] != INF:
                return i
        return -1

    return clear, first, take, put, flush, find
