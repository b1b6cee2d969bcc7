"""The fab line written in SimPy: the external baseline the twin is checked and timed against.

This is the model most people would write instead of FabTwin: one SimPy
process per lot walking its route, one per tool serving its group's queue,
one per failure clock and PM calendar, failures delivered as
``Process.interrupt()`` (the classic SimPy machine-shop pattern).  It is built
from the same :class:`twin.line.Line` object and follows the event semantics of
``kernels/engine.py`` (see its docstring and docs/ARCHITECTURE.md):

- a lot joins its tool group's FIFO queue on arrival; each standby tool (in
  tool order) takes the waiting lot with the smallest dispatch key
  (``kernels.dispatch.RULES``, plain Python functions), ties to the earlier lot;
- batch steps serve lots of one step together in queue order up to
  ``batch_max`` wafers, once ``batch_min`` wafers wait or a lot has waited
  ``batch_max_wait``;
- a setup happens at job start when the step's family differs from the tool's;
  ``min_run`` lots run before a voluntary change;
- failures (calendar or busy time; Weibull or exponential, own first-failure
  law) interrupt setup or processing, which resumes after the repair with the
  time it had left; a failure during PM waits for the PM's end; PM (calendar
  or wafer count) due on a busy tool waits for the job to end; the first PMs
  of a group are staggered (tool k of n first due at (k + 1) / n of the period);
- sampling, rework loops, queue-time limits, transport delays and tool
  dedication (a step must reuse the tool of an earlier step; a lot remembers
  one tool per chain of such steps) as in the engine;
- statistics count only the window ``[warmup, horizon]``.

Random numbers come from Python's ``random`` with the same distributions
(``twin.distributions.Dist``); the streams differ from the twin's, so the two
agree in distribution, not draw by draw.  Defect density does not change the
flow of lots and is left out; tool condition is modelled only where it does
(wear-out failures, sensor readings and condition-based or predictive PM);
cascading tools are not modelled (the default line has none).

    python benchmarks/simpy_baseline.py [replicas] [horizon_days] [warmup_days]
"""
from __future__ import annotations

import math
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from twin.errors import ConfigError  # noqa: E402
from twin.line import PRIORITIES, Line  # noqa: E402

MINUTES_PER_DAY = 1440.0
PRODUCTIVE, STANDBY, SETUP, SCHED_DOWN, UNSCHED_DOWN = range(5)  # SEMI E10, as kernels/layout.py
JOB, PM, REPAIR = "job", "pm", "repair"
SENSOR_PM = 4  # pending-PM key of a condition-driven PM: after the (at most 4) calendar slots, as the engine


def sampler(dist, rng: random.Random):
    """A zero-argument callable drawing from ``dist`` (a twin Dist) with ``rng``."""
    p = dist.params
    if dist.kind == "constant":
        value = p[0]
        return lambda: value
    if dist.kind == "uniform":
        return lambda: rng.uniform(p[0], p[1])
    if dist.kind == "exponential":
        rate = 1.0 / p[0]
        return lambda: rng.expovariate(rate)
    if dist.kind == "lognormal":
        _, mu, sigma, _ = dist.encode()  # (mean, sd) -> (mu, sigma) of the log
        return lambda: rng.lognormvariate(mu, sigma)
    if dist.kind == "triangular":
        return lambda: rng.triangular(p[0], p[2], p[1])
    if dist.kind == "weibull":
        return lambda: rng.weibullvariate(p[1], p[0])
    raise ConfigError("dist", dist.kind, "unknown to the SimPy baseline")


class StepInfo:
    """One route step with references resolved to global step indices (as the engine's step table)."""

    __slots__ = ("index", "group", "draw", "per_wafer", "bmin", "bmax", "bwait", "family", "sampling", "rework_p",
                 "rework_to", "qt_from", "qt_limit", "qt_anchor", "dedicate", "ded_chain", "ded_sets", "priority",
                 "mean", "remaining", "last")


