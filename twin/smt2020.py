"""SMT2020 testbed loader: AutoSched-style tables in, a validated :class:`~twin.line.Line` out.

Kopp, Hassoun, Kalir and Mönch, "SMT2020 — A Semiconductor Manufacturing
Testbed", IEEE TSM 33(4), 2020.  The tables stay where they are (a data
folder beside the repository); a line YAML with ``loader: smt2020`` names the
data set.  Every reading the tables leave open is written down, with its
reason, in docs/smt2020.md; this module's comments point there.

A malformed table raises :class:`DataError` naming the file, the line and the
column, before anything else is built.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from twin.distributions import Dist
from twin.errors import ConfigError, DataError
from twin.line import INF, Failure, InitialWip, Line, PreventiveMaintenance, Product, Release, Step, ToolGroup

ENV_DIR = "FABTWIN_SMT2020_DIR"
DEFAULT_DISPATCH = {"HVLM": "native", "LVHM": "native"}
DEFAULT_RUN = {"horizon_days": 730.0, "warmup_days": 90.0}
YAML_KEYS = {"name", "loader", "dataset", "data_dir", "dispatch", "run_defaults", "cascade_occupancy", "lssu",
             "dedication", "min_run"}
# Readings the tables leave open, each a line setting (docs/smt2020.md, "Open readings"); the first is the default.
READINGS = {
    "cascade_occupancy": ("interval", "load_and_interval"),  # a cascading tool is held n x interval (+ load?)
    "lssu": ("setup_first", "chain"),  # rule_LSSU: least setup before the rank chain, or the chain alone
    "dedication": ("strict", "release_when_down"),  # may a lot leave its lens while that tool is down?
    "min_run": ("strict", "prefer"),  # MINRUN: the tool waits for its setup's lots, or only prefers them
}

MINUTES = {"sec": 1.0 / 60.0, "s": 1.0 / 60.0, "min": 1.0, "hr": 60.0, "day": 1440.0}
PRIORITY = {10: "normal", 20: "hot", 30: "super_hot"}
# Each family's own rule and rank chain (dispatch: native) -> the engine rule with the same ranks:
# HVLM's chain (hot lots, then no setup change, then FIFO) is hot_lot_setup; LVHM's ends with CR,
# which is hot_lot_setup_cr (docs/smt2020.md).
NATIVE_RULES = {
    (rule, f"rank_HP;rank_RSETUP;{last}"): engine_rule
    for rule in ("rule_HotLotFIRST", "rule_LSSU")
    for last, engine_rule in (("rank_FIFO", "hot_lot_setup"), ("rank_CR", "hot_lot_setup_cr"))
}
# lssu: setup_first reads rule_LSSU as "least setup first", then the chain's priority and last key.
LSSU_SETUP_FIRST = {"hot_lot_setup": "setup_hot_lot", "hot_lot_setup_cr": "setup_hot_lot_cr"}
DATE_FORMAT = "%m/%d/%y %H:%M:%S"

# Columns the loader reads, per file: every one must be in the header.
COLUMNS = {
    "part.txt": ("PART", "ROUTEFILE", "ROUTE"),
    "tool.txt.1l": ("STNFAM", "RULE", "FWLRANK", "WAKERESRANK", "BATCHCRITF", "BATCHPER", "LTIME", "LTUNITS",
                    "ULTIME", "ULTUNITS", "STNCAP", "STNQTY", "STNGRP", "STNFAMLOC", "SETUPGRP"),
    "route": ("ROUTE", "STEP", "DESC", "STNFAM", "PDIST", "PTIME", "PTIME2", "PTUNITS", "PTPER", "BATCHMN",
              "BATCHMX", "SETUP", "WHEN", "STIME", "STUNITS", "SVESTN", "FORSTEP", "BatchInterval",
              "BatchIntUnits", "PartInterval", "PartIntUnits", "RWKSTEP", "REWORK", "RWKTYPE", "StepPercent",
              "STEP_CQT", "CQT", "CQTUNITS"),
    "order.txt": ("LOT", "PART", "PRIOR", "PIECES", "START", "RDIST", "REPEAT", "RUNITS", "RPT#", "LOTSPERRPT",
                  "DUE"),
    "WIP.txt": ("LOT", "PART", "PRIOR", "PIECES", "START", "CURSTEP", "DUE"),
    "downcal.txt": ("DOWNCALNAME", "DOWNCALTYPE", "MTTFDIST", "MTTF", "MTTFUNITS", "MTTRDIST", "MTTR", "MTTRUNITS"),
    "pmcal.txt": ("PMCALNAME", "PMCALTYPE", "MTBPM", "MTBPMUNITS", "MTTRDIST", "MTTR", "MTTR2", "MTTRUNITS"),
    "attach.txt": ("CALNAME", "CALTYPE", "RESTYPE", "RESNAME", "FOADIST", "FOA", "FOAUNITS"),
    "setup.txt": ("CURSETUP", "NEWSETUP", "STIME", "STUNITS"),
    "setupgrp.txt": ("SETUPGRP", "SETUP", "MINRUN"),
    "fromto.txt": ("FROMLOC", "TOLOC", "DDIST", "DTIME", "DTIME2", "DUNITS"),
}


# ----------------------------------------------------------------------------- tables


@dataclass
class Row:
    """One data row; ``line`` is the 1-based line of the file (the header is line 1)."""

    path: Path
    line: int
    header: dict
    fields: list

    def error(self, column: str | None, problem: str) -> DataError:
        return DataError(self.path, self.line, column, problem)

    def get(self, column: str) -> str:
        """The cell, stripped; '' when blank (or beyond the end of a short row)."""
        k = self.header[column]
        return self.fields[k].strip() if k < len(self.fields) else ""

    def need(self, column: str) -> str:
        value = self.get(column)
        if value == "":
            short = len(self.fields) <= self.header[column]
            why = f" (the row has {len(self.fields)} of {len(self.header)} fields: truncated?)" if short else ""
            raise self.error(column, f"missing value{why}")
        return value

    def number(self, column: str, default: float | None = None, low: float = 0.0) -> float:
        text = self.get(column) if default is not None else self.need(column)
        if text == "":
            return default
        try:
            value = float(text)
        except ValueError:
            raise self.error(column, f"not a number: {text!r}") from None
        if not math.isfinite(value) or value < low:
            raise self.error(column, f"must be a finite number >= {low:g}, got {text!r}")
        return value

    def integer(self, column: str, default: int | None = None, low: int = 0) -> int:
        value = self.number(column, None if default is None else float(default), low=low)
        if value != int(value):
            raise self.error(column, f"must be a whole number, got {self.get(column)!r}")
        return int(value)

    def minutes(self, column: str, units_column: str, default: float | None = None) -> float:
        """A time converted to minutes by its units column (sec, min, hr, day)."""
        value = self.number(column, default)
        if self.get(column) == "":
            return value
        return value * self.unit(units_column)

    def unit(self, units_column: str) -> float:
        unit = self.need(units_column)
        if unit not in MINUTES:
            raise self.error(units_column, f"unknown time unit {unit!r}; allowed: {', '.join(MINUTES)}")
        return MINUTES[unit]


OPTIONAL_ROWS = {"setup.txt", "setupgrp.txt"}  # a data set may have no sequence-dependent setups


def read_table(path: Path, columns) -> list[Row]:
    """Tab-separated file with a header row; blank lines skipped; required ``columns`` checked."""
    if not path.is_file():
        raise DataError(path, None, None, "file not found")
    text = path.read_text(encoding="utf-8-sig", errors="replace")  # a UTF-8 byte-order mark is not part of the first column
    lines = text.split("\n")
    header_fields = [h.strip() for h in lines[0].rstrip("\r").split("\t")]
    header = {}
    for k, name in enumerate(header_fields):
        if name and name != "IGNORE" and name in header:
            raise DataError(path, 1, name, "column appears twice in the header")
        header.setdefault(name, k)
    for name in columns:
        if name not in header:
            raise DataError(path, 1, name, f"missing column (the header has: {', '.join(h for h in header_fields if h)})")
    rows = []
    for number, raw in enumerate(lines[1:], start=2):
        raw = raw.rstrip("\r")
        if not raw.strip():
            continue
        fields = raw.split("\t")
        extra = [f for f in fields[len(header_fields):] if f.strip()]
        if extra:
            raise DataError(path, number, None, f"{len(fields)} fields but the header has {len(header_fields)} columns")
        rows.append(Row(path, number, header, fields))
    if not rows and path.name not in OPTIONAL_ROWS:
        raise DataError(path, None, None, "no data rows (empty or truncated file)")
    return rows


# ----------------------------------------------------------------------------- values


def _dist(row: Row, dist_col: str, value_col: str, width_col: str | None, units_col: str) -> Dist:
    """A time law in minutes.  ``uniform`` reads the second value as a half-width (docs/smt2020.md)."""
    kind = row.need(dist_col)
    unit = row.unit(units_col)
    value = row.number(value_col) * unit
    if kind == "constant":
        return Dist.constant(value)
    if kind == "exponential":
        if value <= 0:
            raise row.error(value_col, "an exponential mean must be > 0")
        return Dist("exponential", (value,))
    if kind == "uniform" and width_col is not None:
        half = row.number(width_col) * unit
        if half > value:
            raise row.error(width_col, f"half-width {row.get(width_col)} exceeds the mean {row.get(value_col)}: negative times")
        return Dist("uniform", (value - half, value + half))
    allowed = "constant, exponential" + (", uniform" if width_col else "")
    raise row.error(dist_col, f"unknown distribution {kind!r}; allowed: {allowed}")


def _date(row: Row, column: str) -> datetime:
    text = row.need(column)
    try:
        return datetime.strptime(text, DATE_FORMAT)
    except ValueError:
        raise row.error(column, f"not a date like 01/31/18 07:29:20: {text!r}") from None


def _priority(row: Row) -> str:
    prior = row.integer("PRIOR")
    if prior not in PRIORITY:
        raise row.error("PRIOR", f"unknown priority {prior}; allowed: 10 (normal), 20 (hot), 30 (super hot)")
    return PRIORITY[prior]


def _by_name(rows, column):
    """Rows keyed by a unique name column (duplicates are an error)."""
    out = {}
    for row in rows:
        name = row.need(column)
        if name in out:
            raise row.error(column, f"duplicate name {name!r} (first at line {out[name].line})")
        out[name] = row
    return out


# ----------------------------------------------------------------------------- data folder


def resolve_data_dir(data_dir, dataset: str) -> Path:
    """The folder holding ``dataset``: ``data_dir``, $FABTWIN_SMT2020_DIR, $FABTWIN_DATA/smt2020, then
    shared/data/smt2020 beside the checkout or above it (twin.data)."""
    from twin import data

    found = data.find("smt2020", f"{dataset}/tool.txt.1l", explicit=data_dir, env=ENV_DIR)
    if found.path is not None:
        return found.path / dataset
    raise ConfigError(
        "line.data_dir", data_dir,
        f"no SMT2020 data set {dataset!r} found (looked in {'; '.join(str(Path(t) / dataset) for t in found.tried)}); "
        f"{data.how_to_point('smt2020', 'line.data_dir=/path/to/smt2020 (the folder holding HVLM/ and LVHM/)')}, "
        f"or {ENV_DIR}=/path/to/smt2020",
    )


# ----------------------------------------------------------------------------- entry point


def load_smt2020(data: dict) -> Line:
    """Build the line that a ``loader: smt2020`` YAML mapping names (see configs/line/smt2020_*.yaml)."""
    opts = _options(data)
    folder = resolve_data_dir(opts["data_dir"], opts["dataset"])
    tables = _read_all(folder)
    groups, family_rows = _tool_groups(tables, opts)
    lot_size = _lot_size(tables)
    products = _products(tables, family_rows, lot_size)
    epoch = _epoch(tables)
    releases = _releases(tables, {p.name for p in products}, epoch)
    wip = _initial_wip(tables, releases, {p.name: len(p.route) for p in products}, epoch)
    groups = _with_setups(groups, products, tables, family_rows)
    table = _transport_table(tables["fromto.txt"], {g.location for g in groups if g.location is not None})
    areas = tuple(dict.fromkeys(g.area for g in groups))
    # No fromto.txt row for a pair of locations means no transport time (docs/smt2020.md, Transport).
    return Line(opts["name"], groups, products, releases, wip, Dist.constant(0.0), areas, None, opts["run_defaults"], table)


def _options(data: dict) -> dict:
    from kernels.dispatch import RULE_NAMES

    for key in data:
        if key not in YAML_KEYS:
            raise ConfigError(f"line.{key}", data[key], f"unknown field; allowed: {', '.join(sorted(YAML_KEYS))}")
    dataset = data.get("dataset")
    if not isinstance(dataset, str) or not dataset or "/" in dataset:
        raise ConfigError("line.dataset", dataset, "name a data set folder such as HVLM or LVHM")
    dispatch = data.get("dispatch") or DEFAULT_DISPATCH.get(dataset, "fifo")
    if dispatch != "native" and dispatch not in RULE_NAMES:
        raise ConfigError("line.dispatch", dispatch, f"allowed: {', '.join(RULE_NAMES)}, native (each family's rule from tool.txt.1l)")
    run = {**DEFAULT_RUN, **(data.get("run_defaults") or {})}
    for key, value in run.items():
        if key not in DEFAULT_RUN:
            raise ConfigError(f"line.run_defaults.{key}", value, f"allowed: {', '.join(DEFAULT_RUN)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"line.run_defaults.{key}", value, "must be a number of days >= 0")
    name = str(data.get("name") or f"smt2020_{dataset.lower()}")
    readings = {}
    for key, allowed in READINGS.items():
        value = data.get(key) or allowed[0]
        if value not in allowed:
            raise ConfigError(f"line.{key}", value, f"allowed: {', '.join(allowed)} (docs/smt2020.md, Open readings)")
        readings[key] = value
    return {"name": name, "dataset": dataset, "data_dir": data.get("data_dir"), "dispatch": dispatch,
            "run_defaults": {k: float(v) for k, v in run.items()}, **readings}


def _read_all(folder: Path) -> dict:
    tables = {name: read_table(folder / name, cols) for name, cols in COLUMNS.items() if name != "route"}
    tables["routes"] = {}
    for row in tables["part.txt"]:
        route_file = row.need("ROUTEFILE")
        if "/" in route_file or not (folder / route_file).is_file():
            raise row.error("ROUTEFILE", f"route file {route_file!r} not found in {folder}")
        tables["routes"][row.need("PART")] = read_table(folder / route_file, COLUMNS["route"])
    return tables


# ----------------------------------------------------------------------------- tool groups


def _tool_groups(tables, opts):
    """Families of tool.txt.1l with load/unload, breakdowns and PM calendars (setups come later)."""
    dispatch = opts["dispatch"]
    families = _by_name(tables["tool.txt.1l"], "STNFAM")
    failures, pms = _calendars(tables, families)
    groups = []
    for name, row in families.items():
        _check_family_flags(row)
        groups.append(ToolGroup(
            name=name,
            area=row.need("STNGRP"),
            tools=row.integer("STNQTY", low=1),
            dispatch=_native_rule(row, opts["lssu"]) if dispatch == "native" else dispatch,
            load_minutes=row.minutes("LTIME", "LTUNITS", default=0.0),
            unload_minutes=row.minutes("ULTIME", "ULTUNITS", default=0.0),
            min_run=0,
            failure=failures.get(name),
            pms=tuple(pms.get(name, ())),
            location=row.get("STNFAMLOC") or None,
            tool_choice="least_setup" if row.get("WAKERESRANK") == "wake_LeastSetupTime" else "first_idle",
            cascade_load=opts["cascade_occupancy"] == "load_and_interval",
            dedication_release=opts["dedication"] == "release_when_down",
            strict_min_run=opts["min_run"] == "strict",
        ))
    return tuple(groups), families


def _native_rule(row: Row, lssu: str) -> str:
    key = (row.need("RULE"), row.get("FWLRANK"))
    if key not in NATIVE_RULES:
        known = "; ".join(f"{r} with {c}" for r, c in NATIVE_RULES)
        raise row.error("RULE", f"no engine rule for {key[0]} with rank chain {key[1]!r} (known: {known})")
    rule = NATIVE_RULES[key]
    if key[0] == "rule_LSSU" and lssu == "setup_first":
        return LSSU_SETUP_FIRST[rule]
    return rule


def _check_family_flags(row: Row) -> None:
    """Columns whose values change the model only if they differ from what the engine does."""
    if row.get("BATCHCRITF") not in ("", "crit_sameroutestep"):
        raise row.error("BATCHCRITF", f"unknown batching criterion {row.get('BATCHCRITF')!r}; the engine batches lots of the same route step (crit_sameroutestep)")
    if row.get("BATCHPER") not in ("", "piece"):
        raise row.error("BATCHPER", f"unknown batch unit {row.get('BATCHPER')!r}; allowed: piece (BATCHMN/BATCHMX count wafers)")
    row.number("STNCAP", default=0.0)
    if row.get("WAKERESRANK") not in ("", "wake_LeastSetupTime"):
        raise row.error("WAKERESRANK", f"unknown tool-choice rank {row.get('WAKERESRANK')!r}; allowed: wake_LeastSetupTime")


def _calendars(tables, families):
    """Breakdown law and PM calendars per family, from attach.txt."""
    downcal = _by_name(tables["downcal.txt"], "DOWNCALNAME")
    pmcal = _by_name(tables["pmcal.txt"], "PMCALNAME")
    by_area = defaultdict(list)
    for name, row in families.items():
        by_area[row.get("STNGRP")].append(name)
    failures, pms, where = {}, defaultdict(list), {}
    for row in tables["attach.txt"]:
        for family in _attached_families(row, families, by_area):
            kind = row.need("CALTYPE")
            if kind == "down":
                if family in failures:
                    raise row.error("RESNAME", f"second breakdown calendar for family {family!r} (first at line {where[family]}); the line model holds one per tool group")
                failures[family], where[family] = _failure(row, downcal), row.line
            elif kind == "pm":
                pms[family].append(_pm(row, pmcal))
                _check_pm_count(row, family, len(pms[family]))
            else:
                raise row.error("CALTYPE", f"unknown calendar type {kind!r}; allowed: down, pm")
    return failures, pms


def _attached_families(row: Row, families, by_area) -> list:
    restype, resname = row.need("RESTYPE"), row.need("RESNAME")
    if restype == "stnfam":
        if resname not in families:
            raise row.error("RESNAME", f"unknown tool family {resname!r} (not in tool.txt.1l)")
        return [resname]
    if restype == "stngrp":
        if resname not in by_area:
            raise row.error("RESNAME", f"unknown tool area {resname!r} (no STNGRP of tool.txt.1l)")
        return by_area[resname]
    raise row.error("RESTYPE", f"unknown resource type {restype!r}; allowed: stnfam, stngrp")


def _failure(attach: Row, downcal) -> Failure:
    name = attach.need("CALNAME")
    if name not in downcal:
        raise attach.error("CALNAME", f"unknown breakdown calendar {name!r} (not in downcal.txt)")
    cal = downcal[name]
    if cal.need("DOWNCALTYPE") != "mttf_by_cal":
        raise cal.error("DOWNCALTYPE", f"unknown breakdown type {cal.get('DOWNCALTYPE')!r}; allowed: mttf_by_cal (calendar time)")
    ttf = _dist(cal, "MTTFDIST", "MTTF", None, "MTTFUNITS")
    if ttf.kind != "exponential":
        raise cal.error("MTTFDIST", f"time to failure must be exponential, got {ttf.kind!r}")
    repair = _dist(cal, "MTTRDIST", "MTTR", None, "MTTRUNITS")
    return Failure(ttf, repair, "calendar", _first_time(attach))


def _first_time(attach: Row) -> Dist | None:
    """First occurrence of a calendar (FOA), in minutes; None when blank."""
    if attach.get("FOA") == "":
        return None
    return _dist(attach, "FOADIST", "FOA", None, "FOAUNITS")


def _pm(attach: Row, pmcal) -> PreventiveMaintenance:
    name = attach.need("CALNAME")
    if name not in pmcal:
        raise attach.error("CALNAME", f"unknown PM calendar {name!r} (not in pmcal.txt)")
    cal = pmcal[name]
    duration = _dist(cal, "MTTRDIST", "MTTR", "MTTR2", "MTTRUNITS")
    kind = cal.need("PMCALTYPE")
    if kind == "mtbpm_by_cal":
        every = cal.minutes("MTBPM", "MTBPMUNITS")
        first = _first_time(attach)
        if first is not None and first.kind != "constant":
            raise attach.error("FOADIST", f"a PM's first occurrence must be constant, got {first.kind!r}")
        return PreventiveMaintenance(name, duration, every_minutes=every, first_minutes=first.mean if first else None)
    if kind == "mtbpm_by_pieces":
        if cal.need("MTBPMUNITS") != "pieces":
            raise cal.error("MTBPMUNITS", f"a by-pieces PM counts pieces, got units {cal.get('MTBPMUNITS')!r}")
        # FOA (pieces to the first PM) has no place in the line model: docs/smt2020.md, engine needs.
        attach.number("FOA", default=0.0)
        return PreventiveMaintenance(name, duration, every_wafers=cal.number("MTBPM", low=1.0))
    raise cal.error("PMCALTYPE", f"unknown PM type {kind!r}; allowed: mtbpm_by_cal, mtbpm_by_pieces")


def _check_pm_count(row: Row, family: str, count: int) -> None:
    from kernels.layout import MAX_PM

    if count > MAX_PM:
        raise row.error("RESNAME", f"family {family!r} has more than {MAX_PM} PM calendars (the engine's limit)")


# ----------------------------------------------------------------------------- routes


def _lot_size(tables) -> int:
    """Wafers per lot (PIECES); one size, since cascading lot times depend on it."""
    sizes = {}
    for name in ("order.txt", "WIP.txt"):
        for row in tables[name]:
            sizes.setdefault(row.integer("PIECES", low=1), row)
    if len(sizes) > 1:
        row = list(sizes.values())[1]
        raise row.error("PIECES", f"lots of {sorted(sizes)} wafers: the loader needs one lot size (PartInterval lot times depend on it)")
    return next(iter(sizes))


def _products(tables, families, lot_size) -> tuple:
    products = []
    for row in tables["part.txt"]:
        part = row.need("PART")
        rows = tables["routes"][part]
        route = _route(rows, row.need("ROUTE"), families, lot_size)
        products.append(Product(part, route))
    return tuple(products)


def _route(rows, route_name, families, lot_size) -> tuple:
    """One route file into steps; cross-step references (rework, queue time, dedication) checked."""
    specs = []
    for k, row in enumerate(rows, start=1):
        if row.need("ROUTE") != route_name:
            raise row.error("ROUTE", f"route {row.get('ROUTE')!r} in the file of route {route_name!r} (part.txt)")
        if row.integer("STEP", low=1) != k:
            raise row.error("STEP", f"step {row.get('STEP')} where step {k} was expected (steps run 1, 2, ... in order)")
        family = row.need("STNFAM")
        if family not in families:
            raise row.error("STNFAM", f"unknown tool family {family!r} (not in tool.txt.1l)")
        specs.append(_step_spec(row, lot_size))
    _link_steps(rows, specs)
    return tuple(Step(**spec) for spec in specs)


def _step_spec(row: Row, lot_size: int) -> dict:
    spec = {"group": row.need("STNFAM"), "name": row.get("DESC"), **_step_time(row, lot_size)}
    spec.update(_batch(row))
    if row.get("SETUP"):
        if row.get("WHEN") not in ("", "need"):
            raise row.error("WHEN", f"unknown setup timing {row.get('WHEN')!r}; allowed: need")
        spec["setup"] = row.get("SETUP")
    spec["sampling"] = _percent(row, "StepPercent", 100.0)
    if row.get("RWKSTEP"):
        if row.get("RWKTYPE") not in ("", "lot"):
            raise row.error("RWKTYPE", f"unknown rework type {row.get('RWKTYPE')!r}; allowed: lot")
        spec["rework_prob"] = _percent(row, "REWORK", None)
        spec["rework_to"] = row.integer("RWKSTEP", low=1)
        spec["rework_once"] = True  # PySCFabSim's reading; the tables are silent (docs/smt2020.md)
        if spec["rework_to"] > row.integer("STEP"):
            raise row.error("RWKSTEP", f"rework loops back to step {spec['rework_to']}, after this step {row.get('STEP')}")
    return spec


def _step_time(row: Row, lot_size: int) -> dict:
    """Processing time and basis; cascading steps (PartInterval, BatchInterval) as docs/smt2020.md says."""
    per = {"per_piece": "wafer", "per_lot": "lot", "per_batch": "batch"}.get(row.need("PTPER"))
    if per is None:
        raise row.error("PTPER", f"unknown time basis {row.get('PTPER')!r}; allowed: per_piece, per_lot, per_batch")
    time = _dist(row, "PDIST", "PTIME", "PTIME2", "PTUNITS")
    out = {"time": time, "per": per}
    if row.get("PartInterval"):
        if per != "wafer":
            raise row.error("PartInterval", f"a piece interval needs a per_piece step, not {row.get('PTPER')}")
        interval = row.minutes("PartInterval", "PartIntUnits")
        # First wafer takes PTIME, each further wafer follows PartInterval later; the tool takes the
        # next lot's first wafer PartInterval after this lot's last one.
        out.update(time=_shifted(row, time, (lot_size - 1) * interval), per="lot", cascade_interval=interval, cascade_per="wafer")
    if row.get("BatchInterval"):
        if per != "lot" or row.get("PartInterval"):
            raise row.error("BatchInterval", "a lot interval (cascading) needs a per_lot step; the line model has no per-batch interval")
        out.update(cascade_interval=row.minutes("BatchInterval", "BatchIntUnits"), cascade_per="lot")
    return out


def _shifted(row: Row, dist: Dist, offset: float) -> Dist:
    """The lot time of a cascading per-piece step: the first wafer's law, later by ``offset``."""
    if dist.kind == "constant":
        return Dist.constant(dist.params[0] + offset)
    if dist.kind == "uniform":
        return Dist("uniform", (dist.params[0] + offset, dist.params[1] + offset))
    raise row.error("PDIST", f"a cascading (PartInterval) step needs a constant or uniform time, not {dist.kind}")


