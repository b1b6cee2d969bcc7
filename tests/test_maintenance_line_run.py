"""`twin maintain tool=line tool.run=RUN`: one tool's throughput from a `twin run` folder, and the round trip
study -> line on a tool whose life is known in closed form.

One tool, kept busy by CONWIP (utilisation 1), runs lots of W = 25 wafers in P = 10 minutes: 150 wafers per
processing hour. Its condition grows by exactly 0.025 per lot (no noise, exact sensor) and it wears out at
the fixed level 1.01, i.e. at the end of lot 41. Condition-based PM at a threshold in (0.975, 1.0] comes
after lot 40 and pre-empts every failure: availability 40 P / (40 P + PM) = 400 / 430, the best any
threshold can do (a lower one renews earlier, a higher one lets the tool fail first).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from twin import kpis
from twin.app import run_scenario
from twin.backend import resolve_backend
from twin.compile import compile_line
from twin.errors import ConfigError
from twin.line import parse_line
from twin.maintain import compose_config, line_maintenance, main, parse_tool, run_study
from twin.runner import run_line

P, W, PM, REPAIR = 10.0, 25, 30.0, 100.0
BEST_A = 40 * P / (40 * P + PM)
HORIZON, WARMUP = 60.0, 2.0  # days of the line runs
TINY = ["replicas=2", "horizon_years=0.02", "backend=cpu"]


def wearing_line(maintenance=None) -> dict:
    group = {"name": "T", "tools": 1,
             "condition": {"drift_per_wafer": 0.001, "failure_level": 1.01},
             "failures": {"ttf": {"dist": "exponential", "mean": 1e12}, "repair": {"dist": "constant", "value": REPAIR}},
             "maintenance": maintenance or {"policy": "condition", "threshold": 0.5, "duration": PM}}
    return {"name": "wear", "tool_groups": [group], "products": [{"name": "p", "route": [{"group": "T", "time": P}]}],
            "releases": [{"name": "p", "product": "p", "kind": "conwip", "wip_cap": 3, "lot_size": W, "due_days": 1000}]}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A `twin run` folder of the wearing line (PM at 0.5: 20 lots per life)."""
    root = tmp_path_factory.mktemp("line")
    (root / "wear.yaml").write_text(yaml.safe_dump(wearing_line()))
    cfg = {"line": str(root / "wear.yaml"), "replicas": 4, "horizon_days": 20.0, "warmup_days": 2.0, "seed": 2,
           "backend": "cpu", "snapshot_minutes": 0, "progress": False}
    run_scenario(cfg, root / "run")
    return root


def test_throughput_from_the_run_folder(run):
    """A saturated tool: utilisation = productive / availability = 1; wafers per processing hour = W 60 / P
    = 150, derived from the products' wafer throughput (CI) over the productive tool hours."""
    tool = parse_tool({"line": str(run / "wear.yaml"), "group": "T", "run": str(run / "run")})
    doc = json.loads((run / "run" / "kpis.json").read_text())
    thr = doc["products"]["p"]["throughput_wafers_per_day"]
    assert tool.utilisation == pytest.approx(1.0, abs=1e-9)
    rel = (thr["ci95"] + 3 * W / 18.0) / thr["mean"]  # CI, plus the <= wip_cap lots a window cuts
    assert tool.wafers_per_hour == pytest.approx(W * 60 / P, rel=rel)
    assert tool.step_wafers == W and tool.drift == 0.001 and tool.noise == 0.0
    assert tool.threshold.mean == 1.01 and tool.repair.mean == REPAIR / 60 and tool.pm_duration.mean == PM / 60
    given = parse_tool({"line": str(run / "wear.yaml"), "group": "T", "run": str(run / "run"), "utilisation": 0.5})
    assert given.utilisation == 0.5 and given.wafers_per_hour == tool.wafers_per_hour  # a given value wins


def test_round_trip_study_to_line_matches_renewal_reward(run):
    """The study (throughput from the run) picks the threshold that PMs after lot 40; its line_maintenance,
    pasted into the line, gives the line engine the same availability 400/430 (both within the bound of the
    one cycle a window can cut, since both are deterministic)."""
    cfg = compose_config(["tool=line", f"tool.line={run / 'wear.yaml'}", "tool.group=T", f"tool.run={run / 'run'}",
                          "policy=condition_based", "grid.threshold=0.5125:1.1125:25", "grid.smoothing=[1.0]",
                          "replicas=8", "backend=cpu"])
    doc = run_study(cfg, run / "study")
    rate = parse_tool(cfg["tool"]).wafers_per_hour  # from the run, within its CI of 150
    up = 40 * W / rate  # hours per life
    best = doc["line_maintenance"]
    assert best["maintenance"]["policy"] == "condition" and "note" not in best
    assert best["maintenance"]["threshold"] == pytest.approx(0.9875)
    assert best["maintenance"]["duration"] == {"dist": "constant", "value": pytest.approx(PM)}
    study = doc["kpis"]["availability"]
    assert abs(study["mean"] - up / (up + PM / 60)) <= study["ci95"] + 2 * PM / (8760 * 60), study

    line = parse_line(wearing_line(best["maintenance"]))
    result = run_line(compile_line(line), 4, HORIZON, WARMUP, 3, resolve_backend("cpu"), snapshot_minutes=0)
    rows = kpis.per_replication(result)
    line_a = kpis.summarize(rows["tool_group.T.availability"])
    edge = 2 * PM / ((HORIZON - WARMUP) * 1440)
    assert abs(line_a["mean"] - BEST_A) <= line_a["ci95"] + edge, line_a
    assert abs(line_a["mean"] - study["mean"]) <= line_a["ci95"] + study["ci95"] + edge + 2e-4, (line_a, study)
    assert np.all(rows["tool_group.T.failures_per_tool"] == 0)


