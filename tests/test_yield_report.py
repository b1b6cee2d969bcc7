"""The yield report against theory: a fake run result with known densities and closed-form numbers.

The engine's fields are built by hand (types.SimpleNamespace), so each check
knows its exact answer: the Monte-Carlo die yield must cover the model's mean,
closed-form numbers pass through unchanged, and the Pareto splits lost dies in
the given density ratios.  One test runs the real engine on a tiny line.
"""
from __future__ import annotations

import csv
import json
import math
import types

import numpy as np
import pytest

from theory import within
from twin.backend import resolve_backend
from twin.line import parse_line
from twin.yield_model import expected_die_yield, nb_yield
from twin.yield_report import dies_lost_by_step, ratio_ci, yield_report

CPU = resolve_backend("cpu")

LOG_DTYPE = np.dtype([
    ("stream", np.int32), ("product", np.int32), ("release_min", np.float64), ("done_min", np.float64),
    ("due_min", np.float64), ("priority", np.int32), ("wafers", np.int32), ("defect_density", np.float64),
])


def two_product_line(scale=1.0):
    def step(group, density):
        return {"group": group, "time": {"dist": "exponential", "mean": 10.0}, "per": "lot", "defect_density": density * scale}

    return parse_line({
        "name": "yield-test",
        "tool_groups": [{"name": n, "area": "A", "tools": 2} for n in ("LITHO", "ETCH", "CMP")],
        "products": [
            {"name": "logic", "route": [step("LITHO", 0.1), step("ETCH", 0.2), step("LITHO", 0.1)],
             "yield": {"die_width_mm": 10, "die_height_mm": 10}},
            {"name": "memory", "route": [step("ETCH", 0.05), step("CMP", 0.15)],
             "yield": {"die_width_mm": 8, "die_height_mm": 6, "alpha": 2.0, "cluster_block_dies": 2}},
        ],
        "releases": [{"name": "logic", "product": "logic", "interval_minutes": 60, "lot_size": 25},
                     {"name": "logic_hot", "product": "logic", "interval_minutes": 600, "lot_size": 25},
                     {"name": "memory", "product": "memory", "interval_minutes": 90, "lot_size": 25}],
    })


def fake_result(line, n_lots=160, reps=5, seed=0):
    rng = np.random.default_rng(seed)
    log = np.zeros(n_lots, LOG_DTYPE)
    log["stream"] = rng.integers(0, 3, n_lots)
    stream_product = np.array([0, 0, 1])
    log["product"] = stream_product[log["stream"]]
    log["wafers"] = rng.integers(20, 26, n_lots)
    log["done_min"] = np.linspace(0.0, 30 * 1440.0, n_lots)
    log["release_min"] = log["done_min"] - 3000.0
    log["defect_density"] = np.where(log["product"] == 0, 0.4, 0.3) * rng.uniform(0.5, 1.5, n_lots)
    S, G = 5, 3
    step_dens = np.array([0.1, 0.2, 0.1, 0.05, 0.15])  # per wafer, as the line's route says
    wafers_done = rng.uniform(1500, 2500, (reps, 3))
    step_wafers = np.stack([wafers_done[:, :2].sum(1)] * 3 + [wafers_done[:, 2]] * 2, axis=1)
    gross = [p.yield_spec.gross_dies for p in line.products]
    y = np.array([math.exp(-1.0 * 0.4), nb_yield(0.48, 0.3, 2.0)])
    good = wafers_done * np.array([gross[0] * y[0], gross[0] * y[0], gross[1] * y[1]]) * rng.uniform(0.97, 1.03, (reps, 3))
    return types.SimpleNamespace(
        line=line, lot_log=log, step_defect_wafers=step_wafers * step_dens, group_defect_wafers=np.zeros((reps, G)),
        step_names=[f"logic/{k}" for k in (1, 2, 3)] + [f"memory/{k}" for k in (1, 2)], group_names=["LITHO", "ETCH", "CMP"],
        stream_good_dies=good, stream_wafers_done=wafers_done, horizon_days=40.0, warmup_days=10.0,
        stream_names=["logic", "logic_hot", "memory"], stream_product=stream_product, S=S)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    line = two_product_line()
    res = fake_result(line)
    out = tmp_path_factory.mktemp("run")
    return line, res, out, yield_report(res, out, CPU, seed=3, sample_wafers=60)


