"""twin run and twin compare as a user meets them: Hydra's errors as one line, sweeps checked before
the first job computes, job folders named by the swept values, and the comparison table of a sweep."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY = """\
# Two stations; the second one is the bottleneck (4 tools, 80% busy), and it fails at random.
name: tiny
tool_groups:
  PREP: {area: A, tools: 2, dispatch: fifo}
  ETCH:
    area: B
    tools: 4
    failures:
      ttf: {dist: exponential, mean: 2000}
      repair: {dist: exponential, mean: 120}
products:
  p:
    route:
      - {group: PREP, time: {dist: exponential, mean: 20}, per: lot}
      - {group: ETCH, time: {dist: exponential, mean: 100}, per: lot}
releases:
  p: {product: p, kind: poisson, interval_minutes: 30, lot_size: 1, due_days: 10}
run_defaults: {horizon_days: 20, warmup_days: 4}
"""
QUICK = ["backend=cpu", "progress=false", "replicas=6", "snapshot_minutes=0"]


def twin(*args, cwd):
    import twin as package

    root = str(Path(package.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": root}
    return subprocess.run([sys.executable, "-m", "twin.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture()
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def _one_line_exit_2(proc, *words):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    message = proc.stderr.strip().splitlines()
    assert len(message) == 1 and message[0].startswith("error: "), proc.stderr
    for word in words:
        assert word in message[0], message[0]
    return message[0]


@pytest.mark.parametrize("args, words", [
    (["no_such_setting=1"], ["no_such_setting", "replicas"]),
    (["yield.defect_scal=2"], ["yield.defect_scal", "defect_scale"]),
    (["backend=foo"], ["backend", "foo", "cpu"]),
    (["line=nope"], ["line", "nope", "default_extra_scanner"]),
    (["replicas=["], ["replicas", "cannot parse"]),
    (["replicas=abc"], ["replicas", "abc", "integer"]),
    (["progress=maybe"], ["progress", "true or false"]),
    (["replicas=1,2"], ["replicas", "-m"]),
    (["line.tool_groups.NOPE.tools=3"], ["line.tool_groups.NOPE.tools", "CLEAN_WB"]),
    (["line.tool_groups.CLEAN_WB.tools=0"], ["line.tool_groups.CLEAN_WB.tools", "integer in 1.."]),
])
def test_every_error_is_one_line_and_exit_2(tmp_path, args, words):
    proc = twin("run", *args, "backend=cpu", f"hydra.run.dir={tmp_path / 'out'}", cwd=tmp_path)
    _one_line_exit_2(proc, *words)
    assert not (tmp_path / "out").exists()


def test_a_sweep_is_refused_before_its_first_job_computes(tmp_path, tiny):
    sweep = tmp_path / "sweep"
    proc = twin("run", "-m", f"line={tiny}", "dispatch=fifo,foo", *QUICK, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    message = _one_line_exit_2(proc, "job 1", "dispatch=foo", "allowed")
    assert not sweep.exists(), message


def test_a_sweep_names_its_folders_by_the_swept_values_and_compare_pairs_them(tmp_path, tiny):
    sweep = tmp_path / "sweep"
    proc = twin("run", "-m", f"line={tiny}", "line.tool_groups.ETCH.tools=4,5", *QUICK, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert names == ["+line.tool_groups.ETCH.tools=4", "+line.tool_groups.ETCH.tools=5"]

    proc = twin("compare", str(sweep), "--kpi", "product.p.*", "--kpi", "tool_group.ETCH.utilisation", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "product.p.cycle_time_days.mean" in proc.stdout and "tool_group.ETCH.utilisation" in proc.stdout
    with open(sweep / "compare.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    header = json.loads((sweep / names[0] / "kpis.json").read_text())
    assert header["meta"]["replications"] == 6
    by_kpi = {r["kpi"]: r for r in rows}
    assert {r["scenario"] for r in rows} == {names[1]} and {r["baseline"] for r in rows} == {names[0]}
    util = by_kpi["tool_group.ETCH.utilisation"]
    assert int(util["n_pairs"]) == 6
    # a fifth tool spreads the same work over more tools: utilisation falls by about 1/5
    assert float(util["paired_high"]) < 0 and float(util["independent_high"]) < 0
    for r in rows:
        if r["paired_ci95"]:
            assert float(r["paired_low"]) <= float(r["difference"]) <= float(r["paired_high"])
    assert (sweep / "compare.png").stat().st_size > 1000
    assert not list(sweep.glob(".compare*"))  # no temporary file left behind


def test_compare_refuses_a_folder_without_runs(tmp_path):
    _one_line_exit_2(twin("compare", str(tmp_path), cwd=tmp_path), "compare", "run folder")
