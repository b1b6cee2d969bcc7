"""`twin maintain tool=line`: a line's tool group as the study's tool, and the best policy back into the line."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml

from twin import kpis
from twin.backend import resolve_backend
from twin.compile import compile_line
from twin.line import parse_line
from twin.maintain import compose_config, parse_tool, run_study
from twin.runner import run_line

P, W = 10.0, 25  # minutes per lot of 25 wafers on one tool: 150 wafers per processing hour


def wearing_line(maintenance=None) -> dict:
    """One tool kept busy by CONWIP; condition +0.025 (sd 0.02) per job, wear-out at a U(1, 2) level, 100-min repairs."""
    group = {"name": "T", "tools": 1,
             "condition": {"drift_per_wafer": 0.001, "noise_per_wafer": 0.004, "failure_level": {"dist": "uniform", "low": 1.0, "high": 2.0}},
             "failures": {"ttf": {"dist": "exponential", "mean": 1e12}, "repair": {"dist": "constant", "value": 100}},
             "maintenance": maintenance or {"policy": "condition", "threshold": 0.5, "duration": 30}}
    return {"name": "wear", "tool_groups": [group], "products": [{"name": "p", "route": [{"group": "T", "time": P}]}],
            "releases": [{"name": "p", "product": "p", "kind": "conwip", "wip_cap": 3, "lot_size": W, "due_days": 1000}]}


def test_the_tool_is_the_line_group_in_hours():
    """Default line, ETCH_OX: repair lognormal 240/120 min -> 4/2 h; calendar life Exp(10080 min) at
    utilisation 0.5 -> Exp(84 h) of processing; PM triangular 90/150/240 min -> 1.5/2.5/4 h."""
    tool = parse_tool({"line": "default", "group": "ETCH_OX", "wafers_per_hour": 25, "utilisation": 0.5})
    assert tool.repair.kind == "lognormal" and np.allclose(tool.repair.params, (4.0, 2.0))
    assert tool.life.kind == "exponential" and np.isclose(tool.life.mean, 84.0)
    assert tool.pm_duration.kind == "triangular" and np.allclose(tool.pm_duration.params, (1.5, 2.5, 4.0))
    assert tool.threshold.kind == "uniform" and np.allclose(tool.threshold.params, (1.2, 2.0))
    assert tool.drift == 2.5e-4 and tool.step_wafers == 25 and tool.sensor_noise == 0.05


def test_best_policy_goes_back_into_the_line_and_the_line_agrees(tmp_path):
    """The study picks a threshold on this tool; put its `line_maintenance` into the line and run the
    line engine: both are renewal-reward of the same life, so their availabilities agree within CIs."""
    path = tmp_path / "wear.yaml"
    path.write_text(yaml.safe_dump(wearing_line()))
    cfg = compose_config(["tool=line", f"tool.line={path}", "tool.group=T", "tool.wafers_per_hour=150",
                          "tool.utilisation=1.0", "policy=condition_based", "grid.threshold=0.33:1.33:11",
                          "grid.smoothing=[1.0]", "replicas=16", "backend=cpu"])
    doc = run_study(cfg, tmp_path / "study")
    best = doc["line_maintenance"]
    assert best["group"] == "T" and best["maintenance"]["policy"] == "condition"
    assert 0.9 < best["maintenance"]["threshold"] < 1.3  # PM late enough to matter, early enough to beat wear-out
    study_a = doc["kpis"]["availability"]

    line = parse_line(wearing_line(best["maintenance"]))
    result = run_line(compile_line(line), 16, 90.0, 10.0, 5, resolve_backend("cpu"), snapshot_minutes=0)
    line_a = kpis.summarize(kpis.per_replication(result)["tool_group.T.availability"])
    # a window cuts at most one life at each end; a life is at most 53 jobs (c = 1.33) plus a repair
    edge = 2.0 * (53 * P + 100.0) / (80.0 * 1440.0)
    gap = abs(line_a["mean"] - study_a["mean"])
    assert gap <= 2.0 * np.hypot(line_a["ci95"], study_a["ci95"]) + edge, (line_a, study_a)


@pytest.mark.parametrize("override, field", [
    ("tool.group=NOPE", "tool.group"),
    ("tool.group=CLEAN_WB", "tool.group"),  # its condition does not degrade
    ("tool.wafers_per_hour=25", "tool.utilisation"),  # no run folder to take it from
])
def test_bad_line_tool_exits_2_with_one_line(override, field):
    proc = subprocess.run([sys.executable, "-m", "twin.cli", "maintain", "tool=line", override],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert field in proc.stderr and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
