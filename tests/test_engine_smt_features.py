"""Engine features SMT2020 needs, against theory: transport by location, least-setup tool
choice, and initial lots with their own due dates.

Each line is small and its times chosen so that the answer follows from the model's
definition (deterministic cases) or from a comparison with confidence intervals.
"""
from __future__ import annotations

import numpy as np
import pytest

from kernels import layout as K
from lines import exp_step, station
from twin import kpis, tool_sums
from twin.backend import resolve_backend
from twin.compile import compile_line
from twin.errors import ConfigError
from twin.line import parse_line
from twin.runner import run_line

CPU = resolve_backend("cpu")


def run(line, replicas=1, horizon_days=2.0, warmup_days=0.0, seed=3):
    result = run_line(compile_line(line), replicas, horizon_days, warmup_days, seed, CPU, snapshot_minutes=0)
    assert kpis.conservation(result)["ok"], "lots were lost"
    return result


def const_step(group, minutes, **extra):
    return {"group": group, "time": minutes, "per": "lot", **extra}


def one_lot(name, product, start, **extra):
    return {"name": name, "product": product, "interval_minutes": 1e6, "max_lots": 1, "start_minutes": start,
            "lot_size": 1, "due_days": 100, **extra}


# ----------------------------------------------------------------------------- transport by location


def located_line(transport, route):
    groups = [{**station(n, 1), **({"location": loc} if loc else {})} for n, loc in (("A", "X"), ("B", "Y"), ("N", None))]
    releases = [{"name": "p", "product": "p", "interval_minutes": 1000.0, "lot_size": 1, "due_days": 100}]
    return parse_line({"name": "moves", "tool_groups": groups, "products": [{"name": "p", "route": route}],
                       "releases": releases, "transport": transport})


def test_cycle_time_is_processing_plus_the_law_of_each_move():
    """Deterministic times, lots never meet: cycle time = processing + the (from, to) law of every move;
    pairs without a row and groups without a location take the default law."""
    transport = {"default": 11.0, "table": [{"from": "X", "to": "Y", "time": 3.0}, {"from": "Y", "to": "X", "time": 7.0},
                                            {"from": "Y", "to": "Y", "time": 0.0}]}
    route = [const_step("A", 10.0), const_step("B", 20.0), const_step("B", 5.0), const_step("A", 30.0),
             const_step("A", 1.0), const_step("N", 2.0)]
    result = run(located_line(transport, route), horizon_days=3.0)
    log = result.lot_log[result.lot_log["release_min"] >= 0]
    # moves: X->Y 3, Y->Y 0, Y->X 7, X->X default 11, X->none default 11
    expected = (10 + 20 + 5 + 30 + 1 + 2) + (3 + 0 + 7 + 11 + 11)
    assert len(log) >= 3
    np.testing.assert_allclose(log["done_min"] - log["release_min"], expected)


def test_a_single_transport_law_still_applies_to_every_move():
    route = [const_step("A", 10.0), const_step("B", 20.0), const_step("N", 5.0)]
    result = run(located_line(4.0, route), horizon_days=3.0)
    log = result.lot_log[result.lot_log["release_min"] >= 0]
    np.testing.assert_allclose(log["done_min"] - log["release_min"], 35.0 + 2 * 4.0)


@pytest.mark.parametrize("transport, field", [
    ({"default": 1.0, "table": [{"from": "X", "to": "Z", "time": 1.0}]}, "line.transport.table[0].to"),
    ({"table": [{"from": "X", "to": "Y", "time": 1.0}, {"from": "X", "to": "Y", "time": 2.0}]}, "line.transport.table[1]"),
    ({"default": 1.0, "table": [{"from": "X", "to": "Y", "time": -1.0}]}, "line.transport.table[0].time"),
    ({"default": 1.0, "tabel": []}, "line.transport.tabel"),
])
def test_bad_transport_tables_name_the_field(transport, field):
    with pytest.raises(ConfigError) as err:
        located_line(transport, [const_step("A", 1.0)])
    assert err.value.field.startswith(field)


# ----------------------------------------------------------------------------- tool choice by least setup


def setup_line(choice):
    """Tool 1 ends up set for A, tool 2 for B; then a B lot and a C lot arrive while both are idle."""
    group = station("G", 2, setup={"minutes": 30.0, "matrix": [{"from": "A", "to": "C", "minutes": 50.0},
                                                               {"from": "B", "to": "C", "minutes": 5.0}]})
    group["tool_choice"] = choice
    products = [{"name": f, "route": [const_step("G", 10.0, setup=f)]} for f in "ABC"]
    releases = [one_lot("a1", "A", 0.0), one_lot("b1", "B", 1.0), one_lot("b2", "B", 100.0), one_lot("c1", "C", 200.0)]
    return parse_line({"name": "setups", "tool_groups": [group], "products": products, "releases": releases})


def cycle_times(result):
    log = result.lot_log
    return {result.compiled.stream_names[int(s)]: d - r for s, r, d in zip(log["stream"], log["release_min"], log["done_min"])}


def test_an_idle_tool_set_up_for_the_lot_takes_it():
    """t=0: A on tool 1 (30 + 10); t=1: B on tool 2. At t=100 both idle: first_idle gives the B lot to tool 1
    (a 30-min change), least_setup to tool 2 (none). At t=200, C: from A 50 min, from B 5 min."""
    first = cycle_times(run(setup_line("first_idle")))
    least = cycle_times(run(setup_line("least_setup")))
    assert first["b2"] == pytest.approx(40.0) and least["b2"] == pytest.approx(10.0)
    assert least["c1"] == pytest.approx(15.0)  # tool 2 (B -> C, 5 min), not tool 1 (A -> C, 50 min)
    assert first["a1"] == least["a1"] == pytest.approx(40.0)
    assert first["b1"] == least["b1"] == pytest.approx(40.0)


