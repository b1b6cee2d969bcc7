"""The line model: what a fab line is, parsed from YAML and validated up front.

A line has tool groups (tools, dispatch rule, reliability, PM, setups),
products with re-entrant routes, release streams, initial WIP and transport.
All times are in minutes.  Step numbers in references (``rework.to_step``,
``qtime.from_step``, ``dedicate_to_step``, ``initial_wip.step``) are 1-based,
as engineers number route steps.  docs/line-schema.md documents every field.

Parsing never starts compute: every bad value raises :class:`ConfigError`
naming the field, the value and what is allowed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from twin.distributions import Dist
from twin.errors import ConfigError

STEP_BASES = ("wafer", "lot", "batch")
RELEASE_KINDS = ("interval", "poisson", "conwip")
PRIORITIES = {"normal": 0, "hot": 1, "super_hot": 2}
FAILURE_BASES = ("calendar", "busy")
CONDITION_POLICIES = ("condition", "predictive")
TOOL_CHOICES = ("first_idle", "least_setup")
INF = math.inf
INT32_MAX = 2**31 - 1  # integer columns of the engine's tables are int32 (twin/compile.py)
# Size bounds that keep every table small: a fab has some thousands of tools, a lot some tens of wafers.
MAX_TOOLS_PER_GROUP = 100_000
MAX_WAFERS_PER_JOB = 100_000  # lot_size, batch.min/max: wafers per lot or per batch job (int32 wafer counters)
MAX_LOTS_PER_ENTRY = 1_000_000  # initial_wip lots, conwip wip_cap: each lot takes a row of the lot table


@dataclass(frozen=True)
class Failure:
    """Unscheduled downs: time to failure, counted in calendar or busy time."""

    ttf: Dist
    repair: Dist
    basis: str = "calendar"
    first: Dist | None = None  # first occurrence; defaults to ttf


@dataclass(frozen=True)
class PreventiveMaintenance:
    """Scheduled down every ``every_minutes`` of calendar time or ``every_wafers`` wafers; or, with
    ``age``, at ``every_minutes`` since the tool's last renewal (repair or PM), renewing its failure
    clock as good as new (age replacement)."""

    name: str
    duration: Dist
    every_minutes: float = INF
    every_wafers: float = INF
    first_minutes: float | None = None  # first due time; defaults to every_minutes
    age: bool = False  # age-based: every_minutes counts from the last repair or PM, which renew the ttf clock


@dataclass(frozen=True)
class ConditionMaintenance:
    """PM driven by the tool's sensor: when a reading reaches ``threshold`` (``condition``), or when
    the trend fitted to this life's readings reaches ``target_level`` within ``lead_minutes``
    (``predictive``)."""

    policy: str
    duration: Dist
    threshold: float = INF
    target_level: float = INF
    lead_minutes: float = 0.0
    min_readings: int = 3


@dataclass(frozen=True)
class FailureWarning:
    """Warn when the trend of this life's readings predicts ``level`` within ``horizon_minutes``; a
    failure within ``window_minutes`` after the warning makes it a true one."""

    level: float
    horizon_minutes: float
    window_minutes: float


@dataclass(frozen=True)
class ToolGroup:
    name: str
    area: str
    tools: int
    dispatch: str = "fifo"
    load_minutes: float = 0.0
    unload_minutes: float = 0.0
    position: tuple[float, float] | None = None  # metres on the floor
    setup_minutes: float = 0.0  # default change-over time between setup families
    setup_matrix: dict = field(default_factory=dict)  # {(from, to): minutes}
    min_run: int = 0  # lots to run before a voluntary setup change
    failure: Failure | None = None
    pms: tuple[PreventiveMaintenance, ...] = ()
    condition_drift: float = 0.0  # tool condition growth per wafer (yield and maintenance)
    condition_noise: float = 0.0  # sd of condition growth per sqrt(wafer)
    failure_level: Dist | None = None  # a tool fails when its condition reaches this (drawn per life)
    sensor_sd: float = 0.0  # sd of the noise on each condition reading (one reading per job)
    maintenance: ConditionMaintenance | None = None
    warning: FailureWarning | None = None
    location: str | None = None  # transport location (line.transport.table); None: the default law
    tool_choice: str = "first_idle"  # which idle tool takes a lot: lowest index, or least setup time
    cascade_load: bool = True  # a cascading tool's occupancy counts the load time (False: loading overlaps)
    dedication_release: bool = False  # a lot dedicated to a tool that is down may run on another tool
    strict_min_run: bool = False  # during its min_run a tool waits for a lot of its setup (False: changes if none)

    @property
    def watches_condition(self) -> bool:
        """Whether the engine must track this group's condition life (readings, levels, policies)."""
        return self.failure_level is not None or self.maintenance is not None or self.warning is not None


