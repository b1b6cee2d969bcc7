"""The SMT2020 loader against the tables themselves.

Every expected value here is read from the data files with the standard
library's csv module (not with the loader's reader) or is a published fact of
the testbed (product count, route lengths, tool count, initial WIP).  Tests skip
when the data folder is absent (CI keeps ../shared/data beside the clone).
"""
from __future__ import annotations

import csv
import math
from collections import Counter
from datetime import datetime

import numpy as np
import pytest

from kernels import layout as K
from twin.distributions import Dist
from twin.errors import ConfigError
from twin.line import load_line
from twin.smt2020 import load_smt2020, resolve_data_dir

UNIT = {"sec": 1 / 60, "min": 1.0, "hr": 60.0, "day": 1440.0}


def data_dir_or_skip(dataset):
    try:
        return resolve_data_dir(None, dataset)
    except ConfigError as err:
        pytest.skip(f"SMT2020 data absent (expected ../shared/data/smt2020 beside the repository): {err}")


def raw(dataset, name):
    """A table as dicts, read independently of the loader."""
    with open(data_dir_or_skip(dataset) / name, newline="") as f:
        return [r for r in csv.DictReader(f, delimiter="\t") if any((v or "").strip() for v in r.values())]


@pytest.fixture(scope="module", params=["HVLM", "LVHM"])
def dataset(request):
    data_dir_or_skip(request.param)
    return request.param


@pytest.fixture(scope="module")
def line(dataset):
    return load_line(f"smt2020_{dataset.lower()}")


def groups_of(line):
    return {g.name: g for g in line.tool_groups}


def route_rows(dataset, part):
    parts = {r["PART"]: r["ROUTEFILE"] for r in raw(dataset, "part.txt")}
    return raw(dataset, parts[part])


# ----------------------------------------------------------------------------- published facts


def test_hvlm_matches_the_published_testbed():
    data_dir_or_skip("HVLM")
    line = load_line("smt2020_hvlm")
    assert [len(p.route) for p in line.products] == [583, 343]
    assert len(line.tool_groups) == 106
    assert sum(g.tools for g in line.tool_groups) == 1443
    assert groups_of(line)["Delay_32"].tools == 400
    assert sum(w.lots for w in line.initial_wip) == 2255
    assert len(line.areas) == 12


def test_lvhm_matches_the_published_testbed():
    data_dir_or_skip("LVHM")
    line = load_line("smt2020_lvhm")
    lengths = [len(p.route) for p in line.products]
    assert len(lengths) == 10 and min(lengths) == 242 and max(lengths) == 583
    assert len(line.tool_groups) == 106
    assert sum(g.tools for g in line.tool_groups) == 1313
    assert sum(w.lots for w in line.initial_wip) == 2156


def test_run_defaults_are_two_years_and_warm_up_outlasts_every_due_offset(line):
    assert line.run_defaults["horizon_days"] == 730
    # An initial lot released at t=0 is due within its due offset; by the end of the warm-up
    # the fab holds only lots released into the loaded fab.
    assert line.run_defaults["warmup_days"] > max(r.due_days for r in line.releases)
    # and every initial lot (WIP.txt DUE) is due before the warm-up ends
    assert line.run_defaults["warmup_days"] * 1440 > max(d for w in line.initial_wip for d in w.due_minutes)


# ----------------------------------------------------------------------------- tool groups


def test_tool_groups_match_tool_table(dataset, line):
    groups = groups_of(line)
    for r in raw(dataset, "tool.txt.1l"):
        g = groups[r["STNFAM"]]
        assert g.tools == int(float(r["STNQTY"])) and g.area == r["STNGRP"]
        assert g.load_minutes == float(r["LTIME"]) * UNIT[r["LTUNITS"]]
        assert g.unload_minutes == float(r["ULTIME"]) * UNIT[r["ULTUNITS"]]


