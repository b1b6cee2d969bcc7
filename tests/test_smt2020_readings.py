"""The open SMT2020 readings (docs/smt2020.md, "Open readings"), each proved on a hand-computed case:
cascading occupancy and busy-while-inside utilisation, least setup before hot lots (rule_LSSU),
lot-to-lens dedication released while its tool is down, and the critical ratio's units."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kernels import dispatch
from kernels import layout as K
from lines import station
from twin import kpis
from twin.backend import resolve_backend
from twin.compile import compile_line
from twin.line import parse_line
from twin.runner import run_line
from twin.smt2020_report import report_rows, tool_family_samples

CPU = resolve_backend("cpu")


def run(line, horizon_days=2.0, replicas=1):
    result = run_line(compile_line(line), replicas, horizon_days, 0.0, 3, CPU, snapshot_minutes=0)
    assert kpis.conservation(result)["ok"], "lots were lost"
    return result


def with_groups(line, **changes):
    """The line with every tool group's reading fields replaced (they are not YAML fields)."""
    return dataclasses.replace(line, tool_groups=tuple(dataclasses.replace(g, **changes) for g in line.tool_groups))


def done_times(result):
    log = result.lot_log
    return np.sort(log["done_min"])


# ----------------------------------------------------------------------------- cascading occupancy

N_LOTS, WAFERS, PTIME, INTERVAL, LOAD, UNLOAD, SETUP = 4, 5, 3.0, 2.0, 1.0, 1.0, 7.0


def cascade_line(setup=0.0):
    """N lots of 5 wafers wait at t = 0 for one cascading tool: first wafer PTIME, then one wafer every
    INTERVAL (lot time PTIME + 4 x INTERVAL, as the loader builds it), the tool held INTERVAL per wafer."""
    group = station("C", 1)
    group.update(load_minutes=LOAD, unload_minutes=UNLOAD)
    step = {"group": "C", "time": PTIME + (WAFERS - 1) * INTERVAL, "per": "lot",
            "cascade": {"interval": INTERVAL, "per": "wafer"}}
    if setup:
        group["setup"] = {"minutes": setup}
        step["setup"] = "S"
    releases = [{"name": "p", "product": "p", "interval_minutes": 1e6, "max_lots": 0, "lot_size": WAFERS, "due_days": 100}]
    return parse_line({"name": "cascade", "tool_groups": [group], "products": [{"name": "p", "route": [step]}],
                       "releases": releases, "initial_wip": [{"release": "p", "step": 1, "lots": N_LOTS}]})


@pytest.mark.parametrize("load_counted", [False, True])
def test_cascading_lots_leave_one_pitch_apart_and_the_tool_is_busy_while_any_is_inside(load_counted):
    """Closed form. Pitch = WAFERS x INTERVAL (+ LOAD when the load is counted in the occupancy); lot k
    leaves at k x pitch + LOAD + lot time + UNLOAD. Held (E10 productive) = N x pitch; busy while any lot
    is inside = the union of [start_k, leave_k] = last leave (lots overlap, pitch < time inside)."""
    result = run(with_groups(cascade_line(), cascade_load=load_counted))
    pitch = WAFERS * INTERVAL + (LOAD if load_counted else 0.0)
    inside = LOAD + PTIME + (WAFERS - 1) * INTERVAL + UNLOAD
    expected = np.arange(N_LOTS) * pitch + inside
    np.testing.assert_allclose(done_times(result), expected)
    tf = result.stats["rep0_tf"][0]
    assert tf[K.TF_E10_0 + K.PRODUCTIVE] == pytest.approx(N_LOTS * pitch)
    # after the last pitch the tool stands by with lots inside until the last one leaves
    assert tf[K.TF_STANDBY_LOADED] == pytest.approx(expected[-1] - N_LOTS * pitch)


