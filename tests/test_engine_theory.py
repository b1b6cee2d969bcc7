"""The engine against queueing and renewal theory (not against its own output)."""
from __future__ import annotations

import numpy as np
import pytest

from kernels import layout as K
from lines import exp_step, open_line, station
from theory import mmc_wait, within
from twin import kpis, tool_sums
from twin.backend import resolve_backend
from twin.compile import compile_line
from twin.runner import run_line

CPU = resolve_backend("cpu")


def simulate(line, replicas=12, horizon_days=300.0, warmup_days=20.0, seed=11, **kw):
    result = run_line(compile_line(line), replicas, horizon_days, warmup_days, seed, CPU, snapshot_minutes=0, **kw)
    assert kpis.conservation(result)["ok"], "lots were lost"
    return result, kpis.per_replication(result)


def test_single_station_wait_matches_erlang_c():
    c, service, interarrival = 3, 60.0, 25.0  # utilisation 0.8
    line = open_line([station("M", c)], [exp_step("M", service)], interarrival)
    _, rows = simulate(line, replicas=16, horizon_days=400)
    s = kpis.summarize(rows["tool_group.M.queue_wait_minutes"])
    theory = mmc_wait(c, 1.0 / interarrival, service)
    assert within(s["mean"], s["ci95"], theory), (s, theory)
    util = kpis.summarize(rows["tool_group.M.utilisation"])
    assert within(util["mean"], util["ci95"], service / interarrival / c)


def test_reentrant_fifo_line_matches_kelly_product_form():
    """Exponential service with a rate per station, not per step, FIFO: each station is M/M/c."""
    means = {"A": 10.0, "B": 25.0, "C": 20.0}
    servers = {"A": 1, "B": 2, "C": 1}
    route = ["A", "B", "A", "C", "B", "A"]
    interarrival = 40.0
    line = open_line([station(n, servers[n]) for n in means], [exp_step(g, means[g]) for g in route], interarrival)
    _, rows = simulate(line, replicas=12, horizon_days=300)
    lam = 1.0 / interarrival
    sojourn = {g: mmc_wait(servers[g], lam * route.count(g), means[g]) + means[g] for g in means}
    theory_days = sum(sojourn[g] for g in route) / 1440.0
    s = kpis.summarize(rows["product.p.cycle_time_days.mean"])
    assert within(s["mean"], s["ci95"], theory_days), (s, theory_days)


def test_single_tool_availability_is_mtbf_over_mtbf_plus_mttr():
    mtbf, mttr = 1000.0, 100.0
    failures = {"ttf": {"dist": "exponential", "mean": mtbf}, "repair": {"dist": "exponential", "mean": mttr}}
    line = open_line([station("T", 1, failures=failures)], [exp_step("T", 20.0)], 200.0)
    _, rows = simulate(line, replicas=64, horizon_days=200)  # 16 gave too rough a CI of the CI itself
    s = kpis.summarize(rows["tool_group.T.availability"])
    assert within(s["mean"], s["ci95"], mtbf / (mtbf + mttr)), s


def test_busy_time_failures_accrue_with_processing_only():
    """With TTF counted in busy time, failures per tool = productive minutes / MTTF (renewal reward)."""
    mttf = 500.0
    failures = {"ttf": {"dist": "exponential", "mean": mttf}, "repair": {"dist": "constant", "value": 30.0}, "basis": "busy"}
    line = open_line([station("T", 1, failures=failures)], [exp_step("T", 20.0)], 60.0)
    result, rows = simulate(line, replicas=16, horizon_days=150)
    window = (150 - 20) * 1440.0
    expected = rows["tool_group.T.utilisation"] * window / mttf
    ratio = kpis.summarize(rows["tool_group.T.failures_per_tool"] / expected)
    assert within(ratio["mean"], ratio["ci95"], 1.0), ratio


def test_time_and_wafer_count_pm_follow_their_calendars():
    pm = [
        {"name": "daily", "every_minutes": 1440, "duration": {"dist": "constant", "value": 60}},
        {"name": "wafers", "every_wafers": 500, "duration": {"dist": "constant", "value": 30}},
    ]
    line = open_line([station("T", 1, pm=pm)], [exp_step("T", 20.0)], 80.0, lot_size=25)
    result, rows = simulate(line, replicas=8, horizon_days=120)
    window_days = 100.0
    wafers = result.stats["s_f"][:, 0, K.SS_WAFERS_DONE]
    pms = tool_sums.ti_sum(result.stats, K.T_PMS)[:, 0]  # group T: one tool
    # one daily PM per day plus one per 500 wafers (within one of each at the window's edges)
    assert np.all(np.abs(pms - (window_days + wafers / 500.0)) <= 2.5), (pms, wafers)
    down = kpis.summarize(rows["tool_group.T.e10.scheduled_down"])
    theory = (60.0 * window_days + 30.0 * np.mean(wafers) / 500.0) / (window_days * 1440.0)
    assert abs(down["mean"] - theory) < 0.002, (down, theory)


