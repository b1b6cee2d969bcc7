"""Flatten a validated :class:`~twin.line.Line` into the engine's static tables.

The kernels never see names or dataclasses: only the integer and float tables
described in :mod:`kernels.layout`.  Names travel beside them for reporting.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kernels import layout as K
from kernels.dispatch import RULE_IDS
from kernels.growth import whole_slots
from twin.distributions import Dist
from twin.errors import ConfigError
from twin.line import PRIORITIES, Line

MINUTES_PER_DAY = 1440.0


@dataclass
class CompiledLine:
    line: Line
    gi: np.ndarray
    gf: np.ndarray
    pmi: np.ndarray
    pmf: np.ndarray
    si: np.ndarray
    sf: np.ndarray
    setup_mat: np.ndarray
    ri: np.ndarray
    rf: np.ndarray
    tool_group: np.ndarray
    transport: np.ndarray  # [(from location) * n + (to location), law]; see _transport
    wip: np.ndarray  # [lot, W_*]
    group_names: list
    tool_names: list
    step_names: list
    stream_names: list
    stream_product: np.ndarray
    raw_process_minutes: np.ndarray  # per stream: mean processing time of one lot over its route
    max_batch_lots: int
    lot_capacity: int  # the most lots a replication may hold at once (max_lots): past it the run stops
    lot_slots: int  # the lot table a chunk starts with, near the live WIP; it grows up to lot_capacity

    @property
    def n_tools(self) -> int:
        return len(self.tool_names)

    def calendar_capacity(self, lot_slots: int) -> int:
        """Pending events a replication with ``lot_slots`` lot slots can have: one per lot, a
        failure, an activity end and each PM slot per tool, and the releases and batch timeouts."""
        conwip = int(sum(self.ri[s, K.RI_WIP_CAP] for s in range(len(self.stream_names))))
        return lot_slots + self.n_tools * (2 + K.MAX_PM) + conwip + len(self.stream_names) + len(self.group_names) + 64

    def static_tables(self):
        """The engine's static bundle (kernels/state.py)."""
        from kernels.state import LineTables

        return LineTables(self.gi, self.gf, self.pmi, self.pmf, self.si, self.sf, self.setup_mat,
                          self.ri, self.rf, self.tool_group, self.transport)