def test_every_route_references_a_known_family(dataset, line):
    families = {r["STNFAM"] for r in raw(dataset, "tool.txt.1l")}
    for p in line.products:
        used = {s.group for s in p.route}
        assert used <= families, used - families
    for part in (p.name for p in line.products):
        assert [s.group for s in next(p for p in line.products if p.name == part).route] == [
            r["STNFAM"] for r in route_rows(dataset, part)]


def test_breakdown_calendars_equal_the_tables(dataset, line):
    """Each family carries its area's MTTF/MTTR; the breakdown share is MTTR/(MTTF+MTTR)."""
    downcal = {r["DOWNCALNAME"]: r for r in raw(dataset, "downcal.txt")}
    by_area = {a["RESNAME"]: downcal[a["CALNAME"]] for a in raw(dataset, "attach.txt") if a["CALTYPE"] == "down"}
    assert all(a["RESTYPE"] == "stngrp" for a in raw(dataset, "attach.txt") if a["CALTYPE"] == "down")
    for g in line.tool_groups:
        cal = by_area.get(g.area)
        if cal is None:
            assert g.failure is None, g.name  # Delay_32
            continue
        mttf = float(cal["MTTF"]) * UNIT[cal["MTTFUNITS"]]
        mttr = float(cal["MTTR"]) * UNIT[cal["MTTRUNITS"]]
        f = g.failure
        assert (f.ttf.kind, f.repair.kind, f.basis) == ("exponential", "exponential", "calendar")
        assert f.ttf.mean == pytest.approx(mttf) and f.repair.mean == pytest.approx(mttr)
        assert f.first.kind == "exponential" and f.first.mean == pytest.approx(10080.0)
        share = f.repair.mean / (f.ttf.mean + f.repair.mean)
        assert share == pytest.approx(mttr / (mttf + mttr))
    assert groups_of(line)["Delay_32"].failure is None


def test_pm_calendars_equal_the_tables(dataset, line):
    pmcal = {r["PMCALNAME"]: r for r in raw(dataset, "pmcal.txt")}
    groups = groups_of(line)
    expected = Counter()
    for a in raw(dataset, "attach.txt"):
        if a["CALTYPE"] != "pm":
            continue
        cal = pmcal[a["CALNAME"]]
        pm = next(p for p in groups[a["RESNAME"]].pms if p.name == a["CALNAME"])
        mean, half = float(cal["MTTR"]) * 60.0, float(cal["MTTR2"]) * 60.0
        assert cal["MTTRUNITS"] == "hr" and pm.duration.kind == "uniform"
        assert pm.duration.params == pytest.approx((mean - half, mean + half))
        if cal["PMCALTYPE"] == "mtbpm_by_cal":
            assert pm.every_minutes == pytest.approx(float(cal["MTBPM"]) * UNIT[cal["MTBPMUNITS"]])
            assert pm.first_minutes == pytest.approx(float(a["FOA"]) * UNIT[a["FOAUNITS"]])
            assert math.isinf(pm.every_wafers)
        else:
            assert pm.every_wafers == float(cal["MTBPM"]) and math.isinf(pm.every_minutes)
        expected[a["RESNAME"]] += 1
    assert {g.name: len(g.pms) for g in line.tool_groups if g.pms} == dict(expected)


def test_setups_and_minimum_runs(dataset, line):
    g = groups_of(line)
    # setup.txt: from any setup into SU128_x takes 72 min; setupgrp.txt: 7 lots before a change.
    assert (g["Implant_128"].setup_minutes, g["Implant_128"].min_run) == (72.0, 7)
    assert (g["Implant_132"].setup_minutes, g["Implant_91"].setup_minutes) == (60.0, 80.0)
    # setup.txt: sequence-dependent pairs; none from an empty tool.
    assert g["DE_BE_13"].setup_minutes == 0.0
    assert g["DE_BE_13"].setup_matrix == {("DE_BE_13_1", "DE_BE_13_2"): 7.0, ("DE_BE_13_2", "DE_BE_13_1"): 12.0}
    assert g["DE_BE_66"].setup_matrix == {("DE_BE_66_1", "DE_BE_66_2"): 15.0, ("DE_BE_66_2", "DE_BE_66_1"): 10.0}
    # route STIME: every change into the step's setup.
    assert g["LithoTrack_FE_115"].setup_minutes == 8.0 and g["LithoTrack_FE_95"].setup_minutes == 15.0
    assert g["Implant_119"].setup_minutes == 15.0 and g["Implant_90"].setup_minutes == 15.0
    owners = {}
    for p in line.products:
        for s in p.route:
            if s.setup is not None:
                assert owners.setdefault(s.setup, s.group) == s.group  # a setup name belongs to one group


