"""Off-screen renders checked for content: a tool known to be down shows the down colour where it stands."""
from __future__ import annotations

import numpy as np
import pytest

from test_view_fixture import SMALL_LINE, gl_unavailable_reason, smt2020_groups, write_run
from twin.view import geometry as geo
from twin.view.run_folder import load_run


@pytest.fixture(scope="module", autouse=True)
def _gl():
    reason = gl_unavailable_reason()
    if reason:
        pytest.skip(reason)


N_TOOLS = sum(g[2] for g in SMALL_LINE)
DOWN, PM, FLIPS = 5, 20, 31  # tool indices: always unscheduled down, always in PM, productive then down


def _nearest_state(pixels) -> int:
    """E10 state whose colour has the closest hue (shading changes brightness, not hue)."""
    v = np.median(np.asarray(pixels, float).reshape(-1, 3), axis=0)
    ref = geo.E10_RGB / np.linalg.norm(geo.E10_RGB.astype(float), axis=1, keepdims=True)
    return int(np.argmax(ref @ (v / (np.linalg.norm(v) + 1e-9))))


def _patch(img, rc, r=1):
    return img[rc[0] - r:rc[0] + r + 1, rc[1] - r:rc[1] + r + 1]


def _scene(folder, size=(960, 540)):
    from twin.view.scene import FabScene

    return FabScene(load_run(folder), off_screen=True, window_size=size)


@pytest.fixture(scope="module")
def pinned_run(tmp_path_factory):
    """All tools productive except three pinned ones; no WIP bars in the way."""
    n_s = 4
    state = np.zeros((n_s, N_TOOLS), np.int8)
    state[:, DOWN] = 4
    state[:, PM] = 3
    state[2:, FLIPS] = 4
    return write_run(tmp_path_factory.mktemp("pinned") / "run", n_snapshots=n_s, tool_state=state,
                     queue_lots=np.zeros((n_s, len(SMALL_LINE)), np.int32))


def test_down_tool_pixels_show_the_down_colour(pinned_run):
    scene = _scene(pinned_run)
    try:
        lay = scene.layout
        tops = geo.top_centres(lay.tool_xy, lay.tool_size, 0.02)
        img = scene.screenshot()
        assert _nearest_state(_patch(img, scene.pixel_of(tops[DOWN]))) == 4
        assert _nearest_state(_patch(img, scene.pixel_of(tops[PM]))) == 3
        assert _nearest_state(_patch(img, scene.pixel_of(tops[FLIPS]))) == 0
        assert _nearest_state(_patch(img, scene.pixel_of(tops[0]))) == 0
        scene.set_snapshot(3)  # what the time slider calls: the same tool, now down
        img = scene.screenshot()
        assert _nearest_state(_patch(img, scene.pixel_of(tops[FLIPS]))) == 4
        assert "sched. down 1, unsched. down 2 " in scene.summary.GetInput()
        assert "Day 6 00:00" in scene.clock.GetInput()
    finally:
        scene.close()


def test_picking_a_tool_shows_its_statistics(pinned_run):
    scene = _scene(pinned_run)
    try:
        run, lay = scene.run, scene.layout
        top = geo.top_centres(lay.tool_xy, lay.tool_size, 0.02)[DOWN]
        row, col = scene.pixel_of(top)
        scene.screenshot()
        hit = scene.pick_display(col, scene.plotter.window_size[1] - 1 - row)
        assert hit == ("tool", DOWN)
        info = scene.info.GetInput()
        assert run.tool_names[DOWN] in info and "Unscheduled down" in info
        assert f"utilisation {100 * run.tool_stats['utilisation'][DOWN]:.1f} %" in info
        assert f"failures {int(run.tool_stats['failures'][DOWN])}" in info
        assert scene.pick_display(2, 2) is None  # the background picks nothing
    finally:
        scene.close()