@dataclass(frozen=True)
class Step:
    group: str
    time: Dist
    per: str = "lot"
    name: str = ""
    batch_min: int = 1  # wafers
    batch_max: int = 0  # wafers; 0 means not a batch step
    batch_max_wait: float = INF  # minutes the oldest lot waits before a partial batch starts
    setup: str | None = None
    sampling: float = 1.0
    rework_prob: float = 0.0
    rework_to: int = 0  # 1-based step the lot loops back to
    rework_once: bool = False  # at most one rework per lot at this step
    qtime_from: int = 0  # 1-based step whose completion starts the clock; 0 = none
    qtime_limit: float = INF
    dedicate_to_step: int = 0  # 1-based earlier step whose tool this step must reuse
    priority: int = 0  # static priority for the step_priority rule (higher first)
    defect_density: float = 0.0  # killer defects per cm^2 added to each wafer
    cascade_interval: float = 0.0  # cascading tool: minutes it stays occupied (0 = not cascading)
    cascade_per: str = "lot"  # the interval counts per lot or per wafer of the job

    @property
    def is_batch(self) -> bool:
        return self.batch_max > 0


@dataclass(frozen=True)
class Product:
    name: str
    route: tuple[Step, ...]
    yield_spec: object | None = None  # twin.yield_model.YieldSpec


@dataclass(frozen=True)
class Release:
    """A stream of lots of one product (a 'lot type' such as Lot_3 or HotLot_3)."""

    name: str
    product: str
    kind: str = "interval"
    interval_minutes: float = 60.0
    wip_cap: int = 0
    lot_size: int = 25
    priority: str = "normal"
    due_days: float = INF
    start_minutes: float = 0.0
    max_lots: int = 2**31 - 1


@dataclass(frozen=True)
class InitialWip:
    release: str
    step: int  # 1-based
    lots: int = 1
    due_minutes: tuple[float, ...] | None = None  # each lot's due date; None: share of the route's due offset


@dataclass(frozen=True)
class Line:
    name: str
    tool_groups: tuple[ToolGroup, ...]
    products: tuple[Product, ...]
    releases: tuple[Release, ...]
    initial_wip: tuple[InitialWip, ...] = ()
    transport: Dist = Dist.constant(0.0)
    areas: tuple[str, ...] = ()
    layout: dict | None = None  # floor layout hints for views (free form)
    run_defaults: dict = field(default_factory=dict)  # horizon_days, warmup_days, dispatch
    transport_table: dict = field(default_factory=dict)  # {(from location, to location): Dist}; else `transport`

    def group_index(self, name: str) -> int:
        return [g.name for g in self.tool_groups].index(name)

    def product_index(self, name: str) -> int:
        return [p.name for p in self.products].index(name)


# ----------------------------------------------------------------------------- parsing


def load_line(source) -> Line:
    """Load a line from an embedded name, a YAML path, or a mapping composed by Hydra.

    A mapping with only ``path`` points at a file; one with ``loader`` goes to a
    data loader (SMT2020); any other mapping is the line itself.
    """
    if isinstance(source, dict):
        if "path" in source:  # a file, with any line.* overrides given on top of it
            return load_line_file(str(source["path"]), {k: v for k, v in source.items() if k != "path"})
        if "loader" in source:
            return _load_by_loader(source, None)
        return parse_line(source)
    return load_line_file(str(source))


