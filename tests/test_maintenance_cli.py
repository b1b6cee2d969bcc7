"""``twin maintain``: every config composes, the run folder holds its three outputs, bad input exits 2."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from twin.errors import ConfigError
from twin.maintain import compose_config, group_options, load_study, main, run_study

TINY = ["replicas=2", "horizon_years=0.02", "backend=cpu", "samples=8"]


@pytest.mark.parametrize("tool", group_options("tool"))
@pytest.mark.parametrize("policy", group_options("policy"))
def test_every_tool_and_policy_composes_and_validates(tool, policy):
    throughput = ["tool.wafers_per_hour=25", "tool.utilisation=0.5"] if tool == "line" else []  # else from a run
    cfg = compose_config([f"tool={tool}", f"policy={policy}", *throughput, *TINY])
    needs_signal = policy in ("condition_based", "predictive")
    condition = cfg["tool"].get("condition") or {"drift": 1.0}  # tool=line: a degrading line group
    degrades = bool(condition["drift"] or condition.get("noise"))
    if needs_signal and not degrades:
        with pytest.raises(ConfigError, match="does not degrade"):
            load_study(cfg)
        return
    study = load_study(cfg)
    assert len(study.candidates) >= 1
    assert study.candidates.labels[0] == "run_to_failure"


@pytest.mark.parametrize("search", ["grid", "random"])
def test_study_writes_policies_best_and_tradeoff(tmp_path, search):
    cfg = compose_config(["policy=time_based", "grid.T=[100, 300, 600]", f"search={search}", "objective=cost", *TINY])
    doc = run_study(cfg, tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "policies.csv")))
    n = 4 if search == "grid" else 9  # baseline + 3 grid points, or baseline + 8 draws from the list
    assert len(rows) == n and rows[0]["policy"] == "run_to_failure"
    assert {"availability", "availability_ci95", "good_dies_per_year", "cost_per_year_ci95", "failures_per_year",
            "warning_precision", "warning_recall", "median_lead_hours", "rank", "gap_to_best"} <= set(rows[0])
    best = json.loads((tmp_path / "best_policy.json").read_text())
    assert best == json.loads(json.dumps(doc, default=str))
    ranked = min(rows, key=lambda r: int(r["rank"]))
    assert float(ranked["cost_per_year"]) == pytest.approx(best["kpis"]["cost_per_year"]["mean"], rel=1e-5)
    assert set(best["kpis"]) >= {"availability", "good_dies_per_year", "cost_per_year", "failures_per_year"}
    assert best["objective"] == "cost" and best["meta"]["backend"] == "cpu"
    assert (tmp_path / "tradeoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_run_and_sweep(tmp_path, capsys):
    assert main(["policy=wafer_count", "grid.N=[2000,4000]", *TINY, f"hydra.run.dir={tmp_path / 'run'}"]) == 0
    assert "best for availability" in capsys.readouterr().out
    assert {p.name for p in (tmp_path / "run").iterdir()} >= {"policies.csv", "best_policy.json", "tradeoff.png"}
    assert main(["-m", "policy=run_to_failure,predictive", *TINY, f"hydra.sweep.dir={tmp_path / 'sweep'}"]) == 0
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    docs = [json.loads((j / "best_policy.json").read_text()) for j in jobs]
    assert [d["meta"]["config"]["policy"]["name"] for d in docs] == ["run_to_failure", "predictive"]
    assert docs[0]["candidates"] == 1 and docs[1]["candidates"] == 1 + 31 * 3


@pytest.mark.parametrize("args, field", [
    (["objective=speed"], "objective"),
    (["policy=nope"], "policy"),
    (["tool=nope"], "tool"),
    (["grid.Q=3"], "grid.Q"),
    (["policy=time_based", "grid.T=[0, 10]"], "grid.T"),
    (["grid.threshold=1:2"], "grid.threshold"),
    (["policy=time_based,wafer_count"], "policy"),
    (["tool=weibull_renewal"], "policy"),
    (["tool.repair.dist=gamma"], "tool.repair.dist"),
    (["replicas=1"], "replicas"),
    (["+colour=red"], "colour"),
    (["grid.threshold=[0.5"], "grid.threshold"),
])
def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys, args, field):
    assert main([*args, f"hydra.run.dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {field}:") and "\n" not in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing computed, nothing written


def test_import_stays_light():
    """``import twin.maintain`` loads neither matplotlib nor the CUDA target."""
    code = ("import sys, twin.maintain; bad = [m for m in ('matplotlib', 'numba.cuda', 'cupy') if m in sys.modules];"
            "print(bad); sys.exit(bool(bad))")
    root = str(Path(__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": root}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
