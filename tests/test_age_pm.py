"""Age-based PM (``pm: [{age_minutes: T}]``) against the renewal-reward closed form of age replacement.

A tool renewed at every repair and every PM is a renewal process whose cycle is: up for min(X, T)
(X the Weibull time to failure), then down for a repair (if X < T, probability F(T)) or a PM. With
E[up] = integral_0^T R(x) dx and C = E[up] + F(T) MTTR + R(T) d_PM, the long-run availability is
E[up] / C, failures per minute F(T) / C and PMs per minute R(T) / C. A calendar PM that did not renew
the failure clock gives other numbers (checked too, so the test can tell the two apart).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import integrate

from kernels import layout as K
from lines import exp_step, open_line, station
from theory import within
from twin import kpis, tool_sums
from twin.backend import resolve_backend
from twin.compile import compile_line
from twin.errors import ConfigError
from twin.line import parse_line
from twin.runner import run_line

SHAPE, SCALE, MTTR, PM_MINUTES, AGE = 2.5, 1000.0, 100.0, 30.0, 600.0
HORIZON_DAYS, WARMUP_DAYS = 120.0, 5.0


def age_replacement(T: float) -> dict:
    """Long-run rates of age replacement with Weibull(SHAPE, SCALE) lives (renewal reward)."""
    reliability = lambda x: math.exp(-((x / SCALE) ** SHAPE))  # noqa: E731
    up, _ = integrate.quad(reliability, 0.0, T)
    fail = 1.0 - reliability(T)
    cycle = up + fail * MTTR + (1.0 - fail) * PM_MINUTES
    return {"availability": up / cycle, "failures_per_minute": fail / cycle, "pms_per_minute": (1.0 - fail) / cycle}


def line_with(pm: dict):
    failures = {"ttf": {"dist": "weibull", "shape": SHAPE, "scale": SCALE},
                "repair": {"dist": "exponential", "mean": MTTR}}
    pm = {"name": "pm", "duration": {"dist": "constant", "value": PM_MINUTES}, "first_minutes": AGE, **pm}
    # the maintained tool runs no lots, so each PM starts the moment it is due
    return open_line([station("W", 1), station("T", 1, failures=failures, pm=[pm])], [exp_step("W", 5.0)], 60.0)


def simulate(pm: dict, replicas=48, seed=3):
    result = run_line(compile_line(line_with(pm)), replicas, HORIZON_DAYS, WARMUP_DAYS, seed,
                      resolve_backend("cpu"), snapshot_minutes=0)
    rows = kpis.per_replication(result)
    window = (HORIZON_DAYS - WARMUP_DAYS) * 1440.0
    fails, pms = tool_sums.ti_sum(result.stats, K.T_FAILS)[:, 1], tool_sums.ti_sum(result.stats, K.T_PMS)[:, 1]  # T: one tool
    return {"availability": kpis.summarize(rows["tool_group.T.availability"]),
            "failures_per_minute": kpis.summarize(fails / window),
            "pms_per_minute": kpis.summarize(pms / window)}


def test_age_pm_matches_the_age_replacement_renewal_reward_formula():
    theory = age_replacement(AGE)
    sim = simulate({"age_minutes": AGE})
    for key, value in theory.items():
        assert within(sim[key]["mean"], sim[key]["ci95"], value), (key, sim[key], value)
    # the same interval as a calendar PM (no renewal of the ttf clock) is measurably different
    calendar = simulate({"every_minutes": AGE})
    fails = calendar["failures_per_minute"]
    assert abs(fails["mean"] - theory["failures_per_minute"]) > 5 * fails["ci95"], (fails, theory)


def test_age_pm_needs_exactly_one_interval():
    base = {"name": "t", "tool_groups": [station("W", 1)], "products": [{"name": "p", "route": [exp_step("W", 5.0)]}],
            "releases": [{"name": "p", "product": "p", "kind": "poisson", "interval_minutes": 60.0}]}
    base["tool_groups"][0]["pm"] = [{"age_minutes": 100.0, "every_minutes": 100.0, "duration": 5.0}]
    try:
        parse_line(base)
    except ConfigError as err:
        assert "age_minutes" in str(err)
    else:
        raise AssertionError("two intervals were accepted")
    base["tool_groups"][0]["pm"] = [{"age_minutes": -1.0, "duration": 5.0}]
    try:
        parse_line(base)
    except ConfigError as err:
        assert "age_minutes" in str(err)
    else:
        raise AssertionError("a negative age was accepted")


def test_theory_helper_is_age_replacement():
    """Sanity of the closed form itself: T far past every life is run to failure (MTBF / (MTBF + MTTR))."""
    mtbf = SCALE * math.gamma(1.0 + 1.0 / SHAPE)
    assert np.isclose(age_replacement(20.0 * SCALE)["availability"], mtbf / (mtbf + MTTR), rtol=1e-6)
