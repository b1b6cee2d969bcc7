"""Counter-keyed random streams usable on CPU and CUDA.

Each replication owns a xoroshiro128+ state of two uint64 words seeded by
splitmix64 from ``(seed, replication index)``.  A stream therefore depends on
the seed and the replication only, never on the thread, block or chunk that
runs it, so results are identical whatever chunk size the runner picks.
"""
from __future__ import annotations

import numpy as np

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