def mixed_setup_line(choice):
    group = station("G", 3, setup={"minutes": 15.0})
    group["tool_choice"] = choice
    products = [{"name": f, "route": [exp_step("G", 20.0, setup=f)]} for f in "ABC"]
    releases = [{"name": f, "product": f, "kind": "poisson", "interval_minutes": 90.0, "lot_size": 1, "due_days": 100}
                for f in "ABC"]
    return parse_line({"name": "mix", "tool_groups": [group], "products": products, "releases": releases})


def test_least_setup_needs_fewer_setups_than_first_idle():
    """Three families on three tools at moderate load: with first_idle the lowest-index idle tool takes
    every lot whatever its setup; least_setup keeps families on their tools. Setups per lot, compared
    with 95% confidence intervals over independent replications."""
    per_lot = {}
    for choice in ("first_idle", "least_setup"):
        result = run(mixed_setup_line(choice), replicas=8, horizon_days=40.0, warmup_days=5.0)
        setups = tool_sums.tf_sum(result.stats, K.TF_E10_0 + K.SETUP).sum(axis=1) / 15.0
        done = result.stats["s_f"][:, :, K.SS_DONE].sum(axis=1)
        per_lot[choice] = kpis.summarize(setups / done)
    first, least = per_lot["first_idle"], per_lot["least_setup"]
    assert least["mean"] + least["ci95"] < first["mean"] - first["ci95"], per_lot
    assert least["mean"] < 0.8 * first["mean"], per_lot


def test_tool_choice_is_validated():
    with pytest.raises(ConfigError) as err:
        setup_line("nearest")
    assert err.value.field == "line.tool_groups[0].tool_choice" and "least_setup" in str(err.value)


# ----------------------------------------------------------------------------- initial lots' own due dates


def wip_line(initial_wip, dispatch="edd"):
    return parse_line({
        "name": "dues", "tool_groups": [station("M", 1, dispatch=dispatch)],
        "products": [{"name": "p", "route": [const_step("M", 10.0), const_step("M", 10.0)]}],
        "releases": [{"name": "p", "product": "p", "interval_minutes": 1e6, "max_lots": 0, "lot_size": 1, "due_days": 1.0}],
        "initial_wip": initial_wip,
    })


def test_edd_serves_initial_lots_by_their_own_due_dates():
    """Five lots wait at the last step at t=0 on one EDD tool: after the first (which starts on arrival),
    they finish in due-date order, and each carries its own due date."""
    dues = [400.0, 50.0, -5.0, 300.0, 100.0]
    result = run(wip_line([{"release": "p", "step": 2, "lots": 5, "due_minutes": dues}]))
    log = np.sort(result.lot_log, order="done_min")
    assert sorted(log["due_min"]) == sorted(dues)
    np.testing.assert_allclose(log["done_min"], [10.0, 20.0, 30.0, 40.0, 50.0])
    assert list(log["due_min"][1:]) == sorted(log["due_min"][1:])


def test_initial_lots_without_due_dates_get_the_share_of_the_route_left():
    """No due_minutes: due = the lot type's due offset x (mean work left / mean work of the route)."""
    result = run(wip_line([{"release": "p", "step": 2, "lots": 2}, {"release": "p", "step": 1, "lots": 1}]))
    np.testing.assert_allclose(sorted(result.lot_log["due_min"]), [720.0, 720.0, 1440.0])


@pytest.mark.parametrize("dues", [[1.0], [1.0, "soon"], 5.0])
def test_due_dates_must_be_one_number_per_lot(dues):
    with pytest.raises(ConfigError) as err:
        wip_line([{"release": "p", "step": 1, "lots": 2, "due_minutes": dues}])
    assert err.value.field.startswith("line.initial_wip[0].due_minutes")


# ----------------------------------------------------------------------------- rework at most once


def rework_line(once):
    step = const_step("M", 10.0, rework={"prob": 0.5, "to_step": 1, "once": once})
    releases = [{"name": "p", "product": "p", "interval_minutes": 100.0, "lot_size": 1, "due_days": 100}]
    return parse_line({"name": "rework", "tool_groups": [station("M", 1)], "products": [{"name": "p", "route": [step]}],
                       "releases": releases})


def test_rework_once_makes_passes_one_plus_a_bernoulli():
    """One 10-min step reworked to itself with p = 1/2, lots never meet: with ``once`` a lot takes 10 or
    20 min, each half the time (binomial CI); without it the passes are geometric, so 30 min and more occur."""
    once = run(rework_line(True), horizon_days=30.0).lot_log
    ct = once["done_min"] - once["release_min"]
    assert set(np.round(ct, 9)) == {10.0, 20.0}
    share, n = np.mean(ct == 20.0), len(ct)
    assert abs(share - 0.5) < 3.3 * np.sqrt(0.25 / n), (share, n)  # 99.9% binomial interval
    again = run(rework_line(False), horizon_days=30.0).lot_log
    ct_again = again["done_min"] - again["release_min"]
    assert np.mean(ct_again >= 30.0) > 0.15  # theory: P(at least 2 reworks) = 1/4
