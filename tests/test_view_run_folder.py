"""Bad run folders stop `twin view` / `twin render` with one clear message and exit code 2."""
from __future__ import annotations

import json

import numpy as np
import pytest

from test_view_fixture import write_run
from twin.errors import DataError
from twin.view.cli import render_main, view_main
from twin.view.run_folder import load_run


def _error(folder) -> str:
    with pytest.raises(DataError) as info:
        load_run(folder)
    return str(info.value)


def _rewrite_npz(path, **changes):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    np.savez(path, **arrays)


def test_good_folder_loads(tmp_path):
    run = load_run(write_run(tmp_path / "run"))
    assert run.n_snapshots == 24 and run.wafer_maps is None
    assert run.tool_stats["failures"].shape == (run.n_tools,)


def test_missing_folder(tmp_path):
    assert "no such run folder" in _error(tmp_path / "nope")


@pytest.mark.parametrize("omit", [("snapshots.npz",), ("tools.csv", "kpis.json")])
def test_missing_files_are_all_named(tmp_path, omit):
    msg = _error(write_run(tmp_path / "run", omit=omit))
    assert "incomplete run folder" in msg
    for name in omit:
        assert name in msg


def test_missing_snapshot_array_is_named(tmp_path):
    folder = write_run(tmp_path / "run", omit=("queue_lots",))
    assert "queue_lots" in _error(folder) and "snapshots.npz" in _error(folder)


@pytest.mark.parametrize("where", ["snapshots", "line", "kpis"])
def test_incompatible_format_version(tmp_path, where):
    folder = write_run(tmp_path / "run")
    if where == "snapshots":
        _rewrite_npz(folder / "snapshots.npz", format_version=np.array(2))
    elif where == "line":
        line = json.loads((folder / "line.json").read_text())
        line["format_version"] = 2
        (folder / "line.json").write_text(json.dumps(line))
    else:
        kpis = json.loads((folder / "kpis.json").read_text())
        kpis["meta"]["format_version"] = 7
        kpis["meta"]["fabtwin_version"] = "9.9"
        (folder / "kpis.json").write_text(json.dumps(kpis))
    msg = _error(folder)
    assert "format_version" in msg and "reads format_version 1" in msg
    if where == "kpis":
        assert "fabtwin 9.9" in msg


def test_inconsistent_shapes_and_codes(tmp_path):
    folder = write_run(tmp_path / "run")
    _rewrite_npz(folder / "snapshots.npz", queue_lots=np.zeros((3, 2), np.int32))
    assert "queue_lots" in _error(folder) and "shape" in _error(folder)
    folder = write_run(tmp_path / "run2")
    with np.load(folder / "snapshots.npz") as npz:
        state = npz["tool_state"].copy()
    state[0, 0] = 9
    _rewrite_npz(folder / "snapshots.npz", tool_state=state)
    assert "SEMI E10" in _error(folder)


def test_object_arrays_need_no_pickle(tmp_path):
    folder = write_run(tmp_path / "run")
    _rewrite_npz(folder / "snapshots.npz", group_names=np.array(["a", None], dtype=object))
    assert "pickle" in _error(folder)


def test_bad_json_points_at_line_and_column(tmp_path):
    folder = write_run(tmp_path / "run")
    (folder / "line.json").write_text('{"name": "x",\n  "groups": [,]}')
    msg = _error(folder)
    assert "line.json, line 2" in msg and "not valid JSON" in msg


def test_line_groups_must_match_snapshots(tmp_path):
    folder = write_run(tmp_path / "run")
    line = json.loads((folder / "line.json").read_text())
    line["groups"][0]["name"] = "Renamed"
    (folder / "line.json").write_text(json.dumps(line))
    assert "Renamed" in _error(folder)


def test_tools_csv_columns_and_rows(tmp_path):
    folder = write_run(tmp_path / "run")
    text = (folder / "tools.csv").read_text().splitlines()
    (folder / "tools.csv").write_text("\n".join([text[0].replace("availability", "avail"), *text[1:]]))
    assert "availability" in _error(folder)
    folder = write_run(tmp_path / "run2")
    text = (folder / "tools.csv").read_text().splitlines()
    (folder / "tools.csv").write_text("\n".join(text[:-1]))
    assert "no row for 1 tool" in _error(folder)


def test_incomplete_wafer_maps(tmp_path):
    folder = write_run(tmp_path / "run", yield_on=True)
    _rewrite_npz(folder / "wafer_maps.npz", defect_x_mm=None)
    assert "wafer_maps.npz" in _error(folder) and "defect_x_mm" in _error(folder)


@pytest.mark.parametrize("main", [view_main, render_main])
def test_cli_prints_one_line_and_exits_2(tmp_path, capsys, main):
    folder = write_run(tmp_path / "run", omit=("kpis.json",))
    assert main([str(folder)]) == 2
    err = capsys.readouterr().err
    assert "kpis.json" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_rejects_bad_options(tmp_path, capsys):
    folder = write_run(tmp_path / "run")
    assert render_main([str(folder), "--size", "big"]) == 2
    assert "--size" in capsys.readouterr().err
    assert render_main([str(folder), "--movie", "avi"]) == 2
    assert "allowed: gif, mp4, none" in capsys.readouterr().err
    assert render_main([]) == 2  # argparse's usage message


def test_view_without_a_display_says_what_to_do(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert view_main([str(write_run(tmp_path / "run"))]) == 2
    err = capsys.readouterr().err
    assert "xvfb-run" in err and "twin render" in err


def test_twin_cli_dispatches_to_the_views(tmp_path, capsys):
    from twin.cli import main

    assert main(["render", str(tmp_path / "missing")]) == 2
    assert "no such run folder" in capsys.readouterr().err


@pytest.mark.parametrize("failure", [RuntimeError("Could not create an OpenGL context"),
                                     ImportError("libGL.so.1: cannot open shared object file")])
def test_render_without_opengl_says_what_to_install(tmp_path, capsys, monkeypatch, failure):
    def no_opengl(*args, **kwargs):
        raise failure

    monkeypatch.setattr("twin.view.scene.render_run", no_opengl)
    assert render_main([str(write_run(tmp_path / "run"))]) == 2
    err = capsys.readouterr().err
    assert "OpenGL" in err and "libosmesa6" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