def load_line_file(source: str, overrides: dict | None = None) -> Line:
    """Load a line by embedded name (``default``) or by path to a YAML file."""
    from twin.yamlio import load_yaml_file

    from twin.variants import compose_line

    path = resolve_line_path(source)
    data = load_yaml_file(path, dict, "a mapping with tool_groups, products and releases")
    data = compose_line(data, path, overrides)
    if "loader" in data:
        return _load_by_loader(data, path)
    return parse_line(data)


def embedded_lines() -> list[str]:
    return sorted(p.stem for p in _embedded_dir().glob("*.yaml") if p.stem != "file")


def _embedded_dir() -> Path:
    from twin.configs_path import config_dir

    return config_dir() / "line"


def resolve_line_path(source) -> Path:
    text = str(source)
    embedded = _embedded_dir() / f"{text}.yaml"
    if "/" not in text and embedded.is_file():
        return embedded
    path = Path(text).expanduser()
    if path.is_file():
        return path
    raise ConfigError("line", text, f"is neither an embedded line ({', '.join(embedded_lines())}) nor an existing YAML file")


def _load_by_loader(data: dict, path: Path | None) -> Line:
    """An embedded line may delegate to a data loader (SMT2020 tables)."""
    loader = data["loader"]
    if loader == "smt2020":
        from twin.smt2020 import load_smt2020
        from twin.variants import load_loader_line

        return load_loader_line(data, load_smt2020)
    raise ConfigError("line.loader", loader, "allowed: smt2020")


def parse_line(data: dict) -> Line:
    """Validate a line mapping into a :class:`Line`; raises ConfigError."""
    _only(data, {"name", "areas", "tool_groups", "products", "releases", "initial_wip", "transport", "layout", "run_defaults"}, "line")
    groups = tuple(_parse_group(g, f) for f, g in _named_items(data, "tool_groups", "line"))
    _unique([g.name for g in groups], "line.tool_groups", "name")
    group_names = {g.name for g in groups}
    products = tuple(_parse_product(p, f, group_names) for f, p in _named_items(data, "products", "line"))
    _unique([p.name for p in products], "line.products", "name")
    product_names = {p.name for p in products}
    releases = tuple(_parse_release(r, f, product_names) for f, r in _named_items(data, "releases", "line"))
    _unique([r.name for r in releases], "line.releases", "name")
    route_len = {p.name: len(p.route) for p in products}
    by_release = {r.name: r for r in releases}
    wip = tuple(
        _parse_wip(w, f"line.initial_wip[{i}]", by_release, route_len) for i, w in enumerate(_optional_list(data, "initial_wip", "line"))
    )
    transport, table = _parse_transport(data.get("transport", 0.0), groups)
    areas = tuple(dict.fromkeys([*_names_list(data, "areas", "line"), *(g.area for g in groups)]))
    run_defaults = _run_defaults(data.get("run_defaults") or {})
    return Line(_text(data, "name", "line", "line"), groups, products, releases, wip, transport, areas, _optional_mapping(data, "layout", "line"),
                dict(run_defaults), table)


def _run_defaults(d) -> dict:
    """The line's own horizon, warm-up and dispatch rule, checked even when the run overrides them."""
    _only(d, {"horizon_days", "warmup_days", "dispatch"}, "line.run_defaults")
    for key in ("horizon_days", "warmup_days"):
        if key in d:
            _number(d[key], f"line.run_defaults.{key}")
    if "dispatch" in d and d["dispatch"] is not None and not isinstance(d["dispatch"], str):
        raise ConfigError("line.run_defaults.dispatch", d["dispatch"], "must be one rule name")
    return d


def _parse_transport(d, groups):
    """One law for every move, or ``{default, table}``: a law per (from, to) location of the groups."""
    if not (isinstance(d, dict) and ("default" in d or "table" in d)):
        return Dist.parse(d, "line.transport"), {}
    _only(d, {"default", "table"}, "line.transport")
    default = Dist.parse(d.get("default", 0.0), "line.transport.default")
    locations = sorted({g.location for g in groups if g.location is not None})
    table = {}
    for j, row in enumerate(_optional_list(d, "table", "line.transport")):
        f = f"line.transport.table[{j}]"
        _only(row, {"from", "to", "time"}, f)
        key = (row.get("from"), row.get("to"))
        for end, name in zip(("from", "to"), key):
            if name not in locations:
                raise ConfigError(f"{f}.{end}", name, f"must be a location of a tool group ({', '.join(locations) or 'none set'})")
        if key in table:
            raise ConfigError(f, list(key), "a (from, to) pair appears twice")
        table[key] = Dist.parse(row.get("time"), f"{f}.time")
    return default, table


