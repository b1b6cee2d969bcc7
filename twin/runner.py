"""Run many replications of a compiled line on a backend, chunk by chunk.

The runner owns memory and time: it allocates each chunk's state once, keeps
it on the device while the kernels advance simulated time segment by segment
(a progress bar between segments; between them only each replication's 72 bytes
of scalars come to the host, to see whether a lot table must grow), and copies
only the statistics back (the per-tool tables as per-group sums and one replication's
rows, :mod:`twin.tool_sums`).  Replications are independent shards keyed by
their global index, so any chunk size gives the same numbers.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kernels import layout as K
from kernels.calendar import calendar_sizes
from kernels.growth import grow_lot_table, table_slots, whole_slots
from kernels.queues import queue_block_count
from kernels.rng import stream_count
from kernels.state import STATE_FIELDS, RepState
from twin.backend import Backend, array_module
from twin.compile import MINUTES_PER_DAY, CompiledLine
from twin.errors import ConfigError
from twin.tool_sums import GROUP_FIELDS, REP0_FIELDS, group_shapes, rep0_bytes
from twin.tool_sums import to_host as tools_to_host

def state_shapes(c: CompiledLine, lot_slots: int = 0) -> dict:
    """Per-replication state: name -> (shape without the replication axis, dtype), for a lot table of
    ``lot_slots`` slots (0: the table a chunk starts with, ``c.lot_slots``; kernels/growth.py)."""
    T, L, G = c.n_tools, lot_slots or c.lot_slots, len(c.group_names)
    S, NS = len(c.step_names), len(c.stream_names)
    return {
        "rng": ((stream_count(T, NS, L), 2), np.uint64),
        "rep_i": ((K.N_RI_STATE,), np.int64),
        "ht": ((calendar_sizes(c.calendar_capacity(L))[0],), np.float64),
        "hc": ((calendar_sizes(c.calendar_capacity(L))[1],), np.int64),
        "ti": ((T, K.N_TI), np.int32),
        "tf": ((T, K.N_TF), np.float64),
        "tlots": ((T, c.max_batch_lots), np.int32),
        "li": ((L, K.N_LI), np.int32),
        "lf": ((L, K.N_LF), np.float64),
        "qi": ((G, K.N_QI), np.int32),
        "qf": ((G, K.N_QF), np.float64),
        "step_wafers": ((S,), np.int32),
        "step_defects": ((S,), np.float64),
        "s_i": ((NS, K.N_SI_STATE), np.int64),
        "s_f": ((NS, K.N_SF_STATE), np.float64),
        "ct_hist": ((NS, K.N_CT_BINS), np.float64),
        "qb": ((queue_block_count(L, G), K.N_QB), np.int32),
    }


STATE_ORDER = STATE_FIELDS  # the per-replication bundle's fields (kernels/state.py)
# State tables copied to the host as they are at a chunk's end, and the per-replication results: those
# plus the per-group sums of the per-tool tables (twin.tool_sums).  REP0_FIELDS (replication 0's per-tool
# rows) are kept once per run, not per replication.
COPIED_FIELDS = ("rep_i", "qi", "qf", "step_defects", "s_i", "s_f", "ct_hist")
RESULT_FIELDS = ("rep_i", *GROUP_FIELDS, "qi", "qf", "step_defects", "s_i", "s_f", "ct_hist")


def result_shapes(c: CompiledLine) -> dict:
    """Per-replication results: name -> (shape without the replication axis, dtype), in RESULT_FIELDS order."""
    shapes = {**state_shapes(c), **group_shapes(c)}
    return {name: shapes[name] for name in RESULT_FIELDS}


def result_bytes_per_replication(c: CompiledLine) -> int:
    return sum(int(np.prod(shape, dtype=np.float64)) * np.dtype(dt).itemsize for shape, dt in result_shapes(c).values())


def bytes_per_replication(c: CompiledLine, lot_slots: int = 0) -> int:
    """State bytes of one replication with ``lot_slots`` lot slots (0: as a chunk starts)."""
    return sum(int(np.prod(shape)) * np.dtype(dt).itemsize for shape, dt in state_shapes(c, lot_slots).values())


@dataclass
class RunResult:
    """Statistics of every replication (replication axis first) plus replication 0's traces."""

    compiled: CompiledLine
    replicas: int
    horizon_days: float
    warmup_days: float
    seed: int
    backend: str
    device_name: str
    stats: dict  # RESULT_FIELDS -> [R, ...] arrays; REP0_FIELDS -> replication 0's per-tool rows [tools, ...]
    lot_log: np.ndarray  # replication 0: structured array of completed lots
    snapshots: dict  # replication 0: time_days, tool_state, queue_lots
    wall_seconds: float = 0.0
    compile_seconds: float = 0.0
    interrupted: bool = False
    completed_replicas: int = 0
    planned_replicas: int = 0  # what was asked; more than ``replicas`` after an interrupt
    planned_horizon_days: float = 0.0  # more than ``horizon_days`` when an interrupt cut every replication short
    lot_slots: int = 0  # the lot table the run grew to (it starts at ``compiled.lot_slots``; kernels/growth.py)
    extra: dict = field(default_factory=dict)

    @property
    def line(self):
        return self.compiled.line

    @property
    def events(self) -> int:
        return int(self.stats["rep_i"][:, K.R_EVENTS].sum())

    # Views used by the yield report and other consumers.
    @property
    def step_names(self):
        return self.compiled.step_names

    @property
    def group_names(self):
        return self.compiled.group_names

    @property
    def stream_names(self):
        return self.compiled.stream_names

    @property
    def stream_product(self):
        return self.compiled.stream_product

    @property
    def step_defect_wafers(self):
        return self.stats["step_defects"]

    @property
    def group_defect_wafers(self):
        return self.stats["qf"][:, :, K.QF_DEFECT_WAFERS]

    @property
    def stream_good_dies(self):
        return self.stats["s_f"][:, :, K.SS_GOOD_DIES]

    @property
    def stream_wafers_done(self):
        return self.stats["s_f"][:, :, K.SS_WAFERS_DONE]


