"""Where each tool stands on the fab floor (metres), from the line config or SMAT2022.

Three sources, in order of precedence:

1. an explicit ``position: [x, y]`` of a tool group in the line config;
2. for SMT2020 lines, the real floor of SMAT2022 (equipment positions and
   footprints, bays, overhead-rail segments) when that data folder exists;
3. an automatic floor by area that reads as a fab: one bay (or more, if long)
   per area with tools along both sides of an aisle, bays side by side on both
   sides of a central interbay corridor, footprints varying by tool family.

Pure NumPy and csv: no display is needed, so the layout is tested directly.
"""
from __future__ import annotations

import csv
import math
import zlib
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from twin import data

SMAT_ENV = "FABTWIN_SMAT2022_DIR"
SMAT_MATCH_FRACTION = 0.8  # share of group names found in equipment.csv that marks an SMT2020 line
RAIL_Z = 4.6  # overhead-hoist rails hang above the tallest tool (metres)
# automatic floor (metres)
AISLE = 3.5
CORRIDOR = 9.0
WALL = 1.2
TOOL_GAP = 1.0
MAX_BAY_LENGTH = 72.0
ANNEX_BAY_LENGTH = 24.0  # short bays keep an annex of unplaced groups a strip along the real floor


@dataclass(frozen=True)
class Bay:
    name: str
    area: str  # dominant process area of its tools ("" for corridors or empty bays)
    rect: tuple[float, float, float, float]  # x0, y0, x1, y1 (metres)
    kind: str  # "intrabay" or "interbay"
    label: str = ""  # text drawn at label_xy ("" for none)
    label_xy: tuple[float, float] | None = None  # the bay's end away from the central corridor