def test_wip_bars_rise_with_the_queue(tmp_path):
    n_s = 3
    queue = np.zeros((n_s, len(SMALL_LINE)), np.int32)
    queue[1, 0] = 40
    folder = write_run(tmp_path / "run", n_snapshots=n_s, queue_lots=queue)
    scene = _scene(folder)
    try:
        scene.set_snapshot(1)
        bar = scene.wip.points.reshape(-1, 8, 3)[0]
        assert bar[:, 2].max() == pytest.approx(40 * scene.wip_scale)
        img = scene.screenshot()
        centre = (*scene.layout.group_anchor[0], 0.8 * bar[:, 2].max())
        wip_rgb = geo.hex_rgb("#17becf").astype(float)
        px = np.median(_patch(img, scene.pixel_of(centre)).reshape(-1, 3), axis=0)
        assert np.dot(px / np.linalg.norm(px), wip_rgb / np.linalg.norm(wip_rgb)) > 0.97
    finally:
        scene.close()


def test_wafer_panel_colours_dies_pass_and_fail(tmp_path):
    folder = write_run(tmp_path / "run", yield_on=True)
    scene = _scene(folder, size=(1200, 675))
    try:
        scene.set_lot(1)
        g = scene.wafer_geometry
        assert set(scene.run.wafer_maps.lot_ids[g["wafers"]]) == {"L0002"}
        centres = g["die_points"].reshape(-1, 4, 3).mean(axis=1)
        img = scene.screenshot()
        green, red = geo.PASS_RGB.astype(float), geo.FAIL_RGB.astype(float)

        def colour(rgb):
            return "pass" if np.linalg.norm(rgb - green) < np.linalg.norm(rgb - red) else "fail"

        for idx in (np.flatnonzero(g["die_pass"])[:5], np.flatnonzero(~g["die_pass"])[:5]):
            for i in idx:
                pixels = _patch(img, scene.pixel_of(centres[i], panel=1), r=1).reshape(-1, 3).astype(float)
                votes = [colour(p) for p in pixels if min(np.linalg.norm(p - green), np.linalg.norm(p - red)) < 60]
                assert votes and max(set(votes), key=votes.count) == ("pass" if g["die_pass"][i] else "fail")
        assert "of lot L0002" in scene.wafer_title.GetInput()
    finally:
        scene.close()


def test_render_writes_stills_and_a_gif(pinned_run, tmp_path):
    import imageio.v2 as imageio

    from twin.view.cli import render_main

    out = tmp_path / "render"
    rc = render_main([str(pinned_run), "--out", str(out), "--stills", "3", "--size", "640x360", "--movie-size", "320x180",
                      "--max-frames", "3", "--fps", "4"])
    assert rc == 0
    pngs = sorted(out.glob("snapshot_*.png"))
    assert len(pngs) == 3 and "day0006.00" in pngs[-1].name
    img = imageio.imread(pngs[0])
    assert img.shape[:2] == (360, 640) and img.std() > 10
    frames = imageio.mimread(out / "run.gif")
    assert len(frames) == 3 and frames[0].shape[:2] == (180, 320)


def test_render_default_folder_and_mp4(pinned_run):
    pytest.importorskip("imageio_ffmpeg")
    from twin.view.cli import render_main

    assert render_main([str(pinned_run), "--stills", "1", "--size", "320x180", "--movie", "mp4", "--movie-size", "320x176",
                        "--max-frames", "2"]) == 0
    assert (pinned_run / "render" / "run.mp4").stat().st_size > 0
    assert len(list((pinned_run / "render").glob("*.png"))) == 1


def test_smt2020_run_renders_on_the_smat2022_floor(tmp_path):
    from twin.view.layout import smat2022_dir

    if smat2022_dir() is None:
        pytest.skip("SMAT2022 data not found at ../shared/data/smat2022")
    groups = smt2020_groups("HVLM")
    n_t = sum(g[2] for g in groups)
    names = [g[0] for g in groups]
    down = int(np.flatnonzero(np.repeat(np.arange(len(groups)), [g[2] for g in groups]) == names.index("Litho_FE_92"))[0])
    state = np.zeros((2, n_t), np.int8)
    state[:, down] = 4
    folder = write_run(tmp_path / "run", groups=groups, smt2020="HVLM", n_snapshots=2, tool_state=state,
                       queue_lots=np.zeros((2, len(groups)), np.int32))
    scene = _scene(folder, size=(1600, 900))
    try:
        assert scene.layout.source == "smat2022"
        top = geo.top_centres(scene.layout.tool_xy, scene.layout.tool_size, 0.02)[down]
        img = scene.screenshot()
        assert _nearest_state(_patch(img, scene.pixel_of(top), r=0)) == 4
    finally:
        scene.close()
