"""Is a valid line also a runnable one?  Checked from the compiled tables, before any allocation.

A line can pass every field check and still be hopeless: a PM every 1e-6
minutes (an event storm), a release every microsecond, a million replications
of a large line.  This module estimates what a run will ask of the machine
from the line alone:

- :func:`expected_processings`: how often a lot is processed at each step of
  its route (sampling and rework loops, solved as an absorbing Markov chain);
- :func:`offered_loads`: the work each tool group is offered per minute of its
  available time (the utilisation a stable line would show);
- :func:`events_per_day`: the events one replication handles per simulated day;
- :func:`memory_needed`: host and device bytes of a run, per part;

and :func:`check_run` refuses, in one line that says what to lower, a run
past the bounds below.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from twin.errors import ConfigError

MINUTES_PER_DAY = 1440.0
# The CPU engine handles some 5-20 million events a second per core; 2e8 events per simulated day is
# 10-40 s of one core per replication-day, a 60-day run of 8 replications takes hours.  The largest
# SMT2020 line needs about 1e6 (docs/line-schema.md, "Limits").
MAX_EVENTS_PER_DAY = 2e8
HOST_MEMORY_SHARE = 0.8  # of the memory available now: leave room for Python, numba and the yield report
EVENTS_PER_VISIT = 3.0  # arrive, (setup end), processing end


def expected_processings(product) -> np.ndarray:
    """Mean number of times a lot is processed at each route step (1 without sampling or rework).

    Position k is passed once per visit; it is processed with probability
    ``sampling`` and then loops back to ``rework.to_step`` with probability
    ``rework.prob``.  A rework-once step is modelled by the geometric loop with
    the same mean number of reworks (q / (1 - q) = p).
    """
    n = len(product.route)
    leave = np.zeros((n, n))
    for k, step in enumerate(product.route):
        p = step.rework_prob if step.rework_to else 0.0
        q = p / (1.0 + p) if step.rework_once else p
        back = step.sampling * q
        if back > 0.0:
            leave[k, step.rework_to - 1] += back
        if k + 1 < n:
            leave[k, k + 1] += 1.0 - back
    start = np.zeros(n)
    start[0] = 1.0
    with np.errstate(all="ignore"):
        try:
            visits = np.linalg.solve((np.eye(n) - leave).T, start)
        except np.linalg.LinAlgError:
            return np.full(n, np.inf)
    visits = np.where(np.isfinite(visits) & (visits >= 0), visits, np.inf)
    return visits * np.array([s.sampling for s in product.route])


def lots_per_minute(c) -> np.ndarray:
    """Release rate of each stream; a CONWIP stream at most wip_cap lots per raw process time."""
    rates = []
    for s, rel in enumerate(c.line.releases):
        if rel.kind == "conwip":
            rates.append(rel.wip_cap / max(float(c.raw_process_minutes[s]), 1e-9))
        else:
            rates.append(1.0 / rel.interval_minutes)
    return np.array(rates)


def _busy_minutes(step, lot_size) -> float:
    """Tool minutes one lot takes at ``step`` (a full batch shares its time over its lots)."""
    if step.cascade_interval > 0:
        return step.cascade_interval * (lot_size if step.cascade_per == "wafer" else 1)
    t = step.time.mean
    if step.per == "wafer":
        return t * lot_size
    if step.per == "batch":
        return t * lot_size / max(step.batch_max, lot_size)
    return t


def availability(group) -> float:
    """Share of calendar time a tool of ``group`` is up: failures (MTTF, MTTR) and time-based PMs."""
    down = 0.0
    if group.failure is not None:
        down += group.failure.repair.mean / (group.failure.ttf.mean + group.failure.repair.mean)
    for pm in group.pms:
        if math.isfinite(pm.every_minutes):
            down += pm.duration.mean / (pm.every_minutes + pm.duration.mean)
    return max(1.0 - down, 1e-12)


def offered_loads(c) -> dict:
    """Group name -> work offered per available tool-minute (load/unload included, setups not)."""
    rates = lots_per_minute(c)
    work = {g.name: 0.0 for g in c.line.tool_groups}
    groups = {g.name: g for g in c.line.tool_groups}
    for s, rel in enumerate(c.line.releases):
        product = c.line.products[c.line.product_index(rel.product)]
        visits = expected_processings(product)
        for k, step in enumerate(product.route):
            g = groups[step.group]
            per_job = g.load_minutes + g.unload_minutes
            work[step.group] += rates[s] * visits[k] * (_busy_minutes(step, rel.lot_size) + per_job)
    return {name: work[name] / (groups[name].tools * availability(groups[name])) for name in work}


def events_per_day(c) -> dict:
    """Events one replication handles per simulated day, by source (an estimate within a small factor)."""
    rates = lots_per_minute(c)
    visits = 0.0
    wafers_at = {g.name: 0.0 for g in c.line.tool_groups}
    jobs_at = dict(wafers_at)
    for s, rel in enumerate(c.line.releases):
        product = c.line.products[c.line.product_index(rel.product)]
        n = expected_processings(product)
        visits += rates[s] * float(np.sum(n))
        for k, step in enumerate(product.route):
            lots_per_job = max(1.0, step.batch_max / rel.lot_size) if step.is_batch else 1.0
            wafers_at[step.group] += rates[s] * n[k] * rel.lot_size
            jobs_at[step.group] += rates[s] * n[k] / lots_per_job
    pm = failures = 0.0
    for g in c.line.tool_groups:
        for p in g.pms:
            if math.isfinite(p.every_minutes):
                pm += 2.0 * g.tools / p.every_minutes
            else:  # at most one PM per job: the pending bit is checked when a job ends
                pm += 2.0 * min(jobs_at[g.name], wafers_at[g.name] / p.every_wafers)
        if g.failure is not None:
            failures += 2.0 * g.tools / g.failure.ttf.mean
    per_minute = {"releases": float(np.sum(rates)), "lot visits": EVENTS_PER_VISIT * visits, "PMs": pm, "failures": failures}
    return {k: v * MINUTES_PER_DAY for k, v in per_minute.items()}


# ----------------------------------------------------------------------------- memory


@dataclass(frozen=True)
class MemoryNeed:
    """Bytes of one run, by part; ``host`` and ``device`` are the totals on each side."""

    state_per_replication: int
    results_per_replication: int
    chunk: int
    replicas: int
    snapshots: int
    lot_log: int
    on_gpu: bool

    @property
    def device(self) -> int:
        return self.chunk * self.state_per_replication + self.snapshots + self.lot_log

    @property
    def host(self) -> int:
        results = self.replicas * self.results_per_replication + self.snapshots + self.lot_log
        return results + (0 if self.on_gpu else self.chunk * self.state_per_replication)


def memory_needed(c, replicas: int, horizon_days: float, snapshot_minutes: float, chunk: int, on_gpu: bool) -> MemoryNeed:
    """What :func:`twin.runner.run_line` allocates for this run (before it allocates it)."""
    from kernels import layout as K
    from twin.runner import bytes_per_replication, rep_zero_sizes, result_bytes_per_replication
    from twin.tool_sums import rep0_bytes

    results = result_bytes_per_replication(c)
    log_rows, n_snap = rep_zero_sizes(c, horizon_days * MINUTES_PER_DAY, snapshot_minutes)
    snapshots = n_snap * (8 + c.n_tools + 4 * len(c.group_names)) + rep0_bytes(c)  # and replication 0's tool rows
    return MemoryNeed(bytes_per_replication(c), int(results), max(1, min(chunk, replicas)), replicas,
                      int(snapshots), int(log_rows * K.N_LOG * 8), on_gpu)


def host_memory_available() -> int:
    """Bytes the host can give now: MemAvailable (Linux), else free physical pages, else 0 (unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


def gpu_memory_available() -> int:
    """Free bytes on the current CUDA device; 0 when unknown (no GPU, or the simulator)."""
    free = 0
    try:
        from numba import cuda

        free, _ = cuda.current_context().get_memory_info()
    except Exception:
        try:
            import cupy

            free, _ = cupy.cuda.runtime.memGetInfo()
        except Exception:
            return 0
    return int(free) if 0 < free < 1e15 else 0  # the CUDA simulator reports infinite memory


def _gib(n) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.1f} GiB"
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def check_memory(need: MemoryNeed, host_free: int, gpu_free: int, settings: dict | None = None) -> None:
    """Refuse a run whose buffers cannot fit, naming the largest part and the setting that sizes it
    (``settings``: the values of replicas, snapshot_minutes, max_lots, horizon_days to quote)."""
    parts = {
        "replicas": need.replicas * need.results_per_replication,
        "snapshot_minutes": need.snapshots,
        "max_lots": need.chunk * need.state_per_replication,
        "horizon_days": need.lot_log,
    }
    advice = {
        "replicas": "lower replicas (results are kept for every replication) or split the run (seed, replication ranges)",
        "snapshot_minutes": "raise snapshot_minutes (or 0 = off) or shorten horizon_days",
        "max_lots": "lower max_lots, the release rates or the tools of the line, or set chunk_replicas smaller",
        "horizon_days": "shorten horizon_days or lower the release rates (replication 0's lot log)",
    }
    values = {"replicas": need.replicas, **(settings or {})}
    for side, total, free in (("host", need.host, host_free), ("GPU", need.device if need.on_gpu else 0, gpu_free)):
        if free <= 0 or total <= HOST_MEMORY_SHARE * free:
            continue
        worst = max(parts, key=parts.get)
        raise ConfigError(worst, values.get(worst, _gib(parts[worst])),
                          f"the run needs {_gib(total)} of {side} memory and {_gib(free)} is available "
                          f"(results {_gib(parts['replicas'])}, snapshots {_gib(parts['snapshot_minutes'])}, lot log "
                          f"{_gib(parts['horizon_days'])}, {need.chunk} replication(s) of state at "
                          f"{_gib(need.state_per_replication)} each); {advice[worst]}")


