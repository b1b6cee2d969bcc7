"""Pure functions from run data and a floor layout to mesh arrays and colours.

Meshes are returned as plain NumPy arrays in PyVista's layout (``points``
[N, 3]; ``faces`` flat ``[4, a, b, c, d, ...]``; ``lines`` flat ``[2, a, b,
...]``) so they are tested with no display; ``scene`` wraps them.  Boxes have
six quad faces in a fixed order, so face ``6 * i + TOP_FACE`` is box i's top.
"""
from __future__ import annotations

import numpy as np

E10_NAMES = ("Productive", "Standby", "Setup", "Scheduled down", "Unscheduled down")
E10_HEX = ("#2ca02c", "#f2c12e", "#1f77b4", "#9467bd", "#d62728")
E10_RGB = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in E10_HEX], dtype=np.uint8)
PASS_RGB = np.array([46, 160, 67], dtype=np.uint8)
FAIL_RGB = np.array([214, 39, 40], dtype=np.uint8)
AREA_HEX = ("#dbe9f6", "#fde5cc", "#dff2dc", "#f6dada", "#e8e1f2", "#eee2dc", "#f8e1f0", "#e6e6e6", "#f3f3d3", "#d9f1f5",
            "#c6dbef", "#fdd0a2", "#c7e9c0", "#fcbba1", "#dadaeb", "#d9d9d9")
FACES_PER_BOX = 6
TOP_FACE = 1
_BOX_FACES = np.array([[0, 3, 2, 1], [4, 5, 6, 7], [0, 1, 5, 4], [1, 2, 6, 5], [2, 3, 7, 6], [3, 0, 4, 7]])


# ----------------------------------------------------------------------------- boxes


def box_mesh(xy, size, z0=0.0):
    """Axis-aligned boxes standing on z0: returns (points [8N, 3], faces flat).

    ``xy`` [N, 2] are footprint centres, ``size`` [N, 3] extents in x, y, z.
    """
    xy = np.asarray(xy, float).reshape(-1, 2)
    size = np.asarray(size, float).reshape(-1, 3)
    n = len(xy)
    z0 = np.broadcast_to(np.asarray(z0, float), (n,))
    lo = np.column_stack([xy - size[:, :2] / 2, z0])
    hi = np.column_stack([xy + size[:, :2] / 2, z0 + size[:, 2]])
    corners = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]])
    pts = lo[:, None, :] + corners[None, :, :] * (hi - lo)[:, None, :]
    faces = _BOX_FACES[None, :, :] + 8 * np.arange(n)[:, None, None]
    faces = np.concatenate([np.full((n, FACES_PER_BOX, 1), 4), faces], axis=2)
    return pts.reshape(-1, 3), faces.reshape(-1).astype(np.int64)


def per_face(values):
    """Repeat one value per box onto its six faces (cell data of a box mesh)."""
    return np.repeat(np.asarray(values), FACES_PER_BOX, axis=0)


def state_rgb(states):
    """E10 colour of each tool state code (0 productive .. 4 unscheduled down)."""
    return E10_RGB[np.asarray(states, dtype=np.int64)]


def top_centres(xy, size, z0=0.0):
    """Centre of each box's top face: where a tool's colour is seen from above."""
    xy = np.asarray(xy, float).reshape(-1, 2)
    size = np.asarray(size, float).reshape(-1, 3)
    return np.column_stack([xy, z0 + size[:, 2]])


def tool_at_point(xy, size, point, tol=0.05):
    """Index of the tool whose box contains ``point`` (a picked surface point), or -1."""
    xy, size = np.asarray(xy, float), np.asarray(size, float)
    p = np.asarray(point, float)
    inside = np.all(np.abs(xy - p[:2]) <= size[:, :2] / 2 + tol, axis=1)
    if len(p) > 2:
        inside &= (p[2] >= -tol) & (p[2] <= size[:, 2] + tol)
    hits = np.flatnonzero(inside)
    if len(hits) == 0:
        return -1
    d = np.hypot(*(xy[hits] - p[:2]).T)
    return int(hits[np.argmin(d)])