LOT_LOG_DTYPE = np.dtype([
    ("stream", np.int32), ("product", np.int32), ("release_min", np.float64), ("done_min", np.float64),
    ("due_min", np.float64), ("priority", np.int32), ("wafers", np.int32), ("defect_density", np.float64),
])


def run_line(c: CompiledLine, replicas: int, horizon_days: float, warmup_days: float, seed: int,
             backend: Backend, chunk_replicas: int = 0, snapshot_minutes: float = 240.0,
             segments: int = 0, progress: bool = False, checkpoint: "Checkpoint | None" = None,
             stop=None, first_replica: int = 0) -> RunResult:
    """Simulate ``replicas`` replications, keeping finished work through interrupts.

    Replications have global indices from ``first_replica`` on: a shard of a
    larger run gives the same numbers as those replications of the whole.

    ``segments`` (0: one per simulated day) splits the horizon; the progress bar
    moves after each launch (one segment or several: :func:`_segment_ends`).
    ``stop()`` (when given) is asked at every segment boundary: once it says
    True the run saves its checkpoint and ends there, like a KeyboardInterrupt
    between chunks.  ``checkpoint`` saves progress at segment boundaries and,
    when it holds a saved run, continues that run where it stopped.
    """
    check_run_args(replicas, horizon_days, warmup_days)
    horizon = horizon_days * MINUTES_PER_DAY
    warmup = warmup_days * MINUTES_PER_DAY
    chunk = default_chunk(c, backend, replicas, chunk_replicas)
    n_snap = rep_zero_sizes(c, horizon, snapshot_minutes)[1]
    rep0 = _RepZeroBuffers(c, horizon, n_snap, snapshot_minutes)
    run = _Progress(c, backend, rep0, checkpoint, stop or (lambda: False))
    saved = checkpoint.restore(run) if checkpoint is not None else None
    chunk = saved["chunk"] if saved else chunk
    compile_seconds = backend.warm_up(c)
    segments = segments or segment_count(horizon_days)
    started = run.started = time.perf_counter() - run.wall_before
    bar = _progress(replicas * horizon_days, progress)
    if bar is not None and run.done:
        bar.update(run.done * horizon_days)
    interrupted, cut = False, None
    try:
        for first in range(run.done, replicas, chunk):
            n = min(chunk, replicas - first)
            state = saved["state"] if saved and saved["first"] == first else None
            start = saved["segment"] if state is not None else 0
            run.finish_chunk(_run_chunk(c, backend, first_replica + first, n, seed, horizon, warmup, segments, rep0, bar,
                                        saved_state=state, start_segment=start, boundary=run.boundary,
                                        lot_slots=run.lot_slots))
    except KeyboardInterrupt:
        interrupted = True
    except _Stopped as stopped:
        interrupted, cut = True, stopped
    finally:
        if bar is not None:
            bar.close()
    if run.done == 0 and cut is not None and cut.until > warmup:
        return _cut_short(c, backend, rep0, cut, replicas, horizon_days, warmup_days, seed, started, compile_seconds)
    if run.done == 0:
        raise KeyboardInterrupt
    stats = run.stats()
    _raise_on_capacity(stats["rep_i"], c, stats["s_i"])
    return RunResult(
        compiled=c, replicas=run.done, horizon_days=horizon_days, warmup_days=warmup_days, seed=seed,
        backend=backend.name, device_name=backend.device_name, stats=stats,
        lot_log=rep0.lot_log(c, stats["rep_i"][0, K.R_LOG_N]), snapshots=rep0.snapshots(),
        wall_seconds=time.perf_counter() - started, compile_seconds=compile_seconds,
        interrupted=interrupted, completed_replicas=run.done, planned_replicas=replicas,
        planned_horizon_days=horizon_days, lot_slots=run.lot_slots,
    )


