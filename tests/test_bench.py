"""``twin bench`` plumbing: the result file's schema, the plot, the regression check, bad input.

No timing is asserted: speed belongs in the benchmark results, not in tests.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

import twin
from twin import bench
from twin.cli import main as cli_main
from twin.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _compare():
    spec = importlib.util.spec_from_file_location("bench_compare", ROOT / "benchmarks" / "compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_schema(doc: dict) -> None:
    assert doc["schema"] == "fabtwin-bench/1"
    assert doc["created"].endswith("Z")
    m = doc["machine"]
    for key in ("cpu_model", "cpu_cores", "numba_threads", "gpu", "os", "machine_hash"):
        assert key in m, key
    assert isinstance(m["cpu_cores"], int) and m["cpu_cores"] >= 1
    assert m["gpu"] is None or {"name", "driver"} <= set(m["gpu"])
    for key in ("python", "numpy", "numba", "git_commit"):
        assert key in doc["software"], key
    for section, rows in doc["sections"].items():
        assert doc["section_runs"][section]["seconds"] >= 0
        for row in rows:
            assert "benchmark" in row and ("note" in row or "error" in row or any("second" in k for k in row)), row


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    code = bench.main(["--quick", "--only", "engine,simpy", "--sizes", "1,2", "--repeats", "1", "--out", str(out)])
    files = sorted(out.glob("*.json"))
    return code, out, files


def test_quick_run_writes_one_result_file_and_a_plot(quick_run):
    code, out, files = quick_run
    assert code == 0
    assert len(files) == 1
    stem = files[0].stem
    assert stem.split("_")[-1] == json.loads(files[0].read_text())["machine"]["machine_hash"]
    assert (out / f"{stem}.png").stat().st_size > 10_000


def test_quick_run_rows_follow_the_schema(quick_run):
    doc = json.loads(quick_run[2][0].read_text())
    check_schema(doc)
    engine = [r for r in doc["sections"]["engine"] if r["benchmark"] == "engine" and "events_per_s" in r]
    assert {(r["threads"], r["replicas"]) for r in engine if r["threads"] == 1} == {(1, 1), (1, 2)}
    for r in engine:
        assert r["seconds_min"] <= r["seconds_median"] <= r["seconds_max"]
        assert r["events_per_s"] > 0 and r["replication_days_per_s"] > 0
        assert r["events_per_s_per_core"] == pytest.approx(r["events_per_s"] / r["threads"])
    jit = [r for r in doc["sections"]["engine"] if r["benchmark"] == "engine_jit"]
    assert jit and all(r["numba_cache"] in ("hit", "miss") for r in jit)
    assert all(0 < r["lot_slots"] <= r["lot_capacity"] and r["state_bytes_per_replication"] > 0 for r in jit)
    if doc["machine"]["gpu"] is None:
        cuda = [r for r in doc["sections"]["engine"] if r.get("backend") == "cuda"]
        assert cuda and all(r["note"] == "not measured: no GPU available" for r in cuda)
    simpy = doc["summary"]["simpy"]
    assert simpy["replication_days_per_s"] > 0 and simpy["twin_cpu_1_thread_speedup"] > 0
    assert doc["comparison"]["previous"] is None


def synthetic(created: str, rate: float, cpu="Test CPU", cores=2, gpu=None) -> dict:
    row = {"benchmark": "engine", "key": "engine/default/cpu/t1/r8/h20/w5", "events_per_s": rate, "seconds_median": 1.0}
    foreign = {"benchmark": "yield_mc_random", "backend": "cpu", "threads": 2, "wafers": 1000, "AD": 0.5,
               "die_evals_per_s": 1e7, "seconds_median": 1.0, "device": "x"}
    return {"schema": "fabtwin-bench/1", "created": created, "quick": True,
            "machine": {"cpu_model": cpu, "cpu_cores": cores, "gpu": {"name": gpu, "driver": "1"} if gpu else None},
            "sections": {"engine": [row], "yield": [foreign]}}


def test_regression_beyond_threshold_is_flagged_and_noise_is_not():
    compare = _compare()
    old = synthetic("2026-01-01T00:00:00Z", 1.0e6)
    slow = compare.compare(synthetic("2026-01-02T00:00:00Z", 0.80e6), old, threshold=0.15)
    assert slow["comparable"] and slow["compared"] == 2
    assert [r["key"] for r in slow["regressions"]] == ["engine:engine/default/cpu/t1/r8/h20/w5"]
    assert slow["regressions"][0]["change"] == pytest.approx(-0.20)
    noisy = compare.compare(synthetic("2026-01-02T00:00:00Z", 0.90e6), old, threshold=0.15)
    assert noisy["regressions"] == [] and noisy["improvements"] == []
    faster = compare.compare(synthetic("2026-01-02T00:00:00Z", 1.5e6), old, threshold=0.15)
    assert len(faster["improvements"]) == 1 and faster["regressions"] == []
    assert "REGRESSION" in compare.format_report(slow, "old.json")


def test_other_machines_are_never_compared():
    compare = _compare()
    old = synthetic("2026-01-01T00:00:00Z", 1.0e6)
    for other in (synthetic("2026-01-02T00:00:00Z", 0.5e6, cpu="Other CPU"),
                  synthetic("2026-01-02T00:00:00Z", 0.5e6, cores=16),
                  synthetic("2026-01-02T00:00:00Z", 0.5e6, gpu="NVIDIA H100")):
        report = compare.compare(other, old)
        assert not report["comparable"] and report["regressions"] == []


def test_previous_is_the_latest_earlier_file_of_the_same_machine(tmp_path):
    compare = _compare()
    docs = {"a.json": synthetic("2026-01-01T00:00:00Z", 1e6), "b.json": synthetic("2026-01-03T00:00:00Z", 1e6),
            "c.json": synthetic("2026-01-04T00:00:00Z", 1e6, cpu="Other CPU"),
            "d.json": synthetic("2026-01-09T00:00:00Z", 1e6)}  # later than the new run
    for name, doc in docs.items():
        (tmp_path / name).write_text(json.dumps(doc))
    (tmp_path / "bench_yield.json").write_text(json.dumps([{"benchmark": "yield"}]))  # not a result file
    (tmp_path / "broken.json").write_text("{")
    new = synthetic("2026-01-05T00:00:00Z", 1e6)
    path, doc = compare.previous(tmp_path, new)
    assert path.name == "b.json" and doc["created"] == "2026-01-03T00:00:00Z"
    assert compare.previous(tmp_path, synthetic("2026-01-05T00:00:00Z", 1e6, cores=64)) is None


def test_rows_without_a_key_pair_up_by_their_workload_fields():
    compare = _compare()
    a = synthetic("2026-01-01T00:00:00Z", 1e6)
    b = copy.deepcopy(a)
    b["sections"]["yield"][0].update(die_evals_per_s=5e6, device="y", seconds_median=2.0)
    c = copy.deepcopy(a)
    c["sections"]["yield"][0]["wafers"] = 2000  # another workload: not comparable
    assert [r["key"] for r in compare.compare(b, a)["regressions"]][0].startswith("yield:")
    assert compare.compare(c, a)["compared"] == 1


def test_second_run_compares_with_the_first(tmp_path):
    args = ["--quick", "--only", "simpy", "--out", str(tmp_path), "--no-plot"]
    assert bench.main(args) == 0
    first = sorted(tmp_path.glob("*.json"))[0]
    doc = json.loads(first.read_text())
    doc["created"] = "2000-01-01T00:00:00Z"  # keep the second run's file name distinct from the first
    first.write_text(json.dumps(doc))
    assert bench.main(args) == 0
    latest = max(tmp_path.glob("*.json"), key=lambda p: json.loads(p.read_text())["created"])
    comparison = json.loads(latest.read_text())["comparison"]
    assert comparison["previous"] == first.name and comparison["compared"] == 1


@pytest.mark.parametrize("argv, field", [
    (["--only", "engine,gpu"], "bench.only"),
    (["--sizes", "1,0"], "bench.sizes"),
    (["--sizes", "a"], "bench.sizes"),
    (["--repeats", "0"], "bench.repeats"),
    (["--threshold", "2"], "bench.threshold"),
    (["--frobnicate"], "bench"),
])
def test_bad_arguments_stop_before_any_compute(argv, field, capsys):
    with pytest.raises(ConfigError) as err:
        bench.parse_args(argv)
    assert err.value.field == field
    assert cli_main(["bench", *argv]) == 2
    assert "error:" in capsys.readouterr().err


def test_missing_benchmarks_folder_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(twin, "__file__", str(tmp_path / "site" / "twin" / "__init__.py"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="FabTwin checkout"):
        bench.locate_benchmarks()
    (tmp_path / "benchmarks").mkdir()
    shutil.copy(ROOT / "benchmarks" / "bench_engine.py", tmp_path / "benchmarks")
    assert bench.locate_benchmarks() == tmp_path / "benchmarks"


def test_absent_section_module_is_recorded_not_fatal(tmp_path):
    rows = bench.run_section(tmp_path, "yield", None)
    assert rows == [{"benchmark": "yield", "note": "skipped: benchmarks/bench_yield.py is not present"}]
    (tmp_path / "bench_maintenance.py").write_text("def run(quick):\n    raise RuntimeError('broken')\n")
    rows = bench.run_section(tmp_path, "maintenance", type("A", (), {"quick": True})())
    assert rows == [{"benchmark": "maintenance", "error": "RuntimeError: broken"}]