# ----------------------------------------------------------------------------- the check prepare() calls


def check_run(c, replicas: int, horizon_days: float, snapshot_minutes: float, chunk: int, on_gpu: bool) -> None:
    """Event rate and memory of a run, estimated from the compiled line; ConfigError past the bounds."""
    rates = events_per_day(c)
    total = sum(rates.values())
    if not total <= MAX_EVENTS_PER_DAY:
        source = max(rates, key=rates.get)
        field, value, change = _storm_culprit(c, source)
        raise ConfigError(field, value, f"the line would need about {total:.3g} events per simulated day ({source}: "
                          f"{rates[source]:.3g}); at most {MAX_EVENTS_PER_DAY:.0e} are allowed: {change}")
    if c.lot_capacity > 2**31 - 1:
        raise ConfigError("max_lots", c.lot_capacity, "the lot table holds at most 2,147,483,647 lots; lower the release rates")
    need = memory_needed(c, replicas, horizon_days, snapshot_minutes, chunk, on_gpu)
    settings = {"snapshot_minutes": snapshot_minutes, "max_lots": c.lot_capacity, "horizon_days": horizon_days}
    check_memory(need, host_memory_available(), gpu_memory_available() if on_gpu else 0, settings)


def _storm_culprit(c, source) -> tuple[str, object, str]:
    """The one field that drives an event storm: (field, value, what to change)."""
    line = c.line
    if source == "PMs":
        rows = [(g.tools * (1.0 / p.every_minutes if math.isfinite(p.every_minutes) else 1.0 / p.every_wafers), i, j, p)
                for i, g in enumerate(line.tool_groups) for j, p in enumerate(g.pms)]
        _, i, j, p = max(rows, key=lambda r: r[0])
        key = "every_minutes" if math.isfinite(p.every_minutes) else "every_wafers"
        return f"line.tool_groups[{i}].pm[{j}].{key}", getattr(p, key), f"raise {key} (a PM that often leaves no time to work)"
    if source == "failures":
        rows = [(g.tools / g.failure.ttf.mean, i, g) for i, g in enumerate(line.tool_groups) if g.failure is not None]
        _, i, g = max(rows, key=lambda r: r[0])
        return f"line.tool_groups[{i}].failures.ttf.mean", g.failure.ttf.mean, "raise the mean time to failure"
    visits = [float(np.sum(expected_processings(line.products[line.product_index(r.product)]))) for r in line.releases]
    s = int(np.argmax(lots_per_minute(c) * np.array(visits)))
    p = line.product_index(line.releases[s].product)
    route = line.products[p].route
    if source == "lot visits" and visits[s] > 100.0 * len(route):
        n = expected_processings(line.products[p])
        k = max((k for k, st in enumerate(route) if st.rework_prob > 0), key=lambda k: n[k], default=int(np.argmax(n)))
        return (f"line.products[{p}].route[{k}].rework.prob", route[k].rework_prob,
                f"a lot runs {visits[s]:.3g} steps on average for a route of {len(route)}; lower the rework probability")
    return f"line.releases[{s}].interval_minutes", line.releases[s].interval_minutes, "raise the gap between releases"