def compile_line(line: Line, dispatch: str | None = None, max_lots: int = 0) -> CompiledLine:
    """Build the static tables; ``dispatch`` overrides every group's rule."""
    if dispatch is not None and dispatch not in RULE_IDS:
        raise ConfigError("dispatch", dispatch, f"allowed: {', '.join(RULE_IDS)} (or null to keep each group's rule)")
    gi, gf, pmi, pmf, tool_group, tool_names = _groups(line, dispatch)
    families = _families(line)
    si, sf, step_names, step_of = _steps(line, families)
    gi[np.unique(si[si[:, K.SI_DEDICATE] >= 0, K.SI_GROUP]), K.GI_DEDICATED] = 1
    setup_mat = _setup_matrix(line, families)
    ri, rf, raw = _streams(line, si, sf, step_of)
    wip = _initial_wip(line, step_of)
    transport = _transport(line, si)
    lot_sizes = [r.lot_size for r in line.releases]
    bmax = [s.batch_max for p in line.products for s in p.route if s.is_batch]
    max_batch_lots = max([1] + [max(1, b // min(lot_sizes)) for b in bmax])
    capacity = max_lots or _lot_capacity(line, raw, len(wip))
    slots = min(capacity, _lot_slots(line, raw, len(wip)))
    return CompiledLine(
        line, gi, gf, pmi, pmf, si, sf, setup_mat, ri, rf, tool_group, transport, wip,
        [g.name for g in line.tool_groups], tool_names, step_names, [r.name for r in line.releases],
        np.array([line.product_index(r.product) for r in line.releases], dtype=np.int32),
        raw, max_batch_lots, capacity, slots,
    )


def _encode(dist: Dist | None):
    return dist.encode() if dist is not None else (0, 0.0, 0.0, 0.0)


def _groups(line: Line, dispatch):
    G = len(line.tool_groups)
    gi = np.zeros((G, K.N_GI), np.int32)
    gf = np.zeros((G, K.N_GF), np.float64)
    pmi = np.zeros((G * K.MAX_PM, K.N_PI), np.int32)
    pmf = np.zeros((G * K.MAX_PM, K.N_PF), np.float64)
    tool_group, tool_names = [], []
    for g, grp in enumerate(line.tool_groups):
        gi[g, K.GI_RULE] = RULE_IDS[dispatch or grp.dispatch]
        gi[g, K.GI_FIRST_TOOL] = len(tool_names)
        gi[g, K.GI_NTOOLS] = grp.tools
        gi[g, K.GI_MIN_RUN] = grp.min_run
        gi[g, K.GI_TOOL_CHOICE] = K.CHOICE_LEAST_SETUP if grp.tool_choice == "least_setup" else K.CHOICE_FIRST_IDLE
        gf[g, K.GF_LOAD] = grp.load_minutes
        gf[g, K.GF_UNLOAD] = grp.unload_minutes
        gf[g, K.GF_CASCADE_LOAD] = grp.load_minutes if grp.cascade_load else 0.0
        gi[g, K.GI_DED_RELEASE] = 1 if grp.dedication_release else 0
        gi[g, K.GI_STRICT_MIN_RUN] = 1 if grp.strict_min_run and grp.min_run > 0 else 0
        gf[g, K.GF_SETUP] = grp.setup_minutes
        gf[g, K.GF_DRIFT] = grp.condition_drift
        gf[g, K.GF_NOISE] = grp.condition_noise
        _condition_columns(gi[g], gf[g], grp)
        if grp.failure is not None:
            f = grp.failure
            gi[g, K.GI_FAIL_BASIS] = K.FAIL_CALENDAR if f.basis == "calendar" else K.FAIL_BUSY
            gi[g, K.GI_TTF_KIND], gf[g, K.GF_TTF0], gf[g, K.GF_TTF1], gf[g, K.GF_TTF2] = f.ttf.encode()
            gi[g, K.GI_REP_KIND], gf[g, K.GF_REP0], gf[g, K.GF_REP1], gf[g, K.GF_REP2] = f.repair.encode()
            gi[g, K.GI_FIRST_KIND], gf[g, K.GF_FIRST0], gf[g, K.GF_FIRST1], gf[g, K.GF_FIRST2] = (f.first or f.ttf).encode()
        if len(grp.pms) > K.MAX_PM:
            raise ConfigError(f"line.tool_groups[{g}].pm", len(grp.pms), f"at most {K.MAX_PM} PM calendars per tool group")
        for slot, pm in enumerate(grp.pms):
            row = g * K.MAX_PM + slot
            by_time = math.isfinite(pm.every_minutes)
            pmi[row, K.PI_KIND] = (K.PM_AGE if pm.age else K.PM_TIME) if by_time else K.PM_WAFERS
            pmi[row, K.PI_DUR_KIND], pmf[row, K.PF_DUR0], pmf[row, K.PF_DUR1], pmf[row, K.PF_DUR2] = pm.duration.encode()
            pmf[row, K.PF_EVERY] = pm.every_minutes if by_time else pm.every_wafers
            pmf[row, K.PF_FIRST] = pm.first_minutes if pm.first_minutes is not None else pmf[row, K.PF_EVERY]
        for k in range(grp.tools):
            tool_group.append(g)
            tool_names.append(f"{grp.name}#{k + 1}")
    return gi, gf, pmi, pmf, np.array(tool_group, np.int32), tool_names


def _condition_columns(gi_row, gf_row, grp) -> None:
    """Failure level, sensor and condition-driven PM of one group (GI_HEALTH off when none)."""
    gi_row[K.GI_HEALTH] = 1 if grp.watches_condition else 0
    gi_row[K.GI_LEVEL_KIND] = -1
    gf_row[K.GF_SENSOR_SD] = grp.sensor_sd
    if grp.failure_level is not None:
        gi_row[K.GI_LEVEL_KIND], gf_row[K.GF_LEVEL0], gf_row[K.GF_LEVEL1], gf_row[K.GF_LEVEL2] = grp.failure_level.encode()
    gi_row[K.GI_CBM_MIN_READINGS] = 3
    w = grp.warning
    if w is not None:
        gf_row[K.GF_WARN_LEVEL], gf_row[K.GF_WARN_HORIZON], gf_row[K.GF_WARN_WINDOW] = w.level, w.horizon_minutes, w.window_minutes
    m = grp.maintenance
    if m is not None:
        gi_row[K.GI_CBM_POLICY] = K.CBM_CONDITION if m.policy == "condition" else K.CBM_PREDICTIVE
        gi_row[K.GI_CBM_MIN_READINGS] = m.min_readings
        gi_row[K.GI_CBM_DUR_KIND], gf_row[K.GF_CBM_DUR0], gf_row[K.GF_CBM_DUR1], gf_row[K.GF_CBM_DUR2] = m.duration.encode()
        gf_row[K.GF_CBM_THRESHOLD] = m.threshold
        gf_row[K.GF_CBM_TARGET] = m.target_level
        gf_row[K.GF_CBM_LEAD] = m.lead_minutes


def _families(line: Line) -> dict:
    names = {}
    for p in line.products:
        for s in p.route:
            if s.setup is not None and s.setup not in names:
                names[s.setup] = (len(names), s.group)
    return names


def _dedication_slots(si, base, product) -> None:
    """Give each dedication chain (steps linked by dedicate_to_step) a remembered-tool slot.

    Chains that overlap on the route (SMT2020 nests lithography chains) need
    different slots; a slot is reused once its chain has ended.
    """
    chain_of = {}
    for k, st in enumerate(product.route, start=1):
        if st.dedicate_to_step:
            chain_of[k] = chain_of.setdefault(st.dedicate_to_step, st.dedicate_to_step)
    spans = {}
    for k, root in chain_of.items():
        lo, hi = spans.get(root, (root, root))
        spans[root] = (min(lo, k), max(hi, k))
    slot_end = []  # last step of the chain currently holding each slot
    slot_of = {}
    for root, (lo, hi) in sorted(spans.items(), key=lambda kv: kv[1]):
        free = [i for i, e in enumerate(slot_end) if e < lo]
        if free:
            slot_of[root] = free[0]
            slot_end[free[0]] = hi
        else:
            slot_of[root] = len(slot_end)
            slot_end.append(hi)
        if slot_of[root] >= K.MAX_DED:
            raise ConfigError(f"product {product.name}: route[{root - 1}]", root,
                              f"at most {K.MAX_DED} dedication chains may overlap on a route")
    for k, root in chain_of.items():
        si[base + k - 1, K.SI_DED_SLOT] = slot_of[root]


def _rework_bits(si, base, product) -> None:
    """Each rework-once step of a route gets its own bit of the lot's L_REWORKED mask (-1: none)."""
    once = [k for k, st in enumerate(product.route) if st.rework_once and st.rework_prob > 0]
    if len(once) > K.MAX_REWORK_ONCE:
        raise ConfigError(f"product {product.name}: route[{once[K.MAX_REWORK_ONCE]}].rework.once", True,
                          f"at most {K.MAX_REWORK_ONCE} rework-once steps per route")
    for bit, k in enumerate(once):
        si[base + k, K.SI_REWORK_BIT] = bit


def _setup_matrix(line: Line, families: dict) -> np.ndarray:
    """[F + 1, F] change-over minutes; the last row is a tool with no setup yet."""
    F = max(1, len(families))
    groups = {g.name: g for g in line.tool_groups}
    mat = np.zeros((F + 1, F), np.float64)
    for to_name, (j, group_name) in families.items():
        grp = groups[group_name]
        mat[:, j] = grp.setup_minutes
        for from_name, (i, _) in families.items():
            if from_name == to_name:
                mat[i, j] = 0.0
            elif (from_name, to_name) in grp.setup_matrix:
                mat[i, j] = grp.setup_matrix[(from_name, to_name)]
    return mat


def _steps(line: Line, families: dict):
    S = sum(len(p.route) for p in line.products)
    si = np.full((S, K.N_SI), -1, np.int32)
    sf = np.zeros((S, K.N_SF), np.float64)
    names, step_of, base = [], {}, 0
    for pi, p in enumerate(line.products):
        lot_size = next((r.lot_size for r in line.releases if r.product == p.name), 25)
        n = len(p.route)
        for k, st in enumerate(p.route):
            i = base + k
            step_of[(pi, k + 1)] = i
            names.append(f"{p.name}/{k + 1}" + (f" {st.name}" if st.name else ""))
            si[i, K.SI_GROUP] = line.group_index(st.group)
            si[i, K.SI_PRODUCT] = pi
            si[i, K.SI_LAST] = base + n - 1
            si[i, K.SI_TIME_KIND], sf[i, K.SF_T0], sf[i, K.SF_T1], sf[i, K.SF_T2] = st.time.encode()
            si[i, K.SI_PER] = {"wafer": K.PER_WAFER, "lot": K.PER_LOT, "batch": K.PER_BATCH}[st.per]
            si[i, K.SI_BMIN] = st.batch_min
            si[i, K.SI_BMAX] = st.batch_max
            si[i, K.SI_SETUP] = families[st.setup][0] if st.setup is not None else -1
            si[i, K.SI_REWORK_TO] = base + st.rework_to - 1 if st.rework_prob > 0 else -1
            si[i, K.SI_QT_FROM] = base + st.qtime_from - 1 if st.qtime_from else -1
            si[i, K.SI_DEDICATE] = base + st.dedicate_to_step - 1 if st.dedicate_to_step else -1
            si[i, K.SI_QT_ANCHOR] = 0
            si[i, K.SI_DED_ANCHOR] = 0
            si[i, K.SI_PRIORITY] = st.priority
            sf[i, K.SF_BWAIT] = st.batch_max_wait
            sf[i, K.SF_SAMPLING] = st.sampling
            sf[i, K.SF_REWORK_P] = st.rework_prob
            sf[i, K.SF_QT_LIMIT] = st.qtime_limit
            sf[i, K.SF_MEAN] = st.time.mean * (lot_size if st.per == "wafer" else 1)
            sf[i, K.SF_DEFECT] = st.defect_density
            sf[i, K.SF_CASCADE] = st.cascade_interval
            si[i, K.SI_CASCADE_PER_WAFER] = 1 if st.cascade_per == "wafer" else 0
        for k, st in enumerate(p.route):
            if st.qtime_from:
                si[base + st.qtime_from - 1, K.SI_QT_ANCHOR] = 1
            if st.dedicate_to_step:
                si[base + st.dedicate_to_step - 1, K.SI_DED_ANCHOR] = 1
        _dedication_slots(si, base, p)
        _rework_bits(si, base, p)
        remaining = 0.0
        for k in range(n - 1, -1, -1):
            remaining += sf[base + k, K.SF_SAMPLING] * sf[base + k, K.SF_MEAN]
            sf[base + k, K.SF_REMAIN] = remaining
        base += n
    return si, sf, names, step_of


def _streams(line: Line, si, sf, step_of):
    NS = len(line.releases)
    ri = np.zeros((NS, K.N_RI), np.int32)
    rf = np.zeros((NS, K.N_RF), np.float64)
    raw = np.zeros(NS)
    for s, rel in enumerate(line.releases):
        pi = line.product_index(rel.product)
        product = line.products[pi]
        first = step_of[(pi, 1)]
        ri[s, K.RI_PRODUCT] = pi
        ri[s, K.RI_KIND] = {"interval": K.REL_INTERVAL, "poisson": K.REL_POISSON, "conwip": K.REL_CONWIP}[rel.kind]
        ri[s, K.RI_LOT_SIZE] = rel.lot_size
        ri[s, K.RI_PRIORITY] = PRIORITIES[rel.priority]
        ri[s, K.RI_WIP_CAP] = rel.wip_cap
        ri[s, K.RI_MAX_LOTS] = min(rel.max_lots, 2**31 - 1)
        ri[s, K.RI_FIRST_STEP] = first
        rf[s, K.RF_INTERVAL] = rel.interval_minutes
        rf[s, K.RF_DUE] = rel.due_days * MINUTES_PER_DAY
        rf[s, K.RF_START] = rel.start_minutes
        raw[s] = _raw_minutes(product, rel.lot_size)
        rf[s, K.RF_CT_BIN] = max(30.0 * raw[s], MINUTES_PER_DAY) / K.N_CT_BINS
        spec = product.yield_spec
        if spec is not None:
            rf[s, K.RF_DIE_AREA] = spec.die_area_cm2
            rf[s, K.RF_ALPHA] = spec.alpha if math.isfinite(spec.alpha) else 1.0e30
            rf[s, K.RF_GROSS_DIES] = spec.gross_dies
        else:
            rf[s, K.RF_ALPHA] = 1.0e30
    return ri, rf, raw


def _raw_minutes(product, lot_size) -> float:
    """Mean processing time of one lot over its route (sampling-weighted), without waiting."""
    total = 0.0
    for st in product.route:
        t = st.time.mean * (lot_size if st.per == "wafer" else 1)
        total += st.sampling * t
    return total


def _initial_wip(line: Line, step_of) -> np.ndarray:
    """One row per initial lot: stream, global step, due date (NaN: the engine derives it)."""
    rows = []
    names = [r.name for r in line.releases]
    for w in line.initial_wip:
        s = names.index(w.release)
        pi = line.product_index(line.releases[s].product)
        dues = w.due_minutes if w.due_minutes is not None else [math.nan] * w.lots
        rows += [(s, step_of[(pi, w.step)], due) for due in dues]
    return np.array(rows, np.float64).reshape(-1, K.N_W)


def _transport(line: Line, si) -> np.ndarray:
    """Transport laws by (from, to) location, and each step's row offsets into them.

    Locations are numbered by name; groups without one share the last index,
    whose moves use the default law, as do pairs with no row.
    """
    locations = sorted({g.location for g in line.tool_groups if g.location is not None})
    n = len(locations) + 1
    table = np.tile(np.array(line.transport.encode(), np.float64), (n * n, 1))
    for (a, b), dist in line.transport_table.items():
        table[locations.index(a) * n + locations.index(b)] = dist.encode()
    loc = np.array([locations.index(g.location) if g.location is not None else n - 1 for g in line.tool_groups], np.int32)
    step_loc = loc[si[:, K.SI_GROUP]]
    si[:, K.SI_MOVE_FROM] = step_loc * n
    si[:, K.SI_MOVE_TO] = step_loc
    return table


def _lot_slots(line: Line, raw, n_wip) -> int:
    """Where the lot table starts: a quarter above the larger of the initial WIP and Little's law at the
    raw processing time (no line holds fewer lots), plus the CONWIP caps, in whole multiples of 32.
    Only speed depends on it: a table that runs short grows, with the same results (kernels/growth.py)."""
    conwip = sum(rel.wip_cap for rel in line.releases if rel.kind == "conwip")
    little = sum(raw[s] / rel.interval_minutes for s, rel in enumerate(line.releases) if rel.kind != "conwip")
    return whole_slots(1.25 * max(n_wip, little) + conwip + 32)


def _lot_capacity(line: Line, raw, n_wip) -> int:
    """Room for WIP: Little's law with a cycle time of 8x raw time, plus initial WIP."""
    need = n_wip + 256
    for s, rel in enumerate(line.releases):
        if rel.kind == "conwip":
            need += rel.wip_cap
        else:
            need += int(8.0 * raw[s] / rel.interval_minutes) + 8
    return need
