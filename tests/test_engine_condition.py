"""Condition-driven failures and maintenance in the line engine, against renewal-reward theory.

One tool, kept busy by a CONWIP loop, runs jobs of ``P`` minutes on lots of
``W`` wafers.  Its condition grows by ``MU * W`` per job (no noise), so the
number of jobs in one life is known in closed form, and long-run availability
is the renewal-reward ratio E[up time per life] / E[life length].
"""
from __future__ import annotations


import numpy as np
import pytest

from lines import open_line
from theory import within
from twin import kpis
from twin.backend import resolve_backend
from twin.compile import compile_line
from twin.errors import ConfigError
from twin.line import parse_line
from twin.runner import run_line

P, W, MU = 10.0, 25, 0.001  # minutes per job, wafers per lot, condition per wafer: 0.025 per job
REPAIR, PM = 100.0, 30.0
LEVEL = {"dist": "uniform", "low": 1.0, "high": 2.0}  # failure level: 40 to 80 jobs of wear
HORIZON, WARMUP = 60.0, 5.0


def busy_tool(**group):
    condition = {"drift_per_wafer": MU, **group.pop("condition", {})}
    tool = {"name": "T", "area": "A", "tools": 1, "condition": condition,
            "failures": {"ttf": {"dist": "exponential", "mean": 1e12}, "repair": {"dist": "constant", "value": REPAIR}},
            **group}
    releases = [{"name": "p", "product": "p", "kind": "conwip", "wip_cap": 3, "lot_size": W, "due_days": 1000}]
    route = [{"group": "T", "time": P, "per": "lot"}]
    return open_line([tool], route, 1.0, releases=releases)


def simulate(line, replicas=8):
    result = run_line(compile_line(line), replicas, HORIZON, WARMUP, 3, resolve_backend("cpu"), snapshot_minutes=0)
    assert kpis.conservation(result)["ok"], "lots were lost"
    return kpis.per_replication(result)


def one_life_bound(life_minutes):
    """A window cuts at most one life at each end: the long-run share is off by at most this."""
    return 2.0 * life_minutes / ((HORIZON - WARMUP) * 1440.0)


def test_wear_out_failures_follow_renewal_reward():
    """Failure when condition reaches a U(1, 2) level: jobs per life N = ceil(L / 0.025) is uniform on
    41..80, so E[N] = 60.5 and availability = E[N] P / (E[N] P + MTTR)."""
    rows = simulate(busy_tool(condition={"failure_level": LEVEL}))
    mean_jobs = np.mean(np.arange(41, 81))
    life = mean_jobs * P + REPAIR
    availability = kpis.summarize(rows["tool_group.T.availability"])
    assert within(availability["mean"], availability["ci95"], mean_jobs * P / life, slack=2.0), availability
    fails = kpis.summarize(rows["tool_group.T.failures_per_tool"])
    expected_fails = (HORIZON - WARMUP) * 1440.0 / life
    assert within(fails["mean"], fails["ci95"], expected_fails, slack=2.0), (fails, expected_fails)
    assert np.all(rows["tool_group.T.pms_per_tool"] == 0)


def test_condition_based_pm_pre_empts_every_failure():
    """PM when a (noise-free) reading reaches 0.81, below every failure level: after ceil(0.81 / 0.025) = 33
    jobs, never a failure; availability = 33 P / (33 P + PM)."""
    maintenance = {"policy": "condition", "threshold": 0.81, "duration": PM}
    rows = simulate(busy_tool(condition={"failure_level": LEVEL}, maintenance=maintenance), replicas=2)
    life = 33 * P + PM
    assert np.all(rows["tool_group.T.failures_per_tool"] == 0)
    assert np.allclose(rows["tool_group.T.availability"], 33 * P / life, atol=one_life_bound(life))
    assert np.allclose(rows["tool_group.T.pms_per_tool"], (HORIZON - WARMUP) * 1440.0 / life, atol=2.0)