def _batch(row: Row) -> dict:
    if not (row.get("BATCHMN") or row.get("BATCHMX")):
        if row.get("PTPER") == "per_batch":
            raise row.error("BATCHMX", "a per_batch step needs BATCHMN and BATCHMX (wafers)")
        return {}
    bmax = row.integer("BATCHMX", low=1)
    bmin = row.integer("BATCHMN", default=1, low=1)
    if bmin > bmax:
        raise row.error("BATCHMN", f"minimum batch {bmin} exceeds the maximum {bmax}")
    return {"batch_min": bmin, "batch_max": bmax, "batch_max_wait": INF}


def _percent(row: Row, column: str, default) -> float:
    value = row.number(column, default)
    if value > 100.0:
        raise row.error(column, f"a percentage must lie in [0, 100], got {row.get(column)}")
    return value / 100.0


def _link_steps(rows, specs) -> None:
    """Queue-time windows (STEP_CQT) and lot-to-lens dedication (SVESTN/FORSTEP) land on their later step."""
    n = len(specs)
    for k, row in enumerate(rows, start=1):
        if row.get("STEP_CQT"):
            end = _later_step(row, "STEP_CQT", k, n)
            if "qtime_from" in specs[end - 1]:
                raise row.error("STEP_CQT", f"step {end} already ends the queue-time window from step {specs[end - 1]['qtime_from']}")
            specs[end - 1].update(qtime_from=k, qtime_limit=row.minutes("CQT", "CQTUNITS"))
        if row.get("SVESTN") == "yes":
            end = _later_step(row, "FORSTEP", k, n)
            if specs[end - 1]["group"] != specs[k - 1]["group"]:
                raise row.error("FORSTEP", f"step {end} runs on {specs[end - 1]['group']}, not on this step's family {specs[k - 1]['group']}")
            specs[end - 1]["dedicate_to_step"] = k
        elif row.get("SVESTN") not in ("", "no"):
            raise row.error("SVESTN", f"expected yes, no or blank, got {row.get('SVESTN')!r}")