# ----------------------------------------------------------------------------- steps


def step_pairs(dataset, line):
    for p in line.products:
        yield from zip(route_rows(dataset, p.name), p.route)


def test_processing_times_read_ptime2_as_half_width(dataset, line):
    groups = groups_of(line)
    for r, s in step_pairs(dataset, line):
        unit = UNIT[r["PTUNITS"]]
        lo, hi = (float(r["PTIME"]) - float(r["PTIME2"])) * unit, (float(r["PTIME"]) + float(r["PTIME2"])) * unit
        assert r["PDIST"] == "uniform" and s.time.kind == "uniform"
        if r["PartInterval"]:
            # Cascading per-piece step: 24 further wafers follow the first at PartInterval.
            pi = float(r["PartInterval"]) * UNIT[r["PartIntUnits"]]
            assert (s.per, s.cascade_per) == ("lot", "wafer") and s.cascade_interval == pytest.approx(pi)
            assert s.time.params == pytest.approx((lo + 24 * pi, hi + 24 * pi))
            continue
        assert s.time.params == pytest.approx((lo, hi))
        assert s.per == {"per_piece": "wafer", "per_lot": "lot", "per_batch": "batch"}[r["PTPER"]]
        if r["BatchInterval"]:
            assert s.cascade_per == "lot"
            assert s.cascade_interval == pytest.approx(float(r["BatchInterval"]) * UNIT[r["BatchIntUnits"]])
        else:
            assert s.cascade_interval == 0.0
        if r["PTPER"] == "per_batch":
            assert (s.batch_min, s.batch_max) == (int(r["BATCHMN"]), int(r["BATCHMX"]))
            assert groups[s.group].tools >= 1 and math.isinf(s.batch_max_wait)
        else:
            assert not s.is_batch


def test_cascading_never_holds_more_lots_than_station_capacity(dataset, line):
    """STNCAP = 2: the longest lot time is below two tool occupancies, so at most two lots share a tool
    and the engine's cascade (no cap) is exact for these tables."""
    tools = {r["STNFAM"]: r for r in raw(dataset, "tool.txt.1l")}
    groups = groups_of(line)
    cascading = 0
    for p in line.products:
        for s in p.route:
            if s.cascade_interval <= 0:
                continue
            cascading += 1
            g = groups[s.group]
            cap = float(tools[s.group]["STNCAP"])
            held_load = g.load_minutes if g.cascade_load else 0.0  # cascade_occupancy (default: interval only)
            occupancy = held_load + s.cascade_interval * (25 if s.cascade_per == "wafer" else 1)
            longest = g.load_minutes + s.time.params[1] + g.unload_minutes
            assert cap == 2.0 and longest < cap * occupancy, (p.name, s.name)
    assert cascading > 0
    assert {f for f, r in tools.items() if r["STNCAP"]} == {
        s.group for p in line.products for s in p.route if s.cascade_interval > 0}


