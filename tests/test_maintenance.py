"""Maintenance twin against renewal theory and closed forms.

* exponential life: no scheduled PM raises availability, which is MTBF / (MTBF + MTTR);
* Weibull life of shape > 1: age-based PM gives
  A(T) = int_0^T R / (int_0^T R + MTTR F(T) + T_PM R(T)) (renewal reward), and the
  optimiser's best T is the analytic argmax within the CI;
* deterministic degradation: threshold failure, condition-based and predictive PM, warnings
  and the yield factor follow from the drift exactly;
* Wiener degradation: mean first-passage time a / mu (plus the discrete-monitoring overshoot);
* condition hazard h0 exp(b c): mean life int exp(-Lambda).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import minimize_scalar
from theory import within

from kernels import maintenance as M
from twin.distributions import Dist
from twin.maintain import (HOURS_PER_YEAR, ToolModel, compose_config, load_study, make_candidates, simulate,
                           summarise)


def age_policy_availability(R, mttr, t_pm, T):
    """Renewal-reward availability of age replacement at T (operating = calendar time while up)."""
    up = quad(R, 0.0, T, limit=200)[0]
    return up / (up + mttr * (1.0 - R(T)) + t_pm * R(T))


def evaluate(tool, policy, values, replicas, years, seed=11, **kw):
    cands = make_candidates(policy, values, kw.pop("basis", "operating"), baseline=kw.pop("baseline", True))
    raw = simulate(tool, cands, replicas, years * HOURS_PER_YEAR, seed, **kw)
    return cands, raw, summarise(tool, raw, kw.get("objective", "availability"))


# ----------------------------------------------------------------------------- exponential life


@pytest.mark.parametrize("basis", ["operating", "calendar", "block"])
def test_exponential_life_pm_cannot_raise_availability(basis):
    mtbf, mttr, t_pm = 100.0, 20.0, 2.0
    tool = ToolModel("exp", 10.0, life=Dist("exponential", (mtbf,)), repair=Dist("exponential", (mttr,)),
                     pm_duration=Dist.constant(t_pm))
    T = np.array([25.0, 50.0, 100.0, 200.0])
    _, _, s = evaluate(tool, "time_based", {"T": T}, 200, 2.0, basis=basis)
    mean, half = s.kpis["availability"]
    assert within(mean[0], half[0], mtbf / (mtbf + mttr))  # run to failure
    assert s.best == 0
    # paired gap of each PM candidate to run-to-failure: never significantly positive
    assert np.all(s.gap[1:] <= s.gap_ci[1:]) and np.all(s.gap[1:] < 0)
    if basis == "operating":
        R = lambda t: math.exp(-t / mtbf)  # noqa: E731
        for i, t in enumerate(T, start=1):
            theory = age_policy_availability(R, mttr, t_pm, t)
            assert theory < mtbf / (mtbf + mttr)
            assert within(mean[i], half[i], theory), (t, mean[i], half[i], theory)


# ----------------------------------------------------------------------------- Weibull life


def test_weibull_age_pm_matches_renewal_theory():
    k, lam, mttr = 3.0, 100.0, 20.0
    tool = ToolModel("weibull", 10.0, life=Dist("weibull", (k, lam)), repair=Dist("exponential", (mttr,)),
                     pm_duration=Dist("uniform", (1.0, 3.0)))
    R = lambda t: math.exp(-((t / lam) ** k))  # noqa: E731
    T = np.array([20.0, 30.0, 40.0, 60.0, 90.0, 150.0])
    _, _, s = evaluate(tool, "time_based", {"T": T}, 200, 2.0)
    mean, half = s.kpis["availability"]
    mttf = lam * math.gamma(1.0 + 1.0 / k)
    assert within(mean[0], half[0], mttf / (mttf + mttr))
    for i, t in enumerate(T, start=1):
        assert within(mean[i], half[i], age_policy_availability(R, mttr, 2.0, t)), (t, mean[i], half[i])
        assert half[i] < 2e-3
    # cycle accounting: failures per year = F(T) / E[cycle] x hours per year
    fails, fhalf = s.kpis["failures_per_year"]
    for i, t in enumerate(T, start=1):
        up = quad(R, 0.0, t)[0]
        cycle = up + mttr * (1 - R(t)) + 2.0 * R(t)
        assert within(fails[i], fhalf[i], (1 - R(t)) / cycle * HOURS_PER_YEAR, slack=2.0)


def test_optimiser_finds_the_analytic_best_age():
    """The study on configs/maintain/tool/weibull_renewal.yaml picks T where A(T) peaks."""
    cfg = compose_config(["tool=weibull_renewal", "policy=time_based", "grid.T={low: 50, high: 600, num: 56}",
                          "replicas=160", "horizon_years=4", "backend=cpu", "seed=5"])
    study = load_study(cfg)
    tool = study.tool
    raw = simulate(tool, study.candidates, study.replicas, study.horizon_years * HOURS_PER_YEAR, study.seed)
    s = summarise(tool, raw, "availability")
    k, lam = tool.life.params
    R = lambda t: math.exp(-((t / lam) ** k))  # noqa: E731
    mttr, t_pm = tool.repair.mean, tool.pm_duration.mean
    best = minimize_scalar(lambda t: -age_policy_availability(R, mttr, t_pm, t), bounds=(10, 2000), method="bounded")
    T = study.candidates.columns["T"]
    t_best = T[s.best]
    a_half = s.kpis["availability"][1][s.best]
    # the chosen T is as good as the optimum within the CI, and the optimum lies among the tied candidates
    assert age_policy_availability(R, mttr, t_pm, t_best) >= -best.fun - a_half
    tied = T[s.tied & np.isfinite(T)]
    assert tied.min() - 10.0 <= best.x <= tied.max() + 10.0, (best.x, tied)
    assert abs(t_best - best.x) <= 40.0, (t_best, best.x)


# ----------------------------------------------------------------------------- degradation, exactly

MU, RATE, STEP = 1e-3, 10.0, 5.0  # condition per wafer, wafers per hour, wafers per reading
A_FAIL = 0.9975  # failure level between two readings: detected at w = 1000 (100 h)


def linear_tool(**kw):
    base = dict(drift=MU, step_wafers=STEP, threshold=Dist.constant(A_FAIL), repair=Dist.constant(10.0),
                pm_duration=Dist.constant(2.0), min_readings=3, d0=0.5, gross_dies=100.0, price_pm=1.0,
                price_repair=10.0, warn_level=A_FAIL, warn_horizon=30.0, warn_window=60.0, warn_bins=48)
    base.update(kw)
    return ToolModel("linear", RATE, **base)


def mean_yield(k, c_end):
    """Mean of exp(-k (1 + c)) over wafers when c grows linearly from 0 to c_end."""
    return math.exp(-k) * (1.0 - math.exp(-k * c_end)) / (k * c_end)


def test_deterministic_threshold_failure_cycle_yield_and_warnings():
    tool = linear_tool()
    hours = 110.0 * 20  # exactly 20 cycles of 100 h up + 10 h repair
    cands = make_candidates("run_to_failure", {})
    raw = simulate(tool, cands, 2, hours, 1)
    s = summarise(tool, raw, "availability")
    o = raw.out[0, 0]
    assert o[M.O_FAILS] == 20 and o[M.O_PMS] == 0
    assert o[M.O_UP] == pytest.approx(2000.0, rel=1e-9)
    assert s.kpis["yield_factor"][0][0] == pytest.approx(mean_yield(0.5, 1.0), rel=1e-6)
    assert s.kpis["cost_per_year"][0][0] == pytest.approx(20 * 10.0 / (hours / HOURS_PER_YEAR), rel=1e-9)
    # RUL < 30 h first at w = 700 (70 h), failure at 100 h: every failure warned 30 h ahead
    assert o[M.O_WARNINGS] == 20 and o[M.O_TRUE] == 20 and o[M.O_FALSE] == 0
    w = s.warnings
    assert w["warning_precision"][0] == 1.0 and w["warning_recall"][0] == 1.0
    assert w["mean_lead_hours"][0] == pytest.approx(30.0, rel=1e-6)
    assert abs(w["median_lead_hours"][0] - 30.0) <= 60.0 / 48


def test_condition_based_and_predictive_pm_times():
    tool = linear_tool()
    hours = 2000.0
    # condition-based: raw signal reaches 0.6013 at the reading at w = 605 -> 60.5 h up, 2 h PM
    _, raw, s = evaluate(tool, "condition_based", {"threshold": np.array([0.6013]), "smoothing": np.array([1.0])},
                         2, hours / HOURS_PER_YEAR, baseline=False)
    cycles = math.floor(hours / 62.5)
    up = cycles * 60.5 + min(60.5, hours - cycles * 62.5)
    assert raw.out[0, 0, M.O_UP] == pytest.approx(up, rel=1e-9)
    assert raw.out[0, 0, M.O_FAILS] == 0 and raw.out[0, 0, M.O_PMS] == cycles
    assert s.kpis["yield_factor"][0][0] == pytest.approx(mean_yield(0.5, 0.605), rel=1e-5)
    # predictive, exact fit: PM scheduled `lead` = 20 h before the failure at 99.75 h of operation
    _, raw, _ = evaluate(tool, "predictive", {"lead": np.array([20.0]), "level": np.array([A_FAIL])}, 2,
                         hours / HOURS_PER_YEAR, baseline=False)
    cycle_up = 99.75 - 20.0
    cycles = math.floor(hours / (cycle_up + 2.0))
    up = cycles * cycle_up + min(cycle_up, hours - cycles * (cycle_up + 2.0))
    assert raw.out[0, 0, M.O_UP] == pytest.approx(up, rel=1e-6)
    assert raw.out[0, 0, M.O_FAILS] == 0


def test_wafer_count_and_calendar_age_are_operating_age_rescaled():
    """Busy a fixed share u of up time at a fixed rate r: PM every N wafers is PM at operating age N / r, and PM
    at calendar age T (since the last renewal, the tool being up all the while) is PM at operating age u T."""
    rate, u = 12.0, 0.6
    tool = ToolModel("w", rate, utilisation=u, life=Dist("weibull", (2.0, 80.0)), repair=Dist("exponential", (5.0,)),
                     pm_duration=Dist.constant(1.0))
    N = np.array([240.0, 600.0, 1200.0])
    by_age = simulate(tool, make_candidates("time_based", {"T": N / rate}), 8, 2000.0, 3)
    by_wafers = simulate(tool, make_candidates("wafer_count", {"N": N}), 8, 2000.0, 3)
    np.testing.assert_allclose(by_wafers.out, by_age.out, rtol=1e-9)
    by_calendar = simulate(tool, make_candidates("time_based", {"T": N / rate / u}, basis="calendar"), 8, 2000.0, 3)
    np.testing.assert_allclose(by_calendar.out, by_age.out, rtol=1e-9)


# ----------------------------------------------------------------------------- stochastic degradation


def test_wiener_first_passage_sets_the_failure_cycle():
    """Wiener degradation to level a: E[wafers to failure] = (a + 0.5826 sigma sqrt(step)) / mu (Siegmund)."""
    a, sigma, mttr = 1.0, 5e-3, 10.0
    tool = ToolModel("wiener", RATE, drift=MU, noise=sigma, step_wafers=STEP, threshold=Dist.constant(a),
                     repair=Dist.constant(mttr))
    _, _, s = evaluate(tool, "run_to_failure", {}, 100, 1.0, baseline=False)
    life = (a + 0.5826 * sigma * math.sqrt(STEP)) / MU / RATE
    mean, half = s.kpis["availability"]
    assert within(mean[0], half[0], life / (life + mttr))


def test_condition_hazard_gives_the_gompertz_life():
    """Hazard h0 exp(b c) with c = mu r t: Lambda(t) = h0 (exp(b mu r t) - 1) / (b mu r)."""
    h0, b, mttr = 2e-3, 3.0, 10.0
    tool = ToolModel("hazard", RATE, drift=MU, step_wafers=1.0, hazard_h0=h0, hazard_b=b,
                     repair=Dist.constant(mttr))
    _, _, s = evaluate(tool, "run_to_failure", {}, 100, 1.0, baseline=False)
    g = b * MU * RATE
    mttf = quad(lambda t: math.exp(-h0 * math.expm1(g * t) / g), 0, 2000.0, limit=200)[0]  # Lambda(2000) > 700
    mean, half = s.kpis["availability"]
    assert within(mean[0], half[0], mttf / (mttf + mttr))


def test_warnings_recall_with_a_perfect_sensor_and_long_lead():
    """Noise-free readings of a Wiener condition, warning horizon 48 h, wide window: nearly every failure warned."""
    base = dict(noise=5e-3, warn_horizon=48.0, warn_window=400.0, forget=0.95, min_readings=5)
    tool = linear_tool(**base)
    _, _, s = evaluate(tool, "run_to_failure", {}, 40, 1.0, baseline=False)
    assert s.warnings["warning_recall"][0] >= 0.97
    assert s.warnings["warning_precision"][0] >= 0.97
    assert 30.0 <= s.warnings["median_lead_hours"][0] <= 80.0
    # a noisy sensor and a 2 h horizon: far fewer failures are announced
    short = linear_tool(**{**base, "sensor_noise": 0.2, "warn_horizon": 2.0})
    _, _, s2 = evaluate(short, "run_to_failure", {}, 40, 1.0, baseline=False)
    assert s2.warnings["warning_recall"][0] < 0.8 * s.warnings["warning_recall"][0]


def test_results_do_not_depend_on_chunks_or_threads_and_crn_shares_streams():
    tool = linear_tool(noise=4e-3, sensor_noise=0.05, life=Dist("weibull", (1.5, 300.0)))
    cands = make_candidates("condition_based", {"threshold": np.array([0.5, 0.7, 0.9]),
                                                "smoothing": np.array([1.0, 0.5, 0.2])}, baseline=True)
    whole = simulate(tool, cands, 6, 500.0, 9)
    chunked = simulate(tool, cands, 6, 500.0, 9, chunk_items=7)
    np.testing.assert_array_equal(whole.out, chunked.out)
    np.testing.assert_array_equal(whole.hist, chunked.hist)
    import numba

    numba.set_num_threads(1)
    try:
        serial = simulate(tool, cands, 6, 500.0, 9)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    np.testing.assert_array_equal(whole.out, serial.out)
    # two identical candidates: the same numbers under common random numbers, independent ones without
    twins = make_candidates("condition_based", {"threshold": np.array([0.7, 0.7]), "smoothing": np.array([1.0, 1.0])})
    crn = simulate(tool, twins, 6, 500.0, 9)
    indep = simulate(tool, twins, 6, 500.0, 9, crn=False)
    np.testing.assert_array_equal(crn.out[0], crn.out[1])
    assert not np.array_equal(indep.out[0], indep.out[1])
    np.testing.assert_array_equal(crn.out[0], indep.out[0])  # candidate 0 has the same keys either way
