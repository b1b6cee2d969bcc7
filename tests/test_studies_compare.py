"""twin compare's statistics against theory: the paired interval covers a known difference at its
nominal rate, Welch's too, and the variance reduction ratio estimates the known one."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from twin.compare import Run, difference, paired_ci, variance_reduction, welch_ci

TRIALS, N, DELTA = 2000, 16, 0.5
SHARED_SD, OWN_SD = 3.0, 1.0  # noise both scenarios share (common random numbers) and their own


def _pairs(rng):
    shared = rng.normal(0.0, SHARED_SD, N)
    a = 10.0 + shared + rng.normal(0.0, OWN_SD, N)
    b = 10.0 + DELTA + shared + rng.normal(0.0, OWN_SD, N)
    return a, b


def _band(p, trials, z=3.29):
    """A 99.9% normal-approximation band of a binomial proportion."""
    half = z * math.sqrt(p * (1 - p) / trials)
    return p - half, p + half


def test_paired_interval_covers_the_true_difference_at_95_percent():
    rng = np.random.default_rng(20261201)
    hits = 0
    for _ in range(TRIALS):
        a, b = _pairs(rng)
        d, half, n = paired_ci(a, b)
        assert n == N
        hits += abs(d - DELTA) <= half
    low, high = _band(0.95, TRIALS)
    assert low <= hits / TRIALS <= high, hits / TRIALS


def test_welch_interval_covers_at_95_percent_for_independent_runs_and_over_covers_for_paired_ones():
    """Welch assumes nothing shared: exact-ish for independent samples (unequal variances), and
    conservative under common random numbers, which is why the paired interval is the one to read."""
    rng = np.random.default_rng(5)
    independent_hits = shared_hits = 0
    for _ in range(TRIALS):
        a = 10.0 + rng.normal(0.0, 1.0, N)
        b = 10.0 + DELTA + rng.normal(0.0, 2.5, N + 7)
        w, half = welch_ci(a, b)
        independent_hits += abs(w - DELTA) <= half
        a, b = _pairs(rng)
        w, half = welch_ci(a, b)
        shared_hits += abs(w - DELTA) <= half
    low, high = _band(0.95, TRIALS)
    assert low <= independent_hits / TRIALS <= high, independent_hits / TRIALS
    assert shared_hits / TRIALS > high


def test_variance_reduction_ratio_estimates_the_known_one():
    """Var(a) + Var(b) over Var(b - a) = (2 s^2 + 2 o^2) / (2 o^2) = 10 for s = 3, o = 1."""
    rng = np.random.default_rng(7)
    independent = paired = 0.0
    ratios = []
    for _ in range(TRIALS):
        a, b = _pairs(rng)
        independent += (a.var(ddof=1) + b.var(ddof=1)) / N
        paired += np.var(b - a, ddof=1) / N
        ratios.append(variance_reduction(a, b))
    expected = (2 * SHARED_SD**2 + 2 * OWN_SD**2) / (2 * OWN_SD**2)
    assert abs(independent / paired - expected) / expected < 0.05
    assert abs(np.median(ratios) - expected) / expected < 0.15  # the per-trial ratio is a skewed estimator


def test_independent_noise_gives_no_reduction():
    rng = np.random.default_rng(3)
    ratios = [variance_reduction(rng.normal(0, 1, N), rng.normal(0, 1, N)) for _ in range(TRIALS)]
    assert abs(np.median(ratios) - 1.0) < 0.1


def test_pairs_are_matched_by_replication_index_not_row_order():
    rng = np.random.default_rng(11)
    a, b = _pairs(rng)
    order = rng.permutation(N)
    base = Run("a", Path("a"), 1, np.arange(N), {"k": a})
    shuffled = Run("b", Path("b"), 1, np.arange(N)[order], {"k": b[order]})
    got = difference("k", base, shuffled)
    d, half, n = paired_ci(a, b)
    assert (got.difference, got.paired_ci95, got.n_pairs) == (d, half, n)
    assert math.isclose(got.variance_reduction, variance_reduction(a, b))


def test_missing_values_drop_only_their_pair():
    a = np.array([1.0, 2.0, np.nan, 4.0])
    b = np.array([2.0, np.nan, 5.0, 6.0])
    d, half, n = paired_ci(a, b)
    assert n == 2 and d == 1.5