def test_sampling_rework_queue_time_and_dedication(dataset, line):
    for p in line.products:
        rows = route_rows(dataset, p.name)
        for k, (r, s) in enumerate(zip(rows, p.route), start=1):
            assert s.sampling == pytest.approx(float(r["StepPercent"] or 100) / 100)
            if r["RWKSTEP"]:
                assert (s.rework_to, s.rework_prob) == (int(r["RWKSTEP"]), pytest.approx(float(r["REWORK"]) / 100))
                assert s.rework_to <= k and s.rework_once  # PySCFabSim's reading (docs/smt2020.md)
            else:
                assert s.rework_prob == 0.0
        windows = {int(r["STEP_CQT"]): (int(r["STEP"]), float(r["CQT"]) * UNIT[r["CQTUNITS"]]) for r in rows if r["STEP_CQT"]}
        got = {k: (s.qtime_from, s.qtime_limit) for k, s in enumerate(p.route, 1) if s.qtime_from}
        assert got == windows and windows
        dedications = {int(r["FORSTEP"]): int(r["STEP"]) for r in rows if r["SVESTN"] == "yes"}
        got = {k: s.dedicate_to_step for k, s in enumerate(p.route, 1) if s.dedicate_to_step}
        assert got == dedications and dedications
        for k, s in enumerate(p.route, 1):
            if s.dedicate_to_step:
                assert p.route[s.dedicate_to_step - 1].group == s.group


def test_no_rework_loop_holds_another_rework_step(dataset, line):
    """So a lot passes a rework step again only after being reworked there: "draw on the first pass only"
    (PySCFabSim) and "rework at most once" are the same model for these tables."""
    for p in line.products:
        loops = [(int(r["RWKSTEP"]), int(r["STEP"])) for r in route_rows(dataset, p.name) if r["RWKSTEP"]]
        assert loops
        for lo, hi in loops:  # the lot redoes steps lo..hi: none of them but hi may be a rework step
            assert not [k for _, k in loops if lo <= k < hi], (p.name, lo, hi)


# ----------------------------------------------------------------------------- lots


def test_releases_per_lot_type(dataset, line):
    def date(text):
        return datetime.strptime(text, "%m/%d/%y %H:%M:%S")

    releases = {r.name: r for r in line.releases}
    orders = raw(dataset, "order.txt")
    assert list(releases) == [o["LOT"] for o in orders]
    for o in orders:
        r = releases[o["LOT"]]
        assert r.product == o["PART"] and r.kind == "interval" and r.lot_size == int(o["PIECES"])
        assert r.interval_minutes == pytest.approx(float(o["REPEAT"]) * UNIT[o["RUNITS"]] / int(o["LOTSPERRPT"]))
        assert r.priority == {"10": "normal", "20": "hot", "30": "super_hot"}[o["PRIOR"]]
        assert r.due_days == pytest.approx((date(o["DUE"]) - date(o["START"])).total_seconds() / 86400)
        assert r.max_lots == int(o["RPT#"]) * int(o["LOTSPERRPT"]) and r.start_minutes == 0.0
    assert Counter(r.priority for r in line.releases)["super_hot"] == 1


def test_initial_wip_by_lot_type_and_step(dataset, line):
    rows = raw(dataset, "WIP.txt")
    expected = Counter((r["LOT"][len("Init_"):].rsplit("_", 1)[0], int(r["CURSTEP"])) for r in rows)
    got = Counter({(w.release, w.step): w.lots for w in line.initial_wip})
    assert got == expected and sum(got.values()) == len(rows)
    product = {r.name: r.product for r in line.releases}
    lengths = {p.name: len(p.route) for p in line.products}
    assert all(1 <= w.step <= lengths[product[w.release]] for w in line.initial_wip)


def test_initial_lots_keep_their_own_due_dates(dataset, line):
    """WIP.txt DUE - the earliest START of order.txt and WIP.txt, in minutes, lot by lot."""
    def date(text):
        return datetime.strptime(text, "%m/%d/%y %H:%M:%S")

    rows = raw(dataset, "WIP.txt")
    epoch = min(date(r["START"]) for r in [*rows, *raw(dataset, "order.txt")])
    expected = {}
    for r in rows:
        key = (r["LOT"][len("Init_"):].rsplit("_", 1)[0], int(r["CURSTEP"]))
        expected.setdefault(key, []).append((date(r["DUE"]) - epoch).total_seconds() / 60.0)
    got = {(w.release, w.step): list(w.due_minutes) for w in line.initial_wip}
    assert got.keys() == expected.keys()
    for key, dues in expected.items():
        assert got[key] == pytest.approx(dues), key


