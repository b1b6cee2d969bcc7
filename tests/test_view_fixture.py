"""A synthetic run folder in the runner's format, for the view tests (and demos).

``write_run`` writes snapshots.npz, line.json, tools.csv, kpis.json and, with
``yield_on``, wafer_maps.npz, exactly as docs/views.md describes them, so the
views are tested before (and independently of) the engine.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from twin import data

SMALL_LINE = (  # (group, area, tools)
    ("Litho_A", "Litho", 4), ("LithoTrack_A", "Litho", 3), ("LithoMet", "Litho", 2),
    ("DE_Poly", "Dry_Etch", 5), ("DE_Oxide", "Dry_Etch", 3),
    ("WE_Clean", "Wet_Etch", 3), ("Diffusion_Furnace", "Diffusion", 6),
    ("Implant_HC", "Implant", 2), ("Implant_MC", "Implant", 2),
    ("TF_PVD", "TF", 4), ("Dielectric_CVD", "Dielectric", 3), ("Planar_CMP", "Planar", 3),
)
SHARED = (data.find("smt2020", "HVLM/tool.txt.1l").path or Path("/nonexistent/shared/data/smt2020")).parent


def smt2020_groups(dataset="HVLM"):
    """(family, area, tools) of the SMT2020 line, read from the shared data."""
    path = SHARED / "smt2020" / dataset / "tool.txt.1l"
    if not path.is_file():
        pytest.skip(f"SMT2020 data not found at {path}")
    rows = [line.rstrip("\n").split("\t") for line in path.read_text().splitlines()]
    head = rows[0]
    return tuple((r[0], r[head.index("STNGRP")], int(float(r[head.index("STNQTY")]))) for r in rows[1:] if r and r[0])


def write_run(folder, groups=SMALL_LINE, n_snapshots=24, days=6.0, seed=1, smt2020=None, positions=None,
              yield_on=False, force_state=None, omit=(), format_version=1, line_name="synthetic", tool_state=None, queue_lots=None):
    """Write a run folder; ``force_state`` {tool index: E10 code} pins tools, ``tool_state`` /
    ``queue_lots`` replace the random histories outright."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [g[0] for g in groups]
    areas = [g[1] for g in groups]
    tool_group = np.repeat(np.arange(len(groups)), [g[2] for g in groups]).astype(np.int32)
    tool_names = [f"{names[g]}#{k + 1}" for g in range(len(groups)) for k in range(groups[g][2])]
    state = _markov_states(rng, n_snapshots, len(tool_names))
    if tool_state is not None:
        state = np.array(tool_state, dtype=np.int64).reshape(n_snapshots, len(tool_names))
    for t, code in (force_state or {}).items():
        state[:, t] = code
    queue = np.maximum(0, np.cumsum(rng.integers(-2, 3, size=(n_snapshots, len(groups))), axis=0) + rng.integers(0, 8, len(groups)))
    if queue_lots is not None:
        queue = np.array(queue_lots).reshape(n_snapshots, len(groups))
    arrays = dict(
        time_days=np.linspace(0.0, days, n_snapshots),
        tool_state=state.astype(np.int8),
        queue_lots=queue.astype(np.int32),
        tool_group=tool_group,
        group_names=np.array(names),
        group_areas=np.array(areas),
        tool_names=np.array(tool_names),
        format_version=np.array(format_version),
    )
    if "snapshots.npz" not in omit:
        np.savez_compressed(folder / "snapshots.npz", **{k: v for k, v in arrays.items() if k not in omit})
    positions = positions or {}
    line = {
        "name": line_name, "format_version": format_version,
        "groups": [{"name": n, "area": a, "tools": k, "position": positions.get(n)} for n, a, k in groups],
        "areas": list(dict.fromkeys(areas)), "layout": None, "smt2020": smt2020,
    }
    if "line.json" not in omit:
        (folder / "line.json").write_text(json.dumps(line, indent=1))
    if "tools.csv" not in omit:
        _write_tools(folder / "tools.csv", tool_names, names, tool_group, state, rng)
    if "kpis.json" not in omit:
        meta = {"fabtwin_version": "0.1.0", "format_version": format_version, "replications": 1}
        (folder / "kpis.json").write_text(json.dumps({"meta": meta, "products": {}, "tool_groups": {}}))
    if yield_on:
        write_wafer_maps(folder / "wafer_maps.npz", rng)
    return folder