def _later_step(row: Row, column: str, k: int, n: int) -> int:
    end = row.integer(column, low=1)
    if not k < end <= n:
        raise row.error(column, f"step {end} is not a later step of this route (steps {k + 1}..{n})")
    return end


# ----------------------------------------------------------------------------- setups


def _with_setups(groups, products, tables, families) -> tuple:
    """Setup change-over times and minimum runs per group (setup.txt, step STIME, setupgrp.txt)."""
    step_times = _step_setup_times(tables)
    pairs = _setup_pairs(tables["setup.txt"])
    min_runs = _min_runs(tables["setupgrp.txt"])
    used = defaultdict(dict)
    for p in products:
        for s in p.route:
            if s.setup is not None:
                used[s.group].setdefault(s.setup, None)
    out = []
    for g in groups:
        names = list(used.get(g.name, {}))
        minutes, matrix = _setup_table(names, step_times, pairs)
        out.append(_replace(g, setup_minutes=minutes, setup_matrix=matrix, min_run=_group_min_run(families[g.name], min_runs)))
    return tuple(out)


def _step_setup_times(tables) -> dict:
    """STIME on route steps: the change-over into that step's setup, whatever the tool had."""
    times, where = {}, {}
    for rows in tables["routes"].values():
        for row in rows:
            if row.get("SETUP") and row.get("STIME"):
                value = row.minutes("STIME", "STUNITS")
                key = row.get("SETUP")
                if key in times and times[key] != value:
                    raise row.error("STIME", f"setup {key!r} takes {value:g} min here but {times[key]:g} min at {where[key]}; the line model holds one time per setup change")
                times[key], where[key] = value, f"{row.path.name} line {row.line}"
    return times


