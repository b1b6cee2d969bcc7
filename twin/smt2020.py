"""SMT2020 testbed loader: AutoSched-style tables → the twin's line model.

Kopp, Hassoun, Kalir, Mönch, "SMT2020—A Semiconductor Manufacturing Testbed",
IEEE TSM 33(4), 2020.  The tables stay where they are (``data_dir``, default
``../shared/data/smt2020`` beside the checkout); every reading choice is in
docs/smt2020.md.  A malformed table raises :class:`DataError` naming the file,
line and column.
"""
from __future__ import annotations

import csv
import math
import os
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

from twin.distributions import Dist
from twin.errors import ConfigError, DataError
from twin.line import (
    Failure,
    InitialWip,
    Line,
    PreventiveMaintenance,
    Product,
    Release,
    Step,
    ToolGroup,
)

DATASETS = ("HVLM", "LVHM")
MINUTES = {"sec": 1 / 60, "min": 1.0, "hr": 60.0, "hour": 60.0, "day": 1440.0}
PRIORITY = {10: "normal", 20: "hot", 30: "super_hot"}
NATIVE_RULES = {"rule_HotLotFIRST": "hot_lot_setup", "rule_LSSU": "hot_lot_setup"}
DISPATCH_CHOICES = ("native", "fifo", "spt", "edd", "cr", "least_slack", "hot_lot_setup")


# ----------------------------------------------------------------------------- tables