def test_predictive_pm_acts_one_lead_time_before_the_predicted_failure():
    """The trend fitted to exact readings reaches the target 1.0 after 40 jobs; at the tool's rate
    (P per job) the predicted time left after n jobs is (40 - n) P, so with a 65-minute lead the PM
    comes after n = 34 jobs, before any failure level is reached."""
    maintenance = {"policy": "predictive", "target_level": 1.0, "lead_minutes": 65.0, "duration": PM}
    rows = simulate(busy_tool(condition={"failure_level": LEVEL}, maintenance=maintenance), replicas=2)
    life = 34 * P + PM
    assert np.all(rows["tool_group.T.failures_per_tool"] == 0)
    assert np.allclose(rows["tool_group.T.availability"], 34 * P / life, atol=one_life_bound(life))


def test_noisy_sensor_makes_condition_based_pm_miss_some_failures():
    """With a noisy degradation path and a noisy sensor, a threshold just under the failure levels
    lets some lives fail first: failures lie strictly between none and run-to-failure's count (CIs)."""
    noisy = {"failure_level": {"dist": "uniform", "low": 1.0, "high": 1.2}, "noise_per_wafer": 0.01, "sensor_sd": 0.05}
    maintenance = {"policy": "condition", "threshold": 0.95, "duration": PM}
    cbm = kpis.summarize(simulate(busy_tool(condition=dict(noisy), maintenance=maintenance))["tool_group.T.failures_per_tool"])
    rtf = kpis.summarize(simulate(busy_tool(condition=dict(noisy)))["tool_group.T.failures_per_tool"])
    assert cbm["mean"] - cbm["ci95"] > 0.0, cbm
    assert cbm["mean"] + cbm["ci95"] < rtf["mean"] - rtf["ci95"], (cbm, rtf)


@pytest.mark.parametrize("change, field", [
    ({"maintenance": {"policy": "oracle", "duration": 5}}, "tool_groups[0].maintenance.policy"),
    ({"maintenance": {"policy": "condition", "duration": 5}}, "tool_groups[0].maintenance.threshold"),
    ({"maintenance": {"policy": "predictive", "target_level": 1, "duration": 5}}, "tool_groups[0].maintenance.lead_minutes"),
    ({"condition": {"drift_per_wafer": 0.0, "failure_level": 1.0}}, "tool_groups[0].condition.drift_per_wafer"),
])
def test_bad_condition_maintenance_names_the_field(change, field):
    group = {"name": "T", "tools": 1, "condition": {"drift_per_wafer": 0.01}, **change}
    data = {"tool_groups": [group], "products": [{"name": "p", "route": [{"group": "T", "time": 1}]}],
            "releases": [{"name": "p", "product": "p", "interval_minutes": 10}]}
    with pytest.raises(ConfigError) as err:
        parse_line(data)
    assert field in str(err.value), str(err.value)


def test_warnings_come_one_lead_time_before_every_wear_out():
    """A fixed failure level 0.99 wears the tool out after ceil(0.99 / 0.025) = 40 jobs. The exact trend
    predicts (39.6 - n) P minutes left after job n, so a 95-minute horizon warns after job 31: every
    failure is warned of, 90 minutes ahead (precision = recall = 1)."""
    warning = {"level": 0.99, "horizon_minutes": 95.0}
    rows = simulate(busy_tool(condition={"failure_level": 0.99, "warning": warning}), replicas=2)
    assert np.all(rows["tool_group.T.failures_per_tool"] > 100)
    assert np.all(rows["tool_group.T.warnings.precision"] == 1.0)
    assert np.all(rows["tool_group.T.warnings.recall"] == 1.0)
    assert np.allclose(rows["tool_group.T.warnings.lead_minutes_mean"], 9 * P)
    bin_width = 2 * 95.0 / 20  # default window = 2 x horizon, 20 bins
    assert np.all(np.abs(rows["tool_group.T.warnings.lead_minutes_median"] - 9 * P) <= bin_width)


def test_a_noisy_sensor_and_a_short_horizon_miss_failures():
    """Negative control: with sensor noise of sd 0.2 (8 jobs of wear) and a 20-minute horizon, warnings
    fire at random: recall and precision fall well below 1 (CIs)."""
    condition = {"failure_level": 0.99, "sensor_sd": 0.2, "warning": {"level": 0.99, "horizon_minutes": 20.0}}
    rows = simulate(busy_tool(condition=condition))
    for kpi in ("recall", "precision"):
        s = kpis.summarize(rows[f"tool_group.T.warnings.{kpi}"])
        assert s["mean"] + s["ci95"] < 0.9, (kpi, s)
