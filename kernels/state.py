"""The engine's state travels as three named bundles instead of about 30 loose arrays.

- :class:`LineTables`: the static tables of one compiled line (read-only, shared by every replication);
- :class:`RepState`: the per-replication state, each array ``[replication, ...]`` on both targets
  (kernels/layout.py says why); :func:`make_state_views` cuts one replication's views out of it,
  and :func:`make_layout_check` tests their row widths;
- :class:`RepZero`: replication 0's lot log and state snapshots.

numba types a ``typing.NamedTuple`` of arrays as a named tuple (on the CPU, under the CUDA simulator,
and as a CUDA kernel argument: numba-cuda flattens tuple arguments), and unpacking it is free: the
fields are compile-time members. The engine's entry points take the bundles and unpack them once; the
handlers below them keep taking only the arrays they use, because on the CPU a call passes every array
it is given (docs/ARCHITECTURE.md, "Calls, not memory").
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kernels import layout as L


class LineTables(NamedTuple):
    """Static tables (kernels/layout.py names their columns)."""

    gi: np.ndarray  # tool groups (int)
    gf: np.ndarray  # tool groups (float)
    pmi: np.ndarray  # PM slots (int)
    pmf: np.ndarray  # PM slots (float)
    si: np.ndarray  # steps of every route (int)
    sf: np.ndarray  # steps (float)
    setup_mat: np.ndarray  # change-over minutes, family x family
    ri: np.ndarray  # release streams (int)
    rf: np.ndarray  # release streams (float)
    tool_group: np.ndarray  # tool -> group
    transport: np.ndarray  # transport laws by (from, to) location


class RepState(NamedTuple):
    """Per-replication state; ``twin.runner.state_shapes`` gives each array's shape and type."""

    rng: np.ndarray  # random substreams
    rep_i: np.ndarray  # scalars: free-lot head, heap size, event count, error, cursors
    ht: np.ndarray  # event calendar: times
    hc: np.ndarray  # event calendar: packed (kind, id, version) codes
    ti: np.ndarray  # tools (int)
    tf: np.ndarray  # tools (float)
    tlots: np.ndarray  # lots in each tool's current job
    li: np.ndarray  # lot slots (int)
    lf: np.ndarray  # lot slots (float)
    qi: np.ndarray  # tool groups: queues (int)
    qf: np.ndarray  # tool groups: statistics (float)
    step_wafers: np.ndarray  # wafers waiting per step
    step_defects: np.ndarray  # defect density x wafers per step
    s_i: np.ndarray  # release streams: counters
    s_f: np.ndarray  # release streams: window statistics
    ct_hist: np.ndarray  # release streams: cycle-time histograms
    qb: np.ndarray  # queue blocks: each group's queue of lot ids (kernels/queues.py)


class RepZero(NamedTuple):
    """Replication 0's outputs, written in place by the kernels."""

    log: np.ndarray  # lot log rows
    snap_t: np.ndarray  # snapshot times
    snap_tool: np.ndarray  # tool state at each snapshot
    snap_queue: np.ndarray  # queue lengths at each snapshot


STATE_FIELDS = RepState._fields


def make_state_views(jit):
    """``replication(state, r)``: replication ``r``'s views of every state array (C-contiguous)."""

    @jit
    def replication(state, r):
        return RepState(state.rng[r], state.rep_i[r], state.ht[r], state.hc[r], state.ti[r], state.tf[r],
                        state.tlots[r], state.li[r], state.lf[r], state.qi[r], state.qf[r], state.step_wafers[r],
                        state.step_defects[r], state.s_i[r], state.s_f[r], state.ct_hist[r], state.qb[r])

    return replication


def view_offsets(state: RepState) -> np.ndarray:
    """``offsets[r, k]`` (``[R, 17]``, 136 B per replication): the flat index where replication ``r``'s block of state table ``k`` (in
    :data:`STATE_FIELDS` order) starts, for the offset views of :func:`make_offset_views`."""
    rows = np.arange(state.rng.shape[0], dtype=np.int64)
    return np.stack([rows * int(np.prod(table.shape[1:], dtype=np.int64)) for table in state], axis=1)


def make_offset_views(jit, target: str):
    """``replication_at(state, offsets, r)``: replication ``r``'s views as :mod:`kernels.repview` views,
    which load their block's offset where they are used instead of holding a pointer each (the CUDA
    kernels' form: 184 registers to 110 in the thread advance kernel). ``offsets`` is
    :func:`view_offsets` of the state, on the device."""
    from kernels.repview import rep_view_builder

    view = rep_view_builder(target)

    @jit
    def replication_at(state, offsets, r):
        return RepState(view(state.rng, offsets, r, 0), view(state.rep_i, offsets, r, 1),
                        view(state.ht, offsets, r, 2), view(state.hc, offsets, r, 3),
                        view(state.ti, offsets, r, 4), view(state.tf, offsets, r, 5),
                        view(state.tlots, offsets, r, 6), view(state.li, offsets, r, 7),
                        view(state.lf, offsets, r, 8), view(state.qi, offsets, r, 9),
                        view(state.qf, offsets, r, 10), view(state.step_wafers, offsets, r, 11),
                        view(state.step_defects, offsets, r, 12), view(state.s_i, offsets, r, 13),
                        view(state.s_f, offsets, r, 14), view(state.ct_hist, offsets, r, 15),
                        view(state.qb, offsets, r, 16))

    return replication_at


def make_layout_check(jit):
    """``has_layout_widths(line, view, rep_zero)``: whether every table of the line and of one replication's
    views has its kernels/layout.py row width.

    A CUDA kernel tests it before it advances a replication and stops when it fails: below the test the
    compiler knows the widths and folds them into each index instead of keeping every array's run-time
    width live (sm_90, offline: 14 fewer registers and about half the instructions of the advance
    kernel). On the CPU the same test bought nothing and cost time, so the CPU launchers do not make it.
    """

    @jit
    def has_layout_widths(line, view, rep_zero):
        return (line.gi.shape[1] == L.N_GI and line.gf.shape[1] == L.N_GF and line.pmi.shape[1] == L.N_PI
                and line.pmf.shape[1] == L.N_PF and line.si.shape[1] == L.N_SI and line.sf.shape[1] == L.N_SF
                and line.ri.shape[1] == L.N_RI and line.rf.shape[1] == L.N_RF and view.rng.shape[1] == 2
                and view.ti.shape[1] == L.N_TI and view.tf.shape[1] == L.N_TF and view.li.shape[1] == L.N_LI
                and view.lf.shape[1] == L.N_LF and view.qi.shape[1] == L.N_QI and view.qf.shape[1] == L.N_QF
                and view.s_i.shape[1] == L.N_SI_STATE and view.s_f.shape[1] == L.N_SF_STATE
                and view.ct_hist.shape[1] == L.N_CT_BINS and view.qb.shape[1] == L.N_QB
                and rep_zero.log.shape[1] == L.N_LOG)

    return has_layout_widths