@dataclass(frozen=True)
class FloorLayout:
    source: str  # "smat2022" or "auto"
    tool_xy: np.ndarray  # [T, 2] footprint centres
    tool_size: np.ndarray  # [T, 3] extents along x, y and height
    group_anchor: np.ndarray  # [G, 2] where each group's WIP bar stands (in an aisle)
    bays: tuple[Bay, ...]
    rails: np.ndarray  # [R, 2, 2] overhead-rail segments
    fixture_xy: np.ndarray  # [K, 2] stockers and load ports (not modelled tools)
    fixture_size: np.ndarray  # [K, 3]
    notes: tuple[str, ...] = ()
    why: str = ""  # which floor and why, in one line (choose_floor)

    def bounds(self) -> tuple[float, float, float, float]:
        """x0, y0, x1, y1 of everything drawn on the floor."""
        lo = [self.tool_xy - self.tool_size[:, :2] / 2]
        hi = [self.tool_xy + self.tool_size[:, :2] / 2]
        for b in self.bays:
            lo.append(np.array([b.rect[:2]]))
            hi.append(np.array([b.rect[2:]]))
        lo, hi = np.nanmin(np.vstack(lo), axis=0), np.nanmax(np.vstack(hi), axis=0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


# ----------------------------------------------------------------------------- entry point


def floor_layout(group_names, group_areas, tool_group, line: dict | None = None, smat_dir=None) -> FloorLayout:
    """The floor for a run: SMAT2022 for SMT2020 lines when available, else automatic.

    ``why`` says which floor and why (:func:`choose_floor`), so no fallback is silent.
    """
    line = line or {}
    group_names, group_areas = list(group_names), list(group_areas)
    tool_group = np.asarray(tool_group, dtype=np.int64)
    explicit = _explicit_positions(line, group_names)
    floor_dir, why = choose_floor(group_names, line, smat_dir)
    area_order = [str(a) for a in line.get("areas") or []]
    if floor_dir is not None:
        layout = smat_layout(group_names, group_areas, tool_group, floor_dir, skip=set(explicit))
    else:
        auto_groups = [g for g in range(len(group_names)) if g not in explicit]
        layout = auto_layout(group_names, group_areas, tool_group, only=auto_groups, area_order=area_order)
    return replace(_place_explicit(layout, explicit, group_names, group_areas, tool_group), why=why)


def choose_floor(group_names, line: dict, smat_dir=None) -> tuple[Path | None, str]:
    """The SMAT2022 folder to draw on (None: the generic floor) and one line saying which and why."""
    hint = str((line.get("layout") or {}).get("source", "")).lower()
    if hint == "auto":
        return None, "floor: the generic floor by area (the line asks for layout.source: auto)"
    smt = bool(line.get("smt2020")) or hint == "smat2022"
    found = _find_smat(smat_dir)
    if found.path is None:
        if not smt:
            return None, "floor: the generic floor by area (not an SMT2020 line)"
        return None, (f"floor: the generic floor by area, because the SMAT2022 floor of this SMT2020 line was not "
                      f"found (looked in {'; '.join(found.tried)}); {data.how_to_point('smat2022', '--smat2022 FOLDER')}")
    if smt or matches_smat(group_names, found.path):
        return found.path, f"floor: the real SMAT2022 layout at {found.path} (an SMT2020 line; found {found.how})"
    return None, "floor: the generic floor by area (not an SMT2020 line)"


def smat2022_dir(override=None) -> Path | None:
    """The SMAT2022 folder: argument, $FABTWIN_SMAT2022_DIR, $FABTWIN_DATA/smat2022, then
    shared/data/smat2022 beside the checkout or above it, or above the working folder (twin.data)."""
    return _find_smat(override).path


def _find_smat(override=None):
    return data.find("smat2022", "equipment.csv", explicit=override, env=SMAT_ENV)


def matches_smat(group_names, floor_dir) -> bool:
    """True when most group names are SMT2020 tool families on the SMAT2022 floor."""
    families = _smat_tables(str(floor_dir))["families"]
    names = [n.lower() for n in group_names]
    return bool(names) and sum(n in families for n in names) >= SMAT_MATCH_FRACTION * len(names)


# ----------------------------------------------------------------------------- tool families


_SIZES = {  # (length along the aisle, depth, height) in metres
    "delay": (0.9, 0.9, 0.8),
    "metrology": (2.0, 1.8, 1.9),
    "track": (5.2, 2.2, 2.6),
    "scanner": (4.6, 3.4, 3.1),
    "implant": (5.6, 3.0, 2.8),
    "furnace": (2.4, 3.6, 4.0),
    "rtp": (3.0, 2.6, 2.4),
    "epi": (3.6, 3.2, 3.0),
    "wet": (6.0, 2.2, 2.4),
    "etch": (3.2, 3.0, 2.6),
    "cmp": (4.0, 3.0, 2.5),
    "cvd": (3.4, 3.2, 2.8),
    "pvd": (3.5, 3.0, 2.7),
}
_KEYWORDS = (  # name or area token -> family; substrings count for keywords longer than 3 letters
    ("delay", "delay"), ("metro", "metrology"), ("defect", "metrology"), ("insp", "metrology"),
    ("track", "track"), ("litho", "scanner"), ("scan", "scanner"), ("implant", "implant"), ("impl", "implant"),
    ("diffusion", "furnace"), ("diff", "furnace"), ("furn", "furnace"), ("rtp", "rtp"), ("epi", "epi"),
    ("wet", "wet"), ("we", "wet"), ("clean", "wet"), ("strip", "wet"), ("etch", "etch"), ("de", "etch"), ("ash", "etch"),
    ("planar", "cmp"), ("cmp", "cmp"), ("dielectric", "cvd"), ("cvd", "cvd"), ("tf", "pvd"), ("pvd", "pvd"), ("ald", "pvd"),
    ("met", "metrology"),
)
_METROLOGY_AREA = {"met", "metro", "metrology", "inspection", "insp"}
_DEFAULT_SIZE = (3.0, 2.6, 2.5)


def tool_family(name: str, area: str = "") -> str | None:
    """The equipment family a group's name or area suggests (None when nothing matches).

    A metrology area wins (SMT2020 puts Litho_* groups in area Litho_Met); then
    the most specific keyword among the name's tokens, then among the area's.
    """
    def tokens(text):
        return [t for t in str(text).lower().replace("-", "_").replace(" ", "_").split("_") if t]

    area_tokens = tokens(area)
    if _METROLOGY_AREA & set(area_tokens):
        return "metrology"
    for group in (tokens(name), area_tokens):
        if any(len(t) > 3 and t.endswith("met") for t in group):  # DefMet, LithoMet, TFMet
            return "metrology"
        for key, family in _KEYWORDS:
            if any(t == key or (len(key) > 3 and key in t) for t in group):
                return family
    return None


def group_footprint(name: str, area: str = "") -> tuple[float, float, float]:
    """A tool's (length along the aisle, depth, height) in metres, by family.

    Real fabs mix long wet benches, tall furnaces and small metrology boxes; a
    per-name jitter (±12 %) keeps groups of one family distinguishable.
    """
    base = _SIZES.get(tool_family(name, area), _DEFAULT_SIZE)
    h = zlib.crc32(name.encode())
    jitter = [1.0 + 0.12 * (((h >> s) & 0xFF) / 127.5 - 1.0) for s in (0, 8, 16)]
    return tuple(round(b * j, 3) for b, j in zip(base, jitter))


def tool_height(name: str, area: str = "") -> float:
    return group_footprint(name, area)[2]


# ----------------------------------------------------------------------------- automatic floor


def auto_layout(group_names, group_areas, tool_group, only=None, area_order=(), max_bay_length=MAX_BAY_LENGTH) -> FloorLayout:
    """Bays per area on both sides of a central interbay corridor running along x."""
    n_tools = len(tool_group)
    groups = list(range(len(group_names))) if only is None else list(only)
    tool_xy = np.full((n_tools, 2), np.nan)
    tool_size = np.full((n_tools, 3), np.nan)
    anchor = np.full((len(group_names), 2), np.nan)
    areas = list(dict.fromkeys([*[a for a in area_order if a in {group_areas[g] for g in groups}], *(group_areas[g] for g in groups)]))
    bays, rails, slot_x = [], [], 0.0
    pending = []  # (bay name, area, [(group, tool indices)]) in order
    for area in areas:
        members = [(g, np.flatnonzero(tool_group == g)) for g in groups if group_areas[g] == area]
        for k, chunk in enumerate(_split_bays(members, group_names, group_areas, max_bay_length)):
            pending.append((area if k == 0 else f"{area} {k + 1}", area, chunk))
    for k in range(0, len(pending), 2):
        pair = pending[k:k + 2]
        widths = [_bay_width(chunk, group_names, group_areas) for _, _, chunk in pair]
        slot_w = max(widths)
        for side, ((name, area, chunk), w) in enumerate(zip(pair, widths)):
            x0 = slot_x + (slot_w - w) / 2
            bay = _fill_bay(name, area, chunk, x0, w, +1 if side == 0 else -1, group_names, group_areas, tool_xy, tool_size, anchor)
            bays.append(bay)
            rails.extend(_intrabay_rails(bay, north=side == 0))
        slot_x += slot_w + 2 * WALL
    x1 = max(slot_x - 2 * WALL, 10.0)
    bays.insert(0, Bay("Interbay", "", (-WALL, -CORRIDOR / 2, x1 + WALL, CORRIDOR / 2), "interbay"))
    rails.extend(_interbay_rails(-WALL / 2, x1 + WALL / 2))
    empty = np.zeros((0, 2))
    return FloorLayout("auto", tool_xy, tool_size, anchor, tuple(bays), np.array(rails).reshape(-1, 2, 2), empty, np.zeros((0, 3)))


def _sizes(g, group_names, group_areas):
    return group_footprint(group_names[g], group_areas[g])


def _split_bays(members, group_names, group_areas, max_bay_length):
    """Cut an area's tools into bays no longer than ``max_bay_length`` per side."""
    items = [(g, t) for g, tools in members for t in tools]
    lengths = [_sizes(g, group_names, group_areas)[0] + TOOL_GAP for g, _ in items]
    n_bays = max(1, math.ceil(sum(lengths) / (2 * max_bay_length)))
    share = sum(lengths) / n_bays
    chunks, current, run = [], [], 0.0
    for item, length in zip(items, lengths):
        if current and run + length / 2 > share and len(chunks) < n_bays - 1:
            chunks.append(current)
            current, run = [], 0.0
        current.append(item)
        run += length
    chunks.append(current)
    return [c for c in chunks if c]


def _bay_width(chunk, group_names, group_areas):
    depth = max(_sizes(g, group_names, group_areas)[1] for g, _ in chunk)
    return 2 * depth + AISLE + 2 * WALL


def _fill_bay(name, area, chunk, x0, width, direction, group_names, group_areas, tool_xy, tool_size, anchor):
    """Tools along the two walls of one bay, facing its aisle; returns the Bay."""
    lengths = [_sizes(g, group_names, group_areas)[0] + TOOL_GAP for g, _ in chunk]
    half = sum(lengths) / 2
    run, side_runs = 0.0, [WALL, WALL]
    for (g, t), length in zip(chunk, lengths):
        side = 0 if run + length / 2 <= half or len(chunk) == 1 else 1
        run += length
        w, d, h = _sizes(g, group_names, group_areas)
        x = x0 + WALL + d / 2 if side == 0 else x0 + width - WALL - d / 2
        along = side_runs[side] + length / 2
        side_runs[side] += length
        y = direction * (CORRIDOR / 2 + along)
        tool_xy[t] = (x, y)
        tool_size[t] = (d, w, h)
    bay_len = max(side_runs) + WALL
    y0, y1 = sorted((direction * CORRIDOR / 2, direction * (CORRIDOR / 2 + bay_len)))
    for g in {g for g, _ in chunk}:
        ys = [tool_xy[t][1] for gg, t in chunk if gg == g]
        anchor[g] = (x0 + width / 2, float(np.mean(ys)))
    label = name if name == area else ""
    far = y1 if direction > 0 else y0
    return Bay(name, area, (x0, y0, x0 + width, y1), "intrabay", label, (x0 + width / 2, far))


def _intrabay_rails(bay: Bay, north: bool):
    """A loop down the aisle and back, joined to the interbay rail."""
    x0, y0, x1, y1 = bay.rect
    xm = (x0 + x1) / 2
    near, far = (y0, y1 - WALL) if north else (y1, y0 + WALL)
    join = CORRIDOR / 4 if north else -CORRIDOR / 4
    a, b = xm - 0.6, xm + 0.6
    return [((a, join), (a, near)), ((a, near), (a, far)), ((a, far), (b, far)), ((b, far), (b, near)), ((b, near), (b, join))]


def _interbay_rails(x0, x1):
    q = CORRIDOR / 4
    return [((x0, -q), (x1, -q)), ((x1, -q), (x1, q)), ((x1, q), (x0, q)), ((x0, q), (x0, -q))]


# ----------------------------------------------------------------------------- explicit positions


def _explicit_positions(line: dict, group_names) -> dict[int, tuple[float, float]]:
    by_name = {}
    for g in line.get("groups") or []:
        if isinstance(g, dict) and g.get("position") is not None:
            by_name[str(g.get("name"))] = (float(g["position"][0]), float(g["position"][1]))
    return {i: by_name[n] for i, n in enumerate(group_names) if n in by_name}


def _place_explicit(layout: FloorLayout, explicit, group_names, group_areas, tool_group) -> FloorLayout:
    """Put each explicitly positioned group as a row centred on its position."""
    if not explicit:
        return layout
    tool_xy, tool_size, anchor = layout.tool_xy.copy(), layout.tool_size.copy(), layout.group_anchor.copy()
    for g, (px, py) in explicit.items():
        tools = np.flatnonzero(tool_group == g)
        w, d, h = group_footprint(group_names[g], group_areas[g])
        pitch = w + TOOL_GAP
        for k, t in enumerate(tools):
            tool_xy[t] = (px + (k - (len(tools) - 1) / 2) * pitch, py)
            tool_size[t] = (w, d, h)
        anchor[g] = (px, py + d / 2 + 1.5)
    notes = (*layout.notes, f"{len(explicit)} group(s) placed at their configured position")
    return replace(layout, tool_xy=tool_xy, tool_size=tool_size, group_anchor=anchor, notes=notes)


# ----------------------------------------------------------------------------- SMAT2022 floor


def smat_layout(group_names, group_areas, tool_group, floor_dir, skip=frozenset()) -> FloorLayout:
    """Tools on their SMAT2022 equipment slots; groups not on that floor go to an annex.

    A group with more tools than slots (SMAT2022 is the LVHM_E model) shares
    its slots, each split along its long side; spare slots stay empty.
    """
    tables = _smat_tables(str(floor_dir))
    n_tools = len(tool_group)
    tool_xy = np.full((n_tools, 2), np.nan)
    tool_size = np.full((n_tools, 3), np.nan)
    anchor = np.full((len(group_names), 2), np.nan)
    unmatched = []
    for g, name in enumerate(group_names):
        if g in skip:
            continue
        slots = tables["families"].get(name.lower())
        tools = np.flatnonzero(tool_group == g)
        if not slots:
            unmatched.append(g)
            continue
        height = tool_height(name, group_areas[g])
        xy, size = _share_slots(tables["slot_xy"][slots], tables["slot_size"][slots], len(tools))
        tool_xy[tools] = xy
        tool_size[tools] = np.column_stack([size, np.full(len(tools), height)])
        anchor[g] = _nearest(tables["nodes"], xy.mean(axis=0), max_dist=12.0) if len(tools) else np.nan
    bays = _smat_bays(tables, tool_xy, tool_group, group_areas)
    layout = FloorLayout("smat2022", tool_xy, tool_size, anchor, bays, tables["rails"], tables["fixture_xy"], tables["fixture_size"])
    if unmatched:
        layout = _annex(layout, unmatched, group_names, group_areas, tool_group)
    return layout


def _share_slots(xy, size, n):
    """n tools on len(xy) slots: the first n slots, or every slot split in near-equal parts."""
    m = len(xy)
    if n <= m:
        return xy[:n].copy(), size[:n].copy()
    counts = np.full(m, n // m)
    counts[: n % m] += 1
    out_xy, out_size = [], []
    for s, parts in enumerate(counts):
        w, h = size[s]
        axis = 0 if w >= h else 1
        piece = np.array([w, h], float)
        piece[axis] /= parts
        for part in range(parts):
            centre = xy[s].copy()
            centre[axis] += (part - (parts - 1) / 2) * piece[axis]
            out_xy.append(centre)
            out_size.append(piece * np.where(np.arange(2) == axis, 0.92, 1.0))
    return np.array(out_xy), np.array(out_size)


def _nearest(nodes, point, max_dist):
    if len(nodes) == 0:
        return point
    d = np.hypot(*(nodes - point).T)
    i = int(np.argmin(d))
    return nodes[i] if d[i] <= max_dist else point


def _smat_bays(tables, tool_xy, tool_group, group_areas) -> tuple[Bay, ...]:
    """Bay rectangles from their rail loops and equipment; area = most tools' area."""
    bays = []
    mid_y = np.mean([(r[1] + r[3]) / 2 for r in tables["bay_rects"].values()])
    for name, kind in tables["bay_kinds"].items():
        rect = tables["bay_rects"].get(name)
        if rect is None:
            continue
        x0, y0, x1, y1 = rect
        inside = np.flatnonzero((tool_xy[:, 0] >= x0) & (tool_xy[:, 0] <= x1) & (tool_xy[:, 1] >= y0) & (tool_xy[:, 1] <= y1))
        area = ""
        if kind == "intrabay" and len(inside):
            names, counts = np.unique([group_areas[g] for g in tool_group[inside]], return_counts=True)
            area = str(names[np.argmax(counts)])
        label, at = "", None
        if kind == "intrabay":
            label = f"{name}\n{area}" if area else name
            at = ((x0 + x1) / 2, y1 if (y0 + y1) / 2 >= mid_y else y0)
        bays.append(Bay(name, area, rect, kind, label, at))
    return tuple(bays)


def _annex(layout: FloorLayout, groups, group_names, group_areas, tool_group) -> FloorLayout:
    """Groups without SMAT2022 slots get an automatic floor south of the real one."""
    annex = auto_layout(group_names, group_areas, tool_group, only=groups, max_bay_length=ANNEX_BAY_LENGTH)
    ax0, ay0, ax1, ay1 = annex.bounds()
    fx0, fy0, _, _ = layout.bounds()
    shift = np.array([fx0 - ax0, fy0 - 15.0 - ay1])
    tool_xy, tool_size, anchor = layout.tool_xy.copy(), layout.tool_size.copy(), layout.group_anchor.copy()
    moved = ~np.isnan(annex.tool_xy[:, 0])
    tool_xy[moved] = annex.tool_xy[moved] + shift
    tool_size[moved] = annex.tool_size[moved]
    anchor[groups] = annex.group_anchor[groups] + shift
    bays = tuple(replace(b, name=f"Annex {b.name}", rect=(b.rect[0] + shift[0], b.rect[1] + shift[1], b.rect[2] + shift[0], b.rect[3] + shift[1]),
                         label=f"annex: {b.label}" if b.label else "", label_xy=None if b.label_xy is None else tuple(np.add(b.label_xy, shift)))
                 for b in annex.bays)
    rails = np.concatenate([layout.rails, annex.rails + shift]) if len(annex.rails) else layout.rails
    names = ", ".join(group_names[g] for g in groups[:4]) + (" ..." if len(groups) > 4 else "")
    note = f"annex (south): {len(groups)} group(s) without SMAT2022 machines ({names})"
    return replace(layout, tool_xy=tool_xy, tool_size=tool_size, group_anchor=anchor, bays=layout.bays + bays, rails=rails,
                   notes=(*layout.notes, note))


@lru_cache(maxsize=4)
def _smat_tables(folder: str) -> dict:
    """Parse the SMAT2022 sheets once (mm -> m)."""
    from twin.errors import DataError

    root = Path(folder)
    try:
        equipment = _read_csv(root / "equipment.csv")
        address = {r["NAME"]: (float(r["POSITION_X"]) / 1000, float(r["POSITION_Y"]) / 1000) for r in _read_csv(root / "address.csv")}
        rail_rows = _read_csv(root / "rail.csv")
        bay_rows = _read_csv(root / "bay.csv")
    except (KeyError, ValueError) as err:
        raise DataError(root, None, None, f"SMAT2022 tables are not in the expected format: {err}") from None
    families, slot_xy, slot_size, fix_xy, fix_size = {}, [], [], [], []
    for r in sorted(equipment, key=lambda r: r["NAME"]):
        xy = (float(r["POSITION_X"]) / 1000, float(r["POSITION_Y"]) / 1000)
        wh = (float(r["WIDTH"]) / 1000, float(r["HEIGHT"]) / 1000)
        fam = r["TOOL_GROUP"]
        if fam in ("STOCKER", "COMMIT", "COMPLETE"):
            fix_xy.append(xy)
            fix_size.append((*wh, 4.2 if fam == "STOCKER" else 1.2))
            continue
        families.setdefault(fam.lower(), []).append(len(slot_xy))
        slot_xy.append(xy)
        slot_size.append(wh)
    slot_xy, slot_size = np.array(slot_xy), _deoverlap(np.array(slot_xy), np.array(slot_size))
    rails, by_bay = [], {}
    for r in rail_rows:
        a, b = address.get(r["FROM_NODE"]), address.get(r["TO_NODE"])
        if a is None or b is None:
            continue
        rails.append((a, b))
        by_bay.setdefault(r["BAY_NAME"], []).extend((a, b))
    bay_kinds = {r["NAME"]: ("interbay" if r["TYPE"].upper() == "INTERBAY" else "intrabay") for r in bay_rows}
    rects = {}
    for name in bay_kinds:
        pts = list(by_bay.get(name, []))
        pts += [(float(r["POSITION_X"]) / 1000, float(r["POSITION_Y"]) / 1000) for r in equipment if r["BAY"] == name]
        if pts:
            p = np.array(pts)
            pad = 2.0 if bay_kinds[name] == "intrabay" else 1.0
            rects[name] = (float(p[:, 0].min() - pad), float(p[:, 1].min() - pad), float(p[:, 0].max() + pad), float(p[:, 1].max() + pad))
    return {
        "families": families,
        "slot_xy": slot_xy,
        "slot_size": slot_size,
        "fixture_xy": np.array(fix_xy).reshape(-1, 2),
        "fixture_size": np.array(fix_size).reshape(-1, 3),
        "rails": np.array(rails).reshape(-1, 2, 2),
        "nodes": np.array(list(address.values())).reshape(-1, 2),
        "bay_kinds": bay_kinds,
        "bay_rects": rects,
    }


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _deoverlap(xy, size):
    """Shrink footprints that overlap a neighbour in the same column (the sheet overlaps some)."""
    size = size.copy()
    cols = {}
    for i, (x, _) in enumerate(xy):
        cols.setdefault(round(x * 2) / 2, []).append(i)
    for idx in cols.values():
        idx.sort(key=lambda i: xy[i, 1])
        for a, b in zip(idx, idx[1:]):
            gap = xy[b, 1] - xy[a, 1]
            need = (size[a, 1] + size[b, 1]) / 2
            if 0 < gap < need:
                f = 0.94 * gap / need
                size[a, 1] *= f
                size[b, 1] *= f
    return size
