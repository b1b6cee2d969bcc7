"""Floor layouts: the automatic fab floor, explicit positions and the real SMAT2022 floor."""
from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest

from test_view_fixture import SMALL_LINE, smt2020_groups
from twin.view import layout as L

SMAT = L.smat2022_dir()
needs_smat = pytest.mark.skipif(SMAT is None, reason="SMAT2022 data not found at ../shared/data/smat2022")


def _line(groups, **extra):
    names = [g[0] for g in groups]
    areas = [g[1] for g in groups]
    tool_group = np.repeat(np.arange(len(groups)), [g[2] for g in groups])
    line = {"groups": [{"name": n, "area": a, "tools": k, "position": None} for n, a, k in groups], "areas": list(dict.fromkeys(areas))}
    line.update(extra)
    return names, areas, tool_group, line


def _rects(xy, size):
    return np.column_stack([xy - size[:, :2] / 2, xy + size[:, :2] / 2])


def _overlaps(r, slack=1e-6):
    """Pairs of rectangles that overlap with positive area."""
    lo = np.maximum(r[:, None, :2], r[None, :, :2])
    hi = np.minimum(r[:, None, 2:], r[None, :, 2:])
    inter = np.all(hi - lo > slack, axis=2)
    np.fill_diagonal(inter, False)
    return np.argwhere(np.triu(inter))


def _inside(rect, box, tol=1e-6):
    return rect[0] >= box[0] - tol and rect[1] >= box[1] - tol and rect[2] <= box[2] + tol and rect[3] <= box[3] + tol


def test_auto_floor_reads_as_a_fab():
    names, areas, tool_group, line = _line(SMALL_LINE)
    lay = L.floor_layout(names, areas, tool_group, line, smat_dir="/nonexistent")
    assert lay.source == "auto"
    assert np.all(np.isfinite(lay.tool_xy)) and np.all(lay.tool_size > 0)
    rects = _rects(lay.tool_xy, lay.tool_size)
    assert len(_overlaps(rects)) == 0, "tools overlap"
    intra = [b for b in lay.bays if b.kind == "intrabay"]
    corridor = [b for b in lay.bays if b.kind == "interbay"]
    assert {b.area for b in intra} == set(areas) and len(intra) == len(set(areas))  # one bay per area here
    assert len(corridor) == 1
    assert len(_overlaps(np.array([b.rect for b in lay.bays]))) == 0, "bays overlap"
    for t, g in enumerate(tool_group):  # every tool stands in its own area's bay
        bay = next(b for b in intra if b.area == areas[g])
        assert _inside(rects[t], bay.rect)
    ys = [(b.rect[1] + b.rect[3]) / 2 for b in intra]  # bays on both sides of the central corridor
    assert min(ys) < corridor[0].rect[1] and max(ys) > corridor[0].rect[3]
    for b in intra:  # tools line both walls of the bay's aisle, leaving the aisle clear
        inside = [t for t in range(len(tool_group)) if _inside(rects[t], b.rect)]
        xs = lay.tool_xy[inside, 0]
        mid = (b.rect[0] + b.rect[2]) / 2
        if len(inside) > 1:
            assert xs.min() < mid < xs.max()
            left_edge = rects[inside][xs < mid, 2].max()
            right_edge = rects[inside][xs > mid, 0].min()
            assert right_edge - left_edge >= L.AISLE - 1e-6
    assert len(lay.rails) > len(intra) and len(lay.notes) == 0


def test_auto_footprints_vary_by_tool_family():
    names, areas, tool_group, line = _line(SMALL_LINE)
    lay = L.auto_layout(names, areas, tool_group)
    per_group = {tuple(np.round(lay.tool_size[tool_group == g][0], 3)) for g in range(len(names))}
    assert len(per_group) == len(names)  # not a grid of identical cubes
    furnace = lay.tool_size[tool_group == names.index("Diffusion_Furnace")][0]
    metrology = lay.tool_size[tool_group == names.index("LithoMet")][0]
    assert furnace[2] > 1.5 * metrology[2]  # vertical furnaces tower over metrology boxes
    assert L.tool_family("LITHO_TRACK", "Litho") == "track"
    assert L.tool_family("Litho_FE_92", "Litho_Met") == "metrology"  # SMT2020's litho metrology area
    assert L.tool_family("PVD_MET", "Thin_Film") == "pvd"
    assert L.tool_family("Foo", "Bar") is None


def test_a_long_area_is_split_into_bays_of_bounded_length():
    names, areas, tool_group, _ = _line((("DE_Big", "Dry_Etch", 80), ("WE_1", "Wet_Etch", 2)))
    lay = L.auto_layout(names, areas, tool_group)
    etch = [b for b in lay.bays if b.area == "Dry_Etch"]
    assert len(etch) >= 2
    for b in etch:
        assert b.rect[3] - b.rect[1] <= L.MAX_BAY_LENGTH + L.CORRIDOR
    assert sum(bool(b.label) for b in etch) == 1  # the area is named once
    assert len(_overlaps(_rects(lay.tool_xy, lay.tool_size))) == 0


