"""Per-tool-group sums of per-tool statistics, written once for the CPU and CUDA.

``make_group_sum(jit)`` returns one device function: for one replication and
one tool group, it sums chosen columns of a per-tool table over the group's
tools (contiguous, ``gi[g, GI_FIRST_TOOL]`` on, ``gi[g, GI_NTOOLS]`` of them)
in tool order, from zero.  The launchers in :mod:`kernels.launch_cpu` and
:mod:`kernels.launch_cuda` call it once per (replication, group).  Which
columns are summed is the caller's choice (``fields``); this is compute only.
"""
from __future__ import annotations

from kernels.layout import GI_FIRST_TOOL, GI_NTOOLS


def make_group_sum(jit):
    """Compile the per-(replication, group) sum with ``jit`` (CPU or CUDA)."""

    @jit
    def group_sum(gi, x, fields, out, g):
        """``out[j] = sum of x[t, fields[j]]`` over the tools ``t`` of group ``g``, in tool order.

        ``x`` is one replication's per-tool table ``[tools, columns]``, ``out`` its row ``[len(fields)]``
        of group ``g``; the sums are in ``out``'s type (int64 for the integer table, float64 for the float one).
        """
        first = gi[g, GI_FIRST_TOOL]
        last = first + gi[g, GI_NTOOLS]
        for j in range(fields.shape[0]):
            f = fields[j]
            out[j] = 0  # the sum runs in out's type (int64 over int32 counts) on every target, the simulator too
            for t in range(first, last):
                out[j] += x[t, f]

    return group_sum
