"""Common random numbers: scenarios share the draws of every entity they have in common.

Each replication draws from substreams per (purpose, tool), per release stream and per lot, keyed by
(seed, replication, purpose, entity). So two scenarios that differ in one tool group see, in each
replication, the very same releases, the very same failures and repairs of every calendar-basis tool
elsewhere, and each lot's own processing times and routing; differences of KPIs are paired by
replication index.

- exact sharing: release counts and failure histories of untouched groups are equal, replication by
  replication (and a different seed changes them, so equality is not trivial);
- variance reduction: paired differences of cycle time have a much smaller variance than independent
  ones (F-test on the ratio);
- coverage: a tool's unscheduled-down fraction has an exact expectation over [warm-up, horizon]
  (a two-state Markov chain from "up" at t = 0); paired 95% CIs of its change under a new repair time
  cover the exact difference at their nominal rate (binomial test over many independent blocks).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from kernels import layout as K
from lines import exp_step, open_line, station
from twin import kpis
from twin.backend import resolve_backend
from twin.compile import CompiledLine, compile_line
from twin.runner import run_line

CPU = resolve_backend("cpu")


def failures(mttf, mttr):
    return {"ttf": {"dist": "exponential", "mean": mttf}, "repair": {"dist": "exponential", "mean": mttr}}


def three_groups(tools_b: int):
    """A -> B -> C, every group failing; scenarios differ in B's tool count only."""
    groups = [station("A", 2, failures=failures(600.0, 60.0)), station("B", tools_b, failures=failures(600.0, 60.0)),
              station("C", 2, failures=failures(600.0, 60.0))]
    return open_line(groups, [exp_step("A", 20.0), exp_step("B", 30.0), exp_step("C", 20.0)], 15.0)


def run(line, replicas, seed, horizon_days=20.0, warmup_days=2.0, first_replica=0):
    c = line if isinstance(line, CompiledLine) else compile_line(line)
    return run_line(c, replicas, horizon_days, warmup_days, seed, CPU, snapshot_minutes=0, first_replica=first_replica)


def cycle_time(result):
    s_f = result.stats["s_f"][:, 0]
    return s_f[:, K.SS_CT_SUM] / s_f[:, K.SS_CT_N]


def each_replication(line, replicas, seed):
    """Every replication run alone (``first_replica``: the numbers it has in a run of all of them), so
    that each one's per-tool rows are at hand: a result keeps only its first replication's."""
    c = compile_line(line)
    return [run(c, 1, seed, first_replica=r) for r in range(replicas)]


def test_scenarios_share_releases_and_failures_of_untouched_groups():
    base, more_b, other_seed = (each_replication(three_groups(3), 16, 3), each_replication(three_groups(4), 16, 3),
                                each_replication(three_groups(3), 16, 4))
    released = lambda runs: np.array([r.stats["s_i"][0, 0, K.S_RELEASED] for r in runs])  # noqa: E731
    np.testing.assert_array_equal(released(base), released(more_b))
    fails = lambda runs, tools: np.stack([r.stats["rep0_ti"][tools, K.T_FAILS] for r in runs])  # noqa: E731
    down = lambda runs, tools: np.stack([r.stats["rep0_tf"][tools, K.TF_E10_0 + K.UNSCHED_DOWN] for r in runs])  # noqa: E731
    cycle_times = lambda runs: np.concatenate([cycle_time(r) for r in runs])  # noqa: E731
    whole = run(three_groups(3), 16, 3)  # the runs alone are the replications of one run
    np.testing.assert_array_equal(released(base), whole.stats["s_i"][:, 0, K.S_RELEASED])
    np.testing.assert_array_equal(np.stack([r.stats["group_ti"][0] for r in base]), whole.stats["group_ti"])
    a, c_base, c_more = [0, 1], [5, 6], [6, 7]  # C's tools move up one index when B has four
    np.testing.assert_array_equal(fails(base, a), fails(more_b, a))
    np.testing.assert_array_equal(fails(base, c_base), fails(more_b, c_more))
    np.testing.assert_array_equal(down(base, c_base), down(more_b, c_more))
    # B's first three tools keep their own failure streams too
    np.testing.assert_array_equal(fails(base, [2, 3, 4]), fails(more_b, [2, 3, 4]))
    # ... while the flow through B changed, and another seed changes everything
    assert not np.array_equal(cycle_times(base), cycle_times(more_b))
    assert not np.array_equal(released(base), released(other_seed))
    assert not np.array_equal(fails(base, a), fails(other_seed, a))