def _setup_pairs(rows) -> dict:
    """setup.txt: (from, to) -> minutes; a blank CURSETUP means from any setup (or none)."""
    pairs = {}
    for row in rows:
        pairs[(row.get("CURSETUP"), row.need("NEWSETUP"))] = row.minutes("STIME", "STUNITS")
    return pairs


def _setup_table(names, step_times, pairs):
    """Default minutes plus exceptions for the setups one group uses."""
    if not names:
        return 0.0, {}

    def into(frm, to):
        if to in step_times:
            return step_times[to]
        return pairs.get((frm, to), pairs.get(("", to), 0.0))

    default = Counter(into("", to) for to in names).most_common(1)[0][0]
    matrix = {(a, b): into(a, b) for a in names for b in names if a != b and into(a, b) != default}
    return default, matrix


def _min_runs(rows) -> dict:
    """setupgrp.txt: setup group -> {setup: MINRUN}; a blank SETUPGRP continues the group above."""
    groups, current = defaultdict(dict), ""
    for row in rows:
        current = row.get("SETUPGRP") or current
        if not current:
            raise row.error("SETUPGRP", "missing setup group (no group above to continue)")
        groups[current][row.need("SETUP")] = (row.integer("MINRUN", low=0), row)
    return groups


def _group_min_run(tool_row: Row, min_runs) -> int:
    name = tool_row.get("SETUPGRP")
    if not name:
        return 0
    if name not in min_runs:
        raise tool_row.error("SETUPGRP", f"unknown setup group {name!r} (not in setupgrp.txt)")
    values = {v for v, _ in min_runs[name].values()}
    if len(values) > 1:
        row = list(min_runs[name].values())[-1][1]
        raise row.error("MINRUN", f"setup group {name!r} has minimum runs {sorted(values)}; the line model holds one per tool group")
    return values.pop()


