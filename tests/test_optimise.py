"""The optimiser: `twin run` returns a configurable objective that an Optuna sweep minimises.

The worked example (configs/optimise/tools.yaml on configs/line/single_station.yaml) is an M/M/c
station: its mean cycle time is Erlang C's Wq + service, so the best tool count under a cost per
tool is known in closed form. The sweep must find it, starting from worse points, and every trial's
objective must agree with the formula.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from theory import mmc_wait, within
from twin.app import prepare
from twin.errors import ConfigError
from twin.objective import objective_section

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")

SERVICE, INTERARRIVAL, COST = 60.0, 25.0, 0.015  # minutes, minutes, days of cycle time per tool
TOOLS = range(3, 7)


def theory_objective(c: int) -> float:
    return (mmc_wait(c, 1.0 / INTERARRIVAL, SERVICE) + SERVICE) / 1440.0 + COST * c


def test_optuna_sweep_finds_the_erlang_c_optimum(tmp_path):
    best = min(TOOLS, key=theory_objective)
    assert best == 4 and min(theory_objective(c) for c in TOOLS if c != best) - theory_objective(best) > 0.005
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, "-m", "twin.cli", "run", "-m", "+optimise=tools", "line=single_station",
         f"line.tool_groups.M.tools=range({TOOLS.start},{TOOLS.stop})", f"+objective.cost.per_tool.M={COST}",
         "replicas=8", "horizon_days=30", "warmup_days=5", "backend=cpu", "hydra.sweeper.n_trials=8",
         f"hydra.sweep.dir={sweep}"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert result["best_params"]["line.tool_groups.M.tools"] == best, result
    trials = []
    for kpis_json in sweep.glob("*/kpis.json"):
        doc = yaml.safe_load(kpis_json.read_text())
        tools = len((kpis_json.parent / "tools.csv").read_text().strip().splitlines()) - 1  # the tools simulated
        trials.append((kpis_json.parent.name, tools, doc["objective"]))
    assert len(trials) == 8
    for _, tools, objective in trials:
        ct_theory = (mmc_wait(tools, 1.0 / INTERARRIVAL, SERVICE) + SERVICE) / 1440.0
        assert within(objective["kpi_mean"], objective["kpi_ci95"], ct_theory), (tools, objective, ct_theory)
        assert objective["value"] == pytest.approx(objective["kpi_mean"] + COST * tools)
    # it improved on worse points it tried: some trial was not the optimum and scored worse than the best
    assert any(tools != best and objective["value"] > result["best_value"] for _, tools, objective in trials)
    assert result["best_value"] == pytest.approx(min(o["value"] for _, _, o in trials))


def test_maximize_subtracts_the_tool_cost():
    spec = {"kpi": "x", "direction": "maximize", "tool_cost": 2.0}
    doc = objective_section(spec, {"x": [3.0, 5.0]})
    assert doc["kpi_mean"] == 4.0 and doc["value"] == 2.0
    doc = objective_section({**spec, "direction": "minimize"}, {"x": [3.0, 5.0]})
    assert doc["value"] == 6.0


def test_objective_tool_cost_uses_the_line_tool_counts():
    from twin.objective import check_objective

    compiled, _, _ = prepare({"line": "single_station"})
    spec = check_objective({"kpi": "product.p.cycle_time_days.mean", "cost": {"per_tool": {"M": 0.5}}}, compiled)
    assert spec == {"kpi": "product.p.cycle_time_days.mean", "direction": "minimize", "tool_cost": 1.5}


@pytest.mark.parametrize("objective, field", [
    ({"kpi": "product.nope.cycle_time_days.mean"}, "objective.kpi"),
    ({"kpi": "product.p.cycle_time_days.mean", "direction": "up"}, "objective.direction"),
    ({"kpi": "product.p.cycle_time_days.mean", "cost": {"per_tool": {"NOPE": 1.0}}}, "objective.cost.per_tool.NOPE"),
    ({"kpi": "product.p.cycle_time_days.mean", "cost": {"per_tool": {"M": "cheap"}}}, "objective.cost.per_tool.M"),
    ({"kpi": "product.p.cycle_time_days.mean", "weight": 2}, "objective.weight"),
])
def test_bad_objective_is_refused_before_compute(objective, field):
    with pytest.raises(ConfigError) as err:
        prepare({"line": "single_station", "objective": objective})
    assert str(err.value).startswith(field), str(err.value)