def default_chunk(c: CompiledLine, backend: Backend, replicas: int, chunk_replicas: int = 0) -> int:
    """Replications per launch: what fits memory, and on the CPU a quarter of a large run.

    Splitting lets an interrupt keep whole, finished replications.  A CPU chunk
    keeps at least four replications per thread, so threads rarely wait for one
    slow replication at the segment barriers; a GPU needs width, so there (and
    for small runs) an interrupt keeps the running chunk cut at a boundary.
    """
    if chunk_replicas:
        return max(1, min(chunk_replicas, replicas))
    fit = max(1, min(backend.chunk_size(bytes_per_replication(c), replicas), replicas))
    if backend.name != "cpu":
        return fit
    threads = max(1, int(getattr(backend, "threads", 1) or 1))
    quarter = -(-math.ceil(replicas / 4) // threads) * threads
    return max(1, min(fit, max(4 * threads, quarter)))


class _Stopped(Exception):
    """A stop was requested at a segment boundary; carries the chunk's state there."""

    def __init__(self, first, n, segment, until, state):
        super().__init__("stopped")
        self.first, self.n, self.segment, self.until, self.state = first, n, segment, until, state


class _Progress:
    """What a run has finished so far, and what it does at each segment boundary."""

    def __init__(self, c, backend, rep0, checkpoint, stop):
        self.c, self.backend, self.rep0, self.checkpoint, self.stop = c, backend, rep0, checkpoint, stop
        self.parts: list[dict] = []
        self.done = 0
        self.lot_slots = c.lot_slots  # a chunk starts with the lot table the last one grew to
        self.wall_before = 0.0  # simulation seconds of the run this one continues
        self.started = time.perf_counter()

    def stats(self) -> dict:
        stats = {k: np.concatenate([p[k] for p in self.parts]) for k in RESULT_FIELDS}
        stats.update({k: self.parts[0][k] for k in REP0_FIELDS})  # the first chunk holds the first replication
        return stats

    def finish_chunk(self, part: dict):
        self.lot_slots = max(self.lot_slots, part.pop("lot_slots"))
        self.parts.append(part)
        self.done += len(part["rep_i"])
        stopping = self.stop()
        if self.checkpoint is not None and (stopping or self.checkpoint.due()):
            self.checkpoint.save(self, None)
        if stopping:
            raise _Stopped(self.done, 0, 0, 0.0, None)

    def boundary(self, first, n, segment, until, state, logs):
        """After segment ``segment`` of the chunk at ``first``: checkpoint when due, stop when asked."""
        stopping = self.stop()
        if not stopping and (self.checkpoint is None or not self.checkpoint.due()):
            return
        self.backend.copy_rep_zero(self.rep0, logs, first == 0)
        host = {name: np.asarray(self.backend.to_host(a)) for name, a in state.items()}
        if self.checkpoint is not None:
            self.checkpoint.save(self, dict(first=first, n=n, segment=segment, state=host))
        if stopping:
            raise _Stopped(first, n, segment, until, host)


def _cut_short(c, backend, rep0, cut, replicas, horizon_days, warmup_days, seed, started, compile_seconds):
    """Nothing finished: report every replication of the first chunk up to the last boundary it reached."""
    state = {name: backend.from_host(a.copy()) for name, a in cut.state.items()}
    launch = backend.launchers()
    horizon = cut.until
    launch.finalize_all(RepState(**state), warmup_days * MINUTES_PER_DAY, horizon)
    stats = _results(c, backend, state, cut.n)
    _raise_on_capacity(stats["rep_i"], c, stats["s_i"])
    snaps = rep0.snapshots()
    keep = snaps["time_days"] <= horizon / MINUTES_PER_DAY
    snaps = {k: v[keep] for k, v in snaps.items()}
    return RunResult(
        compiled=c, replicas=cut.n, horizon_days=horizon / MINUTES_PER_DAY, warmup_days=warmup_days, seed=seed,
        backend=backend.name, device_name=backend.device_name, stats=stats,
        lot_log=rep0.lot_log(c, stats["rep_i"][0, K.R_LOG_N]), snapshots=snaps,
        wall_seconds=time.perf_counter() - started, compile_seconds=compile_seconds,
        interrupted=True, completed_replicas=0, planned_replicas=replicas, planned_horizon_days=horizon_days,
        lot_slots=table_slots(state),
    )


CHECKPOINT_VERSION = 2  # 2: finished replications keep per-group sums of the per-tool tables


class Checkpoint:
    """A run's progress in one file, replaced atomically at segment boundaries.

    It holds the finished replications' statistics, replication 0's lot log and
    snapshots, and the whole state of the chunk in flight (the RNG state is part
    of it), so continuing from it gives exactly the numbers of an uninterrupted
    run.  ``key`` hashes everything the numbers depend on; a different key is
    refused.  Saves are spaced by ``every_seconds`` and by ten times the last
    save's cost, so checkpoints never take more than a tenth of the run.
    """

    def __init__(self, path, key: str, settings: dict, every_seconds: float = 60.0, resume: bool = False):
        self.path, self.key, self.settings = Path(path), key, settings
        self.every, self.resume = every_seconds, resume
        self.last, self.cost = time.monotonic(), 0.0
        self.saves = 0

    def due(self) -> bool:
        """``every_seconds`` 0 saves at every boundary (tests, tiny runs)."""
        if math.isinf(self.every):
            return False
        if self.every <= 0:
            return True
        return time.monotonic() - self.last >= max(self.every, 10.0 * self.cost)

    def save(self, run: "_Progress", in_flight: dict | None) -> None:
        from twin.rundir import atomic_open

        began = time.monotonic()
        arrays = {f"rep0_{k}": v for k, v in run.rep0.arrays(_log_rows(run, in_flight)).items()}
        if run.parts:
            arrays.update({f"done_{k}": v for k, v in run.stats().items()})
        meta = {"version": CHECKPOINT_VERSION, "key": self.key, "settings": self.settings, "done": run.done,
                "in_flight": None, "wall_seconds": time.perf_counter() - run.started}
        if in_flight is not None:
            meta["in_flight"] = {k: in_flight[k] for k in ("first", "n", "segment")}
            arrays.update({f"state_{k}": v for k, v in in_flight["state"].items()})
        meta["chunk"] = in_flight["n"] if in_flight is not None else (len(run.parts[-1]["rep_i"]) if run.parts else 0)
        try:
            with atomic_open(self.path, "wb") as f:
                np.savez(f, meta=np.array(json.dumps(meta)), **arrays)
        except OSError as err:  # a full disk must not end the run: its results are still written (or rescued)
            self.every = math.inf
            print(f"\ncheckpoint: could not write {self.path} ({err.strerror or err}); continuing without checkpoints",
                  file=sys.stderr)
            return
        self.saves += 1
        self.last = time.monotonic()
        self.cost = self.last - began

    def restore(self, run: "_Progress") -> dict | None:
        """Load a saved run into ``run``; returns the chunk in flight (or None without a checkpoint)."""
        if not (self.resume and self.path.is_file()):
            return None
        data = self.load()
        self._data = None
        meta = data["meta"]
        run.wall_before = float(meta.get("wall_seconds", 0.0))
        done = meta["done"]
        if done:
            run.parts = [{k: data[f"done_{k}"] for k in (*RESULT_FIELDS, *REP0_FIELDS)}]
            run.done = done
        run.rep0.restore({k[5:]: v for k, v in data.items() if k.startswith("rep0_")})
        flight = meta["in_flight"]
        out = {"chunk": meta["chunk"] or 1, "first": -1, "segment": 0, "state": None}
        if flight is not None:
            out.update(first=flight["first"], segment=flight["segment"],
                       state={k[6:]: v for k, v in data.items() if k.startswith("state_")})
        return out

    def load(self) -> dict:
        """Read and check the checkpoint (kept in memory until ``restore`` takes it)."""
        from twin.errors import ConfigError

        if getattr(self, "_data", None) is not None:
            return self._data
        try:
            with np.load(self.path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            meta = json.loads(str(data.pop("meta")))
        except (OSError, ValueError, KeyError) as err:
            raise ConfigError("resume", True, f"{self.path} is unreadable ({err}); delete it to start afresh") from None
        if meta.get("version") != CHECKPOINT_VERSION or meta.get("key") != self.key:
            raise ConfigError("resume", True, f"{self.path} belongs to a different run ({self._difference(meta)}); "
                                              "resume with the same settings, or run into another folder")
        data["meta"] = meta
        self._data = data
        return data

    def _difference(self, meta) -> str:
        old = meta.get("settings") or {}
        for k, v in self.settings.items():
            if old.get(k) != v:
                return f"it has {k}={old.get(k)!r}, this run {k}={v!r}"
        return "the line's content or the engine changed"

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _log_rows(run: "_Progress", in_flight: dict | None) -> int:
    """Rows of replication 0's lot log written so far (its cursor lives in rep_i)."""
    if run.parts:
        rep_i = run.parts[0]["rep_i"]
    elif in_flight is not None and in_flight["first"] == 0:
        rep_i = in_flight["state"]["rep_i"]
    else:
        return 0
    return int(min(rep_i[0, K.R_LOG_N], run.rep0.log.shape[0]))


def checkpoint_key(c: CompiledLine, backend_name: str, replicas: int, horizon_days: float, warmup_days: float,
                   seed: int, snapshot_minutes: float, segments: int = 0) -> tuple[str, dict]:
    """What a run's numbers depend on: the compiled tables, the run settings, the engine's source."""
    h = hashlib.sha256()
    for a in (*c.static_tables(), c.wip):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    for name, (shape, dt) in state_shapes(c).items():
        h.update(f"{name}{shape}{np.dtype(dt)}".encode())
    for src in sorted((Path(__file__).resolve().parents[1] / "kernels").glob("*.py")):
        h.update(src.read_bytes())
    settings = {"line": c.line.name, "backend": backend_name, "replicas": replicas, "horizon_days": horizon_days,
                "warmup_days": warmup_days, "seed": seed, "snapshot_minutes": snapshot_minutes, "segments": segments}
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()[:24], settings


def checkpoint_bytes(c: CompiledLine, backend: Backend, replicas: int, chunk_replicas: int = 0) -> int:
    """An upper bound on one checkpoint file: a chunk's state, every replication's statistics, rep 0's log."""
    chunk = default_chunk(c, backend, replicas, chunk_replicas)
    return chunk * bytes_per_replication(c) + replicas * result_bytes_per_replication(c) + rep0_bytes(c)


def check_run_args(replicas, horizon_days, warmup_days):
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1:
        raise ConfigError("replicas", replicas, "must be an integer >= 1")
    for name, value in (("horizon_days", horizon_days), ("warmup_days", warmup_days)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(name, value, "must be a finite number of days >= 0")
    if horizon_days <= warmup_days:
        raise ConfigError("horizon_days", horizon_days, f"must be greater than warmup_days ({warmup_days})")


def log_rows(c: CompiledLine, horizon: float) -> int:
    """Rows of replication 0's lot log: the lots it can complete by ``horizon`` minutes, with margin."""
    expected = c.wip.shape[0] + sum(
        horizon / c.line.releases[s].interval_minutes if c.line.releases[s].kind != "conwip" else horizon / max(c.raw_process_minutes[s], 1.0) * c.line.releases[s].wip_cap
        for s in range(len(c.stream_names))
    )
    return int(min(expected * 1.5 + 1024, 5_000_000))


def rep_zero_sizes(c: CompiledLine, horizon: float, snapshot_minutes: float) -> tuple[int, int]:
    """Rows of replication 0's lot log and number of snapshots (twin.sanity sizes a run with them)."""
    n_snap = int(horizon // snapshot_minutes) + 1 if snapshot_minutes > 0 else 0
    return log_rows(c, horizon), n_snap


class _RepZeroBuffers:
    """Lot log and snapshots of replication 0 (tiny, written in place by the kernels)."""

    def __init__(self, c: CompiledLine, horizon: float, n_snap: int, every: float):
        self.log = np.zeros((log_rows(c, horizon), K.N_LOG), np.float64)
        self.snap_t = np.arange(max(n_snap, 1), dtype=np.float64) * every if n_snap else np.full(1, np.inf)
        self.snap_tool = np.zeros((self.snap_t.size, c.n_tools), np.int8)
        self.snap_queue = np.zeros((self.snap_t.size, len(c.group_names)), np.int32)
        self.n_snap = n_snap

    def lot_log(self, c: CompiledLine, n) -> np.ndarray:
        rows = self.log[: min(int(n), self.log.shape[0])]
        out = np.zeros(rows.shape[0], LOT_LOG_DTYPE)
        out["stream"] = rows[:, K.LOG_STREAM]
        out["product"] = c.stream_product[out["stream"]] if rows.size else []
        out["release_min"] = rows[:, K.LOG_RELEASE]
        out["done_min"] = rows[:, K.LOG_DONE]
        out["due_min"] = rows[:, K.LOG_DUE]
        out["priority"] = rows[:, K.LOG_PRIORITY]
        out["wafers"] = rows[:, K.LOG_WAFERS]
        out["defect_density"] = rows[:, K.LOG_DEFECTS]
        return out

    def arrays(self, log_rows: int) -> dict:
        """The buffers as they stand, for a checkpoint (the lot log up to its cursor)."""
        return {"log": self.log[:log_rows], "snap_t": self.snap_t, "snap_tool": self.snap_tool,
                "snap_queue": self.snap_queue}

    def restore(self, saved: dict) -> None:
        log = saved["log"]
        self.log[: log.shape[0]] = log
        for name in ("snap_t", "snap_tool", "snap_queue"):
            getattr(self, name)[...] = saved[name]

    def snapshots(self) -> dict:
        n = self.n_snap
        return {"time_days": self.snap_t[:n] / MINUTES_PER_DAY, "tool_state": self.snap_tool[:n], "queue_lots": self.snap_queue[:n]}


def _run_chunk(c, backend, first, n, seed, horizon, warmup, segments, rep0, bar, *,
               saved_state=None, start_segment=0, boundary=None, lot_slots=0):
    """One chunk from t = 0 (or from a checkpoint's state after ``start_segment``) to the horizon, its
    lot table starting at ``lot_slots`` slots (0: ``c.lot_slots``); its results say what it grew to."""
    shapes = state_shapes(c, lot_slots)
    static = backend.static(c)
    logs = backend.rep_zero(rep0, first == 0)
    launch = backend.launchers()
    if saved_state is None:
        state = {name: backend.zeros(n, *shapes[name]) for name in STATE_ORDER}
        launch.init_all(static, backend.wip(c), RepState(**state), np.uint64(seed), first, warmup, horizon)
    else:
        state = {name: backend.from_host(saved_state[name]) for name in STATE_ORDER}
    previous = horizon * start_segment / segments
    if bar is not None and start_segment:
        bar.update(n * previous / MINUTES_PER_DAY)
    for k, until in _segment_ends(horizon, segments, start_segment):
        advance_to(c, backend, launch, static, state, logs, first, until, warmup, horizon)
        if bar is not None:  # the host knows the segment's clock: the bar copies nothing from the device
            bar.set_postfix_str(f"day {until / MINUTES_PER_DAY:,.0f} of {horizon / MINUTES_PER_DAY:,.0f}", refresh=False)
            bar.update(n * (until - previous) / MINUTES_PER_DAY)
            previous = until
        if boundary is not None and k < segments:
            boundary(first, n, k, until, state, logs)
    launch.finalize_all(RepState(**state), warmup, horizon)
    backend.copy_rep_zero(rep0, logs, first == 0)
    return {**_results(c, backend, state, n), "lot_slots": table_slots(state)}


GROWTH = 1.5  # a lot table that ran short grows by half (whole multiples of 32 slots), up to c.lot_capacity


def advance_to(c, backend, launch, static, state: dict, logs, first, until, warmup, horizon) -> None:
    """Advance every replication of a chunk to ``until``. A replication whose release found the lot table
    full paused before it (``ERR_LOT_ROOM``); the table of the whole chunk then grows and the launch is
    repeated, which runs the paused replications on from their release and leaves the others where they
    are. At ``c.lot_capacity`` slots a paused replication stops for good (``ERR_LOT_CAPACITY``, reported
    when the run ends). ``state`` (name -> array) is updated in place."""
    while True:
        launch.advance_all(static, RepState(**state), logs, first, until, warmup, horizon)
        backend.synchronize()
        rep_i = np.array(backend.to_host(state["rep_i"]))  # 72 bytes a replication
        paused = rep_i[:, K.R_ERROR] == K.ERR_LOT_ROOM
        if not paused.any():
            return
        slots = table_slots(state)
        if slots >= c.lot_capacity:
            rep_i[paused, K.R_ERROR] = K.ERR_LOT_CAPACITY
            state["rep_i"] = backend.from_host(rep_i)
            return
        rep_i[paused, K.R_ERROR] = K.ERR_NONE
        grown = min(c.lot_capacity, whole_slots(slots * GROWTH))
        state.update(_grown_state(c, backend, state, rep_i, grown))


def _grown_state(c, backend, state, rep_i, slots) -> dict:
    """The chunk's lot-sized arrays for ``slots`` lot slots (on a GPU with CuPy, grown on the device) and
    ``rep_i`` with the new free-list heads."""
    names = ("li", "lf", "rng", "ht", "hc", "qb")
    xp = array_module(backend)
    on_device = xp is not np
    try:
        arrays = {name: xp.asarray(state[name]) if on_device else np.asarray(backend.to_host(state[name]))
                  for name in names}
        grown = grow_lot_table(xp, arrays, rep_i, slots, queue_block_count(slots, len(c.group_names)),
                               c.calendar_capacity(slots))
        out = {name: backend.adopt(grown[name]) if on_device else backend.from_host(grown[name]) for name in names}
    except MemoryError:
        from twin.sanity import _gib

        need = rep_i.shape[0] * bytes_per_replication(c, slots)
        raise ConfigError("chunk_replicas", rep_i.shape[0],
                          f"the lot table had to grow to {slots} slots ({_gib(need)} of state for the chunk) "
                          "and the memory ran out; set chunk_replicas smaller or max_lots lower") from None
    out["rep_i"] = backend.from_host(rep_i)
    return out


def _results(c, backend, state, n) -> dict:
    """What a finished chunk sends to the host: its statistics, the per-tool tables reduced on the device."""
    out = {name: backend.to_host(state[name]) for name in COPIED_FIELDS}
    out.update(tools_to_host(c, backend, state, n))
    return out


def _raise_on_capacity(rep_i, c: CompiledLine, s_i):
    errors = rep_i[:, K.R_ERROR]
    if (errors == K.ERR_LOT_CAPACITY).any():
        from twin.sanity import capacity_diagnosis

        raise ConfigError("max_lots", c.lot_capacity, capacity_diagnosis(c, rep_i, s_i))
    if (errors == K.ERR_HEAP_CAPACITY).any():
        raise ConfigError("max_lots", c.lot_capacity, "the event calendar overflowed; raise max_lots")
    if (errors == K.ERR_ROW_WIDTH).any():
        raise RuntimeError("the engine's state arrays do not have kernels/layout.py's row widths (a state "
                           "saved by another version of the kernels?); nothing was simulated")
    if (errors == K.ERR_QUEUE_BLOCKS).any():  # kernels/queues.py sizes the blocks so that this cannot happen
        raise RuntimeError("the group queues ran out of queue blocks, which kernels.queues.queue_block_count "
                           "rules out: a defect in the queue code")


SEGMENT_DAYS = 1.0  # segment ends fall on whole simulated days
MAX_SEGMENTS = 20_000  # past this, segments grow longer than a day
SEGMENT_TARGET_SECONDS = 0.5  # launch as many days at once as take about this long


def segment_count(horizon_days: float) -> int:
    """Day-long segments of the horizon (fewer, longer ones for very long horizons)."""
    return int(min(max(math.ceil(horizon_days / SEGMENT_DAYS), 1), MAX_SEGMENTS))


def _segment_ends(horizon: float, count: int, start: int = 0):
    """Ends of the launches, on segment boundaries: one day first, then as many days per launch as take
    about SEGMENT_TARGET_SECONDS (doubling or halving).

    A slow line moves the bar every simulated day from the first seconds; a fast one does not pay a
    launch, a device sync and a barrier of all threads per day (on a loaded CPU each barrier waits for a
    descheduled thread). Results do not depend on where segments end (tests/test_progress.py).
    Yields ``(segment index, end time)``; a resumed chunk starts after segment ``start``.
    """
    done, step = start, 1
    while done < count:
        done = min(done + step, count)
        started = time.perf_counter()
        yield done, horizon * done / count
        took = time.perf_counter() - started
        if took < SEGMENT_TARGET_SECONDS / 2:
            step *= 2
        elif took > 2 * SEGMENT_TARGET_SECONDS:
            step = max(1, step // 2)


def _progress(total, enabled):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit=" replication-days", unit_scale=True, desc="simulating", leave=False,
                dynamic_ncols=True)
