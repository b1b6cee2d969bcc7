"""State accesses per event: what the CUDA thread kernel reads and writes, counted on the CPU.

    python -m benchmarks.access_count [--days 2] [--smt2020-dir DIR]

The CUDA kernels index replication state through the offset views of kernels/repview.py, and every
element access, read or write, first loads its table's offset. This script runs the CPU engine over the
same views (the heap calendar, as the thread-per-replication kernel has) on one replication of SMT2020
HVLM, with that offset load made to count itself per table, and prints the accesses per event. It counts
element accesses, not memory transactions: fields of one row read in one event are one line from DRAM
and L1 hits after it. Line tables (routes, groups) are not counted: every replication shares them.
The counting views also stamp each access's 128-byte line and 32-byte sector with the caller's event
number, so that benchmarks/wave_trace.py can count the distinct lines and sectors an event touches.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numba
import numpy as np
from numba.core import types

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kernels.calendar import HEAP  # noqa: E402
from kernels.engine import make_engine  # noqa: E402
from kernels import repview  # noqa: E402
from kernels.state import STATE_FIELDS, make_offset_views, view_offsets  # noqa: E402
from kernels.target import CPU, device_jit  # noqa: E402

N_TABLES = len(STATE_FIELDS)
PRIVATE_CACHE = "FABTWIN_ACCESS_COUNT_CACHE"  # set, with NUMBA_CACHE_DIR, to the count's own cache folder

# The counting views' offsets array (replication 0's row; :func:`counting_offsets`): the tables' offsets,
# then what the views count. ACCESSES + k: the accesses of table k. SCANS: 8 columns the wave trace's
# counting scans add to (benchmarks/wave_trace.py). Then what the touches count since the caller last
# raised EVENT: READS_ALONE, the reads while IN_SCAN is 0 (the caller sets it around a scan the lanes of a
# warp share); LINES_ALONE and SECTORS_ALONE, the distinct 128-byte lines and 32-byte sectors those reads
# hit first in the event, a scan's reads included (an L1 miss fetches only the sectors it lacks, not the
# whole line); SECTORS, the distinct sectors any
# access touched. And since the caller last raised STAGE: READS, every read, and LINES and STAGE_SECTORS,
# the distinct lines and sectors they hit (what one thread running the stage reads). TABLE_SECTORS + k: of
# SECTORS_ALONE, table k's. LINE_BASE + k, SECTOR_BASE + k, ALONE_SECTOR_BASE + k, STAGE_LINE_BASE + k and
# STAGE_SECTOR_BASE + k: where table k's stamps start (the event, or stage, that last touched each line or
# sector).
ACCESSES = N_TABLES
SCANS = 2 * N_TABLES
(EVENT, IN_SCAN, READS_ALONE, LINES_ALONE, SECTORS_ALONE, SECTORS, STAGE, READS, LINES,
 STAGE_SECTORS) = range(SCANS + 8, SCANS + 18)
TABLE_SECTORS = SCANS + 18
LINE_BASE = TABLE_SECTORS + N_TABLES
SECTOR_BASE = LINE_BASE + N_TABLES
ALONE_SECTOR_BASE = SECTOR_BASE + N_TABLES
STAGE_LINE_BASE = ALONE_SECTOR_BASE + N_TABLES
STAGE_SECTOR_BASE = STAGE_LINE_BASE + N_TABLES
LINE_BYTES, SECTOR_BYTES = 128, 32  # an L1 line and a DRAM sector on sm_90


def _counting_load_offset(offsets, r, k):
    def load(offsets, r, k):
        offsets[r, ACCESSES + k] += 1
        return offsets[r, k]
    return load


@numba.njit(inline="always")
def _stamp(offsets, r, column, epoch):
    """Whether ``column``'s line or sector was touched since ``epoch`` (EVENT or STAGE) last rose (and
    it has been now)."""
    seen = offsets[r, column] == offsets[r, epoch]
    offsets[r, column] = offsets[r, epoch]
    return seen


@numba.njit(inline="always")
def _touch(offsets, r, k, at, itemsize, read):
    """One element access of table ``k`` at flat index ``at``: counts its sector, a read and its line
    and sector, and a read outside a shared scan and its line and sector (that sector as table ``k``'s).
    A read inside a scan is a helper lane's: it brings its sector into the SM's L1, which lane 0 shares,
    so it marks the line and sector as read for lane 0 without counting them (a later read of lane 0
    there is an L1 hit). The loops read no more than a warp's helpers do (a tool scan's helpers read
    whole rounds of 32, a queue block's all its lots), so this errs on the side of misses."""
    byte = at * itemsize
    line, sector = byte // LINE_BYTES, byte // SECTOR_BYTES
    if not _stamp(offsets, r, offsets[r, SECTOR_BASE + k] + sector, EVENT):
        offsets[r, SECTORS] += 1
    if read:
        offsets[r, READS] += 1
        if not _stamp(offsets, r, offsets[r, STAGE_LINE_BASE + k] + line, STAGE):
            offsets[r, LINES] += 1
        if not _stamp(offsets, r, offsets[r, STAGE_SECTOR_BASE + k] + sector, STAGE):
            offsets[r, STAGE_SECTORS] += 1
    if not read:
        return
    new_line = not _stamp(offsets, r, offsets[r, LINE_BASE + k] + line, EVENT)
    new_sector = not _stamp(offsets, r, offsets[r, ALONE_SECTOR_BASE + k] + sector, EVENT)
    if offsets[r, IN_SCAN] == 0:
        offsets[r, READS_ALONE] += 1
        if new_line:
            offsets[r, LINES_ALONE] += 1
        if new_sector:
            offsets[r, SECTORS_ALONE] += 1
            offsets[r, TABLE_SECTORS + k] += 1


def _itemsize(table) -> int:
    from numba.np.numpy_support import as_dtype

    return as_dtype(table.dtype).itemsize


def _touching_getitem(view, index):
    """kernels/repview.py's element read, touched (:func:`_touch`); the row read is repview's own."""
    if not isinstance(view, repview.RepViewType):
        return None
    size = _itemsize(view.table)
    if isinstance(index, types.Integer) and view.ndim == 1:
        def get(view, index):
            at = repview.load_offset(view.offsets, view.r, view.k) + index
            _touch(view.offsets, view.r, view.k, at, size, True)
            return repview.element(view.table, at)
        return get
    if isinstance(index, types.BaseTuple) and len(index) == 2 and view.ndim == 2:
        def get2(view, index):
            at = repview.load_offset(view.offsets, view.r, view.k) + index[0] * view.table.shape[2] + index[1]
            _touch(view.offsets, view.r, view.k, at, size, True)
            return repview.element(view.table, at)
        return get2
    return None


def _touching_setitem(view, index, value):
    if not isinstance(view, repview.RepViewType):
        return None
    size = _itemsize(view.table)
    if isinstance(index, types.Integer) and view.ndim == 1:
        def put(view, index, value):
            at = repview.load_offset(view.offsets, view.r, view.k) + index
            _touch(view.offsets, view.r, view.k, at, size, False)
            repview.set_element(view.table, at, value)
        return put
    if isinstance(index, types.BaseTuple) and len(index) == 2 and view.ndim == 2:
        def put2(view, index, value):
            at = repview.load_offset(view.offsets, view.r, view.k) + index[0] * view.table.shape[2] + index[1]
            _touch(view.offsets, view.r, view.k, at, size, False)
            repview.set_element(view.table, at, value)
        return put2
    return None


def _touching_row_getitem(row, index):
    if isinstance(row, repview.RowViewType) and isinstance(index, types.Integer):
        size = _itemsize(row.table)

        def get(row, index):
            at = repview.load_offset(row.offsets, row.r, row.k) + row.i * row.table.shape[2] + index
            _touch(row.offsets, row.r, row.k, at, size, True)
            return repview.element(row.table, at)
        return get
    return None


def _touching_row_setitem(row, index, value):
    if isinstance(row, repview.RowViewType) and isinstance(index, types.Integer):
        size = _itemsize(row.table)

        def put(row, index, value):
            at = repview.load_offset(row.offsets, row.r, row.k) + row.i * row.table.shape[2] + index
            _touch(row.offsets, row.r, row.k, at, size, False)
            repview.set_element(row.table, at, value)
        return put
    return None


def counting_offsets(state) -> np.ndarray:
    """The counting views' ``[1, columns]`` offsets array for a one-replication ``state``: its offsets,
    zeroed counters, and stamps for each 128-byte line (two: an event's reads outside the scans, a
    stage's reads) and each 32-byte sector (three: an event's accesses, its reads outside the scans, a
    stage's reads) of every table."""
    lines = [-(-table.nbytes // LINE_BYTES) for table in state]
    sectors = [-(-table.nbytes // SECTOR_BYTES) for table in state]
    regions = ((LINE_BASE, lines), (SECTOR_BASE, sectors), (ALONE_SECTOR_BASE, sectors),
               (STAGE_LINE_BASE, lines), (STAGE_SECTOR_BASE, sectors))
    first = STAGE_SECTOR_BASE + N_TABLES
    sizes = [n for _, counts in regions for n in counts]
    offsets = np.zeros((1, first + sum(sizes)), np.int64)
    offsets[:, :N_TABLES] = view_offsets(state)
    starts = first + np.cumsum([0, *sizes[:-1]])
    for i, (base, _) in enumerate(regions):
        offsets[0, base:base + N_TABLES] = starts[i * N_TABLES:(i + 1) * N_TABLES]
    offsets[0, first:] = -1  # touched by no event yet
    return offsets


_registered = {}  # {"counting": bool, "views": replication_at} once the CPU views exist in this process


def offset_views(counting: bool):
    """``replication_at`` over the CPU's offset views. numba registers their overloads once a process,
    so a process either counts or does not: asking for the other raises."""
    if _registered:
        if _registered["counting"] != counting:
            raise RuntimeError(f"the CPU offset views are registered already with counting={not counting}")
        return _registered["views"]
    if counting and CPU in repview._builders:
        raise RuntimeError("the CPU offset views are registered already without counting: "
                           "count in a process of its own")
    if counting and numba.config.CACHE_DIR != os.environ.get(PRIVATE_CACHE):
        # the counting views have the plain views' numba types, so the two would share disk-cache
        # entries: a counted run would load uncounted functions, a plain run counting ones
        raise RuntimeError("count with a numba cache folder of the count's own (main() makes one)")
    if counting:  # before the views register: repview's factories are read when they do
        repview._plain_load_offset = _counting_load_offset
        repview._getitem, repview._setitem = _touching_getitem, _touching_setitem
        repview._row_getitem, repview._row_setitem = _touching_row_getitem, _touching_row_setitem
    _registered.update(counting=counting, views=make_offset_views(device_jit(CPU), CPU))
    return _registered["views"]


def make_runner(counting: bool = False):
    """``run(line, wip, state, offsets, rep_zero, mail, seed, until, warmup, horizon)``: every replication
    initialised, advanced to ``until`` and finalised over offset views (tests/test_repview.py).

    The engine is compiled as the CUDA kernels compile it: the heap calendar, and no inlining in numba's
    IR (the CPU launchers' ``inline_jit``, which only changes how the CPU compiles the same model, took
    this compile from about a minute to two)."""
    replication_at = offset_views(counting)
    init_rep, advance_rep, finalize_rep = make_engine(device_jit(CPU), HEAP)

    @numba.njit(_nrt=False)  # the views count no references (kernels/repview.py)
    def run(line, wip, state, offsets, rep_zero, mail, seed, until, warmup, horizon):
        for r in range(state.rng.shape[0]):
            view = replication_at(state, offsets, r)
            init_rep(line, wip, view, seed, r, warmup, horizon)
            advance_rep(line, view, rep_zero, mail, until, warmup, horizon, 1 if r == 0 else 0)
            finalize_rep(view, warmup, horizon)

    return run


def fresh_state(compiled, replicas: int, horizon: float):
    from kernels.state import RepState, RepZero
    from twin.runner import _RepZeroBuffers, state_shapes

    # the largest lot table: this runner cannot grow one (twin.runner.advance_to), and the events are the same
    state = RepState(**{name: np.zeros((replicas, *shape), dtype)
                        for name, (shape, dtype) in state_shapes(compiled, compiled.lot_capacity).items()})
    buffers = _RepZeroBuffers(compiled, horizon, n_snap=int(horizon // 60) + 1, every=60.0)
    return state, RepZero(buffers.log, buffers.snap_t, buffers.snap_tool, buffers.snap_queue)


def count_accesses(compiled, days: float, seed: int = 1) -> dict:
    """``{"events": n, "per_event": {table: accesses per event}}`` for one replication over ``days``."""
    from kernels.layout import R_EVENTS

    horizon = days * 1440.0
    state, rep_zero = fresh_state(compiled, 1, horizon)
    offsets = counting_offsets(state)
    make_runner(counting=True)(compiled.static_tables(), compiled.wip, state, offsets, rep_zero, np.zeros(1),
                               np.uint64(seed), horizon, 0.0, horizon)
    events = int(state.rep_i[0, R_EVENTS])
    counts = offsets[0, ACCESSES:ACCESSES + N_TABLES]
    return {"events": events, "per_event": {name: float(n) / events for name, n in zip(STATE_FIELDS, counts)}}


def in_private_cache(module: str, argv) -> int:
    """Run ``python -m module argv`` in a child whose numba cache is its own, then discard the cache."""
    with tempfile.TemporaryDirectory(prefix="fabtwin-access-count-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, PRIVATE_CACHE: cache}
        given = sys.argv[1:] if argv is None else list(argv)
        return subprocess.run([sys.executable, "-m", module, *given], cwd=ROOT, env=env).returncode


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.access_count", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=2.0, help="simulated days (default 2)")
    parser.add_argument("--smt2020-dir", default=os.environ.get("FABTWIN_SMT2020_DIR"),
                        help="folder holding HVLM/ (default: $FABTWIN_SMT2020_DIR)")
    args = parser.parse_args(argv)
    if not args.smt2020_dir or not (Path(args.smt2020_dir) / "HVLM").is_dir():
        print(f"access_count: --smt2020-dir {args.smt2020_dir!r}: no HVLM/ folder there", file=sys.stderr)
        return 2
    if not args.days > 0:
        print(f"access_count: --days {args.days}: must be > 0", file=sys.stderr)
        return 2
    if os.environ.get(PRIVATE_CACHE) is None:
        return in_private_cache("benchmarks.access_count", argv)
    from twin.compile import compile_line
    from twin.smt2020 import load_smt2020

    compiled = compile_line(load_smt2020({"loader": "smt2020", "dataset": "HVLM", "data_dir": args.smt2020_dir}))
    found = count_accesses(compiled, args.days)
    per_event = found["per_event"]
    print(f"SMT2020 HVLM, {args.days:g} days, one replication: {found['events']:,} events, "
          f"{sum(per_event.values()):.1f} state element accesses per event")
    for name, n in sorted(per_event.items(), key=lambda item: -item[1]):
        print(f"  {name:13s} {n:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