def test_mc_die_yield_covers_the_model_mean_of_the_same_lots(report):
    line, res, _, doc = report
    warm = res.lot_log["done_min"] >= res.warmup_days * 1440
    for pi, p in enumerate(line.products):
        lots = res.lot_log[warm & (res.lot_log["product"] == pi)]
        w = lots["wafers"].astype(float)
        model = sum(wi * expected_die_yield(p.yield_spec, d) for wi, d in zip(w, lots["defect_density"])) / w.sum()
        sec = doc["products"][p.name]
        assert sec["lots"] == lots.size and sec["wafers"] == int(w.sum())
        assert sec["die_yield_expected"] == pytest.approx(model)
        assert within(sec["die_yield"]["mean"], sec["die_yield"]["ci95"], model), (p.name, sec["die_yield"], model)
        assert within(sec["wafer_yield"]["mean"], sec["wafer_yield"]["ci95"], model)
        assert sec["lot_yield"]["n"] == lots.size


def test_closed_form_yield_and_good_dies_per_day_come_from_the_replications(report):
    line, res, _, doc = report
    days = res.horizon_days - res.warmup_days
    for pi, p in enumerate(line.products):
        streams = res.stream_product == pi
        per_rep_y = res.stream_good_dies[:, streams].sum(1) / (res.stream_wafers_done[:, streams].sum(1) * p.yield_spec.gross_dies)
        per_rep_g = res.stream_good_dies[:, streams].sum(1) / days
        sec = doc["products"][p.name]
        assert sec["die_yield_closed_form"]["mean"] == pytest.approx(per_rep_y.mean())
        assert sec["die_yield_closed_form"]["n"] == 5
        assert sec["good_dies_per_day"]["mean"] == pytest.approx(per_rep_g.mean())
        half = 2.776 * per_rep_g.std(ddof=1) / math.sqrt(5)
        assert sec["good_dies_per_day"]["ci95"] == pytest.approx(half)
    assert doc["total"]["good_dies_per_day"]["mean"] == pytest.approx(res.stream_good_dies.sum(1).mean() / days)
    json.dumps(doc)  # kpis.json must serialise


def test_pareto_splits_each_products_loss_by_density_share(report):
    line, res, _, doc = report
    lost = dies_lost_by_step(res, line)
    days = res.horizon_days - res.warmup_days
    for pi, steps, dens in ((0, [0, 1, 2], [0.1, 0.2, 0.1]), (1, [3, 4], [0.05, 0.15])):
        streams = res.stream_product == pi
        loss = res.stream_wafers_done[:, streams].sum(1) * line.products[pi].yield_spec.gross_dies - res.stream_good_dies[:, streams].sum(1)
        np.testing.assert_allclose(lost[:, steps].sum(1), loss)
        np.testing.assert_allclose(lost[:, steps] / loss[:, None], np.tile(np.array(dens) / sum(dens), (5, 1)))
    rows = {r["name"]: r for r in doc["pareto_steps"]}
    assert rows["logic/2"]["dies_lost_per_day"]["mean"] == pytest.approx(lost[:, 1].mean() / days)
    assert rows["logic/2"]["group"] == "ETCH" and rows["memory/2"]["product"] == "memory"
    means = [r["dies_lost_per_day"]["mean"] for r in doc["pareto_steps"]]
    assert means == sorted(means, reverse=True)
    groups = {r["name"]: r["dies_lost_per_day"]["mean"] for r in doc["pareto_groups"]}
    assert groups["LITHO"] == pytest.approx((lost[:, 0] + lost[:, 2]).mean() / days)
    assert groups["ETCH"] == pytest.approx((lost[:, 1] + lost[:, 3]).mean() / days)
    assert sum(groups.values()) == pytest.approx(lost.sum(1).mean() / days)
    assert sum(r["share"]["mean"] for r in doc["pareto_groups"]) == pytest.approx(1.0)