def _parse_group(d, f) -> ToolGroup:
    from kernels.dispatch import RULE_NAMES

    _mapping(d, f)
    _only(d, {"name", "area", "tools", "dispatch", "load_minutes", "unload_minutes", "position", "setup", "failures", "pm",
              "condition", "maintenance", "location", "tool_choice"}, f)
    dispatch = d.get("dispatch", "fifo")
    if not _one_of(dispatch, RULE_NAMES):
        raise ConfigError(f"{f}.dispatch", dispatch, f"allowed: {', '.join(RULE_NAMES)}")
    tool_choice = d.get("tool_choice", "first_idle")
    if not _one_of(tool_choice, TOOL_CHOICES):
        raise ConfigError(f"{f}.tool_choice", tool_choice, f"allowed: {', '.join(TOOL_CHOICES)}")
    location = d.get("location")
    if location is not None and (not isinstance(location, str) or not location):
        raise ConfigError(f"{f}.location", location, "must be a non-empty string (a transport location)")
    setup = d.get("setup") or {}
    _only(setup, {"minutes", "matrix", "min_run"}, f"{f}.setup")
    matrix = {}
    for j, row in enumerate(_optional_list(setup, "matrix", f"{f}.setup")):
        rf = f"{f}.setup.matrix[{j}]"
        _only(row, {"from", "to", "minutes"}, rf)
        matrix[(_text(row, "from", None, rf), _text(row, "to", None, rf))] = _number(row.get("minutes"), f"{rf}.minutes")
    position = d.get("position")
    if position is not None:
        if not (isinstance(position, (list, tuple)) and len(position) == 2):
            raise ConfigError(f"{f}.position", position, "must be [x, y] in metres")
        position = (_number(position[0], f"{f}.position[0]", low=-INF), _number(position[1], f"{f}.position[1]", low=-INF))
    cond = d.get("condition") or {}
    _only(cond, {"drift_per_wafer", "noise_per_wafer", "failure_level", "sensor_sd", "warning"}, f"{f}.condition")
    drift = _number(cond.get("drift_per_wafer", 0.0), f"{f}.condition.drift_per_wafer")
    level = Dist.parse(cond["failure_level"], f"{f}.condition.failure_level") if "failure_level" in cond else None
    maintenance = _parse_condition_maintenance(d["maintenance"], f"{f}.maintenance") if d.get("maintenance") else None
    warning = _parse_warning(cond["warning"], f"{f}.condition.warning") if cond.get("warning") else None
    if (level is not None or maintenance is not None or warning is not None) and drift <= 0.0:
        field_name = f"{f}.condition.drift_per_wafer"
        raise ConfigError(field_name, drift, "must be > 0 when a failure_level or maintenance policy watches the condition")
    return ToolGroup(
        name=_name(d, f),
        area=_text(d, "area", "fab", f),
        tools=_integer(d.get("tools"), f"{f}.tools", low=1, high=MAX_TOOLS_PER_GROUP),
        dispatch=dispatch,
        load_minutes=_number(d.get("load_minutes", 0.0), f"{f}.load_minutes"),
        unload_minutes=_number(d.get("unload_minutes", 0.0), f"{f}.unload_minutes"),
        position=position,
        setup_minutes=_number(setup.get("minutes", 0.0), f"{f}.setup.minutes"),
        setup_matrix=matrix,
        min_run=_integer(setup.get("min_run", 0), f"{f}.setup.min_run", low=0),
        failure=_parse_failure(d["failures"], f"{f}.failures") if d.get("failures") else None,
        pms=tuple(_parse_pm(p, pf) for pf, p in _named_items(d, "pm", f, required=False)),
        condition_drift=drift,
        condition_noise=_number(cond.get("noise_per_wafer", 0.0), f"{f}.condition.noise_per_wafer"),
        failure_level=level,
        sensor_sd=_number(cond.get("sensor_sd", 0.0), f"{f}.condition.sensor_sd"),
        maintenance=maintenance,
        warning=warning,
        location=location,
        tool_choice=tool_choice,
    )