def _replace(group: ToolGroup, **changes) -> ToolGroup:
    from dataclasses import replace

    return replace(group, **changes)


# ----------------------------------------------------------------------------- lots


def _epoch(tables) -> datetime:
    """Simulation time 0: the earliest START of order.txt and WIP.txt."""
    return min(_date(r, "START") for r in [*tables["order.txt"], *tables["WIP.txt"]])


def _releases(tables, products, epoch):
    """order.txt: one release stream (lot type) per row; due date = DUE - START."""
    rows = tables["order.txt"]
    _by_name(rows, "LOT")
    releases = []
    for row in rows:
        part = row.need("PART")
        if part not in products:
            raise row.error("PART", f"unknown part {part!r} (not in part.txt)")
        start, due = _date(row, "START"), _date(row, "DUE")
        if due < start:
            raise row.error("DUE", "due date before the start date")
        kind = {"constant": "interval", "exponential": "poisson"}.get(row.need("RDIST"))
        if kind is None:
            raise row.error("RDIST", f"unknown release law {row.get('RDIST')!r}; allowed: constant, exponential")
        per_repeat = row.integer("LOTSPERRPT", default=1, low=1)
        interval = row.minutes("REPEAT", "RUNITS") / per_repeat
        if interval <= 0:
            raise row.error("REPEAT", "the release interval must be > 0")
        releases.append(Release(
            name=row.need("LOT"), product=part, kind=kind,
            interval_minutes=interval,
            lot_size=row.integer("PIECES", low=1), priority=_priority(row),
            due_days=(due - start).total_seconds() / 86400.0,
            start_minutes=(start - epoch).total_seconds() / 60.0,
            max_lots=min(row.integer("RPT#", low=0) * per_repeat, 2**31 - 1),
        ))
    return tuple(releases)