class Lot:
    __slots__ = ("stream", "step", "wafers", "release", "due", "priority", "entry", "ded", "qt_anchor", "qt_t",
                 "done")

    def __init__(self, stream, step, wafers, release, due, priority):
        self.stream, self.step, self.wafers = stream, step, wafers
        self.release, self.due, self.priority = release, due, priority
        self.entry, self.ded, self.qt_anchor, self.qt_t, self.done = 0.0, {}, -1, 0.0, None

    def dedicated_elsewhere(self, s, tool) -> bool:
        """Step ``s`` must reuse the tool this lot had at its chain's anchor, and that is not ``tool``."""
        if s.ded_chain < 0:
            return False
        held = self.ded.get(s.ded_chain)
        return held is not None and held is not tool


def _check_supported(line: Line) -> None:
    """Engine features the baseline does not reproduce: refuse rather than compare different models."""
    if line.transport_table:
        raise ConfigError("line.transport.table", len(line.transport_table), "the SimPy baseline models one transport law")
    for g, grp in enumerate(line.tool_groups):
        if grp.tool_choice != "first_idle":
            raise ConfigError(f"line.tool_groups[{g}].tool_choice", grp.tool_choice, "the SimPy baseline models first_idle only")
    for p in line.products:
        if any(st.rework_once for st in p.route):
            raise ConfigError(f"product {p.name}: rework.once", True, "the SimPy baseline draws rework on every pass")
    for i, w in enumerate(line.initial_wip):
        if w.due_minutes is not None:
            raise ConfigError(f"line.initial_wip[{i}].due_minutes", "set", "the SimPy baseline derives initial due dates")