def _parse_warning(d, f) -> FailureWarning:
    _only(d, {"level", "horizon_minutes", "window_minutes"}, f)
    for key in ("level", "horizon_minutes"):
        if key not in d:
            raise ConfigError(f"{f}.{key}", None, "required: warn when the fitted trend reaches level within horizon_minutes")
    horizon = _number(d["horizon_minutes"], f"{f}.horizon_minutes", positive=True)
    return FailureWarning(
        level=_number(d["level"], f"{f}.level", positive=True),
        horizon_minutes=horizon,
        window_minutes=_number(d.get("window_minutes", 2.0 * horizon), f"{f}.window_minutes", positive=True),
    )


def _parse_condition_maintenance(d, f) -> ConditionMaintenance:
    _only(d, {"policy", "duration", "threshold", "target_level", "lead_minutes", "min_readings"}, f)
    policy = d.get("policy")
    if not _one_of(policy, CONDITION_POLICIES):
        raise ConfigError(f"{f}.policy", policy, f"allowed: {', '.join(CONDITION_POLICIES)} "
                          "(time and wafer-count PMs go under pm:, run-to-failure is no PM at all)")
    needed = ("threshold",) if policy == "condition" else ("target_level", "lead_minutes")
    for key in needed:
        if key not in d:
            raise ConfigError(f"{f}.{key}", None, f"required by policy {policy}")
    return ConditionMaintenance(
        policy=policy,
        duration=Dist.parse(d.get("duration"), f"{f}.duration"),
        threshold=_number(d.get("threshold", INF), f"{f}.threshold", positive=True, finite="threshold" in d),
        target_level=_number(d.get("target_level", INF), f"{f}.target_level", positive=True, finite="target_level" in d),
        lead_minutes=_number(d.get("lead_minutes", 0.0), f"{f}.lead_minutes"),
        min_readings=_integer(d.get("min_readings", 3), f"{f}.min_readings", low=2),
    )


def _parse_failure(d, f) -> Failure:
    _mapping(d, f)
    _only(d, {"ttf", "repair", "basis", "first"}, f)
    ttf = Dist.parse(d.get("ttf"), f"{f}.ttf")
    if ttf.kind not in ("exponential", "weibull"):
        raise ConfigError(f"{f}.ttf.dist", ttf.kind, "time to failure allows: exponential, weibull")
    repair = Dist.parse(d.get("repair"), f"{f}.repair")
    if repair.kind not in ("exponential", "lognormal", "uniform", "constant", "triangular"):
        raise ConfigError(f"{f}.repair.dist", repair.kind, "repair time allows: exponential, lognormal, uniform, triangular, constant")
    basis = d.get("basis", "calendar")
    if not _one_of(basis, FAILURE_BASES):
        raise ConfigError(f"{f}.basis", basis, f"allowed: {', '.join(FAILURE_BASES)}")
    first = Dist.parse(d["first"], f"{f}.first") if d.get("first") is not None else None
    return Failure(ttf, repair, basis, first)


def _parse_pm(d, f) -> PreventiveMaintenance:
    _mapping(d, f)
    _only(d, {"name", "every_minutes", "every_wafers", "age_minutes", "duration", "first_minutes"}, f)
    every_m = d.get("every_minutes")
    every_w = d.get("every_wafers")
    age_m = d.get("age_minutes")
    if sum(v is not None for v in (every_m, every_w, age_m)) != 1:
        raise ConfigError(f"{f}", d, "give exactly one of every_minutes, every_wafers or age_minutes")
    if age_m is not None:
        every_m = _number(age_m, f"{f}.age_minutes", positive=True)
    first = d.get("first_minutes")
    return PreventiveMaintenance(
        name=_text(d, "name", "pm", f),
        duration=Dist.parse(d.get("duration"), f"{f}.duration"),
        every_minutes=_number(every_m, f"{f}.every_minutes", positive=True) if every_m is not None else INF,
        every_wafers=_number(every_w, f"{f}.every_wafers", positive=True) if every_w is not None else INF,
        first_minutes=_number(first, f"{f}.first_minutes") if first is not None else None,
        age=age_m is not None,
    )