def capacity_diagnosis(c, rep_i, s_i) -> str:
    """Why the lot table filled: what was measured, and both possible causes."""
    from kernels import layout as K

    bad = np.flatnonzero(rep_i[:, K.R_ERROR] == K.ERR_LOT_CAPACITY)
    r = int(bad[0])
    released = int(s_i[r, :, K.S_RELEASED].sum() + s_i[r, :, K.S_INITIAL].sum())
    done = int(s_i[r, :, K.S_DONE].sum())
    loads = offered_loads(c)
    top = sorted(loads.items(), key=lambda kv: -kv[1])[:3]
    shown = ", ".join(f"{name} {load:.2f}" for name, load in top)
    measured = (f"in {len(bad)} of {rep_i.shape[0]} replication(s) WIP grew to the lot table's {c.lot_capacity} lots "
                f"(replication {r}: {released} lots in, {done} out); offered load per tool group (work / available "
                f"tool time): {shown}")
    if top and top[0][1] >= 1.0:
        cause = (f"{top[0][0]} is overloaded (load >= 1): lower the release rate or add tools; if WIP is merely high, raise max_lots")
    else:
        cause = ("every group is below load 1, so either the dispatch rule makes the line unstable (as priority rules can, "
                 "e.g. the Lu-Kumar network: try dispatch=fifo) or setups/batching add work not counted here; "
                 "if WIP is merely high, raise max_lots")
    return f"{measured}; {cause}"