# ----------------------------------------------------------------------------- WIP bars


def wip_scale(queue_lots, floor_extent, tallest=0.12):
    """Metres per waiting lot so the run's largest queue stands ``tallest`` x floor extent high."""
    peak = float(np.max(queue_lots)) if np.size(queue_lots) else 0.0
    return tallest * float(floor_extent) / max(peak, 1.0)


def wip_bars(anchor, lots, scale, width=1.2, base=0.0):
    """One column per tool group at its anchor, height proportional to lots waiting."""
    anchor = np.asarray(anchor, float)
    lots = np.asarray(lots, float)
    heights = np.maximum(lots * scale, 1e-3)
    size = np.column_stack([np.full(len(anchor), width), np.full(len(anchor), width), heights])
    return box_mesh(anchor, size, base)


# ----------------------------------------------------------------------------- floor


def floor_quads(rects, z=0.0):
    """Flat rectangles (x0, y0, x1, y1) at height z: (points, faces)."""
    r = np.asarray(rects, float).reshape(-1, 4)
    n = len(r)
    pts = np.stack([np.column_stack([r[:, 0], r[:, 1]]), np.column_stack([r[:, 2], r[:, 1]]),
                    np.column_stack([r[:, 2], r[:, 3]]), np.column_stack([r[:, 0], r[:, 3]])], axis=1)
    pts = np.concatenate([pts, np.full((n, 4, 1), float(z))], axis=2).reshape(-1, 3)
    faces = np.column_stack([np.full(n, 4), 4 * np.arange(n)[:, None] + np.arange(4)]).reshape(-1)
    return pts, faces.astype(np.int64)


def area_colours(areas):
    """A pale floor tint per distinct area name ('' = corridor grey)."""
    names = [a for a in dict.fromkeys(areas) if a]
    palette = {a: AREA_HEX[i % len(AREA_HEX)] for i, a in enumerate(names)}
    palette[""] = "#c8c8c8"
    return palette