def _parse_product(d, f, group_names) -> Product:
    _mapping(d, f)
    _only(d, {"name", "route", "yield"}, f)
    route_raw = _list(d, "route", f)
    route = tuple(_parse_step(s, f"{f}.route[{k}]", group_names) for k, s in enumerate(route_raw))
    n = len(route)
    for k, s in enumerate(route, start=1):
        sf = f"{f}.route[{k - 1}]"
        if s.rework_prob > 0 and not 1 <= s.rework_to <= k:
            raise ConfigError(f"{sf}.rework.to_step", s.rework_to, f"must be a step number in 1..{k} (this step or an earlier one)")
        if s.rework_prob >= 1.0 and s.sampling >= 1.0 and not s.rework_once:
            raise ConfigError(f"{sf}.rework.prob", s.rework_prob, f"a lot reworked with probability 1 back to step {s.rework_to} "
                              "never leaves the loop; must be < 1 (or set rework.once: true)")
        if s.qtime_from and not 1 <= s.qtime_from < k:
            raise ConfigError(f"{sf}.qtime.from_step", s.qtime_from, f"must be an earlier step number in 1..{k - 1}")
        if s.dedicate_to_step and not 1 <= s.dedicate_to_step < k:
            raise ConfigError(f"{sf}.dedicate_to_step", s.dedicate_to_step, f"must be an earlier step number in 1..{k - 1}")
        if s.dedicate_to_step and route[s.dedicate_to_step - 1].group != s.group:
            raise ConfigError(f"{sf}.dedicate_to_step", s.dedicate_to_step, "must name a step run on the same tool group")
    del n
    yield_spec = None
    if d.get("yield") is not None:
        from twin.yield_model import parse_yield_spec

        yield_spec = parse_yield_spec(d["yield"], f"{f}.yield")
    return Product(_name(d, f), route, yield_spec)


def _parse_step(d, f, group_names) -> Step:
    _mapping(d, f)
    _only(d, {"name", "group", "time", "per", "batch", "setup", "sampling", "rework", "qtime", "dedicate_to_step", "priority", "defect_density", "cascade"}, f)
    group = d.get("group")
    if not _one_of(group, group_names):
        raise ConfigError(f"{f}.group", group, "must name a tool group of the line")
    per = d.get("per", "lot")
    if not _one_of(per, STEP_BASES):
        raise ConfigError(f"{f}.per", per, f"allowed: {', '.join(STEP_BASES)}")
    batch = d.get("batch") or {}
    _only(batch, {"min", "max", "max_wait"}, f"{f}.batch")
    bmin = _integer(batch.get("min", 1), f"{f}.batch.min", low=1, high=MAX_WAFERS_PER_JOB)
    bmax = _integer(batch.get("max", 0), f"{f}.batch.max", low=0, high=MAX_WAFERS_PER_JOB)
    if batch and bmax < bmin:
        raise ConfigError(f"{f}.batch.min", bmin, f"must be <= batch.max ({bmax})")
    if per == "batch" and not batch:
        raise ConfigError(f"{f}.batch", None, "a per-batch step needs batch: {min, max}")
    rework = d.get("rework") or {}
    _only(rework, {"prob", "to_step", "once"}, f"{f}.rework")
    if not isinstance(rework.get("once", False), bool):
        raise ConfigError(f"{f}.rework.once", rework["once"], "must be true or false")
    qtime = d.get("qtime") or {}
    _only(qtime, {"from_step", "limit"}, f"{f}.qtime")
    cascade = d.get("cascade") or {}
    _only(cascade, {"interval", "per"}, f"{f}.cascade")
    cascade_per = cascade.get("per", "lot")
    if cascade_per not in ("lot", "wafer"):
        raise ConfigError(f"{f}.cascade.per", cascade_per, "allowed: lot, wafer")
    return Step(
        group=group,
        time=Dist.parse(d.get("time"), f"{f}.time"),
        per=per,
        name=_text(d, "name", "", f),
        batch_min=bmin,
        batch_max=bmax,
        batch_max_wait=_number(batch.get("max_wait", INF), f"{f}.batch.max_wait", finite=False),
        setup=_text(d, "setup", None, f) if d.get("setup") is not None else None,
        sampling=_probability(d.get("sampling", 1.0), f"{f}.sampling"),
        rework_prob=_probability(rework.get("prob", 0.0), f"{f}.rework.prob"),
        rework_to=_integer(rework.get("to_step", 0), f"{f}.rework.to_step", low=0),
        rework_once=rework.get("once", False),
        qtime_from=_integer(qtime.get("from_step", 0), f"{f}.qtime.from_step", low=0),
        qtime_limit=_number(qtime.get("limit", INF), f"{f}.qtime.limit", finite=False),
        dedicate_to_step=_integer(d.get("dedicate_to_step", 0), f"{f}.dedicate_to_step", low=0),
        priority=_integer(d.get("priority", 0), f"{f}.priority", low=-(2**20), high=2**20),
        defect_density=_number(d.get("defect_density", 0.0), f"{f}.defect_density"),
        cascade_interval=_number(cascade.get("interval", 0.0), f"{f}.cascade.interval"),
        cascade_per=cascade_per,
    )