def test_a_setup_counts_as_busy_and_the_report_shares_follow_from_the_times():
    """One setup of SETUP minutes before the first lot: every lot leaves SETUP later; the union (busy while
    inside) grows by SETUP. Over a 2-day window: utilisation = busy / available, setup share = SETUP / window."""
    result = run(with_groups(cascade_line(setup=SETUP), cascade_load=False))
    inside = LOAD + PTIME + (WAFERS - 1) * INTERVAL + UNLOAD
    last = SETUP + (N_LOTS - 1) * WAFERS * INTERVAL + inside
    assert done_times(result)[-1] == pytest.approx(last)
    window = 2.0 * 1440.0
    shares = tool_family_samples(result)["C"]
    assert shares["availability_pct"][0] == pytest.approx(100.0)
    assert shares["utilisation_pct"][0] == pytest.approx(100.0 * last / window)
    assert shares["held_pct"][0] == pytest.approx(100.0 * (SETUP + N_LOTS * WAFERS * INTERVAL) / window)
    assert shares["setup_pct"][0] == pytest.approx(100.0 * SETUP / window)
    rows = {(r["table"], r["name"], r["metric"]): r for r in report_rows(result)}
    assert rows[("tool_family", "C", "setup_pct")]["mean"] == pytest.approx(100.0 * SETUP / window)
    assert rows[("lot_type", "p", "released_in_window")]["mean"] == 0.0  # initial lots only


def test_a_non_cascading_tool_is_busy_exactly_while_held():
    """Without cascading a lot leaves when the tool's processing ends: busy while inside = held."""
    group = station("M", 1, setup={"minutes": 4.0})
    steps = [{"group": "M", "time": 10.0, "per": "lot", "setup": "S"}]
    releases = [{"name": "p", "product": "p", "interval_minutes": 30.0, "lot_size": 1, "due_days": 100}]
    line = parse_line({"name": "plain", "tool_groups": [group], "products": [{"name": "p", "route": steps}],
                       "releases": releases})
    tf = run(line).stats["rep0_tf"][0]
    assert tf[K.TF_E10_0 + K.PRODUCTIVE] > 0.0 and tf[K.TF_STANDBY_LOADED] == 0.0


# ----------------------------------------------------------------------------- rule_LSSU: setup before hot lots


def lssu_line(rule):
    """t=0: a normal A lot sets the tool up for A (10 + 100). t=10: a hot B lot; t=20: a normal A lot."""
    group = station("I", 1, dispatch=rule, setup={"minutes": 10.0})
    products = [{"name": f, "route": [{"group": "I", "time": 100.0, "per": "lot", "setup": f}]} for f in "AB"]
    one = {"interval_minutes": 1e6, "max_lots": 1, "lot_size": 1, "due_days": 100}
    releases = [{"name": "a1", "product": "A", "start_minutes": 0.0, **one},
                {"name": "hot_b", "product": "B", "start_minutes": 10.0, "priority": "hot", **one},
                {"name": "a2", "product": "A", "start_minutes": 20.0, **one}]
    return parse_line({"name": "lssu", "tool_groups": [group], "products": products, "releases": releases})


def finish_by_lot(result):
    log = result.lot_log
    return {result.compiled.stream_names[int(s)]: d for s, d in zip(log["stream"], log["done_min"])}


@pytest.mark.parametrize("rule, expected", [
    # the rank chain alone: the hot lot forces the change at t=110, the A lot changes back
    ("hot_lot_setup", {"a1": 110.0, "hot_b": 220.0, "a2": 330.0}),
    # least setup first: the A lot needs none and goes first; the hot lot then takes the one change
    ("setup_hot_lot", {"a1": 110.0, "a2": 210.0, "hot_b": 320.0}),
])
def test_least_setup_first_serves_the_set_up_lot_before_a_hot_lot(rule, expected):
    assert finish_by_lot(run(lssu_line(rule))) == pytest.approx(expected)