class Fab:
    """One replication of ``line`` in SimPy; ``run()`` returns its statistics."""

    def __init__(self, line: Line, seed: int, rep: int, horizon: float, warmup: float):
        import simpy

        self.simpy = simpy
        self.env = simpy.Environment()
        self.rng = random.Random(f"{seed}/{rep}")
        self.line, self.horizon, self.warmup = line, horizon, warmup
        _check_supported(line)
        self.transport = sampler(line.transport, self.rng)
        self.steps = self._steps(line)
        self.groups = [Group(self, g, grp) for g, grp in enumerate(line.tool_groups)]
        for s in self.steps:
            if s.dedicate >= 0:
                self.groups[s.group].dedicated = True
        n = len(line.releases)
        self.released = [0] * n
        self.stats = {k: [0.0] * n for k in ("done", "wafers_done", "ct_n", "ct_sum", "ontime", "qt_viol", "wip_area")}
        self.wip, self.wip_since = [0] * n, [0.0] * n

    # ------------------------------------------------------------------ static tables

    def _steps(self, line):
        steps, self.first_step = [], {}
        for pi, product in enumerate(line.products):
            base = len(steps)
            lot_size = next((r.lot_size for r in line.releases if r.product == product.name), 25)
            self.first_step[product.name] = base
            for k, st in enumerate(product.route):
                if st.cascade_interval > 0:
                    raise ConfigError(f"line.products[{pi}].route[{k}].cascade", st.cascade_interval,
                                      "the SimPy baseline does not model cascading tools")
                s = StepInfo()
                s.index, s.group, s.draw = base + k, line.group_index(st.group), sampler(st.time, self.rng)
                s.per_wafer, s.bmin, s.bmax, s.bwait = st.per == "wafer", st.batch_min, st.batch_max, st.batch_max_wait
                s.family, s.sampling, s.rework_p = st.setup, st.sampling, st.rework_prob
                s.rework_to = base + st.rework_to - 1 if st.rework_prob > 0 else -1
                s.qt_from = base + st.qtime_from - 1 if st.qtime_from else -1
                s.qt_limit, s.qt_anchor = st.qtime_limit, False
                s.dedicate = base + st.dedicate_to_step - 1 if st.dedicate_to_step else -1
                s.ded_chain, s.ded_sets, s.priority = -1, -1, st.priority
                s.mean = st.time.mean * (lot_size if s.per_wafer else 1)
                s.last = base + len(product.route) - 1
                steps.append(s)
            for st in product.route:
                if st.qtime_from:
                    steps[base + st.qtime_from - 1].qt_anchor = True
            self._dedication_chains(steps[base:], product)
            remaining = 0.0
            for s in reversed(steps[base:]):
                remaining += s.sampling * s.mean
                s.remaining = remaining
        return steps

    @staticmethod
    def _dedication_chains(steps, product):
        """Steps linked by dedicate_to_step form a chain; a lot remembers one tool per chain."""
        chain_of = {}
        for k, st in enumerate(product.route, start=1):
            if st.dedicate_to_step:
                anchor = st.dedicate_to_step
                chain_of.setdefault(anchor, len(set(chain_of.values())))
                chain_of[k] = chain_of[anchor]
                steps[k - 1].ded_chain = chain_of[k]
                steps[anchor - 1].ded_sets = chain_of[anchor]

    # ------------------------------------------------------------------ lots

    def in_window(self) -> bool:
        return self.env.now >= self.warmup

    def overlap(self, a: float, b: float) -> float:
        a, b = max(a, self.warmup), min(b, self.horizon)
        return b - a if b > a else 0.0

    def wip_change(self, s: int, delta: int):
        now = self.env.now
        self.stats["wip_area"][s] += self.wip[s] * self.overlap(self.wip_since[s], now)
        self.wip_since[s] = now
        self.wip[s] += delta

    def sampled_step(self, step: int, last: int) -> int:
        """First step from ``step`` on that the lot really does; -1 past the end of the route."""
        while step <= last:
            p = self.steps[step].sampling
            if p >= 1.0 or self.rng.random() < p:
                return step
            step += 1
        return -1

    def release_lot(self, s: int):
        rel = self.line.releases[s]
        if self.released[s] >= rel.max_lots:
            return
        first = self.first_step[rel.product]
        step = self.sampled_step(first, self.steps[first].last)
        now = self.env.now
        lot = Lot(s, first, rel.lot_size, now, now + rel.due_days * MINUTES_PER_DAY, PRIORITIES[rel.priority])
        self.wip_change(s, 1)
        self.released[s] += 1
        if step < 0:
            self.complete(lot)
            return
        lot.step = step
        self.env.process(self.lot_life(lot))

    def lot_life(self, lot: Lot):
        """A lot's walk along its route: queue, wait for its job, move on (rework, sampling, transport)."""
        while True:
            s = self.steps[lot.step]
            lot.done = self.env.event()
            self.groups[s.group].arrive(lot)
            yield lot.done
            if s.qt_anchor:
                lot.qt_anchor, lot.qt_t = s.index, self.env.now
            if s.rework_p > 0.0 and self.rng.random() < s.rework_p:
                nxt = s.rework_to
            else:
                nxt = self.sampled_step(s.index + 1, s.last)
            if nxt < 0:
                self.complete(lot)
                if self.line.releases[lot.stream].kind == "conwip":
                    self.release_lot(lot.stream)
                return
            lot.step = nxt
            yield self.env.timeout(self.transport())

    def complete(self, lot: Lot):
        st, s, now = self.stats, lot.stream, self.env.now
        if self.in_window():
            st["done"][s] += 1
            st["wafers_done"][s] += lot.wafers
            if lot.release >= 0.0:
                st["ct_n"][s] += 1
                st["ct_sum"][s] += now - lot.release
                if now <= lot.due:
                    st["ontime"][s] += 1
        self.wip_change(s, -1)

    def releases(self, s: int):
        rel = self.line.releases[s]
        yield self.env.timeout(rel.start_minutes)
        while self.released[s] < rel.max_lots:
            self.release_lot(s)
            if rel.kind == "poisson":
                yield self.env.timeout(self.rng.expovariate(1.0 / rel.interval_minutes))
            else:
                yield self.env.timeout(rel.interval_minutes)

    def conwip_start(self, s: int):
        yield self.env.timeout(self.line.releases[s].start_minutes)
        self.release_lot(s)

    def initial_lot(self, s: int, step: int):
        rel = self.line.releases[s]
        first = self.first_step[rel.product]
        due = rel.due_days * MINUTES_PER_DAY * self.steps[step].remaining / max(self.steps[first].remaining, 1e-9)
        lot = Lot(s, step, rel.lot_size, -1.0, due, PRIORITIES[rel.priority])
        self.wip_change(s, 1)
        self.env.process(self.lot_life(lot))

    # ------------------------------------------------------------------ run

    def run(self) -> dict:
        names = [r.name for r in self.line.releases]
        for w in self.line.initial_wip:
            s = names.index(w.release)
            step = self.first_step[self.line.releases[s].product] + w.step - 1
            for _ in range(w.lots):
                self.initial_lot(s, step)
        for s, rel in enumerate(self.line.releases):
            if rel.kind == "conwip":
                for _ in range(rel.wip_cap):
                    self.env.process(self.conwip_start(s))
            else:
                self.env.process(self.releases(s))
        self.env.run(until=self.horizon)
        for s in range(len(names)):
            self.wip_change(s, 0)
        for g in self.groups:
            for t in g.tools:
                t.set_state(t.state)
        return self.kpis()

    def kpis(self) -> dict:
        """Per-replication KPIs named as :func:`twin.kpis.per_replication` names them."""
        window_min = self.horizon - self.warmup
        window_days = window_min / MINUTES_PER_DAY
        st, out = self.stats, {}
        for product in self.line.products:
            streams = [s for s, r in enumerate(self.line.releases) if r.product == product.name]
            total = {k: sum(v[s] for s in streams) for k, v in st.items()}
            p = f"product.{product.name}"
            out[f"{p}.throughput_lots_per_day"] = total["done"] / window_days
            out[f"{p}.throughput_wafers_per_day"] = total["wafers_done"] / window_days
            out[f"{p}.cycle_time_days.mean"] = (total["ct_sum"] / total["ct_n"] / MINUTES_PER_DAY
                                                if total["ct_n"] else math.nan)
            out[f"{p}.on_time_pct"] = 100.0 * total["ontime"] / total["ct_n"] if total["ct_n"] else math.nan
            out[f"{p}.wip_lots"] = total["wip_area"] / window_min
            out[f"{p}.qtime_violations"] = total["qt_viol"]
        for g in self.groups:
            e10 = [sum(t.e10[k] for t in g.tools) / (window_min * len(g.tools)) for k in range(5)]
            p = f"tool_group.{g.name}"
            out[f"{p}.utilisation"] = e10[PRODUCTIVE]
            out[f"{p}.availability"] = 1.0 - e10[SCHED_DOWN] - e10[UNSCHED_DOWN]
            out[f"{p}.e10.setup"] = e10[SETUP]
            out[f"{p}.queue_wait_minutes"] = g.wait_sum / g.wait_n if g.wait_n else math.nan
            out[f"{p}.failures_per_tool"] = sum(t.fails for t in g.tools) / len(g.tools)
            out[f"{p}.pms_per_tool"] = sum(t.pms for t in g.tools) / len(g.tools)
        return out