def _parse_release(d, f, product_names) -> Release:
    _mapping(d, f)
    _only(d, {"name", "product", "kind", "interval_minutes", "wip_cap", "lot_size", "priority", "due_days", "start_minutes", "max_lots"}, f)
    product = d.get("product")
    if not _one_of(product, product_names):
        raise ConfigError(f"{f}.product", product, "must name a product of the line")
    kind = d.get("kind", "interval")
    if not _one_of(kind, RELEASE_KINDS):
        raise ConfigError(f"{f}.kind", kind, f"allowed: {', '.join(RELEASE_KINDS)}")
    priority = d.get("priority", "normal")
    if not _one_of(priority, PRIORITIES):
        raise ConfigError(f"{f}.priority", priority, f"allowed: {', '.join(PRIORITIES)}")
    wip_cap = _integer(d.get("wip_cap", 0), f"{f}.wip_cap", low=0, high=MAX_LOTS_PER_ENTRY)
    if kind == "conwip" and wip_cap < 1:
        raise ConfigError(f"{f}.wip_cap", wip_cap, "a conwip release needs wip_cap >= 1")
    return Release(
        name=_name(d, f),
        product=product,
        kind=kind,
        interval_minutes=_number(d.get("interval_minutes", 60.0), f"{f}.interval_minutes", positive=True),
        wip_cap=wip_cap,
        lot_size=_integer(d.get("lot_size", 25), f"{f}.lot_size", low=1, high=MAX_WAFERS_PER_JOB),
        priority=priority,
        due_days=_number(d.get("due_days", INF), f"{f}.due_days", finite=False),
        start_minutes=_number(d.get("start_minutes", 0.0), f"{f}.start_minutes"),
        max_lots=_integer(d.get("max_lots", 2**31 - 1), f"{f}.max_lots", low=0),
    )


def _parse_wip(d, f, by_release, route_len) -> InitialWip:
    _mapping(d, f)
    _only(d, {"release", "step", "lots", "due_minutes"}, f)
    rel = d.get("release")
    if not _one_of(rel, by_release):
        raise ConfigError(f"{f}.release", rel, "must name a release stream of the line")
    n = route_len[by_release[rel].product]
    step = _integer(d.get("step", 1), f"{f}.step", low=1)
    if step > n:
        raise ConfigError(f"{f}.step", step, f"must be a step number in 1..{n}")
    lots = _integer(d.get("lots", 1), f"{f}.lots", low=0, high=MAX_LOTS_PER_ENTRY)
    return InitialWip(rel, step, lots, _parse_wip_dues(d.get("due_minutes"), lots, f"{f}.due_minutes"))