def hex_rgb(h):
    return np.array([int(h[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)


def segments_mesh(segments, z):
    """Line segments [R, 2, 2] lifted to height z: (points, lines)."""
    s = np.asarray(segments, float).reshape(-1, 2, 2)
    pts = np.concatenate([s.reshape(-1, 2), np.full((2 * len(s), 1), float(z))], axis=1)
    lines = np.column_stack([np.full(len(s), 2), 2 * np.arange(len(s)), 2 * np.arange(len(s)) + 1]).reshape(-1)
    return pts, lines.astype(np.int64)


# ----------------------------------------------------------------------------- wafer maps


def tile_offsets(n, pitch, aspect=1.0):
    """Row-major grid of n tile centres (a lot's wafers side by side), top row first.

    ``aspect`` (panel width / height) sets the columns so the tiles fill the panel.
    """
    cols = max(1, min(n, int(np.ceil(np.sqrt(n * aspect)))))
    k = np.arange(n)
    return np.column_stack([(k % cols) * pitch, -(k // cols) * pitch]).astype(float)


def die_quads(die_pass, origin, pitch, die, offset=(0.0, 0.0)):
    """Quads of the dies on a wafer and their pass flags: (points, faces, passed [D] bool)."""
    die_pass = np.asarray(die_pass)
    j, i = np.nonzero(die_pass >= 0)
    x0 = offset[0] + origin[0] + i * pitch[0]
    y0 = offset[1] + origin[1] + j * pitch[1]
    pts, faces = floor_quads(np.column_stack([x0, y0, x0 + die[0], y0 + die[1]]))
    return pts, faces, die_pass[j, i] == 1


def die_rgb(passed):
    return np.where(np.asarray(passed)[:, None], PASS_RGB, FAIL_RGB).astype(np.uint8)


KILLER_DOT_MIN_DIE_PX = 6.0  # below this a dot would hide its die: the red die alone marks the killer


def killer_dot_px(die_px: float) -> float:
    """Killer-dot size in pixels for dies ``die_px`` wide on screen; 0 when dies are too small for dots."""
    return 0.0 if die_px < KILLER_DOT_MIN_DIE_PX else float(min(die_px / 3.0, 6.0))


def circle(radius, centre=(0.0, 0.0), n=128):
    """A closed polyline (points, lines) for a wafer edge."""
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    pts = np.column_stack([centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t), np.zeros(n)])
    lines = np.concatenate([[n + 1], np.arange(n), [0]]).astype(np.int64)
    return pts, lines


def lot_wafer_geometry(maps, lot, aspect=1.0):
    """Every wafer of one lot, tiled: dies coloured pass/fail, defect points, wafer edges."""
    wafers = maps.wafers_of(lot)
    pitch = maps.wafer_diameter_mm * 1.12
    offsets = tile_offsets(len(wafers), pitch, aspect)
    dies_p, dies_f, dies_ok, edges, defects, killers = [], [], [], [], [], []
    # without a killer flag (older files) every defect is drawn as one that may kill
    killer_mask = maps.defect_killer if getattr(maps, "defect_killer", None) is not None else np.ones(len(maps.defect_wafer), bool)
    base = 0
    for w, off in zip(wafers, offsets):
        p, f, ok = die_quads(maps.die_pass[w], maps.origin_mm, maps.pitch_mm, maps.die_mm, off)
        f = f.reshape(-1, 5)
        f[:, 1:] += base
        base += len(p)
        dies_p.append(p)
        dies_f.append(f.reshape(-1))
        dies_ok.append(ok)
        edges.append(circle(maps.wafer_diameter_mm / 2, off))
        on = maps.defect_wafer == w
        defects.append(maps.defect_xy[on] + off)
        killers.append(maps.defect_xy[on & killer_mask] + off)
    return {
        "die_points": np.concatenate(dies_p) if dies_p else np.zeros((0, 3)),
        "die_faces": np.concatenate(dies_f) if dies_f else np.zeros(0, np.int64),
        "die_pass": np.concatenate(dies_ok) if dies_ok else np.zeros(0, bool),
        "edges": edges,
        "defects": np.concatenate(defects) if defects else np.zeros((0, 2)),
        "killers": np.concatenate(killers) if killers else np.zeros((0, 2)),
        "offsets": offsets,
        "wafers": wafers,
    }


# ----------------------------------------------------------------------------- time


def still_indices(n_snapshots, count=4):
    """Evenly spread snapshot indices for stills, always including first and last."""
    count = max(1, min(int(count), n_snapshots))
    return np.unique(np.round(np.linspace(0, n_snapshots - 1, count)).astype(int))


def frame_indices(n_snapshots, max_frames):
    """Snapshot index per movie frame, thinned evenly to at most max_frames."""
    if n_snapshots <= max_frames:
        return np.arange(n_snapshots)
    return np.unique(np.round(np.linspace(0, n_snapshots - 1, max_frames)).astype(int))


def clock_text(time_days, index, name=""):
    """'Day 12 06:00 · snapshot 5/40' for the clock overlay."""
    t = float(time_days[index])
    day, frac = int(np.floor(t)), t - np.floor(t)
    minutes = int(round(frac * 24 * 60))
    hh, mm = divmod(min(minutes, 24 * 60 - 1), 60)
    head = f"{name}   " if name else ""
    return f"{head}Day {day} {hh:02d}:{mm:02d}   (snapshot {index + 1}/{len(time_days)})"


def state_counts(states):
    """Tools in each E10 state at one snapshot."""
    return np.bincount(np.asarray(states, dtype=np.int64), minlength=len(E10_NAMES))