def test_transport_follows_fromto_and_station_locations(dataset, line):
    """Each family sits at its STNFAMLOC; fromto.txt gives the law per pair; a pair with no row takes no time."""
    for g, r in zip(line.tool_groups, raw(dataset, "tool.txt.1l")):
        assert g.name == r["STNFAM"] and g.location == (r["STNFAMLOC"] or None)
    expected = {}
    for r in raw(dataset, "fromto.txt"):
        mean, half = float(r["DTIME"]) * UNIT[r["DUNITS"]], float(r["DTIME2"]) * UNIT[r["DUNITS"]]
        assert r["DDIST"] == "uniform"
        expected[(r["FROMLOC"], r["TOLOC"])] = ("uniform", (mean - half, mean + half))
    assert {k: (d.kind, d.params) for k, d in line.transport_table.items()} == expected
    assert ("Delay", "Fab") not in expected and line.transport.mean == 0.0
    assert {g.location for g in line.tool_groups if g.name == "Delay_32"} == {"Delay"}


def test_least_setup_tool_choice_where_wakeresrank_says_so(dataset, line):
    wake = {r["STNFAM"]: r["WAKERESRANK"] for r in raw(dataset, "tool.txt.1l")}
    assert {g.name for g in line.tool_groups if g.tool_choice == "least_setup"} == \
        {f for f, w in wake.items() if w == "wake_LeastSetupTime"}
    assert set(wake.values()) == {"", "wake_LeastSetupTime"}


# ----------------------------------------------------------------------------- options


def test_dispatch_defaults_and_native_rules(dataset):
    base = {"loader": "smt2020", "dataset": dataset}
    native = {"HVLM": "hot_lot_setup", "LVHM": "hot_lot_setup_cr"}[dataset]
    lssu_rule = {"HVLM": "setup_hot_lot", "LVHM": "setup_hot_lot_cr"}[dataset]
    lssu = {r["STNFAM"] for r in raw(dataset, "tool.txt.1l") if r["RULE"] == "rule_LSSU"}
    assert lssu == {"Implant_128", "Implant_132", "Implant_91"}
    # default lssu: setup_first: the three rule_LSSU families avoid setups before ranking hot lots
    assert {g.name: g.dispatch for g in load_smt2020(base).tool_groups} == \
        {g.name: lssu_rule if g.name in lssu else native for g in load_smt2020(base).tool_groups}
    # lssu: chain: every family follows its rank chain alone, hot lots first
    assert {g.dispatch for g in load_smt2020({**base, "lssu": "chain"}).tool_groups} == {native}
    assert {g.dispatch for g in load_smt2020({**base, "dispatch": "edd"}).tool_groups} == {"edd"}
    # tool.txt.1l: rule_HotLotFIRST and rule_LSSU, ranked rank_HP;rank_RSETUP;rank_FIFO (HVLM) or
    # ...;rank_CR (LVHM): hot lots first, then no setup change, then FIFO or CR.
    chains = {r["FWLRANK"] for r in raw(dataset, "tool.txt.1l")}
    assert chains == {"rank_HP;rank_RSETUP;" + {"HVLM": "rank_FIFO", "LVHM": "rank_CR"}[dataset]}
    assert {g.dispatch for g in load_smt2020({**base, "dispatch": "native", "lssu": "chain"}).tool_groups} == {native}


def test_reading_settings_reach_the_tool_groups(dataset):
    """Defaults: cascade held for the interval only, strict minimum runs, strict dedication; the other
    readings flip exactly those fields (docs/smt2020.md, Open readings)."""
    base = {"loader": "smt2020", "dataset": dataset}
    default = load_smt2020(base).tool_groups
    assert not any(g.cascade_load or g.dedication_release for g in default)
    assert all(g.strict_min_run for g in default)
    assert {g.name for g in default if g.min_run > 0} == {"Implant_128", "Implant_132", "Implant_91"}
    other = load_smt2020({**base, "cascade_occupancy": "load_and_interval", "min_run": "prefer",
                          "dedication": "release_when_down"}).tool_groups
    assert all(g.cascade_load and g.dedication_release and not g.strict_min_run for g in other)
    assert [dataclass_fields(g) for g in other] == [dataclass_fields(g) for g in default]