def _parse_wip_dues(value, lots, f):
    """One due date per lot, in minutes from t = 0 (negative: already late)."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != lots:
        raise ConfigError(f, value, f"must be a list of {lots} due dates in minutes (one per lot)")
    return tuple(_number(v, f"{f}[{k}]", low=-INF) for k, v in enumerate(value))


# ----------------------------------------------------------------------------- field checks


def _mapping(d, f):
    if not isinstance(d, dict):
        raise ConfigError(f, d, "must be a mapping")


def _one_of(value, options) -> bool:
    """Membership that a list or mapping value (unhashable) fails instead of raising TypeError."""
    return isinstance(value, str) and value in options


def _only(d, allowed, f):
    _mapping(d, f)
    for key in d:
        if key not in allowed:
            raise ConfigError(f"{f}.{key}", d[key], f"unknown field; allowed: {', '.join(sorted(allowed))}")


def _named_items(d, key, f, required=True):
    """``(field, item)`` pairs of a list of named items, or of a mapping keyed by name (the form Hydra
    overrides address: ``line.tool_groups.LITHO.tools=6``); a mapping's null entry is dropped (a variant
    removes an item that way)."""
    value = d.get(key)
    if isinstance(value, dict):
        items = []
        for name, item in value.items():
            if item is None:
                continue
            _mapping(item, f"{f}.{key}.{name}")
            if item.get("name", name) != name:
                raise ConfigError(f"{f}.{key}.{name}.name", item["name"], f"must equal its key {name!r} (or be left out)")
            items.append((f"{f}.{key}.{name}", {"name": str(name), **item}))
        if items or not required:
            return items
        value = None
    if not required and not value:
        return []
    return [(f"{f}.{key}[{i}]", item) for i, item in enumerate(_list(d, key, f))]


def _list(d, key, f):
    value = d.get(key)
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{f}.{key}", value, "must be a non-empty list")
    return value


def _name(d, f):
    name = d.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{f}.name", name, "must be a non-empty string")
    return name


def _unique(names, f, key):
    seen = set()
    for i, n in enumerate(names):
        if n in seen:
            raise ConfigError(f"{f}[{i}].{key}", n, "must be unique")
        seen.add(n)


def _number(value, f, low=0.0, positive=False, finite=True):
    """A number >= ``low`` (> 0 if ``positive``); infinity only where ``finite`` is off (a limit that may be absent)."""
    if isinstance(value, str) and value.lower() in ("inf", ".inf", "infinity"):
        value = INF
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f, value, "must be a number")
    if finite and not math.isfinite(value):
        raise ConfigError(f, value, "must be a finite number" + (" > 0" if positive else f" >= {low:g}" if low > -INF else ""))
    if math.isnan(value) or value < low or (positive and value <= 0):
        raise ConfigError(f, value, "must be > 0" if positive else f"must be >= {low:g}")
    return float(value)


def _integer(value, f, low=0, high=INT32_MAX):
    """An integer in [low, high]; ``high`` defaults to the engine's int32 tables."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value != int(value):
        raise ConfigError(f, value, "must be an integer")
    if not low <= value <= high:
        raise ConfigError(f, value, f"must be an integer in {low}..{high:,}")
    return int(value)


def _text(d, key, default, f):
    """A string field; numbers are accepted as names (YAML reads ``name: 7`` as an integer)."""
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{f}.{key}", value, "must be a string")
    return str(value)


def _optional_list(d, key, f):
    """An optional list field: absent or null is empty; a mapping or scalar is refused."""
    value = d.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{f}.{key}", value, "must be a list")
    return value


def _optional_mapping(d, key, f):
    value = d.get(key)
    if value is not None and not isinstance(value, dict):
        raise ConfigError(f"{f}.{key}", value, "must be a mapping (or absent)")
    return value


def _names_list(d, key, f):
    names = _optional_list(d, key, f)
    for i, name in enumerate(names):
        if isinstance(name, bool) or not isinstance(name, (str, int)):
            raise ConfigError(f"{f}.{key}[{i}]", name, "must be a name (a string)")
    return [str(n) for n in names]


def _probability(value, f):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f, value, "must be a probability in [0, 1]")
    return float(value)
