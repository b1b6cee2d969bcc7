"""A new user's first hour: the base install runs every command or names the extra it needs first,
data is found from anywhere or the message says how to point to it, and ``twin run --help`` is short.

The base install is simulated by blocking the optional packages in a subprocess (a meta-path finder
that refuses them), so these tests run in the full test environment.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import twin as package
from twin import bench, data

ROOT = Path(package.__file__).resolve().parents[1]
TINY_STUDY = ["policy=time_based", "grid.T=[100,300]", "replicas=2", "horizon_years=0.02", "backend=cpu"]

BLOCKED_RUN = """
import sys
BLOCK = set(sys.argv[1].split(","))

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCK:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Block())
from twin.cli import main
sys.exit(main(sys.argv[2:]))
"""


def twin_without(blocked, *args, cwd, env=None):
    """``twin ARGS`` with the packages ``blocked`` missing, stdout and stderr merged in order."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-c", BLOCKED_RUN, ",".join(blocked) or "-", *args], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)


def test_maintain_without_matplotlib_says_so_first_and_still_runs(tmp_path):
    out = tmp_path / "study"
    proc = twin_without(["matplotlib"], "maintain", *TINY_STUDY, f"hydra.run.dir={out}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    text = proc.stdout
    note = text.index('tradeoff.png will be skipped: it needs matplotlib (pip install "fabtwin[plot]")')
    assert note < text.index("best for availability")  # said before the study computed
    assert (out / "best_policy.json").is_file() and (out / "policies.csv").is_file()
    assert not (out / "tradeoff.png").exists() and "Traceback" not in text


def test_bench_names_its_extra_before_any_work(tmp_path):
    proc = twin_without(["simpy", "matplotlib"], "bench", "--only", "simpy", "--out", str(tmp_path), cwd=ROOT)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stdout
    assert 'pip install "fabtwin[bench]"' in lines[0] and "[bench] simpy" not in proc.stdout
    assert not any(tmp_path.iterdir())  # nothing was run or written


def test_default_bench_drops_what_it_cannot_run_and_says_so(monkeypatch, capsys):
    monkeypatch.setattr(bench, "has_module", lambda name: name not in ("simpy", "matplotlib"))
    args = bench.parse_args(["--quick"])
    bench.check_extras(args, ["--quick"])
    assert "simpy" not in args.only and "engine" in args.only and args.no_plot
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all('pip install "fabtwin[bench]"' in line for line in err)


def test_render_without_pyvista_names_the_view_extra(tmp_path):
    from test_view_fixture import write_run

    folder = write_run(tmp_path / "run")
    proc = twin_without(["pyvista", "vtk", "vtkmodules"], "render", str(folder), cwd=tmp_path)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 2 and "fabtwin[view]" in lines[-1] and "Traceback" not in proc.stdout
    assert not (folder / "render").exists()


def test_run_needs_no_optional_package(tmp_path):
    """twin run on the base install: no matplotlib, PyVista, SimPy, SciPy, CuPy or numba-cuda."""
    out = tmp_path / "run"
    proc = twin_without(["matplotlib", "pyvista", "simpy", "scipy", "cupy", "imageio"], "run", "replicas=2",
                        "horizon_days=4", "warmup_days=1", "backend=cpu", "progress=false",
                        f"hydra.run.dir={out}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert (out / "kpis.json").is_file() and "Traceback" not in proc.stdout


def test_help_is_short_and_points_to_the_docs(tmp_path):
    proc = twin_without([], "run", "--help", cwd=tmp_path)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and 8 < len(lines) <= 40, len(lines)
    text = proc.stdout
    assert "docs/" in text and "line=" in text and "FABTWIN_DATA" in text and "smt2020_hvlm" in text
    proc = twin_without([], "maintain", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and len(proc.stdout.strip().splitlines()) <= 40 and "docs/maintenance.md" in proc.stdout


# ----------------------------------------------------------------------------- data from anywhere


def smt2020_or_skip():
    found = data.find("smt2020", "HVLM/tool.txt.1l")
    if found.path is None:
        pytest.skip("SMT2020 data not found beside the checkout")
    return found.path


def test_fabtwin_data_points_at_the_data(tmp_path, monkeypatch):
    from twin.smt2020 import resolve_data_dir

    real = smt2020_or_skip()
    (tmp_path / "smt2020").symlink_to(real)
    monkeypatch.delenv("FABTWIN_SMT2020_DIR", raising=False)
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert resolve_data_dir(None, "HVLM") == tmp_path / "smt2020" / "HVLM"
    assert resolve_data_dir(str(real), "LVHM") == real / "LVHM"  # the config key wins


def test_outside_the_checkout_the_message_says_how_to_point(tmp_path):
    """From a folder with no data above it, with an empty FABTWIN_DATA: one line, before any compute."""
    proc = twin_without([], "run", "line=smt2020_hvlm", "backend=cpu", f"hydra.run.dir={tmp_path / 'run'}",
                        cwd=tmp_path, env={data.DATA_ENV: str(tmp_path), "FABTWIN_SMT2020_DIR": ""})
    lines = [t for t in proc.stdout.strip().splitlines() if t.strip()]
    assert proc.returncode == 2, proc.stdout
    assert len(lines) == 1 and "FABTWIN_DATA=" in lines[0] and "line.data_dir=" in lines[0]
    assert str(tmp_path / "smt2020" / "HVLM") in lines[0]


def test_outside_the_checkout_fabtwin_data_finds_it(tmp_path):
    """From a folder far from the checkout, FABTWIN_DATA alone finds the SMT2020 tables."""
    real = smt2020_or_skip()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "smt2020").symlink_to(real)
    code = ("import os; from twin.line import load_line; line = load_line('smt2020_hvlm'); "
            "print(len(line.tool_groups), os.getcwd())")
    env = {**os.environ, "PYTHONPATH": str(ROOT), data.DATA_ENV: str(tmp_path / "data"), "FABTWIN_SMT2020_DIR": ""}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == "106"


def test_render_of_an_smt2020_run_says_which_floor_and_why(tmp_path, monkeypatch, capsys):
    from test_view_fixture import gl_unavailable_reason, smt2020_groups, write_run
    from twin.view.cli import render_main
    from twin.view.layout import smat2022_dir

    if gl_unavailable_reason():
        pytest.skip(gl_unavailable_reason())
    real = smat2022_dir()
    groups = smt2020_groups("HVLM")
    folder = write_run(tmp_path / "run", groups=groups, smt2020="HVLM", n_snapshots=2)
    args = [str(folder), "--stills", "1", "--movie", "none", "--size", "320x180"]
    monkeypatch.delenv("FABTWIN_SMAT2022_DIR", raising=False)
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))  # no smat2022/ there: the generic floor, said so
    assert render_main(args) == 0
    said = capsys.readouterr().out.splitlines()[0]
    assert said.startswith("floor: the generic floor") and str(tmp_path / "smat2022") in said
    assert "FABTWIN_DATA=" in said and "--smat2022" in said
    if real is not None:
        assert render_main([*args, "--smat2022", str(real)]) == 0
        assert capsys.readouterr().out.splitlines()[0].startswith(f"floor: the real SMAT2022 layout at {real}")