def _initial_wip(tables, releases, route_len, epoch) -> tuple:
    """WIP.txt: one lot per row, grouped by (lot type, CURSTEP); each keeps its DUE (minutes after ``epoch``)."""
    dues = defaultdict(list)
    for row in tables["WIP.txt"]:
        rel = _wip_release(row, releases)
        step = row.integer("CURSTEP", low=1)
        if step > route_len[rel.product]:
            raise row.error("CURSTEP", f"step {step} is beyond the {route_len[rel.product]} steps of {rel.product}'s route")
        dues[(rel.name, step)].append((_date(row, "DUE") - epoch).total_seconds() / 60.0)
    order = {r.name: i for i, r in enumerate(releases)}
    keys = sorted(dues, key=lambda k: (order[k[0]], k[1]))
    return tuple(InitialWip(name, step, len(dues[(name, step)]), tuple(dues[(name, step)])) for name, step in keys)


def _wip_release(row: Row, releases) -> Release:
    """The lot type of an initial lot: its name (Init_<LOT>_<n>), else the one order with its PART and PRIOR."""
    part, priority = row.need("PART"), _priority(row)
    name = row.need("LOT")
    by_name = {r.name: r for r in releases}
    if name.startswith("Init_") and "_" in name[5:]:
        rel = by_name.get(name[5:].rsplit("_", 1)[0])
        if rel is not None:
            if rel.product != part or rel.priority != priority:
                raise row.error("PART", f"lot {name} names lot type {rel.name} ({rel.product}, {rel.priority}) but is {part}, {priority}")
            return rel
    matches = [r for r in releases if r.product == part and r.priority == priority]
    if len(matches) != 1:
        raise row.error("LOT", f"cannot tell the lot type of {name!r}: {len(matches)} order rows have part {part} and priority {priority}")
    return matches[0]


# ----------------------------------------------------------------------------- transport


def _transport_table(rows, locations) -> dict:
    """fromto.txt: the law of each (FROMLOC, TOLOC) pair of the families' STNFAMLOC locations."""
    table, where = {}, {}
    for row in rows:
        key = (row.need("FROMLOC"), row.need("TOLOC"))
        for column, name in zip(("FROMLOC", "TOLOC"), key):
            if name not in locations:
                raise row.error(column, f"unknown location {name!r} (STNFAMLOC of tool.txt.1l has: {', '.join(sorted(locations))})")
        if key in table:
            raise row.error("FROMLOC", f"second row for {key[0]} -> {key[1]} (first at line {where[key]})")
        table[key], where[key] = _dist(row, "DDIST", "DTIME", "DTIME2", "DUNITS"), row.line
    return table