class Group:
    """A tool group: its FIFO queue, dispatch rule and tools."""

    def __init__(self, fab: Fab, g: int, grp):
        from kernels.dispatch import RULES

        self.fab, self.env, self.name = fab, fab.env, grp.name
        self.rule = RULES[grp.dispatch]
        self.min_run, self.spec = grp.min_run, grp
        self.queue: list[Lot] = []
        self.step_wafers: dict[int, int] = {}
        self.idle, self.timeout_at, self.dedicated = grp.tools, math.inf, False
        self.wait_sum, self.wait_n = 0.0, 0
        self.tools = [Tool(self, k) for k in range(grp.tools)]

    def setup_minutes(self, current, family) -> float:
        if family == current:
            return 0.0
        return self.spec.setup_matrix.get((current, family), self.spec.setup_minutes)

    def arrive(self, lot: Lot):
        lot.entry = self.env.now
        self.queue.append(lot)
        self.step_wafers[lot.step] = self.step_wafers.get(lot.step, 0) + lot.wafers
        self.dispatch()

    def take(self, lot: Lot):
        self.queue.remove(lot)
        self.step_wafers[lot.step] -= lot.wafers
        if self.fab.in_window():
            self.wait_sum += self.env.now - lot.entry
            self.wait_n += 1

    def dispatch(self):
        """Each standby tool, in tool order, takes its best eligible lot (engine's dispatch_group)."""
        for tool in self.tools:
            if not self.queue or self.idle == 0:
                return
            if tool.state == STANDBY:
                pick = self.select(tool)
                if pick is None and not self.dedicated:
                    return  # eligibility depends on the tool only through dedication
                if pick is not None:
                    tool.start_job(pick)

    def select(self, tool) -> Lot | None:
        now, steps = self.env.now, self.fab.steps
        current = tool.setup
        hold = current is not None and tool.run < self.min_run
        best = best_same = None
        best_key = best_same_key = math.inf
        next_timeout = math.inf
        for lot in self.queue:
            s = steps[lot.step]
            if lot.dedicated_elsewhere(s, tool):
                continue
            if s.bmax > 0 and self.step_wafers[lot.step] < s.bmin:
                ready_at = lot.entry + s.bwait
                if ready_at > now:
                    next_timeout = min(next_timeout, ready_at)
                    continue
            needs_setup = 1 if (s.family is not None and s.family != current) else 0
            key = self.rule(now, lot.entry, lot.due, lot.priority, s.mean, s.remaining, s.priority, needs_setup)
            if key < best_key:
                best_key, best = key, lot
            if s.family is not None and not needs_setup and key < best_same_key:
                best_same_key, best_same = key, lot
        if next_timeout < self.timeout_at:
            self.timeout_at = next_timeout
            self.env.timeout(next_timeout - now).callbacks.append(self._batch_timeout)
        return best_same if hold and best_same is not None else best

    def _batch_timeout(self, _event):
        if self.timeout_at <= self.env.now:
            self.timeout_at = math.inf
        self.dispatch()