def test_paired_differences_have_a_much_smaller_variance():
    n = 48
    base, more_b, independent = run(three_groups(3), n, 3), run(three_groups(4), n, 3), run(three_groups(4), n, 1003)
    paired = cycle_time(more_b) - cycle_time(base)
    unpaired = cycle_time(independent) - cycle_time(base)
    ratio = paired.var(ddof=1) / unpaired.var(ddof=1)
    upper = ratio / stats.f.ppf(0.001, n - 1, n - 1)  # 99.9% upper bound of the true variance ratio
    assert upper < 0.5, (ratio, upper)
    # both estimate the same difference (B's fourth tool shortens the cycle)
    assert paired.mean() < 0 and abs(paired.mean() - unpaired.mean()) < 4 * math.sqrt(unpaired.var(ddof=1) / n)


MTTF, MTTR_BASE, MTTR_NEW = 600.0, 60.0, 90.0
HORIZON_DAYS, WARMUP_DAYS = 10.0, 1.0


def exact_down_fraction(mttf, mttr, warmup, horizon):
    """E[unscheduled-down time in [warmup, horizon]] / (horizon - warmup) for an up/down Markov chain up at 0."""
    a, b = 1.0 / mttf, 1.0 / mttr
    rate = a + b
    mean_down = a / rate * ((horizon - warmup) - (math.exp(-rate * warmup) - math.exp(-rate * horizon)) / rate)
    return mean_down / (horizon - warmup)


def one_tool(mttr):
    return open_line([station("T", 1, failures=failures(MTTF, mttr))], [exp_step("T", 10.0)], 60.0)


def down_fraction(result):
    return kpis.per_replication(result)["tool_group.T.e10.unscheduled_down"]


def test_paired_ci_covers_the_exact_difference_at_its_nominal_rate():
    blocks, n = 150, 20
    h, w = HORIZON_DAYS * 1440.0, WARMUP_DAYS * 1440.0
    truth = exact_down_fraction(MTTF, MTTR_NEW, w, h) - exact_down_fraction(MTTF, MTTR_BASE, w, h)
    base = down_fraction(run(one_tool(MTTR_BASE), blocks * n, 7, HORIZON_DAYS, WARMUP_DAYS))
    new = down_fraction(run(one_tool(MTTR_NEW), blocks * n, 7, HORIZON_DAYS, WARMUP_DAYS))
    diff = (new - base).reshape(blocks, n)  # block k: replications k*n .. k*n + n - 1, independent of the others
    half = stats.t.ppf(0.975, n - 1) * diff.std(axis=1, ddof=1) / math.sqrt(n)
    covered = int((np.abs(diff.mean(axis=1) - truth) <= half).sum())
    p = stats.binomtest(covered, blocks, 0.95).pvalue
    assert p > 0.001, (covered, blocks, truth, diff.mean())
    # the pooled estimate agrees with the exact difference, and pairing made the interval narrow
    pooled = diff.ravel()
    assert abs(pooled.mean() - truth) <= 3.3 * pooled.std(ddof=1) / math.sqrt(pooled.size), (pooled.mean(), truth)
    assert pooled.var(ddof=1) < 0.5 * (new.var(ddof=1) + base.var(ddof=1))