def test_wafer_maps_load_in_the_viewer_and_agree_with_the_lot_table(report):
    from twin.view.run_folder import load_wafer_maps

    line, res, out, doc = report
    assert doc["wafer_maps"]["files"] == {"logic": "wafer_maps.npz", "memory": "wafer_maps_memory.npz"}
    for name in ("wafer_maps.npz", "wafer_maps_memory.npz"):
        maps = load_wafer_maps(out / name)
        raw = np.load(out / name)
        assert 20 <= maps.die_pass.shape[0] <= 30
        np.testing.assert_array_equal((maps.die_pass == 1).sum(axis=(1, 2)), raw["wafer_good_dies"])
        assert np.all((maps.die_pass >= 0).sum(axis=(1, 2)) == raw["gross_dies"])
        np.testing.assert_array_equal(np.bincount(raw["defect_wafer"], minlength=len(raw["lot_id"])), raw["defect_count"])
        killer = raw["defect_killer"] == 1
        assert 0.2 < killer.mean() < 0.45  # the default kill fraction is 1/3
        # every wafer of a sampled lot is there, and lot ids match the lot log rows
        for lot in np.unique(raw["lot_index"]):
            assert (raw["lot_index"] == lot).sum() == res.lot_log["wafers"][lot]
    with open(out / "yield_lots_rep0.csv") as fh:
        rows = list(csv.DictReader(fh))
    warm = res.lot_log["done_min"] >= res.warmup_days * 1440
    assert len(rows) == warm.sum()
    assert sum(int(r["good_dies"]) for r in rows) == pytest.approx(doc["total"]["good_dies_per_day_mc_rep0"] * 30)


def test_same_seed_same_report_other_seed_other_wafers(tmp_path):
    line = two_product_line()
    res = fake_result(line, n_lots=20)
    a = yield_report(res, tmp_path / "a", CPU, seed=1, sample_wafers=10)
    b = yield_report(res, tmp_path / "b", CPU, seed=1, sample_wafers=10)
    c = yield_report(res, tmp_path / "c", CPU, seed=2, sample_wafers=10)
    assert a["products"]["logic"]["die_yield"] == b["products"]["logic"]["die_yield"]
    assert a["products"]["logic"]["die_yield"] != c["products"]["logic"]["die_yield"]


def test_no_lots_after_warmup_falls_back_to_all_lots(tmp_path):
    line = two_product_line()
    res = fake_result(line, n_lots=10)
    res.warmup_days = 39.0
    doc = yield_report(res, tmp_path, CPU, seed=1, sample_wafers=0)
    assert "none completed after warm-up" in doc["method"]["die_yield"]
    assert doc["products"]["logic"]["lots"] + doc["products"]["memory"]["lots"] == 10
    assert doc["wafer_maps"]["files"] == {}


def test_ratio_ci_is_the_ratio_of_sums_with_a_delta_method_interval():
    rng = np.random.default_rng(4)
    den = rng.integers(20, 26, 400).astype(float)
    num = rng.binomial(den.astype(int) * 600, 0.7).astype(float)
    r = ratio_ci(num, den * 600)
    assert r["mean"] == pytest.approx(num.sum() / (den.sum() * 600))
    assert within(r["mean"], r["ci95"], 0.7)
    assert ratio_ci([], [])["mean"] is None and ratio_ci([3.0], [4.0])["ci95"] is None


def test_with_the_real_engine_pareto_shares_follow_the_route_densities(tmp_path):
    """Tools without condition drift: every wafer gets exactly its route's densities."""
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.runner import run_line

    line = two_product_line(scale=2.0)
    result = run_line(compile_line(line), replicas=2, horizon_days=6.0, warmup_days=1.0, seed=4,
                      backend=resolve_backend("cpu"), snapshot_minutes=0)
    doc = yield_report(result, tmp_path, CPU, seed=4, sample_wafers=20)
    logic = doc["products"]["logic"]
    assert logic["lots"] > 20
    lots = result.lot_log[result.lot_log["product"] == 0]
    np.testing.assert_allclose(lots["defect_density"], 0.8)  # 2 x (0.1 + 0.2 + 0.1)
    assert within(logic["die_yield"]["mean"], logic["die_yield"]["ci95"], math.exp(-0.8))
    assert logic["die_yield_closed_form"]["mean"] == pytest.approx(math.exp(-0.8))
    lost = dies_lost_by_step(result, line)
    np.testing.assert_allclose(lost[:, [0, 1, 2]] / lost[:, [0, 1, 2]].sum(1, keepdims=True),
                               np.tile([0.25, 0.5, 0.25], (2, 1)), rtol=0.02)
    json.dumps(doc)
