"""Mesh builders of the 3D views: plain arrays, checked with no display and no PyVista."""
from __future__ import annotations

import numpy as np
import pytest

from twin.view import geometry as geo
from twin.view.run_folder import WaferMaps


def _faces(flat, per=4):
    f = np.asarray(flat).reshape(-1, per + 1)
    assert np.all(f[:, 0] == per)
    return f[:, 1:]


def test_box_mesh_has_six_outward_quads_per_box_and_the_right_extent():
    xy = np.array([[0.0, 0.0], [10.0, 5.0]])
    size = np.array([[2.0, 4.0, 3.0], [1.0, 1.0, 1.0]])
    pts, faces = geo.box_mesh(xy, size, z0=0.5)
    quads = _faces(faces)
    assert pts.shape == (16, 3) and quads.shape == (12, 4)
    box0 = pts[:8]
    np.testing.assert_allclose(box0.min(axis=0), [-1.0, -2.0, 0.5])
    np.testing.assert_allclose(box0.max(axis=0), [1.0, 2.0, 3.5])
    for b in range(2):  # every face normal points away from its box centre
        centre = pts[8 * b:8 * b + 8].mean(axis=0)
        for q in quads[6 * b:6 * b + 6]:
            p = pts[q]
            normal = np.cross(p[1] - p[0], p[2] - p[0])
            assert np.dot(normal, p.mean(axis=0) - centre) > 0
    top = pts[quads[geo.TOP_FACE]]  # the top face is face TOP_FACE of each box
    np.testing.assert_allclose(top[:, 2], 3.5)
    np.testing.assert_allclose(top.mean(axis=0), geo.top_centres(xy, size, 0.5)[0])


def test_state_colours_follow_e10_codes_per_face():
    states = np.array([0, 4, 3])
    rgb = geo.per_face(geo.state_rgb(states))
    assert rgb.shape == (18, 3)
    np.testing.assert_array_equal(rgb[6:12], np.tile(geo.E10_RGB[4], (6, 1)))
    assert geo.E10_NAMES[4] == "Unscheduled down" and tuple(geo.E10_RGB[4]) == (0xD6, 0x27, 0x28)
    assert len({tuple(c) for c in geo.E10_RGB}) == 5  # five distinguishable colours


def test_picked_point_maps_to_the_tool_that_contains_it():
    xy = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 6.0]])
    size = np.array([[2.0, 2.0, 3.0], [2.0, 2.0, 2.0], [3.0, 1.0, 1.0]])
    assert geo.tool_at_point(xy, size, (5.2, 0.3, 2.0)) == 1
    assert geo.tool_at_point(xy, size, (1.4, 6.2, 1.0)) == 2
    assert geo.tool_at_point(xy, size, (2.5, 2.5, 0.0)) == -1  # the aisle
    assert geo.tool_at_point(xy, size, (5.0, 0.0, 9.0)) == -1  # far above the tool


def test_wip_bars_are_proportional_to_lots_waiting():
    anchor = np.array([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]])
    lots = np.array([0, 5, 20])
    scale = geo.wip_scale(np.array([[1, 2, 20], [0, 5, 3]]), floor_extent=100.0, tallest=0.2)
    assert scale == pytest.approx(20.0 / 20)  # the largest queue of the run stands 20 m on a 100 m floor
    pts, faces = geo.wip_bars(anchor, lots, scale, width=1.0)
    tops = pts.reshape(3, 8, 3)[:, :, 2].max(axis=1)
    np.testing.assert_allclose(tops[1:], lots[1:] * scale)
    assert tops[0] < 0.01  # an empty queue leaves no visible bar


def test_floor_quads_and_rail_segments():
    pts, faces = geo.floor_quads([(0, 0, 2, 1), (5, 5, 6, 8)], z=0.1)
    quads = _faces(faces)
    assert quads.shape == (2, 4)
    np.testing.assert_allclose(pts[quads[1]][:, :2].min(axis=0), [5, 5])
    np.testing.assert_allclose(pts[:, 2], 0.1)
    segs = np.array([[[0, 0], [1, 0]], [[1, 0], [1, 1]]])
    rp, lines = geo.segments_mesh(segs, z=4.0)
    np.testing.assert_array_equal(_faces(lines, per=2), [[0, 1], [2, 3]])
    np.testing.assert_allclose(rp[3], [1, 1, 4.0])