def test_spt_waits_match_cobham_priority_formula():
    """SPT between two job classes at one server is non-preemptive priority: Cobham's formula holds."""
    short, long_ = 10.0, 30.0
    lam_s, lam_l = 1.0 / 50.0, 1.0 / 75.0  # utilisation 0.2 + 0.4
    groups = [station("M", 1, dispatch="spt")]
    data_line = open_line(groups, [exp_step("M", short)], 1.0, releases=[
        {"name": "s", "product": "p", "kind": "poisson", "interval_minutes": 1 / lam_s, "lot_size": 1, "due_days": 1000},
    ])
    from twin.line import parse_line

    line = parse_line({
        "name": "cobham", "tool_groups": groups,
        "products": [{"name": "short", "route": [exp_step("M", short)]}, {"name": "long", "route": [exp_step("M", long_)]}],
        "releases": [
            {"name": "short", "product": "short", "kind": "poisson", "interval_minutes": 1 / lam_s, "lot_size": 1, "due_days": 1000},
            {"name": "long", "product": "long", "kind": "poisson", "interval_minutes": 1 / lam_l, "lot_size": 1, "due_days": 1000},
        ],
    })
    del data_line
    _, rows = simulate(line, replicas=16, horizon_days=300)
    w0 = lam_s * 2 * short**2 / 2 + lam_l * 2 * long_**2 / 2  # E[S^2] = 2 m^2 for exponential
    rho_s, rho_l = lam_s * short, lam_l * long_
    theory = {"short": w0 / (1 - rho_s) + short, "long": w0 / ((1 - rho_s) * (1 - rho_s - rho_l)) + long_}
    for name, minutes in theory.items():
        s = kpis.summarize(rows[f"product.{name}.cycle_time_days.mean"] * 1440.0)
        assert within(s["mean"], s["ci95"], minutes), (name, s, minutes)


def test_littles_law_and_conservation_on_the_default_line():
    from twin.line import load_line

    result, rows = simulate(load_line("default"), replicas=6, horizon_days=120, warmup_days=30)
    gaps = kpis.littles_law(rows, [p.name for p in result.line.products])
    for name, gap in gaps.items():
        assert gap["relative_gap"] < 0.05, (name, gap)


@pytest.mark.parametrize("chunk", [1, 3])
def test_results_do_not_depend_on_chunk_size(chunk):
    line = open_line([station("M", 2)], [exp_step("M", 30.0), exp_step("M", 20.0)], 40.0)
    whole, _ = simulate(line, replicas=5, horizon_days=30, warmup_days=5)
    chunked, _ = simulate(line, replicas=5, horizon_days=30, warmup_days=5, chunk_replicas=chunk)
    for key in whole.stats:
        np.testing.assert_array_equal(whole.stats[key], chunked.stats[key], err_msg=key)


def test_seed_changes_the_sample_path():
    line = open_line([station("M", 2)], [exp_step("M", 30.0)], 40.0)
    a, _ = simulate(line, replicas=2, horizon_days=20, warmup_days=2, seed=1)
    b, _ = simulate(line, replicas=2, horizon_days=20, warmup_days=2, seed=2)
    assert not np.array_equal(a.stats["s_f"], b.stats["s_f"])


def test_cascading_tool_is_an_md1_server_plus_a_delay():
    """Occupied for the cascade interval, each lot done after its full time: M/D/1 wait + process time."""
    interval, process, interarrival = 12.0, 40.0, 20.0
    step = {"group": "C", "time": process, "per": "lot", "cascade": {"interval": interval}}
    line = open_line([station("C", 1)], [step], interarrival)
    _, rows = simulate(line, replicas=16, horizon_days=200)
    rho = interval / interarrival
    wait = rho * interval / (2 * (1 - rho))  # Pollaczek-Khinchine with deterministic service
    s = kpis.summarize(rows["product.p.cycle_time_days.mean"] * 1440.0)
    assert within(s["mean"], s["ci95"], wait + process), (s, wait + process)
    q = kpis.summarize(rows["tool_group.C.queue_wait_minutes"])
    assert within(q["mean"], q["ci95"], wait), (q, wait)


def test_conwip_holds_wip_constant_and_saturates_the_bottleneck():
    """CONWIP with a cap of 4 lots on one exponential server: WIP is 4, throughput 1 / service time."""
    service = 10.0
    releases = [{"name": "p", "product": "p", "kind": "conwip", "wip_cap": 4, "lot_size": 1, "due_days": 1000}]
    line = open_line([station("M", 1)], [exp_step("M", service)], 1.0, releases=releases)
    _, rows = simulate(line, replicas=12, horizon_days=60, warmup_days=5)
    assert np.allclose(rows["product.p.wip_lots"], 4.0)
    th = kpis.summarize(rows["product.p.throughput_lots_per_day"])
    assert within(th["mean"], th["ci95"], 1440.0 / service), th
    ct = kpis.summarize(rows["product.p.cycle_time_days.mean"] * 1440.0)
    assert within(ct["mean"], ct["ci95"], 4 * service), ct  # Little: W = N / X
