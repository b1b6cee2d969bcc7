"""Counter-keyed random streams usable on CPU and CUDA.

A stream is a xoroshiro128+ state of two uint64 words seeded by splitmix64
from ``(seed, replication index)`` — and, for the line engine, a purpose and
an entity (:func:`make_streams`: substreams per tool and purpose, per release
stream and per lot).  A stream therefore depends on the seed and the
replication only, never on the thread, block or chunk that runs it, so results
are identical whatever chunk size the runner picks or whichever worker runs a
replication; and two scenarios share the draws of every entity they have in
common (common random numbers).
"""
from __future__ import annotations

import numpy as np

from kernels.layout import GI_FIRST_TOOL

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TWO53 = 1.0 / 9007199254740992.0


def splitmix64_host(x: int) -> int:
    """Host copy of splitmix64, used only to derive per-purpose sub-seeds."""
    m = (1 << 64) - 1
    x = (x + 0x9E3779B97F4A7C15) & m
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


def make_rng(jit):
    """Return ``(seed_state, next_u64, uniform)`` compiled with ``jit``."""

    @jit
    def splitmix64(x):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))

    @jit
    def seed_state(state, seed, rep):
        """Key the stream of replication ``rep`` by ``seed``."""
        a = splitmix64(np.uint64(seed) ^ splitmix64(np.uint64(rep) + np.uint64(1)))
        b = splitmix64(a)
        if a == np.uint64(0) and b == np.uint64(0):
            b = np.uint64(1)
        state[0] = a
        state[1] = b

    @jit
    def rotl(x, k):
        return (x << np.uint64(k)) | (x >> np.uint64(64 - k))

    @jit
    def next_u64(state):
        s0 = state[0]
        s1 = state[1]
        result = s0 + s1
        s1 = s1 ^ s0
        state[0] = rotl(s0, 24) ^ s1 ^ (s1 << np.uint64(16))
        state[1] = rotl(s1, 37)
        return result

    @jit
    def uniform(state):
        """Uniform on the open interval (0, 1): never 0, so log() is safe."""
        return (np.float64(next_u64(state) >> np.uint64(11)) + 0.5) * _TWO53

    return seed_state, next_u64, uniform


# ---- common random numbers: one substream per (purpose, entity) of a replication
# Row 0 holds the replication's key; then three rows per tool, one per release stream, one per lot slot.
# A tool is keyed by (its group's index, its index within the group), so adding a tool to one group leaves
# the keys of every other tool unchanged.  A lot's row is re-keyed when the slot takes a new lot, by
# (release stream, release ordinal) or (initial-WIP row): the lot carries its own processing times,
# moves, sampling and rework decisions from scenario to scenario, whatever order it is served in.
TOOL_FAILURE, TOOL_PM, TOOL_CONDITION = range(3)  # per tool: ttf and repair; PM duration; wear, sensor, failure level
N_TOOL_PURPOSES = 3
_RELEASE_PURPOSE, LOT_RELEASED, LOT_INITIAL = range(N_TOOL_PURPOSES, N_TOOL_PURPOSES + 3)  # key purposes


def stream_count(n_tools: int, n_releases: int, n_lots: int) -> int:
    """Rows of a replication's ``rng`` state: the key row, tools x 3, release streams, lot slots."""
    return 1 + N_TOOL_PURPOSES * n_tools + n_releases + n_lots


def make_streams(jit):
    """Return ``(seed_streams, seed_lot, tool_row, release_row, lot_row)`` compiled with ``jit``.

    ``seed_streams(rng, seed, rep, tool_group, gi, n_releases)`` keys the replication's key row, tool
    and release rows of ``rng[rows, 2]`` by (seed, replication, purpose, entity); ``seed_lot(rng, row,
    purpose, ident)`` keys a lot slot's row when it takes a new lot; the ``*_row`` functions say which
    row a draw uses.
    """

    @jit
    def mix(x):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))

    @jit
    def key_row(rng, row, base, key):
        a = mix(base ^ mix(np.uint64(key) + _GOLDEN))
        b = mix(a)
        if a == np.uint64(0) and b == np.uint64(0):
            b = np.uint64(1)
        rng[row, 0] = a
        rng[row, 1] = b

    @jit
    def tool_row(n_tools, purpose, t):
        return 1 + purpose * n_tools + t

    @jit
    def release_row(n_tools, s):
        return 1 + N_TOOL_PURPOSES * n_tools + s

    @jit
    def lot_row(n_tools, n_releases, lot):
        return 1 + N_TOOL_PURPOSES * n_tools + n_releases + lot

    @jit
    def seed_streams(rng, seed, rep, tool_group, gi, n_releases):
        """``gi``: the tool group table (a tool's key is its index within its group)."""
        base = mix(np.uint64(seed) ^ mix(np.uint64(rep) + np.uint64(1)))
        rng[0, 0] = base
        rng[0, 1] = np.uint64(0)
        n_tools = tool_group.shape[0]
        for t in range(n_tools):
            g = tool_group[t]
            entity = (np.int64(g) << 20) + (t - gi[g, GI_FIRST_TOOL])
            for p in range(N_TOOL_PURPOSES):
                key_row(rng, tool_row(n_tools, p, t), base, (np.int64(p) << 48) + entity)
        for s in range(n_releases):
            key_row(rng, release_row(n_tools, s), base, (np.int64(_RELEASE_PURPOSE) << 48) + s)

    @jit
    def seed_lot(rng, row, purpose, ident):
        """A lot slot takes a new lot: key its row by (purpose, ident) under the replication's key."""
        key_row(rng, row, rng[0, 0], (np.int64(purpose) << 48) + ident)

    return seed_streams, seed_lot, tool_row, release_row, lot_row
