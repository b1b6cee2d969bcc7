"""Die-level yield Monte Carlo against its closed forms (docs/yield.md).

Every statistical check compares a Monte-Carlo mean with theory through the
run's own confidence interval, widened to ~99.9% as in tests/theory.py, so a
fixed seed is not tuned to pass.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from theory import within
from twin.errors import ConfigError
from twin.kpis import summarize
from twin.yield_model import (YieldSpec, apply_yield_overrides, die_grid, die_yield_map, expected_die_yield,
                              gross_dies_formula, kill_fraction, nb_yield, parse_yield_spec, simulate_wafers,
                              wafer_yield_variance)

BASE = dict(wafer_diameter_mm=300.0, edge_exclusion_mm=3.0, die_width_mm=10.0, die_height_mm=10.0, scribe_mm=0.1)


def spec(**kw) -> YieldSpec:
    return YieldSpec(**{**BASE, **kw})


def density_for(s: YieldSpec, ad: float) -> float:
    """Killer density that gives A D = ``ad`` on this die."""
    return ad / s.die_area_cm2


def var_ci95(x) -> tuple[float, float]:
    """Sample variance and its 95% half-width from the fourth central moment (any distribution)."""
    x = np.asarray(x, float)
    n = x.size
    v = x.var(ddof=1)
    m4 = np.mean((x - x.mean()) ** 4)
    return float(v), float(1.96 * math.sqrt(max(m4 - v * v, 0.0) / n))


# ----------------------------------------------------------------------------- geometry

@pytest.mark.parametrize("d, w, h, excl, tol", [
    (300.0, 10.0, 10.0, 0.0, 10), (300.0, 10.0, 10.0, 3.0, 5), (300.0, 5.0, 5.0, 0.0, 10), (300.0, 14.0, 7.0, 0.0, 5)])
def test_gross_dies_match_the_dies_per_wafer_formula(d, w, h, excl, tol):
    s = YieldSpec(wafer_diameter_mm=d, die_width_mm=w, die_height_mm=h, edge_exclusion_mm=excl, scribe_mm=0.0)
    formula = gross_dies_formula(d - 2 * excl, w * h)
    assert abs(s.gross_dies - formula) <= tol, (s.gross_dies, formula)
    if (d, w, excl) == (300.0, 10.0, 0.0):
        assert abs(formula - 640.0) < 1 and abs(s.gross_dies - 640) <= 10


def test_die_grid_holds_exactly_the_dies_inside_the_usable_circle():
    s = spec()
    g = die_grid(s)
    r2 = g.usable_radius_mm**2
    lo = g.corners_mm()
    for cx in (0.0, g.die_mm[0]):
        for cy in (0.0, g.die_mm[1]):
            assert np.all((lo[:, 0] + cx) ** 2 + (lo[:, 1] + cy) ** 2 <= r2 + 1e-9)
    # every grid cell not numbered has a corner outside the circle
    j, i = np.nonzero(g.die_id < 0)
    x0, y0 = g.origin_mm[0] + i * g.pitch_mm[0], g.origin_mm[1] + j * g.pitch_mm[1]
    far = np.maximum(x0**2, (x0 + g.die_mm[0]) ** 2) + np.maximum(y0**2, (y0 + g.die_mm[1]) ** 2)
    assert np.all(far > r2)
    # the grid covers the whole wafer, so every defect position maps to a cell
    assert -g.origin_mm[0] >= g.wafer_radius_mm and g.die_id.shape[1] * g.pitch_mm[0] + g.origin_mm[0] >= g.wafer_radius_mm
    assert g.n_dies == s.gross_dies == 612


# ----------------------------------------------------------------------------- kill model

@pytest.mark.parametrize("x0, w, s", [(0.1, 0.1, 0.1), (0.05, 0.1, 0.1), (0.2, 0.1, 0.1), (0.05, 0.2, 0.08), (0.5, 0.1, 0.1)])
def test_kill_fraction_is_the_integral_of_critical_area_over_the_size_density(x0, w, s):
    from scipy.integrate import quad

    def integrand(x):
        return min(1.0, max(0.0, (x - s) / (w + s))) * 2 * x0 * x0 / x**3

    brk = [p for p in (s, 2 * s + w) if p > x0]
    numeric = quad(integrand, x0, 1e4, points=brk or None, limit=200)[0]
    assert kill_fraction(x0, w, s) == pytest.approx(numeric, rel=1e-6)
    if x0 <= s and w == s:
        assert kill_fraction(x0, w, s) == pytest.approx(x0 * x0 / (3 * s * s))


def test_defect_sizes_follow_inverse_cube_and_kill_at_the_critical_area_rate():
    s = spec(defect_min_um=0.05, line_width_um=0.1, line_space_um=0.1)
    mc = simulate_wafers(s, np.full(40, 0.3), seed=3, sample=np.arange(40))
    d = np.concatenate(mc.defects)
    size, killer = d[:, 2].astype(float), d[:, 3]
    n = size.size
    assert n > 50_000
    for k in (2.0, 4.0):  # P(X > k x0) = 1 / k^2
        p = np.mean(size > k * 0.05)
        assert abs(p - 1 / k**2) <= 3.3 * math.sqrt(p * (1 - p) / n), (k, p)
    theta = s.kill_fraction
    assert abs(killer.mean() - theta) <= 3.3 * math.sqrt(theta * (1 - theta) / n)
    assert np.all(killer[size >= 0.3] == 1) and np.all(killer[size <= 0.1] == 0)


# ----------------------------------------------------------------------------- yield closed forms

def _yield_stats(s, ad, n, seed):
    mc = simulate_wafers(s, np.full(n, density_for(s, ad)), seed=seed)
    return summarize(mc.die_yield), mc


def test_random_defects_give_poisson_yield():
    s = spec()
    for ad in (0.1, 0.5, 1.5):
        st, _ = _yield_stats(s, ad, 3000, seed=11)
        assert within(st["mean"], st["ci95"], math.exp(-ad)), (ad, st)


@pytest.mark.parametrize("block", [1, 4, 0])
def test_clustered_defects_give_negative_binomial_yield(block):
    s = spec(alpha=2.0, cluster_block_dies=block)
    st, _ = _yield_stats(s, 0.5, 4000, seed=12)
    theory = nb_yield(1.0, 0.5, 2.0)
    assert theory == pytest.approx(0.640, abs=5e-4)
    assert within(st["mean"], st["ci95"], theory), st


def test_mixed_random_and_clustered_give_the_product_of_both_yields():
    s = spec(alpha=1.0, patterns=(0.5, 0.5, 0.0, 0.0, 0.0))
    st, _ = _yield_stats(s, 1.0, 3000, seed=13)
    theory = math.exp(-0.5) * (1 + 0.5) ** -1.0
    assert expected_die_yield(s, density_for(s, 1.0)) == pytest.approx(theory)
    assert within(st["mean"], st["ci95"], theory), st


def test_edge_and_centre_patterns_match_the_integrated_intensity_per_die():
    s = spec(patterns=(0.2, 0.0, 0.5, 0.3, 0.0), edge_width_mm=10.0, centre_sigma_mm=35.0)
    dens = density_for(s, 0.5)
    mc = simulate_wafers(s, np.full(1500, dens), seed=14, sample=np.arange(1500))
    theory = die_yield_map(s, dens)
    r = np.hypot(*die_grid(s).centres_mm().T)
    for band in (r < 60, (r >= 60) & (r < 120), r >= 120):
        per_wafer = mc.die_pass[:, band].mean(axis=1)
        st = summarize(per_wafer)
        assert within(st["mean"], st["ci95"], theory[band].mean()), (st, theory[band].mean())
    assert theory[r >= 120].mean() < theory[(r >= 60) & (r < 120)].mean()  # the ring and blob cost dies
    assert theory[r < 60].mean() < theory[(r >= 60) & (r < 120)].mean()


def test_scratches_are_straight_and_hit_the_given_share_of_wafers():
    s = spec(patterns=(0.0, 0.0, 0.0, 0.0, 1.0), scratch_probability=0.3, scratch_length_mm=60.0, scratch_width_mm=0.4)
    n = 400
    mc = simulate_wafers(s, np.full(n, 0.2), seed=15, sample=np.arange(n))
    hit = np.array([len(d) > 0 for d in mc.defects])
    assert abs(hit.mean() - 0.3) <= 3.3 * math.sqrt(0.3 * 0.7 / n)
    for d in [d for d in mc.defects if len(d) > 20][:20]:
        xy = d[:, :2].astype(float) - d[:, :2].mean(axis=0)
        sv = np.linalg.svd(xy, compute_uv=False)
        assert sv[1] / math.sqrt(len(d)) < 0.4 and np.ptp(xy @ np.linalg.svd(xy)[2][0]) <= 60.0 + 1e-3


# ----------------------------------------------------------------------------- variance

def test_wafer_to_wafer_variance_grows_with_clustering_as_theory_says():
    variances = []
    for alpha in (math.inf, 8.0, 2.0, 0.7):
        s = spec(alpha=alpha, cluster_block_dies=0)
        _, mc = _yield_stats(s, 0.5, 3000, seed=16)
        v, half = var_ci95(mc.die_yield)
        theory = wafer_yield_variance(s, density_for(s, 0.5))
        assert within(v, half, theory), (alpha, v, half, theory)
        variances.append(v)
    assert variances == sorted(variances)
    assert variances[-1] > 30 * variances[0]


def test_block_clustering_variance_matches_shared_gamma_per_block():
    s = spec(alpha=1.0, cluster_block_dies=3)
    _, mc = _yield_stats(s, 0.5, 3000, seed=17)
    v, half = var_ci95(mc.die_yield)
    assert within(v, half, wafer_yield_variance(s, density_for(s, 0.5))), (v, half)


def test_killer_counts_per_wafer_follow_the_negative_binomial_variance():
    s = YieldSpec(wafer_diameter_mm=100.0, edge_exclusion_mm=2.0, die_width_mm=5.0, die_height_mm=5.0, alpha=1.5,
                  cluster_block_dies=0)
    n, dens = 3000, 0.2
    mc = simulate_wafers(s, np.full(n, dens), seed=18, sample=np.arange(n))
    k = np.array([d[:, 3].sum() for d in mc.defects])
    mu = dens * math.pi * 5.0**2  # killers per cm^2 x wafer area (cm^2)
    m = summarize(k)
    assert within(m["mean"], m["ci95"], mu), (m, mu)
    v, half = var_ci95(k)
    assert within(v, half, mu + mu * mu / 1.5), (v, half, mu + mu * mu / 1.5)


# ----------------------------------------------------------------------------- streams and maps

def test_results_depend_on_seed_and_wafer_index_only():
    s = spec(alpha=2.0, patterns=(0.3, 0.3, 0.2, 0.1, 0.1))
    dens = np.linspace(0.1, 1.0, 300)
    a = simulate_wafers(s, dens, seed=5)
    b = simulate_wafers(s, dens, seed=5, chunk=37, sample=[0, 100, 299])
    c = simulate_wafers(s, dens[100:], seed=5, key0=100)
    np.testing.assert_array_equal(a.good, b.good)
    np.testing.assert_array_equal(a.good[100:], c.good)
    assert not np.array_equal(a.good, simulate_wafers(s, dens, seed=6).good)


def test_sampled_maps_agree_with_defects_and_good_counts():
    s = spec(alpha=2.0, patterns=(0.3, 0.3, 0.2, 0.1, 0.1), scratch_probability=1.0)
    mc = simulate_wafers(s, np.full(20, 1.0), seed=8, sample=np.arange(20))
    g = die_grid(s)
    corners = g.corners_mm()
    for w in range(20):
        assert mc.die_pass[w].sum() == mc.good[w]
        d = mc.defects[w].astype(float)
        assert mc.n_defects[w] == len(d)
        kill = d[d[:, 3] == 1]
        inside = ((kill[:, None, 0] >= corners[None, :, 0]) & (kill[:, None, 0] < corners[None, :, 0] + g.die_mm[0])
                  & (kill[:, None, 1] >= corners[None, :, 1]) & (kill[:, None, 1] < corners[None, :, 1] + g.die_mm[1]))
        expected_fail = inside.any(axis=0)
        np.testing.assert_array_equal(mc.die_pass[w] == 0, expected_fail)


def test_zero_density_wafers_keep_every_die():
    s = spec(alpha=2.0, patterns=(1, 1, 1, 1, 1))
    mc = simulate_wafers(s, np.zeros(10), seed=1)
    assert np.all(mc.good == s.gross_dies)


# ----------------------------------------------------------------------------- config

def test_parse_yield_spec_reads_patterns_and_checks_every_value():
    s = parse_yield_spec({"alpha": 2, "patterns": {"random": 3, "edge": 1}, "cluster_block_dies": 2}, "products[0].yield")
    assert s.weights == (0.75, 0.0, 0.25, 0.0, 0.0) and s.cluster_block_dies == 2
    assert parse_yield_spec({}, "y").weights == (1.0, 0, 0, 0, 0)
    assert parse_yield_spec({"alpha": 2.0}, "y").weights == (0, 1.0, 0, 0, 0)
    bad = [({"alpha": 0}, "y.alpha"), ({"die_width_mm": -1}, "y.die_width_mm"), ({"colour": 1}, "y.colour"),
           ({"patterns": {"swirl": 1}}, "y.patterns.swirl"), ({"patterns": {"random": 0}}, "y.patterns"),
           ({"scratch_probability": 2}, "y.scratch_probability"), ({"cluster_block_dies": 1.5}, "y.cluster_block_dies"),
           ({"edge_exclusion_mm": 200}, "y.edge_exclusion_mm"), ({"die_width_mm": 400}, "y.die_width_mm"),
           ({"scribe_mm": "wide"}, "y.scribe_mm")]
    for d, field in bad:
        with pytest.raises(ConfigError) as e:
            parse_yield_spec(d, "y")
        assert e.value.field == field, (d, e.value)


def test_apply_yield_overrides_changes_alpha_and_square_die_only():
    s = spec(alpha=2.0)
    t = apply_yield_overrides(s, defect_scale=2.0, alpha=0.5, die_size_mm=8.0)
    assert (t.alpha, t.die_width_mm, t.die_height_mm, t.wafer_diameter_mm) == (0.5, 8.0, 8.0, 300.0)
    assert apply_yield_overrides(s) == s
    for kw, field in (({"alpha": 0}, "yield.alpha"), ({"die_size_mm": 0}, "yield.die_size_mm"),
                      ({"defect_scale": -1}, "yield.defect_scale"), ({"die_size_mm": 500.0}, "yield.die_width_mm")):
        with pytest.raises(ConfigError) as e:
            apply_yield_overrides(s, **kw)
        assert e.value.field == field


def test_defect_counts_per_wafer_match_the_benchmark_work_model():
    """Clustering and thinning keep the mean: D / theta * pi R^2 defects on every wafer."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_yield import work_model

    for s in (spec(), spec(alpha=2.0)):
        dens = density_for(s, 0.5)
        mc = simulate_wafers(s, np.full(300, dens), seed=19, sample=np.arange(300))
        st = summarize(mc.n_defects)
        model = work_model(s, dens)
        assert within(st["mean"], st["ci95"], model["defects_per_wafer"]), (st, model)
    assert model["candidates_per_wafer"] > model["defects_per_wafer"]  # the blocks overhang the disk
    assert work_model(spec(), 1.0)["candidates_per_wafer"] == pytest.approx(work_model(spec(), 1.0)["defects_per_wafer"] * 4 / math.pi)