def test_setup_first_keys_rank_setup_then_priority_then_fifo():
    def key(rule, **kw):
        args = dict(now=0.0, entry=0.0, due=1e4, priority=0, process=1.0, remaining=10.0, step_priority=0, needs_setup=0)
        args.update(kw)
        return dispatch.RULES[rule](**args)
    assert key("setup_hot_lot", priority=0, entry=99.0) < key("setup_hot_lot", priority=2, needs_setup=1)
    assert key("setup_hot_lot", priority=1, entry=99.0) < key("setup_hot_lot", priority=0, entry=1.0)
    assert key("setup_hot_lot_cr", due=500.0) < key("setup_hot_lot_cr", due=900.0)
    assert key("setup_hot_lot_cr", due=9e9) < key("setup_hot_lot_cr", due=1.0, needs_setup=1)


# ----------------------------------------------------------------------------- dedication while the tool is down


def dedication_line():
    """Step 1 on L (tool 1 of 2, 10 min) binds the lot; step 2 on D (20 min); step 3 on L must use the same
    tool. L's PM (100 min) falls on tool 1 at t=25 and on tool 2 at t=50 (first PM staggered (k+1)/n x 50)."""
    lith = station("L", 2, pm=[{"every_minutes": 1e6, "first_minutes": 50.0, "duration": 100.0}])
    steps = [{"group": "L", "time": 10.0, "per": "lot"}, {"group": "D", "time": 20.0, "per": "lot"},
             {"group": "L", "time": 10.0, "per": "lot", "dedicate_to_step": 1}]
    releases = [{"name": "p", "product": "p", "interval_minutes": 1e6, "max_lots": 1, "lot_size": 1, "due_days": 100}]
    return parse_line({"name": "lens", "tool_groups": [lith, station("D", 1)], "products": [{"name": "p", "route": steps}],
                       "releases": releases})


@pytest.mark.parametrize("release, done", [
    (False, 135.0),  # strict: the lot waits for its tool's PM to end at 125, then 10 min
    (True, 40.0),    # released: tool 2 (up until t=50) takes it on arrival at t=30
])
def test_a_lot_bound_to_a_tool_in_pm_waits_or_moves(release, done):
    result = run(with_groups(dedication_line(), dedication_release=release))
    assert done_times(result) == pytest.approx([done])


def test_a_tool_going_down_hands_its_waiting_lots_to_the_others():
    """The bound lot (tool 1 at step 1, 0-10) is back at t=30 while a filler lot holds tool 1 (29-59); tool 1's
    PM is due at t=45 and starts when the filler ends at t=59. Strict: the lot waits out the PM (59-159).
    Released: the PM's start dispatches the group, and idle tool 2 (its PM due at t=90) takes the lot."""
    lith = station("L", 2, pm=[{"every_minutes": 1e6, "first_minutes": 90.0, "duration": 100.0}])
    bound = [{"group": "L", "time": 10.0, "per": "lot"}, {"group": "D", "time": 20.0, "per": "lot"},
             {"group": "L", "time": 10.0, "per": "lot", "dedicate_to_step": 1}]
    filler = [{"group": "L", "time": 30.0, "per": "lot"}]
    one = {"interval_minutes": 1e6, "max_lots": 1, "lot_size": 1, "due_days": 100}
    releases = [{"name": "bound", "product": "b", "start_minutes": 0.0, **one},
                {"name": "filler", "product": "f", "start_minutes": 29.0, **one}]
    line = parse_line({"name": "lens2", "tool_groups": [lith, station("D", 1)],
                       "products": [{"name": "b", "route": bound}, {"name": "f", "route": filler}], "releases": releases})
    strict = finish_by_lot(run(with_groups(line, dedication_release=False)))
    released = finish_by_lot(run(with_groups(line, dedication_release=True)))
    assert strict["filler"] == released["filler"] == pytest.approx(59.0)
    assert strict["bound"] == pytest.approx(59.0 + 100.0 + 10.0)  # PM 59-159, then the lot
    assert released["bound"] == pytest.approx(59.0 + 10.0)  # tool 2 takes it when tool 1 goes down


# ----------------------------------------------------------------------------- critical ratio