class Tool:
    """One tool: a SimPy process running jobs, PMs and repairs; failures arrive as interrupts."""

    def __init__(self, group: Group, k: int):
        fab = group.fab
        self.group, self.fab, self.env = group, fab, fab.env
        self.state, self.since, self.e10 = STANDBY, 0.0, [0.0] * 5
        self.setup, self.run = None, 0
        self.action, self.wake, self.job, self.fail_on_start = None, None, None, False
        self.pm_pending, self.fail_pending = set(), False
        self.fails = self.pms = 0
        spec = group.spec
        self.pm_specs = spec.pms
        self.pm_wafers = [0.0] * len(spec.pms)
        self.pm_draw = [sampler(pm.duration, fab.rng) for pm in spec.pms]
        self.failure = spec.failure
        self.busy_basis = self.failure is not None and self.failure.basis == "busy"
        self.ttf_left, self.repair_done = math.inf, None
        if self.failure is not None:
            self.ttf = sampler(self.failure.ttf, fab.rng)
            self.repair_draw = sampler(self.failure.repair, fab.rng)
            first = sampler(self.failure.first or self.failure.ttf, fab.rng)
            if self.busy_basis:
                self.ttf_left = first()
            else:
                self.clock = fab.env.process(self.failure_clock(first()))
        share = (k + 1) / spec.tools  # first PMs staggered: tool k of n is first due at (k + 1) / n of the period
        for slot, pm in enumerate(spec.pms):
            timed = math.isfinite(pm.every_minutes)
            every = pm.every_minutes if timed else pm.every_wafers
            first = (pm.first_minutes if pm.first_minutes is not None else every) * share
            if timed:
                fab.env.process(self.pm_calendar(slot, first, every))
            else:
                self.pm_wafers[slot] = every - first
        self.cbm_draw = sampler(spec.maintenance.duration, fab.rng) if spec.maintenance else None
        self.renew()
        self.proc = fab.env.process(self.life())

    # ------------------------------------------------------------------ state and signals (synchronous)

    def set_state(self, new: int):
        now = self.env.now
        self.e10[self.state] += self.fab.overlap(self.since, now)
        self.since = now
        if self.state == STANDBY:
            self.group.idle -= 1
        if new == STANDBY:
            self.group.idle += 1
        self.state = new

    def signal(self, action):
        self.action = action
        if self.wake is not None and not self.wake.triggered:
            self.wake.succeed()

    def start_job(self, pick: Lot):
        g, s = self.group, self.fab.steps[pick.step]
        g.take(pick)
        lots, wafers = [pick], pick.wafers
        if s.bmax > 0:
            for lot in list(g.queue):
                if lot.step == s.index and not lot.dedicated_elsewhere(s, self) and wafers + lot.wafers <= s.bmax:
                    g.take(lot)
                    lots.append(lot)
                    wafers += lot.wafers
        now = self.env.now
        if s.qt_from >= 0 and self.fab.in_window():
            for lot in lots:
                if lot.qt_anchor == s.qt_from and now - lot.qt_t > s.qt_limit:
                    self.fab.stats["qt_viol"][lot.stream] += 1
        setup_time = 0.0
        if s.family is not None and s.family != self.setup:
            setup_time = g.setup_minutes(self.setup, s.family)
            self.setup, self.run = s.family, 0
        self.run += len(lots)
        process = s.draw() * (wafers if s.per_wafer else 1)
        process += g.spec.load_minutes + g.spec.unload_minutes
        self.job = (lots, s, wafers, setup_time, process)
        self.set_state(SETUP if setup_time > 0.0 else PRODUCTIVE)
        self.signal(JOB)

    def start_pm(self):
        slot = min(self.pm_pending)
        self.pm_pending.discard(slot)
        self.set_state(SCHED_DOWN)
        if slot == SENSOR_PM:
            self.pm_time = self.cbm_draw()
        else:
            self.pm_wafers[slot] = 0.0
            self.pm_time = self.pm_draw[slot]()
        if self.fab.in_window():
            self.pms += 1
        self.signal(PM)

    def start_repair(self) -> float:
        self.set_state(UNSCHED_DOWN)
        if self.fab.in_window():
            self.fails += 1
        return self.repair_draw()

    def end_repair(self):
        if self.busy_basis:
            self.ttf_left = self.ttf()
        elif self.repair_done is not None:
            self.repair_done.succeed()
            self.repair_done = None

    # ------------------------------------------------------------------ condition (wear-out and sensor-driven PM)

    def renew(self):
        """PM or repair: as good as new, a fresh failure level, no readings, no sensor PM pending."""
        spec, rng = self.group.spec, self.fab.rng
        self.condition, self.life_wafers, self.readings = 0.0, 0.0, []
        self.level = sampler(spec.failure_level, rng)() if spec.failure_level is not None else math.inf
        self.life_start = self.env.now
        self.pm_pending.discard(SENSOR_PM)

    def wear(self, wafers: float) -> bool:
        """Condition grows with the job's wafers; read the sensor; True if the tool wore out."""
        spec, rng = self.group.spec, self.fab.rng
        self.condition += spec.condition_drift * wafers
        if spec.condition_noise > 0.0:
            self.condition += spec.condition_noise * math.sqrt(wafers) * rng.gauss(0.0, 1.0)
        self.condition = max(self.condition, 0.0)
        if not spec.watches_condition:
            return False
        self.life_wafers += wafers
        reading = self.condition + (spec.sensor_sd * rng.gauss(0.0, 1.0) if spec.sensor_sd > 0.0 else 0.0)
        self.readings.append((self.life_wafers, reading))
        if self.condition >= self.level:
            return True
        m = spec.maintenance
        if m is not None and m.policy == "condition" and reading >= m.threshold:
            self.pm_pending.add(SENSOR_PM)
        elif m is not None and m.policy == "predictive" and self.minutes_to_target(m) <= m.lead_minutes:
            self.pm_pending.add(SENSOR_PM)
        return False

    def minutes_to_target(self, m) -> float:
        """Least-squares line through this life's readings, reaching ``target_level`` at the life's wafer rate."""
        n = len(self.readings)
        if n < m.min_readings:
            return math.inf
        mean_w = sum(w for w, _ in self.readings) / n
        mean_y = sum(y for _, y in self.readings) / n
        sxx = sum((w - mean_w) ** 2 for w, _ in self.readings)
        if sxx <= 0.0:
            return math.inf
        slope = sum((w - mean_w) * (y - mean_y) for w, y in self.readings) / sxx
        if slope <= 0.0:
            return math.inf
        fitted_now = mean_y + slope * (self.life_wafers - mean_w)
        wafers_left = max((m.target_level - fitted_now) / slope, 0.0)
        return wafers_left * (self.env.now - self.life_start) / self.life_wafers

    def wear_out_repair(self):
        """Repair after wearing out; the failure clock restarts at its end, as after any repair."""
        yield self.env.timeout(self.start_repair())
        if self.busy_basis:
            self.ttf_left = self.ttf()
        elif self.failure is not None:
            if self.repair_done is not None:  # the calendar clock fired during this repair: it redraws now
                self.end_repair()
            else:
                self.clock.interrupt()
                self.clock = self.env.process(self.failure_clock(self.ttf()))

    def tool_free(self):
        """Available again: pending PM first, else the group serves its queue."""
        self.set_state(STANDBY)
        if self.pm_pending:
            self.start_pm()
        else:
            self.group.dispatch()

    # ------------------------------------------------------------------ processes

    def life(self):
        while True:
            if self.action is None:
                self.wake = self.env.event()
                try:
                    yield self.wake
                except self.fab.simpy.Interrupt:
                    self.fail_on_start = True  # a failure hit the instant a job started
                self.wake = None
            action, self.action = self.action, None
            if action == JOB:
                worn_out = yield from self.do_job()
                if worn_out:
                    yield from self.wear_out_repair()
                    self.renew()
            elif action == PM:
                yield self.env.timeout(self.pm_time)
                self.renew()
                if self.fail_pending:
                    self.fail_pending = False
                    yield self.env.timeout(self.start_repair())
                    self.end_repair()
            elif action == REPAIR:
                yield self.env.timeout(self.repair_time)
                self.end_repair()
                self.renew()
            self.tool_free()

    def do_job(self):
        lots, s, wafers, setup_time, process = self.job
        if setup_time > 0.0:
            yield from self.phase(SETUP, setup_time)
        yield from self.phase(PRODUCTIVE, process)
        self.job = None
        for lot in lots:
            if s.ded_sets >= 0:
                lot.ded[s.ded_sets] = self
            lot.done.succeed()
        worn_out = self.wear(wafers)
        for slot, pm in enumerate(self.pm_specs):
            if math.isfinite(pm.every_wafers):
                self.pm_wafers[slot] += wafers
                if self.pm_wafers[slot] >= pm.every_wafers:
                    self.pm_pending.add(slot)
        return worn_out

    def phase(self, state: int, duration: float):
        """Setup or processing for ``duration``; a failure cuts it, it resumes after the repair (preemptive-resume)."""
        left = duration
        while True:
            if self.fail_on_start:
                self.fail_on_start = False
                yield from self.repair()
                continue
            self.set_state(state)
            start = self.env.now
            busy_fail = self.busy_basis and self.ttf_left < left
            wait = self.ttf_left if busy_fail else left
            try:
                yield self.env.timeout(wait)
            except self.fab.simpy.Interrupt:  # calendar failure
                left -= self.env.now - start
                yield from self.repair()
                continue
            left -= wait
            if self.busy_basis:
                self.ttf_left -= wait
            if busy_fail:
                yield from self.repair()
                continue
            return

    def repair(self):
        yield self.env.timeout(self.start_repair())
        self.end_repair()
        self.renew()

    def failure_clock(self, ttf: float):
        """Calendar-time failures: the next time to failure starts when the repair ends."""
        try:
            while True:
                yield self.env.timeout(ttf)
                self.repair_done = self.env.event()
                self.fail()
                yield self.repair_done
                ttf = self.ttf()
        except self.fab.simpy.Interrupt:  # a wear-out repair restarted the clock
            return

    def fail(self):
        if self.state == SCHED_DOWN:
            self.fail_pending = True
        elif self.state in (SETUP, PRODUCTIVE):
            self.proc.interrupt()
        elif self.state == STANDBY:
            self.repair_time = self.start_repair()
            self.signal(REPAIR)

    def pm_calendar(self, slot: int, first: float, every: float):
        yield self.env.timeout(first)
        while True:
            self.pm_pending.add(slot)
            if self.state == STANDBY:
                self.start_pm()
            yield self.env.timeout(every)