class Table:
    """Rows of one tab-separated file with their line numbers, columns checked up front."""

    def __init__(self, path: Path, required: tuple[str, ...]):
        self.path = path
        if not path.is_file():
            raise DataError(path, None, None, "file is missing")
        with open(path, newline="") as f:
            reader = csv.reader(f, delimiter="\t")
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                raise DataError(path, 1, None, "file is empty (no header row)") from None
            missing = [c for c in required if c not in header]
            if missing:
                raise DataError(path, 1, missing[0], "required column is missing")
            self.rows = []
            for number, cells in enumerate(reader, start=2):
                if not any(c.strip() for c in cells):
                    continue
                cells = cells + [""] * (len(header) - len(cells))
                self.rows.append((number, dict(zip(header, (c.strip() for c in cells)))))
        if not self.rows:
            raise DataError(path, None, None, "file has no data rows (truncated?)")

    def number(self, line: int, row: dict, column: str, default=None) -> float:
        text = row.get(column, "")
        if text == "":
            if default is None:
                raise DataError(self.path, line, column, "value is missing")
            return default
        try:
            value = float(text)
        except ValueError:
            raise DataError(self.path, line, column, f"{text!r} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise DataError(self.path, line, column, f"{text!r} must be a finite number >= 0")
        return value

    def minutes(self, line: int, row: dict, value: float, unit_column: str, default_unit="min") -> float:
        unit = row.get(unit_column, "") or default_unit
        if unit not in MINUTES:
            raise DataError(self.path, line, unit_column, f"unknown time unit {unit!r}; allowed: {', '.join(MINUTES)}")
        return value * MINUTES[unit]


def data_root(data_dir) -> Path:
    """Where the SMT2020 folders are: the config value, FABTWIN_SMT2020_DIR, or ../shared beside the checkout."""
    candidates = []
    if data_dir:
        candidates.append(Path(str(data_dir)).expanduser())
    if os.environ.get("FABTWIN_SMT2020_DIR"):
        candidates.append(Path(os.environ["FABTWIN_SMT2020_DIR"]))
    here = Path(__file__).resolve()
    candidates += [here.parents[2] / "shared" / "data" / "smt2020", Path.cwd().parent / "shared" / "data" / "smt2020",
                   Path.cwd() / "shared" / "data" / "smt2020"]
    for c in candidates:
        if (c / "HVLM").is_dir() or (c / "LVHM").is_dir():
            return c
    raise ConfigError("line.data_dir", str(data_dir), "no SMT2020 tables found; looked in "
                      + ", ".join(str(c) for c in candidates) + ". Set line.data_dir=... or FABTWIN_SMT2020_DIR")


# ----------------------------------------------------------------------------- loader


def load_smt2020(cfg: dict) -> Line:
    """Build the SMT2020 HVLM or LVHM line from its tables."""
    allowed = {"name", "loader", "dataset", "data_dir", "dispatch", "run_defaults"}
    for key in cfg:
        if key not in allowed:
            raise ConfigError(f"line.{key}", cfg[key], f"unknown field; allowed: {', '.join(sorted(allowed))}")
    dataset = cfg.get("dataset", "HVLM")
    if dataset not in DATASETS:
        raise ConfigError("line.dataset", dataset, f"allowed: {', '.join(DATASETS)}")
    dispatch = cfg.get("dispatch", "native")
    if dispatch not in DISPATCH_CHOICES:
        raise ConfigError("line.dispatch", dispatch, f"allowed: {', '.join(DISPATCH_CHOICES)}")
    folder = data_root(cfg.get("data_dir")) / dataset
    tools = Table(folder / "tool.txt.1l", ("STNFAM", "RULE", "LTIME", "LTUNITS", "ULTIME", "ULTUNITS", "STNQTY", "STNGRP"))
    parts = Table(folder / "part.txt", ("PART", "ROUTEFILE"))
    families = {row["STNFAM"]: (n, row) for n, row in tools.rows}
    route_setup = {}
    products = [_product(tools, folder, n, row, families, route_setup) for n, row in parts.rows]
    setups = _setups(folder, products, route_setup)
    groups = _groups(tools, folder, dispatch, setups)
    releases = _releases(Table(folder / "order.txt", ("LOT", "PART", "PRIOR", "PIECES", "START", "RDIST", "REPEAT", "RUNITS", "RPT#", "LOTSPERRPT", "DUE")))
    wip = _initial_wip(Table(folder / "WIP.txt", ("LOT", "PART", "PRIOR", "CURSTEP")), releases, products)
    fromto = Table(folder / "fromto.txt", ("DDIST", "DTIME", "DTIME2", "DUNITS"))
    line_no, row = fromto.rows[0]
    transport = _uniform(fromto, line_no, row, "DTIME", "DTIME2", "DUNITS")
    return Line(
        name=cfg.get("name") or f"smt2020_{dataset.lower()}",
        tool_groups=tuple(groups),
        products=tuple(products),
        releases=tuple(releases),
        initial_wip=tuple(wip),
        transport=transport,
        areas=tuple(dict.fromkeys(g.area for g in groups)),
        layout={"smt2020": dataset},
        run_defaults=dict(cfg.get("run_defaults") or {}),
    )


def _uniform(table, line, row, mean_col, half_col, unit_col) -> Dist:
    """PTIME ± PTIME2: the second value is a half-width (5% of the mean in every table)."""
    mean = table.minutes(line, row, table.number(line, row, mean_col), unit_col)
    half = table.minutes(line, row, table.number(line, row, half_col, 0.0), unit_col)
    if half > mean:
        raise DataError(table.path, line, half_col, f"half-width {half} exceeds the mean {mean}")
    return Dist("uniform", (mean - half, mean + half)) if half > 0 else Dist.constant(mean)


def _product(tools, folder, line, row, families, route_setup) -> Product:
    route = Table(folder / row["ROUTEFILE"], ("STEP", "STNFAM", "PDIST", "PTIME", "PTIME2", "PTUNITS", "PTPER"))
    steps, dedications, qtimes = [], {}, {}
    for k, (n, r) in enumerate(route.rows, start=1):
        if r["STNFAM"] not in families:
            raise DataError(route.path, n, "STNFAM", f"unknown tool family {r['STNFAM']!r}")
        if route.number(n, r, "STEP") != k:
            raise DataError(route.path, n, "STEP", f"steps must be numbered 1, 2, ... in order; expected {k}")
        if r.get("SVESTN", "").lower() == "yes" and r.get("FORSTEP"):
            dedications[int(route.number(n, r, "FORSTEP"))] = (k, r["STNFAM"])
        if r.get("SETUP") and r.get("STIME"):
            minutes = route.minutes(n, r, route.number(n, r, "STIME"), "STUNITS")
            route_setup[r["STNFAM"]] = max(route_setup.get(r["STNFAM"], 0.0), minutes)
        if r.get("STEP_CQT"):
            limit = route.minutes(n, r, route.number(n, r, "CQT"), "CQTUNITS")
            qtimes[int(route.number(n, r, "STEP_CQT"))] = (k, limit)
        steps.append((n, r))
    built = []
    for k, (n, r) in enumerate(steps, start=1):
        built.append(_step(route, n, r, k, dedications, qtimes, len(steps)))
    return Product(name=row["PART"], route=tuple(built))


def _step(route, n, r, k, dedications, qtimes, length) -> Step:
    per = {"per_piece": "wafer", "per_lot": "lot", "per_batch": "batch"}.get(r["PTPER"])
    if per is None:
        raise DataError(route.path, n, "PTPER", f"{r['PTPER']!r}; allowed: per_piece, per_lot, per_batch")
    if r["PDIST"] not in ("uniform", "constant"):
        raise DataError(route.path, n, "PDIST", f"{r['PDIST']!r}; allowed: uniform, constant")
    time = _uniform(route, n, r, "PTIME", "PTIME2", "PTUNITS")
    extra = {}
    if r.get("BATCHMX"):
        extra.update(batch_min=int(route.number(n, r, "BATCHMN", 1.0)), batch_max=int(route.number(n, r, "BATCHMX")))
        if per == "lot":
            per = "batch"
    if r.get("SETUP"):
        extra["setup"] = r["SETUP"]
    if r.get("BatchInterval"):
        extra.update(cascade_interval=route.minutes(n, r, route.number(n, r, "BatchInterval"), "BatchIntUnits"), cascade_per="lot")
    elif r.get("PartInterval"):
        extra.update(cascade_interval=route.minutes(n, r, route.number(n, r, "PartInterval"), "PartIntUnits"), cascade_per="wafer")
    if r.get("REWORK") and r.get("RWKSTEP"):
        to_step = int(route.number(n, r, "RWKSTEP"))
        if not 1 <= to_step <= k:
            raise DataError(route.path, n, "RWKSTEP", f"rework step {to_step} must be in 1..{k}")
        extra.update(rework_prob=route.number(n, r, "REWORK") / 100.0, rework_to=to_step)
    if r.get("StepPercent"):
        extra["sampling"] = min(route.number(n, r, "StepPercent") / 100.0, 1.0)
    if k in qtimes:
        extra.update(qtime_from=qtimes[k][0], qtime_limit=qtimes[k][1])
    if k in dedications and dedications[k][1] == r["STNFAM"]:
        extra["dedicate_to_step"] = dedications[k][0]
    return Step(group=r["STNFAM"], time=time, per=per, name=r.get("DESC", ""), **extra)


def _setups(folder, products, route_setup) -> dict:
    """Per family: change-over minutes {(from, to): minutes}, default minutes, min run."""
    out = defaultdict(lambda: {"matrix": {}, "default": 0.0, "min_run": 0})
    used = defaultdict(set)
    for p in products:
        for s in p.route:
            if s.setup:
                used[s.group].add(s.setup)
    table = Table(folder / "setup.txt", ("CURSETUP", "NEWSETUP", "STIME", "STUNITS"))
    for n, r in table.rows:
        family = r.get("IGNORE", "")
        minutes = table.minutes(n, r, table.number(n, r, "STIME"), "STUNITS")
        targets = [r["CURSETUP"]] if r["CURSETUP"] else sorted(used[family] - {r["NEWSETUP"]})
        for source in targets:
            out[family]["matrix"][(source, r["NEWSETUP"])] = minutes
        if not r["CURSETUP"]:
            out[family]["default"] = max(out[family]["default"], minutes)
    groups = Table(folder / "setupgrp.txt", ("SETUP", "MINRUN"))
    for n, r in groups.rows:
        family = r.get("IGNORE", "")
        out[family]["min_run"] = max(out[family]["min_run"], int(groups.number(n, r, "MINRUN", 0.0)))
    # a route step that "needs" a setup with STIME and no setup.txt row: any change costs STIME
    for family, minutes in route_setup.items():
        if not out[family]["matrix"] and not out[family]["default"]:
            out[family]["default"] = minutes
    return out


def _groups(tools, folder, dispatch, setups) -> list[ToolGroup]:
    down = _down_calendars(folder)
    pms = _pm_calendars(folder)
    groups = []
    for n, r in tools.rows:
        family = r["STNFAM"]
        count = tools.number(n, r, "STNQTY")
        if count < 1 or count != int(count):
            raise DataError(tools.path, n, "STNQTY", f"{r['STNQTY']!r} must be a whole number >= 1")
        rule = NATIVE_RULES.get(r["RULE"], "fifo") if dispatch == "native" else dispatch
        s = setups.get(family, {"matrix": {}, "default": 0.0, "min_run": 0})
        groups.append(ToolGroup(
            name=family,
            area=r["STNGRP"],
            tools=int(count),
            dispatch=rule,
            load_minutes=tools.minutes(n, r, tools.number(n, r, "LTIME", 0.0), "LTUNITS"),
            unload_minutes=tools.minutes(n, r, tools.number(n, r, "ULTIME", 0.0), "ULTUNITS"),
            setup_minutes=s["default"],
            setup_matrix=dict(s["matrix"]),
            min_run=s["min_run"],
            failure=down.get(("stnfam", family)) or down.get(("stngrp", r["STNGRP"])),
            pms=tuple(pms.get(family, ())),
        ))
    return groups


def _down_calendars(folder) -> dict:
    cal = Table(folder / "downcal.txt", ("DOWNCALNAME", "MTTFDIST", "MTTF", "MTTFUNITS", "MTTRDIST", "MTTR", "MTTRUNITS"))
    laws = {}
    for n, r in cal.rows:
        for col in ("MTTFDIST", "MTTRDIST"):
            if r[col] != "exponential":
                raise DataError(cal.path, n, col, f"{r[col]!r}; allowed: exponential")
        mttf = cal.minutes(n, r, cal.number(n, r, "MTTF"), "MTTFUNITS")
        mttr = cal.minutes(n, r, cal.number(n, r, "MTTR"), "MTTRUNITS")
        laws[r["DOWNCALNAME"]] = (Dist("exponential", (mttf,)), Dist("exponential", (mttr,)))
    out = {}
    attach = Table(folder / "attach.txt", ("CALNAME", "CALTYPE", "RESTYPE", "RESNAME", "FOADIST", "FOA", "FOAUNITS"))
    for n, r in attach.rows:
        if r["CALTYPE"] != "down":
            continue
        if r["CALNAME"] not in laws:
            raise DataError(attach.path, n, "CALNAME", f"unknown down calendar {r['CALNAME']!r}")
        ttf, repair = laws[r["CALNAME"]]
        first = Dist("exponential", (attach.minutes(n, r, attach.number(n, r, "FOA"), "FOAUNITS"),)) \
            if r["FOADIST"] == "exponential" else None
        out[(r["RESTYPE"], r["RESNAME"])] = Failure(ttf=ttf, repair=repair, basis="calendar", first=first)
    return out


def _pm_calendars(folder) -> dict:
    cal = Table(folder / "pmcal.txt", ("PMCALNAME", "PMCALTYPE", "MTBPM", "MTBPMUNITS", "MTTRDIST", "MTTR", "MTTR2", "MTTRUNITS"))
    specs = {}
    for n, r in cal.rows:
        duration = _uniform(cal, n, r, "MTTR", "MTTR2", "MTTRUNITS")
        every = cal.number(n, r, "MTBPM")
        if r["PMCALTYPE"] == "mtbpm_by_cal":
            specs[r["PMCALNAME"]] = ("time", cal.minutes(n, r, every, "MTBPMUNITS"), duration)
        elif r["PMCALTYPE"] == "mtbpm_by_pieces":
            specs[r["PMCALNAME"]] = ("wafers", every, duration)
        else:
            raise DataError(cal.path, n, "PMCALTYPE", f"{r['PMCALTYPE']!r}; allowed: mtbpm_by_cal, mtbpm_by_pieces")
    out = defaultdict(list)
    attach = Table(folder / "attach.txt", ("CALNAME", "CALTYPE", "RESTYPE", "RESNAME", "FOA", "FOAUNITS"))
    for n, r in attach.rows:
        if r["CALTYPE"] != "pm":
            continue
        if r["CALNAME"] not in specs:
            raise DataError(attach.path, n, "CALNAME", f"unknown PM calendar {r['CALNAME']!r}")
        kind, every, duration = specs[r["CALNAME"]]
        if kind == "time":
            first = attach.minutes(n, r, attach.number(n, r, "FOA"), "FOAUNITS")
            out[r["RESNAME"]].append(PreventiveMaintenance(r["CALNAME"], duration, every_minutes=every, first_minutes=first))
        else:
            out[r["RESNAME"]].append(PreventiveMaintenance(r["CALNAME"], duration, every_wafers=every))
    return out


def _releases(order: Table) -> list[Release]:
    releases = []
    for n, r in order.rows:
        if r["RDIST"] != "constant":
            raise DataError(order.path, n, "RDIST", f"{r['RDIST']!r}; allowed: constant")
        priority = int(order.number(n, r, "PRIOR"))
        if priority not in PRIORITY:
            raise DataError(order.path, n, "PRIOR", f"{priority}; allowed: {', '.join(map(str, PRIORITY))}")
        start = _date(order, n, r, "START")
        due = _date(order, n, r, "DUE")
        releases.append(Release(
            name=r["LOT"], product=r["PART"], kind="interval",
            interval_minutes=order.minutes(n, r, order.number(n, r, "REPEAT"), "RUNITS"),
            lot_size=int(order.number(n, r, "PIECES")), priority=PRIORITY[priority],
            due_days=(due - start).total_seconds() / 86400.0, start_minutes=0.0,
            max_lots=int(order.number(n, r, "RPT#") * order.number(n, r, "LOTSPERRPT", 1.0)),
        ))
    return releases


def _date(table, n, row, column) -> datetime:
    try:
        return datetime.strptime(row[column], "%m/%d/%y %H:%M:%S")
    except ValueError:
        raise DataError(table.path, n, column, f"{row[column]!r} is not a date like 01/01/18 00:00:00") from None


def _initial_wip(table: Table, releases, products) -> list[InitialWip]:
    """Each initial lot joins the lot type of its part and priority, waiting at CURSTEP."""
    by_key = {(r.product, r.priority): r.name for r in releases}
    lengths = {p.name: len(p.route) for p in products}
    counts = Counter()
    for n, r in table.rows:
        priority = PRIORITY.get(int(table.number(n, r, "PRIOR")))
        key = (r["PART"], priority)
        if key not in by_key:
            raise DataError(table.path, n, "PART", f"no lot type in order.txt for part {r['PART']!r} with priority {r['PRIOR']}")
        step = int(table.number(n, r, "CURSTEP"))
        if not 1 <= step <= lengths[r["PART"]]:
            raise DataError(table.path, n, "CURSTEP", f"{step} is outside the route (1..{lengths[r['PART']]})")
        counts[(by_key[key], step)] += 1
    return [InitialWip(release, step, lots) for (release, step), lots in sorted(counts.items())]