def dataclass_fields(group):
    """A group's fields other than the reading flags."""
    import dataclasses

    return {k: v for k, v in dataclasses.asdict(group).items()
            if k not in ("cascade_load", "dedication_release", "strict_min_run")}


@pytest.mark.parametrize("data, field", [
    ({"dispatch": "lifo"}, "line.dispatch"),
    ({"cascade_occupancy": "wafer"}, "line.cascade_occupancy"),
    ({"lssu": "hot_first"}, "line.lssu"),
    ({"dedication": "loose"}, "line.dedication"),
    ({"min_run": "soft"}, "line.min_run"),
    ({"dataset": None}, "line.dataset"),
    ({"colour": "red"}, "line.colour"),
    ({"run_defaults": {"horizon_days": -1}}, "line.run_defaults.horizon_days"),
])
def test_bad_options_name_the_field(data, field):
    with pytest.raises(ConfigError) as err:
        load_smt2020({"loader": "smt2020", "dataset": "HVLM", **data})
    assert err.value.field == field


def test_missing_data_says_where_it_looked_and_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("FABTWIN_SMT2020_DIR", raising=False)
    with pytest.raises(ConfigError) as err:
        load_smt2020({"loader": "smt2020", "dataset": "HVLM", "data_dir": str(tmp_path)})
    message = str(err.value)
    assert str(tmp_path / "HVLM") in message and "data_dir" in message and "FABTWIN_SMT2020_DIR" in message


def test_environment_variable_points_at_the_data(tmp_path, monkeypatch):
    base = data_dir_or_skip("HVLM").parent
    (tmp_path / "HVLM").symlink_to(base / "HVLM")
    monkeypatch.setenv("FABTWIN_SMT2020_DIR", str(tmp_path))
    assert resolve_data_dir(None, "HVLM") == tmp_path / "HVLM"


def test_line_compiles_for_the_engine(line):
    from twin.compile import compile_line

    compiled = compile_line(line)
    assert compiled.n_tools == sum(g.tools for g in line.tool_groups)
    assert len(compiled.wip) == sum(w.lots for w in line.initial_wip)
    dues = sorted(d for w in line.initial_wip for d in w.due_minutes)
    assert sorted(compiled.wip[:, K.W_DUE]) == pytest.approx(dues)


def test_moves_into_and_out_of_the_delay_take_no_time(dataset, line):
    """The compiled law of each step-to-step move: Fab to Fab is fromto.txt's, any move touching Delay_32 is 0."""
    from twin.compile import compile_line

    (fab,) = [r for r in raw(dataset, "fromto.txt") if r["FROMLOC"] == r["TOLOC"] == "Fab"]
    mean, half = float(fab["DTIME"]) * UNIT[fab["DUNITS"]], float(fab["DTIME2"]) * UNIT[fab["DUNITS"]]
    c = compile_line(line)
    delay = line.group_index("Delay_32")
    groups = c.si[:, K.SI_GROUP]
    laws = c.transport[c.si[:-1, K.SI_MOVE_FROM] + c.si[1:, K.SI_MOVE_TO]]
    same_product = c.si[:-1, K.SI_PRODUCT] == c.si[1:, K.SI_PRODUCT]
    touches_delay = (groups[:-1] == delay) | (groups[1:] == delay)
    assert (same_product & touches_delay).sum() > 0
    assert np.all(laws[same_product & touches_delay] == Dist.constant(0.0).encode())
    assert np.all(laws[same_product & ~touches_delay] == Dist("uniform", (mean - half, mean + half)).encode())