def test_every_policy_translates_into_line_units():
    """Hours -> minutes; operating age T h -> T x 150 wafers (the study's own N = rate T equivalence);
    calendar age -> x utilisation; block -> a calendar pm; what the line cannot express is said."""
    tool = parse_tool({"line": "default", "group": "ETCH_OX", "wafers_per_hour": 150, "utilisation": 0.5,
                       "sensor": {"forget": 0.9}})
    pm = {"dist": "triangular", "low": 90.0, "mode": 150.0, "high": 240.0}
    cbm = line_maintenance("condition_based", {"threshold": 0.8, "smoothing": 0.3}, tool)
    assert cbm["maintenance"] == {"policy": "condition", "threshold": 0.8, "duration": pytest.approx(pm)}
    assert "smoothing 0.3" in cbm["note"]
    pdm = line_maintenance("predictive", {"lead": 2.5, "level": 1.1}, tool)["maintenance"]
    assert pdm["lead_minutes"] == 150.0 and pdm["target_level"] == 1.1 and pdm["min_readings"] == 3
    assert "forget 0.9" in line_maintenance("predictive", {"lead": 2.5, "level": 1.1}, tool)["note"]
    assert line_maintenance("time_based", {"T": 10.0}, tool)["pm"][0]["every_wafers"] == 1500.0
    assert line_maintenance("time_based", {"T": 10.0}, tool, "calendar")["pm"][0]["every_wafers"] == 750.0
    assert line_maintenance("time_based", {"T": 10.0}, tool, "block")["pm"][0]["every_minutes"] == 600.0
    assert line_maintenance("wafer_count", {"N": 3000.0}, tool)["pm"][0]["every_wafers"] == 3000.0
    assert line_maintenance("run_to_failure", {}, tool) == {"pm": [], "maintenance": None}


def test_a_group_without_pm_duration_must_be_given_one(tmp_path):
    data = wearing_line()
    del data["tool_groups"][0]["maintenance"]
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump(data))
    spec = {"line": str(tmp_path / "bare.yaml"), "group": "T", "wafers_per_hour": 150, "utilisation": 1.0}
    with pytest.raises(ConfigError, match="tool.pm_duration"):
        parse_tool(spec)
    assert parse_tool({**spec, "pm_duration": 0.5}).pm_duration.mean == 0.5


@pytest.mark.parametrize("args, field", [
    (["tool.line=nope"], "tool.line"),
    (["tool.group=NOPE"], "tool.group"),
    (["tool.group=CLEAN_WB"], "tool.group"),  # no condition drift
    (["tool.run=/nonexistent/run"], "tool.run"),
    (["tool.wafers_per_hour=-3", "tool.utilisation=0.5"], "tool.wafers_per_hour"),
    (["tool.wafers_per_hour=100"], "tool.utilisation"),
])
def test_bad_line_tool_is_one_line_and_exit_2(tmp_path, capsys, args, field):
    assert main(["tool=line", *args, *TINY, f"hydra.run.dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {field}:") and "\n" not in err and "Traceback" not in err, err
    assert not any(tmp_path.iterdir())


def test_a_run_of_another_line_is_refused(run, tmp_path, capsys):
    assert main(["tool=line", "tool.line=default", f"tool.run={run / 'run'}", *TINY, f"hydra.run.dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: tool.run:") and "line wear" in err and "\n" not in err, err


def test_sweep_over_policies_with_a_line_tool(run, tmp_path, capsys):
    args = ["-m", "tool=line", f"tool.line={run / 'wear.yaml'}", "tool.group=T", f"tool.run={run / 'run'}",
            "policy=condition_based,wafer_count", "grid.threshold=[0.9875]", "grid.smoothing=[1.0]",
            "grid.N=[1000]", *TINY, f"hydra.sweep.dir={tmp_path}"]
    assert main(args) == 2  # grid.N is not a condition_based parameter: every job is checked first
    assert capsys.readouterr().err.startswith("error: grid.N:") and not any(tmp_path.iterdir())
    assert main([a for a in args if not a.startswith("grid.")]) == 0
    out = capsys.readouterr().out
    assert out.count(", group T: ") == 2
    docs = [json.loads((j / "best_policy.json").read_text()) for j in sorted(tmp_path.iterdir()) if j.is_dir()]
    assert docs[0]["line_maintenance"]["maintenance"]["policy"] == "condition"
    assert docs[1]["line_maintenance"]["pm"][0]["every_wafers"] == docs[1]["parameters"]["N"]
