"""The recommended maintenance policy lies on the Pareto front of good dies per year against cost per year.

Objective (docs/maintenance.md): among the candidates no other dominates (as many good dies or more at
no more cost, better in one), the one with the best mean of ``objective``.  The availability optimum
alone is often dominated: PMing late keeps the tool up but makes worse wafers.
"""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from twin.maintain import HOURS_PER_YEAR, compose_config, load_study, pareto_front, run_study, simulate, summarise
from twin.maintain.summary import best_on_front


def dominated_by(good, cost, i) -> np.ndarray:
    """Candidates with at least as many good dies at no more cost, and strictly better in one."""
    return np.flatnonzero((good >= good[i]) & (cost <= cost[i]) & ((good > good[i]) | (cost < cost[i])))


def test_front_and_choice_on_hand_made_candidates():
    #            0     1     2     3     4
    good = np.array([10.0, 12.0, 12.0, 9.0, 15.0])
    cost = np.array([5.0, 5.0, 7.0, 1.0, 9.0])
    avail = np.array([0.99, 0.90, 0.95, 0.80, 0.85])  # the availability optimum (0) is dominated by 1
    front = pareto_front(cost, good)
    assert list(front) == [3, 1, 4]
    kpis = {"availability": (avail, None), "good_dies_per_year": (good, None), "cost_per_year": (cost, None)}
    assert best_on_front(kpis, "availability", front) == 1
    assert best_on_front(kpis, "good_dies", front) == 4
    assert best_on_front(kpis, "cost", front) == 3
    for i in front:
        assert dominated_by(good, cost, i).size == 0
    assert set(dominated_by(good, cost, 0)) == {1}


@pytest.mark.parametrize("tool", [["tool=line", "tool.group=ETCH_OX", "tool.wafers_per_hour=25",
                                   "tool.utilisation=0.8"], ["tool=cvd"], ["tool=etch"]])
@pytest.mark.parametrize("objective", ["availability", "good_dies", "cost"])
def test_no_candidate_dominates_the_best(tool, objective):
    cfg = compose_config([*tool, f"objective={objective}", "replicas=8", "horizon_years=0.5", "backend=cpu"])
    study = load_study(cfg)
    raw = simulate(study.tool, study.candidates, study.replicas, study.horizon_years * HOURS_PER_YEAR, study.seed,
                   study.backend, study.crn)
    s = summarise(study.tool, raw, objective)
    good, cost = s.kpis["good_dies_per_year"][0], s.kpis["cost_per_year"][0]
    assert dominated_by(good, cost, s.best).size == 0
    assert s.best in s.front


def test_outputs_name_the_rule_the_unit_and_the_front(tmp_path, capsys):
    cfg = compose_config(["tool=cvd", "policy=time_based", "grid.T=[100,200,400,800]", "replicas=4",
                          "horizon_years=0.1", "backend=cpu"])
    doc = run_study(cfg, tmp_path)
    assert doc["cost_unit"] == "USD per year" and "Pareto front" in doc["selection"]
    rows = list(csv.DictReader(open(tmp_path / "policies.csv")))
    best = next(r for r in rows if r["rank"] == "1")
    assert best["on_pareto_front"] == "1" and best["policy"] == doc["policy"]
    assert float(best["cost_per_year"]) == pytest.approx(doc["kpis"]["cost_per_year"]["mean"], rel=1e-5)
    assert sum(int(r["on_pareto_front"]) for r in rows) == doc["candidates_on_pareto_front"]
    assert json.loads((tmp_path / "best_policy.json").read_text())["selection"] == doc["selection"]
    from twin.maintain import print_summary

    print_summary(doc, tmp_path)
    out = capsys.readouterr().out
    assert "USD per year" in out and "Pareto front" in out and "95% confidence" in out