def test_area_palette_is_stable_and_corridors_are_grey():
    pal = geo.area_colours(["Litho", "Etch", "", "Litho"])
    assert pal["Litho"] != pal["Etch"] and pal[""] == "#c8c8c8"
    assert geo.area_colours(["Litho", "Etch"])["Etch"] == pal["Etch"]


def _maps():
    die_pass = np.array([[[-1, 1, -1], [1, 0, 1], [-1, 1, -1]], [[-1, 0, -1], [0, 0, 1], [-1, 1, -1]]], np.int8)
    return WaferMaps(lot_ids=np.array(["L1", "L1"]), die_pass=die_pass, pitch_mm=(10.0, 10.0), origin_mm=(-15.0, -15.0),
                     die_mm=(9.0, 9.0), wafer_diameter_mm=40.0, defect_wafer=np.array([0, 1, 1]),
                     defect_xy=np.array([[0.0, 0.0], [1.0, 2.0], [-5.0, -3.0]]))


def test_die_quads_only_where_dies_exist_coloured_pass_fail():
    maps = _maps()
    pts, faces, ok = geo.die_quads(maps.die_pass[0], maps.origin_mm, maps.pitch_mm, maps.die_mm)
    quads = _faces(faces)
    assert len(quads) == 5 and ok.sum() == 4
    centre_die = np.flatnonzero(~ok)[0]
    np.testing.assert_allclose(pts[quads[centre_die]][:, :2].min(axis=0), [-5.0, -5.0])  # die (1, 1): origin + pitch
    np.testing.assert_allclose(pts[quads[centre_die]][:, :2].max(axis=0), [4.0, 4.0])  # ... plus the die size
    rgb = geo.die_rgb(ok)
    np.testing.assert_array_equal(rgb[centre_die], geo.FAIL_RGB)


def test_lot_geometry_tiles_every_wafer_with_its_own_defects():
    g = geo.lot_wafer_geometry(_maps(), "L1")
    assert list(g["wafers"]) == [0, 1]
    assert len(g["die_pass"]) == 10 and g["die_pass"].sum() == 6
    assert _faces(g["die_faces"]).max() == len(g["die_points"]) - 1
    assert len(g["defects"]) == 3
    np.testing.assert_allclose(g["defects"][1:] - g["offsets"][1], [[1.0, 2.0], [-5.0, -3.0]])
    assert np.linalg.norm(g["offsets"][1] - g["offsets"][0]) >= 40.0  # wafers do not overlap


def test_tiles_fill_a_tall_panel_with_fewer_columns():
    assert len(set(geo.tile_offsets(25, 1.0, aspect=1.0)[:, 0])) == 5
    assert len(set(geo.tile_offsets(6, 1.0, aspect=0.4)[:, 0])) == 2


def test_snapshot_choices_and_clock():
    assert list(geo.still_indices(10, 4)) == [0, 3, 6, 9]
    assert list(geo.still_indices(1, 4)) == [0]
    assert len(geo.frame_indices(500, 120)) <= 120 and geo.frame_indices(500, 120)[-1] == 499
    np.testing.assert_array_equal(geo.frame_indices(7, 120), np.arange(7))
    t = np.array([0.0, 1.25, 2.999])
    assert geo.clock_text(t, 1, "fab") == "fab   Day 1 06:00   (snapshot 2/3)"
    assert geo.clock_text(t, 2).startswith("Day 2 23:59")
    np.testing.assert_array_equal(geo.state_counts([0, 0, 4, 1]), [2, 1, 0, 0, 1])


def test_view_package_imports_no_rendering_stack():
    """Layouts, geometry and run-folder checks load without PyVista/VTK (a leaf package)."""
    import subprocess
    import sys

    code = ("import sys, twin.view, twin.view.layout, twin.view.geometry, twin.view.run_folder, twin.view.cli; "
            "bad = [m for m in ('pyvista', 'vtk', 'vtkmodules', 'imageio', 'matplotlib') if m in sys.modules]; "
            "assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
