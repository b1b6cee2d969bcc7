"""Scans of 32 contiguous values: the primitives below the model that may differ by target.

On the CPU, and on CUDA with one thread per replication, a primitive is a plain loop (lane width 1).
A warp-per-replication launcher replaces them with lane-parallel reductions (each of 32 lanes reads
one value, five shuffle or shared-memory steps reduce them); the model above them (the calendar, the
handlers, the statistics) stays written once. The results are defined so that both forms agree
exactly: a minimum of floats is exact in any order.
"""
from __future__ import annotations

LANE_GROUP = 4  # scans run four independent minima, so a core is not held up by one chain of compares


def make_lanes(jit):
    """``block_min(values, start, count)``: the minimum of ``values[start:start+count]``; ``count`` is
    a multiple of :data:`LANE_GROUP`."""

    @jit
    def block_min(values, start, count):
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

    return block_min
