"""The wafer panel on pixels: at a real run's defect counts, pass and fail dies stay legible.

A 300 mm wafer of a yield run carries hundreds of defects, two thirds of them harmless. Drawn all
alike they made every wafer a black disc; the panel draws only the killers, as dots smaller than a die.
"""
from __future__ import annotations

import numpy as np
import pytest

from test_view_fixture import gl_unavailable_reason, write_run
from twin.view import geometry as geo
from twin.view.run_folder import load_run

DIE, DIAMETER, WAFERS, LOTS = 10.0, 300.0, 6, 2
DEFECTS_PER_WAFER, KILLER_SHARE = 480, 1 / 3  # as in a default-line yield run (about 80% die yield)


def dense_wafer_maps(path, seed=3):
    """Die grids whose failed dies are exactly those holding a killer defect."""
    rng = np.random.default_rng(seed)
    n = int(DIAMETER // DIE)
    origin = -n * DIE / 2
    ii, jj = np.meshgrid(np.arange(n), np.arange(n))
    corners = np.maximum.reduce([np.hypot(origin + (ii + a) * DIE, origin + (jj + b) * DIE) for a in (0, 1) for b in (0, 1)])
    on_wafer = corners <= DIAMETER / 2 - 3
    die_pass = np.where(on_wafer, 1, -1)[None].repeat(WAFERS * LOTS, axis=0).astype(np.int8)
    dw, dx, dy, killer = [], [], [], []
    for w in range(WAFERS * LOTS):
        r = (DIAMETER / 2 - 3) * np.sqrt(rng.random(DEFECTS_PER_WAFER))
        a = 2 * np.pi * rng.random(DEFECTS_PER_WAFER)
        x, y = r * np.cos(a), r * np.sin(a)
        kills = rng.random(DEFECTS_PER_WAFER) < KILLER_SHARE
        i, j = ((x - origin) // DIE).astype(int), ((y - origin) // DIE).astype(int)
        hit = kills & on_wafer[j.clip(0, n - 1), i.clip(0, n - 1)]
        die_pass[w, j[hit], i[hit]] = 0
        dw += [w] * DEFECTS_PER_WAFER
        dx += list(x)
        dy += list(y)
        killer += list(kills)
    np.savez_compressed(path, lot_id=np.repeat([f"L{k + 1:04d}" for k in range(LOTS)], WAFERS), die_pass=die_pass,
                        defect_wafer=np.array(dw, np.int32), defect_x_mm=np.array(dx), defect_y_mm=np.array(dy),
                        defect_killer=np.array(killer, np.int8), die_mm=np.array([DIE, DIE]),
                        pitch_mm=np.array([DIE, DIE]), origin_mm=np.array([origin, origin]),
                        wafer_diameter_mm=np.array(DIAMETER), format_version=np.array(1))


@pytest.fixture()
def dense_run(tmp_path):
    folder = write_run(tmp_path / "run", yield_on=True)
    dense_wafer_maps(folder / "wafer_maps.npz")
    return folder


def test_only_killer_defects_are_drawn(dense_run):
    maps = load_run(dense_run).wafer_maps
    g = geo.lot_wafer_geometry(maps, maps.lots()[0])
    assert len(g["defects"]) == WAFERS * DEFECTS_PER_WAFER
    assert 0.25 < len(g["killers"]) / len(g["defects"]) < 0.42
    assert 0.6 < g["die_pass"].mean() < 0.95


def test_pass_and_fail_dies_are_legible_on_pixels(dense_run):
    reason = gl_unavailable_reason()
    if reason:
        pytest.skip(reason)
    from twin.view.scene import FabScene

    scene = FabScene(load_run(dense_run), off_screen=True, window_size=(1600, 900))
    try:
        g = scene.wafer_geometry
        img = scene.screenshot().astype(float)
        centres = g["die_points"].reshape(-1, 4, 3).mean(axis=1)
        pixels = np.array([img[r, c] for r, c in (scene.pixel_of(p, panel=1) for p in centres)])
        passed = g["die_pass"].astype(bool)
        good, bad = np.median(pixels[passed], axis=0), np.median(pixels[~passed], axis=0)
        green, red = geo.PASS_RGB.astype(float), geo.FAIL_RGB.astype(float)
        assert np.linalg.norm(good - green) < 60 and np.linalg.norm(bad - red) < 60, (good, bad)
        assert np.linalg.norm(good - bad) > 120  # the two read apart at a glance
        dark = (img[_disc_mask(scene, g)].max(axis=1) < 70).mean()
        assert dark < 0.15, f"{100 * dark:.0f}% of the wafer discs are black"
        assert "killer defects" in scene.wafer_title.GetInput()
    finally:
        scene.close()


def _disc_mask(scene, g):
    """Screenshot pixels inside the drawn wafers (from the die quads' on-screen corners)."""
    h, w = scene.plotter.window_size[1], scene.plotter.window_size[0]
    mask = np.zeros((h, w), bool)
    for quad in g["die_points"].reshape(-1, 4, 3):
        rc = np.array([scene.pixel_of(p, panel=1) for p in quad])
        (r0, c0), (r1, c1) = rc.min(axis=0), rc.max(axis=0)
        mask[max(r0, 0):r1 + 1, max(c0, 0):c1 + 1] = True
    return mask