def run_replications(line: Line, replicas: int, horizon_days: float, warmup_days: float, seed: int = 1) -> dict:
    """Run ``replicas`` independent replications; per-KPI lists plus the wall time."""
    rows: dict[str, list] = {}
    started = time.perf_counter()
    for rep in range(replicas):
        kpis = Fab(line, seed, rep, horizon_days * MINUTES_PER_DAY, warmup_days * MINUTES_PER_DAY).run()
        for key, value in kpis.items():
            rows.setdefault(key, []).append(value)
    return {"rows": rows, "wall_seconds": time.perf_counter() - started, "replicas": replicas,
            "horizon_days": horizon_days, "warmup_days": warmup_days}


PLAN = ((20.0, 5.0, 2, 3), (60.0, 15.0, 8, 3))  # horizon, warm-up, replicas, repeats for (quick, full)


def run(quick: bool) -> list[dict]:
    """Timing rows for ``twin bench``: the default line in SimPy, one replication after another on one core."""
    import statistics

    import simpy

    from twin.line import load_line

    horizon, warmup, replicas, repeats = PLAN[0 if quick else 1]
    line = load_line("default")
    seconds = [run_replications(line, replicas, horizon, warmup, seed=1 + k)["wall_seconds"] for k in range(repeats)]
    med = statistics.median(seconds)
    return [{"benchmark": "simpy_baseline", "key": f"simpy/default/r{replicas}/h{horizon:g}/w{warmup:g}",
             "line": "default", "backend": "simpy", "threads": 1, "simpy_version": simpy.__version__,
             "replicas": replicas, "horizon_days": horizon, "warmup_days": warmup, "repeats": repeats,
             "seconds_median": med, "seconds_min": min(seconds), "seconds_max": max(seconds),
             "replication_days_per_s": replicas * horizon / med}]


def main(argv: list[str] | None = None) -> int:
    from twin.kpis import summarize
    from twin.line import load_line

    argv = sys.argv[1:] if argv is None else argv
    replicas, horizon, warmup = (int(argv[0]) if argv else 2), float(argv[1]) if len(argv) > 1 else 30.0, \
        float(argv[2]) if len(argv) > 2 else 5.0
    out = run_replications(load_line("default"), replicas, horizon, warmup)
    for key in sorted(out["rows"]):
        if key.startswith("product.") or key.endswith(".utilisation"):
            s = summarize(out["rows"][key])
            print(f"{key:55s} {s['mean']:10.4f} +- {s['ci95'] or 0:.4f}")
    print(f"{replicas * horizon / out['wall_seconds']:.2f} replication-days/s ({out['wall_seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