def _markov_states(rng, n_s, n_t):
    """Tools wander between E10 states, mostly productive, occasionally down."""
    p = np.array([[0.80, 0.12, 0.03, 0.02, 0.03], [0.45, 0.45, 0.05, 0.02, 0.03], [0.7, 0.1, 0.2, 0.0, 0.0],
                  [0.3, 0.2, 0.0, 0.5, 0.0], [0.3, 0.1, 0.0, 0.0, 0.6]])
    out = np.zeros((n_s, n_t), np.int64)
    out[0] = rng.choice(5, size=n_t, p=[0.6, 0.25, 0.05, 0.04, 0.06])
    cdf = np.cumsum(p, axis=1)
    for s in range(1, n_s):
        u = rng.random(n_t)
        out[s] = np.minimum((u[:, None] > cdf[out[s - 1]]).sum(axis=1), 4)
    return out


def _write_tools(path, tool_names, group_names, tool_group, state, rng):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["tool", "group", "utilisation", "availability", "failures"])
        for t, name in enumerate(tool_names):
            s = state[:, t]
            w.writerow([name, group_names[tool_group[t]], round(float(np.mean(s == 0)), 4),
                        round(float(np.mean(s < 3)), 4), int(rng.integers(0, 6))])


def write_wafer_maps(path, rng, lots=3, wafers_per_lot=6, diameter=300.0, die=20.0):
    """Die grids on a 300 mm wafer; a die fails when a random defect falls on it."""
    n_side = int(diameter // die)
    origin = -n_side * die / 2
    ii, jj = np.meshgrid(np.arange(n_side), np.arange(n_side))
    corners_r = np.max([np.hypot(origin + (ii + a) * die, origin + (jj + b) * die) for a in (0, 1) for b in (0, 1)], axis=0)
    on_wafer = corners_r <= diameter / 2 - 3
    n_w = lots * wafers_per_lot
    die_pass = np.where(on_wafer, 1, -1)[None].repeat(n_w, axis=0).astype(np.int8)
    dw, dx, dy = [], [], []
    for w in range(n_w):
        k = rng.poisson(10 + 8 * (w // wafers_per_lot))
        r = (diameter / 2 - 3) * np.sqrt(rng.random(k))
        a = 2 * np.pi * rng.random(k)
        x, y = r * np.cos(a), r * np.sin(a)
        i, j = ((x - origin) // die).astype(int), ((y - origin) // die).astype(int)
        die_pass[w, j, i] = np.where(die_pass[w, j, i] >= 0, 0, -1)
        dw += [w] * k
        dx += list(x)
        dy += list(y)
    np.savez_compressed(path, lot_id=np.repeat([f"L{k + 1:04d}" for k in range(lots)], wafers_per_lot), die_pass=die_pass,
                        defect_wafer=np.array(dw, np.int32), defect_x_mm=np.array(dx), defect_y_mm=np.array(dy),
                        die_mm=np.array([die, die]), pitch_mm=np.array([die, die]), origin_mm=np.array([origin, origin]),
                        wafer_diameter_mm=np.array(diameter), format_version=np.array(1))


_GL_PROBE = """
import pyvista as pv
p = pv.Plotter(off_screen=True, window_size=(64, 64))
p.add_mesh(pv.Cube(), color="red")
img = p.screenshot(return_img=True)
p.close()
assert img.std() > 0
"""
_gl_state = {}


def gl_unavailable_reason():
    """Why off-screen OpenGL rendering cannot run here ('' when it can); probed once in a subprocess."""
    if "reason" not in _gl_state:
        import subprocess
        import sys

        try:
            import pyvista  # noqa: F401
        except ImportError:
            _gl_state["reason"] = "pyvista is not installed (pip install '.[view]')"
            return _gl_state["reason"]
        try:
            done = subprocess.run([sys.executable, "-c", _GL_PROBE], capture_output=True, text=True, timeout=120)
            ok = done.returncode == 0
            detail = (done.stderr or "").strip().splitlines()[-1:] if not ok else []
        except subprocess.TimeoutExpired:
            ok, detail = False, ["timed out"]
        _gl_state["reason"] = "" if ok else f"no OpenGL for off-screen rendering ({' '.join(detail)}); install libgl1 libegl1 libgl1-mesa-dri"
    return _gl_state["reason"]


def test_fixture_matches_the_contract(tmp_path):
    from twin.view.run_folder import load_run

    run = load_run(write_run(tmp_path / "run", yield_on=True))
    assert run.tool_state.shape == (24, sum(g[2] for g in SMALL_LINE))
    assert run.queue_lots.shape == (24, len(SMALL_LINE))
    assert run.wafer_maps is not None and len(run.wafer_maps.lots()) == 3
    assert np.all(np.isfinite(run.tool_stats["utilisation"]))
