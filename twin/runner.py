"""Run many replications of a compiled line on a backend, chunk by chunk.

The runner owns memory and time: it allocates each chunk's state once, keeps
it on the device while the kernels advance simulated time segment by segment
(a progress bar between segments, no host copies inside), and copies only the
statistics back.  Replications are independent shards keyed by their global
index, so any chunk size gives the same numbers.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from kernels import layout as K
from kernels.rng import stream_count
from twin.backend import Backend
from twin.compile import MINUTES_PER_DAY, CompiledLine
from twin.errors import ConfigError

# Per-replication state: name -> (shape without the replication axis, dtype).
def state_shapes(c: CompiledLine) -> dict:
    T, L, G = c.n_tools, c.lot_capacity, len(c.group_names)
    S, NS = len(c.step_names), len(c.stream_names)
    return {
        "rng": ((stream_count(T, NS, L), 2), np.uint64),
        "rep_i": ((K.N_RI_STATE,), np.int64),
        "ht": ((c.heap_capacity,), np.float64),
        "hc": ((c.heap_capacity,), np.int64),
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
    }


STATE_ORDER = ("rng", "rep_i", "ht", "hc", "ti", "tf", "tlots", "li", "lf", "qi", "qf",
               "step_wafers", "step_defects", "s_i", "s_f", "ct_hist")
RESULT_FIELDS = ("rep_i", "ti", "tf", "qi", "qf", "step_defects", "s_i", "s_f", "ct_hist")


def bytes_per_replication(c: CompiledLine) -> int:
    return sum(int(np.prod(shape)) * np.dtype(dt).itemsize for shape, dt in state_shapes(c).values())


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
    stats: dict  # RESULT_FIELDS -> [R, ...] arrays
    lot_log: np.ndarray  # replication 0: structured array of completed lots
    snapshots: dict  # replication 0: time_days, tool_state, queue_lots
    wall_seconds: float = 0.0
    compile_seconds: float = 0.0
    interrupted: bool = False
    completed_replicas: int = 0
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
             segments: int = 20, progress: bool = False, first_replica: int = 0) -> RunResult:
    """Simulate ``replicas`` replications (global indices from ``first_replica`` on: a shard of a larger
    run gives the same numbers as those replications of the whole); KeyboardInterrupt keeps the finished chunks."""
    check_run_args(replicas, horizon_days, warmup_days)
    horizon = horizon_days * MINUTES_PER_DAY
    warmup = warmup_days * MINUTES_PER_DAY
    chunk = chunk_replicas or backend.chunk_size(bytes_per_replication(c), replicas)
    chunk = max(1, min(chunk, replicas))
    n_snap = int(horizon // snapshot_minutes) + 1 if snapshot_minutes > 0 else 0
    rep0 = _RepZeroBuffers(c, horizon, n_snap, snapshot_minutes)
    parts, done, interrupted = [], 0, False
    started = time.perf_counter()
    compile_seconds = backend.warm_up(c)
    bar = _progress(replicas * segments, progress)
    try:
        for first in range(0, replicas, chunk):
            n = min(chunk, replicas - first)
            parts.append(_run_chunk(c, backend, first_replica + first, n, seed, horizon, warmup, segments, rep0, bar))
            done += n
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
    if not parts:
        raise KeyboardInterrupt
    stats = {k: np.concatenate([p[k] for p in parts]) for k in RESULT_FIELDS}
    _raise_on_capacity(stats["rep_i"], c)
    return RunResult(
        compiled=c, replicas=done, horizon_days=horizon_days, warmup_days=warmup_days, seed=seed,
        backend=backend.name, device_name=backend.device_name, stats=stats,
        lot_log=rep0.lot_log(c, stats["rep_i"][0, K.R_LOG_N]), snapshots=rep0.snapshots(),
        wall_seconds=time.perf_counter() - started - compile_seconds, compile_seconds=compile_seconds,
        interrupted=interrupted, completed_replicas=done,
    )


def check_run_args(replicas, horizon_days, warmup_days):
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1:
        raise ConfigError("replicas", replicas, "must be an integer >= 1")
    for name, value in (("horizon_days", horizon_days), ("warmup_days", warmup_days)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(name, value, "must be a finite number of days >= 0")
    if horizon_days <= warmup_days:
        raise ConfigError("horizon_days", horizon_days, f"must be greater than warmup_days ({warmup_days})")


class _RepZeroBuffers:
    """Lot log and snapshots of replication 0 (tiny, written in place by the kernels)."""

    def __init__(self, c: CompiledLine, horizon: float, n_snap: int, every: float):
        expected = c.wip.shape[0] + sum(
            horizon / c.line.releases[s].interval_minutes if c.line.releases[s].kind != "conwip" else horizon / max(c.raw_process_minutes[s], 1.0) * c.line.releases[s].wip_cap
            for s in range(len(c.stream_names))
        )
        self.log = np.zeros((int(min(expected * 1.5 + 1024, 5_000_000)), K.N_LOG), np.float64)
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

    def snapshots(self) -> dict:
        n = self.n_snap
        return {"time_days": self.snap_t[:n] / MINUTES_PER_DAY, "tool_state": self.snap_tool[:n], "queue_lots": self.snap_queue[:n]}


def _run_chunk(c, backend, first, n, seed, horizon, warmup, segments, rep0, bar):
    shapes = state_shapes(c)
    state = {name: backend.zeros(n, *shapes[name]) for name in STATE_ORDER}
    static = backend.static(c)
    logs = backend.rep_zero(rep0, first == 0)
    launch = backend.launchers()
    launch.init_all(*static, backend.wip(c), *(state[k] for k in STATE_ORDER), logs[0], np.uint64(seed), first, warmup, horizon)
    for k in range(1, segments + 1):
        until = horizon * k / segments
        launch.advance_all(*static, *(state[name] for name in STATE_ORDER), *logs, first, until, warmup, horizon)
        backend.synchronize()
        if bar is not None:
            bar.update(n)
    launch.finalize_all(state["ti"], state["tf"], state["qi"], state["qf"], state["s_i"], state["s_f"], warmup, horizon)
    backend.copy_rep_zero(rep0, logs, first == 0)
    return {name: backend.to_host(state[name]) for name in RESULT_FIELDS}


def _raise_on_capacity(rep_i, c: CompiledLine):
    errors = rep_i[:, K.R_ERROR]
    if (errors == K.ERR_LOT_CAPACITY).any():
        raise ConfigError("max_lots", c.lot_capacity,
                          "WIP outgrew the lot table; the line is probably overloaded (utilisation >= 1). "
                          "Lower the release rate or raise max_lots")
    if (errors == K.ERR_HEAP_CAPACITY).any():
        raise ConfigError("max_lots", c.lot_capacity, "the event calendar overflowed; raise max_lots")


def _progress(total, enabled):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="rep-seg", desc="simulating", leave=False, dynamic_ncols=True)
