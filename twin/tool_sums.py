"""What the per-tool tables send to the host: per-group sums, and one replication's rows.

The per-tool state tables ``ti`` and ``tf`` are the bulk of a replication's
state (SMT2020 HVLM: about 1,300 tools x 42 columns).  Every result computed
over all replications needs only per-(replication, tool group) sums of a few
of their columns, so at the end of a chunk the device sums those
(:func:`kernels.launch_cpu.group_sums`, the same kernel on CUDA) and only the
sums cross to the host:

- ``group_ti`` ``[R, groups, len(TI_SUMMED)]`` int64: failures and PMs;
- ``group_tf`` ``[R, groups, len(TF_SUMMED)]`` float64: the five E10 times and
  the standby time with a lot inside;

plus the full rows of the first replication (``rep0_ti`` ``[tools, N_TI]``,
``rep0_tf`` ``[tools, N_TF]``; replication 0 of a run, the first of a shard)
for tools.csv and per-tool checks.  Read the sums with :func:`ti_sum`,
:func:`tf_sum` and :func:`e10_sum`.  A column that a new result needs summed
is added to ``TI_SUMMED`` / ``TF_SUMMED`` here.
"""
from __future__ import annotations

import numpy as np

from kernels import layout as K

TI_SUMMED = (K.T_FAILS, K.T_PMS)
TF_SUMMED = (*range(K.TF_E10_0, K.TF_E10_0 + K.N_E10), K.TF_STANDBY_LOADED)
GROUP_FIELDS = ("group_ti", "group_tf")
REP0_FIELDS = ("rep0_ti", "rep0_tf")


def group_shapes(c) -> dict:
    """Per-replication shapes (without the replication axis) and dtypes of the group sums."""
    groups = len(c.group_names)
    return {"group_ti": ((groups, len(TI_SUMMED)), np.int64), "group_tf": ((groups, len(TF_SUMMED)), np.float64)}


def rep0_bytes(c) -> int:
    """Bytes of the first replication's per-tool rows (one copy per run)."""
    return c.n_tools * (K.N_TI * np.dtype(np.int32).itemsize + K.N_TF * np.dtype(np.float64).itemsize)


def to_host(c, backend, state: dict, n: int) -> dict:
    """The group sums of a chunk's ``n`` replications and its first replication's rows, on the host.

    ``state`` holds the chunk's ``ti`` and ``tf`` (``[n, tools, columns]`` on the device of ``backend``)
    after ``finalize_all``; the sums are computed and allocated on that device.
    """
    launch = backend.launchers()
    gi = backend.static(c)[0]
    out = {}
    for name, table, fields in (("group_ti", "ti", TI_SUMMED), ("group_tf", "tf", TF_SUMMED)):
        shape, dtype = group_shapes(c)[name]
        sums = backend.zeros(n, shape, dtype)
        launch.group_sums(gi, state[table], np.array(fields, np.int64), sums)
        out[name] = np.asarray(backend.to_host(sums))
    for name, table in zip(REP0_FIELDS, ("ti", "tf")):
        out[name] = np.array(backend.to_host(state[table][:1])[0])  # a copy: the chunk's state is let go
    return out


def _column(summed, field) -> int:
    if field not in summed:
        raise KeyError(f"column {field} of the per-tool table is not summed per group (twin/tool_sums.py)")
    return summed.index(field)


def ti_sum(stats: dict, field: int) -> np.ndarray:
    """``[R, groups]``: integer column ``field`` (``K.T_FAILS``, ``K.T_PMS``) summed over each group's tools."""
    return stats["group_ti"][:, :, _column(TI_SUMMED, field)]


def tf_sum(stats: dict, field: int) -> np.ndarray:
    """``[R, groups]``: float column ``field`` (an E10 time, ``K.TF_STANDBY_LOADED``) summed over each group's tools."""
    return stats["group_tf"][:, :, _column(TF_SUMMED, field)]


def e10_sum(stats: dict) -> np.ndarray:
    """``[R, groups, N_E10]``: minutes in each E10 state summed over each group's tools."""
    first = _column(TF_SUMMED, K.TF_E10_0)
    return stats["group_tf"][:, :, first:first + K.N_E10]


def group_tools(c) -> np.ndarray:
    """Tools per group, ``[groups]``."""
    return np.asarray(c.gi[:, K.GI_NTOOLS], np.int64)