def test_critical_ratio_is_unitless_and_its_order_ignores_a_flow_factor():
    """CR = (due - now) / remaining processing time, both in minutes: 2 days of slack over 1 day of work is 2.
    Expected waits proportional to the work (remaining x flow factor) divide every CR by the same factor,
    so the order of lots, late ones included, is the same: the two readings dispatch identically."""
    cr = dispatch.critical_ratio
    assert cr(0.0, 0.0, 2 * 1440.0, 0, 0.0, 1440.0, 0, 0) == pytest.approx(2.0)
    rng = np.random.default_rng(5)
    due = rng.uniform(-2000.0, 50000.0, 200)
    remaining = rng.uniform(100.0, 20000.0, 200)
    raw = [cr(1000.0, 0.0, d, 0, 0.0, r, 0, 0) for d, r in zip(due, remaining)]
    for factor in (1.5, 2.7):
        scaled = [cr(1000.0, 0.0, d, 0, 0.0, factor * r, 0, 0) for d, r in zip(due, remaining)]
        assert np.array_equal(np.argsort(raw, kind="stable"), np.argsort(scaled, kind="stable"))


# ----------------------------------------------------------------------------- minimum runs


def min_run_line(strict):
    """min_run 2, 10-min changes. t=0: A lot (setup 0-10, 10-110); t=5: B lot; t=150: A lot."""
    group = station("I", 1, dispatch="hot_lot_setup", setup={"minutes": 10.0, "min_run": 2})
    products = [{"name": f, "route": [{"group": "I", "time": 100.0, "per": "lot", "setup": f}]} for f in "AB"]
    one = {"interval_minutes": 1e6, "max_lots": 1, "lot_size": 1, "due_days": 100}
    releases = [{"name": "a1", "product": "A", "start_minutes": 0.0, **one},
                {"name": "b1", "product": "B", "start_minutes": 5.0, **one},
                {"name": "a2", "product": "A", "start_minutes": 150.0, **one}]
    line = parse_line({"name": "minrun", "tool_groups": [group], "products": products, "releases": releases})
    return with_groups(line, strict_min_run=strict)


@pytest.mark.parametrize("strict, expected", [
    # prefer: at t=110 no A lot waits, so B changes over (110-120, 120-220); then A changes back (220-330)
    (False, {"a1": 110.0, "b1": 220.0, "a2": 330.0}),
    # strict: the tool idles 110-150 until the second A lot completes its run (150-250); then B (250-360)
    (True, {"a1": 110.0, "a2": 250.0, "b1": 360.0}),
])
def test_a_strict_minimum_run_waits_for_a_lot_of_its_setup(strict, expected):
    assert finish_by_lot(run(min_run_line(strict))) == pytest.approx(expected)


def test_an_idle_cascading_tool_is_busy_only_until_its_last_lot_leaves():
    """Lots of 5 wafers every 100 min (never meeting): the tool is held 5 x 2 = 10 min, each lot is inside
    1 + 11 + 1 = 13 min, so each job adds exactly 3 min of standby with a lot inside, not the idle gap."""
    group = station("C", 1)
    group.update(load_minutes=1.0, unload_minutes=1.0)
    step = {"group": "C", "time": 11.0, "per": "lot", "cascade": {"interval": 2.0, "per": "wafer"}}
    releases = [{"name": "p", "product": "p", "interval_minutes": 100.0, "lot_size": 5, "due_days": 100}]
    line = parse_line({"name": "idle", "tool_groups": [group], "products": [{"name": "p", "route": [step]}],
                       "releases": releases})
    result = run(with_groups(line, cascade_load=False))
    jobs = len(result.lot_log)
    tf = result.stats["rep0_tf"][0]
    assert jobs == 29  # releases at 0, 100, ..., 2800 finish by 2880
    assert tf[K.TF_E10_0 + K.PRODUCTIVE] == pytest.approx(10.0 * jobs)
    assert tf[K.TF_STANDBY_LOADED] == pytest.approx(3.0 * jobs)