def test_explicit_position_wins():
    groups = SMALL_LINE
    names, areas, tool_group, line = _line(groups)
    line["groups"][3]["position"] = [500.0, -200.0]
    lay = L.floor_layout(names, areas, tool_group, line, smat_dir="/nonexistent")
    placed = lay.tool_xy[tool_group == 3]
    np.testing.assert_allclose(placed.mean(axis=0), [500.0, -200.0])
    assert np.ptp(placed[:, 1]) == 0  # a row at the configured spot
    others = np.flatnonzero(tool_group != 3)
    assert np.all(np.abs(lay.tool_xy[others, 0] - 500.0) > 100)
    assert any("configured position" in n for n in lay.notes)


def _equipment():
    with (SMAT / "equipment.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_family = {}
    for r in rows:
        by_family.setdefault(r["TOOL_GROUP"].lower(), []).append(
            (float(r["POSITION_X"]) / 1000, float(r["POSITION_Y"]) / 1000, float(r["WIDTH"]) / 1000, float(r["HEIGHT"]) / 1000))
    return by_family


@needs_smat
def test_smt2020_lines_stand_on_the_real_smat2022_floor():
    groups = smt2020_groups("HVLM")
    names, areas, tool_group, line = _line(groups, smt2020="HVLM")
    lay = L.floor_layout(names, areas, tool_group, line)
    assert lay.source == "smat2022"
    equipment = _equipment()
    for g, name in enumerate(names):
        slots = np.array(equipment.get(name.lower(), []))
        tools = np.flatnonzero(tool_group == g)
        if len(slots) == 0:
            continue
        xy = lay.tool_xy[tools]
        if len(tools) <= len(slots):  # one tool per SMAT2022 machine, at its position (mm -> m)
            d = np.min(np.hypot(xy[:, None, 0] - slots[None, :, 0], xy[:, None, 1] - slots[None, :, 1]), axis=1)
            assert d.max() < 1e-9, name
            assert len({tuple(p) for p in np.round(xy, 6)}) == len(tools), name
        else:  # more tools than machines: they share the machines' footprints
            for p in xy:
                assert np.any((np.abs(p[0] - slots[:, 0]) <= slots[:, 2] / 2) & (np.abs(p[1] - slots[:, 1]) <= slots[:, 3] / 2)), name
    placed = np.flatnonzero(np.isin(tool_group, [g for g, n in enumerate(names) if n.lower() in equipment]))
    assert len(_overlaps(_rects(lay.tool_xy[placed], lay.tool_size[placed]), slack=1e-3)) == 0
    x0, y0, x1, y1 = (lay.tool_xy[placed, 0].min(), lay.tool_xy[placed, 1].min(), lay.tool_xy[placed, 0].max(), lay.tool_xy[placed, 1].max())
    assert 290 < x1 - x0 < 300 and 120 < y1 - y0 < 152  # the fab is about 299 x 150 m


@needs_smat
def test_smat2022_bays_rails_and_annex():
    groups = smt2020_groups("HVLM")
    names, areas, tool_group, line = _line(groups)  # no smt2020 flag: recognised by its group names
    lay = L.floor_layout(names, areas, tool_group, line)
    assert lay.source == "smat2022"
    with (SMAT / "rail.csv").open(newline="") as fh:
        n_rails = sum(1 for _ in csv.DictReader(fh))
    with (SMAT / "bay.csv").open(newline="") as fh:
        bay_rows = list(csv.DictReader(fh))
    real = [b for b in lay.bays if not b.name.startswith("Annex")]
    assert {b.name for b in real} == {r["NAME"] for r in bay_rows}
    assert sum(b.kind == "interbay" for b in real) == sum(r["TYPE"] == "INTERBAY" for r in bay_rows)
    assert len(lay.rails) >= n_rails  # every SMAT2022 rail segment, plus the annex's
    assert len(lay.fixture_xy) == 48  # 40 stockers, 4 commit and 4 complete ports
    litho = next(b for b in real if b.name == "B1")
    assert litho.area == "Litho"
    delay = np.flatnonzero(tool_group == names.index("Delay_32"))  # a pseudo group with no machines
    assert lay.tool_xy[delay, 1].max() < min(b.rect[1] for b in real)
    assert any("Delay_32" in n for n in lay.notes)
    assert np.all(np.isfinite(lay.group_anchor))


@needs_smat
def test_layout_source_hint_and_other_lines():
    groups = smt2020_groups("HVLM")
    names, areas, tool_group, line = _line(groups, smt2020="HVLM", layout={"source": "auto"})
    assert L.floor_layout(names, areas, tool_group, line).source == "auto"
    names, areas, tool_group, line = _line(SMALL_LINE)
    assert L.floor_layout(names, areas, tool_group, line).source == "auto"  # not an SMT2020 line


def test_smat_folder_from_environment(tmp_path, monkeypatch):
    """FABTWIN_SMAT2022_DIR overrides the default; a folder without the sheets falls back to auto."""
    floor = tmp_path / "floor"
    floor.mkdir()
    (floor / "equipment.csv").write_text("NAME,TOOL_GROUP,BAY,WIDTH,HEIGHT,POSITION_X,POSITION_Y\n"
                                         "E1,Litho_A,A1,2000,3000,10000,20000\nE2,Litho_A,A1,2000,3000,10000,25000\n"
                                         "S1,STOCKER,A1,2500,2500,14000,20000\n")
    (floor / "address.csv").write_text("NAME,FAB_NAME,POSITION_X,POSITION_Y,ZCU_NAME,ZCU_TYPE\nn1,F,12000,18000,z,NONE\nn2,F,12000,27000,z,NONE\n")
    (floor / "rail.csv").write_text("NAME,FAB_NAME,BAY_NAME,FROM_NODE,TO_NODE,MAX_SPEED,CURVE\nr1,F,A1,n1,n2,1,0\n")
    (floor / "bay.csv").write_text('NAME,FAB_NAME,TYPE,RETICLE,NEIGHBOR_BAY\nA1,F,INTRABAY,0,""\n')
    names, areas, tool_group, line = _line((("Litho_A", "Litho", 2),))
    monkeypatch.setenv(L.SMAT_ENV, str(floor))
    assert L.smat2022_dir() == floor
    lay = L.floor_layout(names, areas, tool_group, line)
    assert lay.source == "smat2022"
    np.testing.assert_allclose(sorted(map(tuple, lay.tool_xy)), [(10.0, 20.0), (10.0, 25.0)])
    np.testing.assert_allclose(lay.tool_size[0, :2], [2.0, 3.0])
    assert len(lay.rails) == 1 and len(lay.fixture_xy) == 1
    np.testing.assert_allclose(lay.group_anchor[0], [12.0, 18.0])  # the WIP bar stands under the rail
    monkeypatch.setenv(L.SMAT_ENV, str(tmp_path / "missing"))
    assert L.smat2022_dir() is None
    assert L.floor_layout(names, areas, tool_group, line).source == "auto"


def test_default_smat_path_is_beside_the_checkout_or_the_working_folder(monkeypatch, tmp_path):
    from twin import data

    monkeypatch.delenv(L.SMAT_ENV, raising=False)
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    holding = [p for p, _ in data.candidates("smat2022") if (p / "equipment.csv").is_file()]
    assert L.smat2022_dir() == (holding[0] if holding else None)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    if not any((p / "equipment.csv").is_file() for p, _ in data.candidates("smat2022")):
        assert L.smat2022_dir() is None  # neither beside the package nor above this folder
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))  # $FABTWIN_DATA wins, and holds no floor
    assert L.smat2022_dir() is None


