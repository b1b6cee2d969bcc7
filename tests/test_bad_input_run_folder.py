"""Corrupt, truncated and hand-edited run folders: `twin view` / `twin render` say which file, exit 2, no traceback."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_view_fixture import write_run
from twin.errors import DataError
from twin.view.cli import render_main
from twin.view.run_folder import load_run


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _flip_bytes(path):
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid: mid + 64] = bytes(64)
    path.write_bytes(bytes(data))


def _rewrite_npz(path, **changes):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    np.savez(path, **arrays)


CASES = {
    "truncated snapshots": ("snapshots.npz", lambda f: _truncate(f / "snapshots.npz")),
    "snapshots cut to 10 bytes": ("snapshots.npz", lambda f: _truncate(f / "snapshots.npz", 10 / (f / "snapshots.npz").stat().st_size)),
    "corrupt snapshots": ("snapshots.npz", lambda f: _flip_bytes(f / "snapshots.npz")),
    "empty snapshots": ("snapshots.npz", lambda f: (f / "snapshots.npz").write_bytes(b"")),
    "snapshots is a .npy": ("snapshots.npz", lambda f: np.save(open(f / "snapshots.npz", "wb"), np.zeros(3))),
    "text format version": ("snapshots.npz", lambda f: _rewrite_npz(f / "snapshots.npz", format_version=np.array("one"))),
    "string times": ("snapshots.npz", lambda f: _rewrite_npz(f / "snapshots.npz", time_days=np.array(["a"] * 24))),
    "2-D tool_group": ("snapshots.npz", lambda f: _rewrite_npz(f / "snapshots.npz", tool_group=np.zeros((2, 2), np.int32))),
    "binary line.json": ("line.json", lambda f: (f / "line.json").write_bytes(b"\xff\xfe\x00\x01garbage")),
    "truncated line.json": ("line.json", lambda f: _truncate(f / "line.json")),
    "line.json groups of numbers": ("line.json", lambda f: (f / "line.json").write_text(json.dumps({"format_version": 1, "groups": [1, 2]}))),
    "kpis.json a list": ("kpis.json", lambda f: (f / "kpis.json").write_text("[1, 2]")),
    "kpis.json meta a string": ("kpis.json", lambda f: (f / "kpis.json").write_text(json.dumps({"meta": "x"}))),
    "tools.csv with NUL": ("tools.csv", lambda f: (f / "tools.csv").write_bytes(b"tool,group\x00,x\n")),
    "tools.csv binary": ("tools.csv", lambda f: (f / "tools.csv").write_bytes(b"\xff\xfe\xfa" * 50)),
    "truncated wafer maps": ("wafer_maps.npz", lambda f: _truncate(f / "wafer_maps.npz")),
    "wafer maps with text dies": ("wafer_maps.npz", lambda f: _rewrite_npz(f / "wafer_maps.npz", die_pass=np.array([["x"]]))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_run_folder_file_is_named(tmp_path, case):
    name, damage = CASES[case]
    folder = write_run(tmp_path / "run", yield_on=True)
    damage(folder)
    with pytest.raises(DataError) as info:
        load_run(folder)
    msg = str(info.value)
    assert name in msg and "\n" not in msg, msg


@pytest.mark.parametrize("case", ["truncated snapshots", "corrupt snapshots", "truncated wafer maps"])
def test_render_of_a_corrupt_folder_is_one_line_exit_2(tmp_path, capsys, case):
    name, damage = CASES[case]
    folder = write_run(tmp_path / "run", yield_on=True)
    damage(folder)
    assert render_main([str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert name in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_render_of_truncated_snapshots(tmp_path):
    folder = write_run(tmp_path / "run")
    _truncate(folder / "snapshots.npz")
    root = str(Path(__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, "-m", "twin.cli", "render", str(folder)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": root, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "snapshots.npz" in proc.stderr
