"""The device check's CPU-side pieces and its whole flow under numba's CUDA simulator.

``python -m benchmarks.gpu_check --dry-run`` runs every step (preflight, CPU against CUDA on the small
line, SMT2020 HVLM when the data is here, timing, the all-cores CPU rate, the JSON) on tiny counts,
in a subprocess (the simulator must be on before numba is imported) that cannot import hydra,
omegaconf, pyvista or yaml, as on the device machine.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import gpu_check as G  # noqa: E402

SMT2020 = ROOT.parent / "shared" / "data" / "smt2020"
if not (SMT2020 / "HVLM").is_dir():
    SMT2020 = Path("/work/shared/data/smt2020")

# Run the check with the packages the device machine lacks made unimportable.
DRY_RUN = textwrap.dedent("""
    import sys
    for name in ("hydra", "omegaconf", "pyvista", "yaml"):
        sys.modules[name] = None
    from benchmarks.gpu_check import main
    sys.exit(main(sys.argv[1:]))
""")


def test_dry_run_under_the_simulator_runs_every_step_and_writes_the_json(tmp_path):
    pytest.importorskip("numba.cuda")
    args = ["--dry-run", "--out", str(tmp_path)]
    if (SMT2020 / "HVLM").is_dir():
        args += ["--smt2020-dir", str(SMT2020)]
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", DRY_RUN, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    (path,) = tmp_path.glob("*_gpucheck_*.json")
    doc = json.loads(path.read_text())
    steps = doc["steps"]
    assert doc["dry_run"] and "simulator" in doc["device"] and "simulator" in path.name
    assert steps["preflight"]["trivial_kernel_ok"] and steps["preflight"]["simulator"]
    # each launcher compiled in a background process of its own, and every one ended before the timing
    precompile = steps["precompile"]
    assert set(precompile) == {"cpu", "cuda_thread", "cuda_warp", "cuda_wave", "cuda_persistent"}, precompile
    assert all(p["ok"] and p["wall_s"] > 0 for p in precompile.values()), precompile
    timing_began = min(steps[f"cuda_rate_{n}"]["started_after_s"] for n in G.DRY["counts"])
    assert all(p["ended_after_s"] <= timing_began for p in precompile.values()), (precompile, timing_began)
    small = steps["small_line"]
    assert small["ok"] and small["events_equal"] and small["events_cpu"] > 0 and small["kpis_compared"] > 10
    assert small["max_rel_diff_per_replication"] == 0.0  # the simulator runs the CPU's arithmetic
    slots = small["lot_slots"]  # the CUDA run's lot table grew (on a GPU, on the device) to the same run
    assert slots["cuda_start"] == 1 < slots["cuda_end"], slots
    if (SMT2020 / "HVLM").is_dir():
        assert steps["hvlm"]["ok"] and steps["hvlm"]["events_equal"] and steps["hvlm"]["events_cpu"] > 1000
    for n in G.DRY["counts"]:
        assert steps[f"cuda_rate_{n}"]["replicas"] == n and "replication_days_per_s" in steps[f"cuda_rate_{n}"]
    assert steps["cpu_rate"]["threads"] >= 1 and steps["cpu_rate"]["replicas"] >= 2
    warp = steps["small_line_warp"]
    assert warp["ok"] and warp["events_equal"] and warp["lanes"] == G.DRY["lanes"]
    assert warp["max_rel_diff_per_replication"] == 0.0
    assert steps[f"cuda_warp_rate_{G.DRY['warp_counts'][0]}"]["replicas"] == G.DRY["warp_counts"][0]
    wave = steps["small_line_wave"]  # the wavefront grew its table too, to the CPU's run
    assert wave["ok"] and wave["events_equal"] and wave["wavefront"] and wave["max_rel_diff_per_replication"] == 0.0
    assert wave["lot_slots"]["cuda_start"] == 1 < wave["lot_slots"]["cuda_end"], wave["lot_slots"]
    persistent = steps["small_line_persistent"]  # persistent warps grew their table too
    assert persistent["ok"] and persistent["events_equal"] and persistent["persistent"]
    assert persistent["max_rel_diff_per_replication"] == 0.0
    assert persistent["lot_slots"]["cuda_start"] == 1 < persistent["lot_slots"]["cuda_end"], persistent["lot_slots"]
    # the launchers' checks and the driver's registers come before any timing, which the guard may cut
    first_rate = steps[f"cuda_rate_{G.DRY['counts'][0]}"]["started_after_s"]
    checks = ("small_line", "small_line_warp", "small_line_wave", "small_line_persistent", "kernel_resources")
    ended = {k: steps[k]["started_after_s"] + steps[k]["seconds"] for k in checks}
    assert all(t <= first_rate + 0.02 for t in ended.values()), (ended, first_rate)  # 0.02: both are rounded
    # tiny windows may be too short to time: then the rate is None with a note, never a made-up number
    for name in ("cpu_rate", *(f"cuda_rate_{n}" for n in G.DRY["counts"]),
                 *(f"cuda_warp_rate_{n}" for n in G.DRY["warp_counts"]),
                 *(f"cuda_wave_rate_{n}" for n in G.DRY["counts"]),
                 *(f"cuda_persistent_rate_{n}" for n in G.DRY["counts"])):
        rate = steps[name]["replication_days_per_s"]
        assert (rate is not None and rate > 0) or "too short" in steps[name]["note"], steps[name]


def test_budget_guard_skips_a_step_that_does_not_fit():
    steps, ran = {}, []
    G._step(steps, "long", G.Budget(5.0), 60.0, lambda: ran.append(1) or {"ok": True})
    G._step(steps, "short", G.Budget(5.0), 1.0, lambda: ran.append(2) or {"ok": True})
    assert "time guard" in steps["long"]["skipped"] and ran == [2] and steps["short"]["ok"]


def test_a_failing_step_is_recorded_and_the_next_one_still_runs():
    steps = {}
    G._step(steps, "bad", G.Budget(60.0), 0.0, lambda: 1 / 0)
    G._step(steps, "good", G.Budget(60.0), 0.0, lambda: {"ok": True})
    assert steps["bad"]["ok"] is False and "ZeroDivisionError" in steps["bad"]["error"] and steps["good"]["ok"]


def test_kpi_comparison_flags_a_shifted_mean_and_accepts_noise():
    """Two samples of one law agree within the CI of their difference; a shift of 10 standard errors does not."""
    import numpy as np

    rng = np.random.default_rng(1)
    same = G._means_outside_ci({"k": rng.normal(5, 1, 400)}, {"k": rng.normal(5, 1, 400)})
    shifted = G._means_outside_ci({"k": rng.normal(5.7, 1, 400)}, {"k": rng.normal(5, 1, 400)})
    assert same == [] and shifted == ["k"]


def test_result_file_is_named_by_time_and_device_and_written_whole(tmp_path):
    path = G.write_result({"started_utc": "20260101T000000Z", "device": "NVIDIA H200", "steps": {}}, tmp_path)
    assert path.name == "20260101T000000Z_gpucheck_nvidia-h200.json"
    assert json.loads(path.read_text())["device"] == "NVIDIA H200" and not list(tmp_path.glob("*.tmp"))


def test_small_line_is_built_without_yaml():
    c = G.small_line()
    assert c.n_tools == 5 and len(c.group_names) == 2


def test_bad_budget_is_one_line_and_exit_2(capsys):
    assert G.main(["--budget-s", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--budget-s" in err[0]


def test_kernel_resources_count_warps_per_sm_as_the_hardware_allocates_registers():
    """sm_90: 65,536 registers per SM, allocated per warp in units of 256, at most 64 warps (CUDA occupancy
    calculator): 110 registers -> 3,584 per warp -> 18 warps; 132 -> 4,352 -> 15; 255 -> 8,192 -> 8."""
    from types import SimpleNamespace

    def kernel(registers):
        return SimpleNamespace(overloads={"sig": SimpleNamespace(regs_per_thread=registers, local_mem_per_thread=0)})

    found = G.compiled_resources({"a": kernel(110), "b": kernel(132), "c": kernel(255), "d": kernel(16)})
    assert {name: row["warps_per_sm_by_registers"] for name, row in found.items()} == {"a": 18, "b": 15, "c": 8, "d": 64}


def test_a_background_compile_that_fails_or_outlives_the_check_is_recorded_not_fatal():
    pre = G.Precompiles(lanes=2)
    spawn = lambda code: subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,  # noqa: E731
                                          stderr=subprocess.PIPE, text=True)
    pre.procs = {"broken": spawn("import sys; sys.exit('no device')"), "slow": spawn("import time; time.sleep(60)"),
                 "garbled": spawn("print('a warning, not the report')")}
    pre.wait("broken", "garbled")
    assert pre.report["broken"]["ok"] is False and pre.report["broken"]["returncode"] == 1
    assert "no device" in pre.report["broken"]["error"]
    assert pre.report["garbled"]["ok"] is False and "a warning" in pre.report["garbled"]["error"]
    pre.stop()  # the check ended first: the slow one is killed, not waited for
    assert pre.report["slow"] == {"ok": False, "error": "stopped: the check ended first"} and not pre.procs


def test_an_exclusive_or_unknown_compute_mode_keeps_the_cuda_compiles_in_this_process(monkeypatch):
    monkeypatch.setattr(G, "_compute_mode", lambda: "Exclusive_Process")
    pre = G.Precompiles(lanes=32)
    pre.start(simulator=False)
    try:
        assert set(pre.procs) == {"cpu"}  # only the CPU engine compiles beside this process
        assert "Exclusive_Process" in pre.report["cuda_warp"]["skipped"]
    finally:
        pre.stop()