def test_the_floor_says_which_and_why(tmp_path, monkeypatch):
    """An SMT2020 line without the SMAT2022 sheets falls back to the generic floor, and says so."""
    from twin import data

    monkeypatch.delenv(L.SMAT_ENV, raising=False)
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    names, areas, tool_group, line = _line((("Litho_A", "Litho", 2),))
    lay = L.floor_layout(names, areas, tool_group, {**line, "smt2020": "HVLM"})
    assert lay.source == "auto"
    assert "generic floor" in lay.why and str(tmp_path / "smat2022") in lay.why and "FABTWIN_DATA" in lay.why
    assert "not an SMT2020 line" in L.floor_layout(names, areas, tool_group, line).why
    if SMAT is not None:
        lay = L.floor_layout(names, areas, tool_group, {**line, "smt2020": "HVLM"}, smat_dir=SMAT)
        assert lay.source == "smat2022" and f"real SMAT2022 layout at {SMAT}" in lay.why



def test_shared_slots_split_without_overlap():
    xy = np.array([[0.0, 0.0], [0.0, 10.0]])
    size = np.array([[2.0, 6.0], [2.0, 6.0]])
    out_xy, out_size = L._share_slots(xy, size, 5)
    assert len(out_xy) == 5
    rects = np.column_stack([out_xy - out_size / 2, out_xy + out_size / 2])
    assert len(_overlaps(rects)) == 0
    for r in rects:
        assert any(_inside(r, (x - 1, y - 3, x + 1, y + 3)) for x, y in xy)
    for a, b in itertools.combinations(range(5), 2):
        assert not np.allclose(out_xy[a], out_xy[b])
