"""Read a finished run folder for the views, checking it fully before any drawing.

The runner writes the folder (docs/views.md lists the contract).  Every
problem becomes one :class:`DataError` that names the file and what is wrong,
so ``twin view`` can print it and exit 2 instead of failing mid-render.
"""
from __future__ import annotations

import contextlib
import csv
import json
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin.errors import DataError

FORMAT_VERSION = 1
N_E10 = 5  # SEMI E10 codes 0..4 (kernels.layout.E10_NAMES)
REQUIRED_FILES = ("snapshots.npz", "line.json", "tools.csv", "kpis.json")
SNAPSHOT_KEYS = ("time_days", "tool_state", "queue_lots", "tool_group", "group_names", "group_areas", "tool_names", "format_version")
TOOLS_COLUMNS = ("tool", "group", "utilisation", "availability", "failures")


@dataclass(frozen=True)
class WaferMaps:
    """Die pass/fail grids and defect positions of the wafers of a run.

    ``die_pass`` is [W, ny, nx] int8: 1 pass, 0 fail, -1 no die there (off the
    wafer).  Die (j, i) has its lower-left corner at ``origin_mm + (i, j) *
    pitch_mm`` in wafer coordinates (wafer centre at 0, 0).  Defects are flat
    arrays with ``defect_wafer`` giving each one's wafer index.
    """

    lot_ids: np.ndarray  # [W] lot of each wafer
    die_pass: np.ndarray  # [W, ny, nx] int8
    pitch_mm: tuple[float, float]
    origin_mm: tuple[float, float]
    die_mm: tuple[float, float]
    wafer_diameter_mm: float
    defect_wafer: np.ndarray  # [D] int
    defect_xy: np.ndarray  # [D, 2] mm
    defect_killer: np.ndarray | None = None  # [D] bool: the defect kills its die (None: not recorded)

    def lots(self) -> np.ndarray:
        """Distinct lot ids in first-seen order."""
        _, first = np.unique(self.lot_ids, return_index=True)
        return self.lot_ids[np.sort(first)]

    def wafers_of(self, lot) -> np.ndarray:
        return np.flatnonzero(self.lot_ids == lot)


@dataclass(frozen=True)
class RunData:
    """Everything the views draw, aligned by tool and tool-group index."""

    folder: Path
    time_days: np.ndarray  # [S]
    tool_state: np.ndarray  # [S, T] int8 E10 codes
    queue_lots: np.ndarray  # [S, G] int32
    tool_group: np.ndarray  # [T] int32
    group_names: tuple[str, ...]
    group_areas: tuple[str, ...]
    tool_names: tuple[str, ...]
    line: dict  # line.json
    tool_stats: dict[str, np.ndarray]  # utilisation, availability, failures by tool index
    kpis: dict
    wafer_maps: WaferMaps | None

    @property
    def n_snapshots(self) -> int:
        return len(self.time_days)

    @property
    def n_tools(self) -> int:
        return len(self.tool_names)

    def group_positions(self) -> dict[str, tuple[float, float]]:
        """Explicit floor positions (metres) from the line config, by group name."""
        out = {}
        for g in self.line.get("groups") or []:
            if g.get("position") is not None:
                out[str(g["name"])] = (float(g["position"][0]), float(g["position"][1]))
        return out


def load_run(folder) -> RunData:
    """Load and check a run folder; raises DataError naming the first problem."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(root, None, None, "no such run folder (give the output folder of `twin run`)")
    missing = [name for name in REQUIRED_FILES if not (root / name).is_file()]
    if missing:
        raise DataError(root, None, None, f"incomplete run folder: missing {', '.join(missing)} (a finished `twin run` writes {', '.join(REQUIRED_FILES)})")
    with _reading(root / "snapshots.npz"):
        snaps = _load_snapshots(root / "snapshots.npz")
    with _reading(root / "line.json"):
        line = _load_json(root / "line.json")
        _check_version(root / "line.json", line.get("format_version"))
    with _reading(root / "kpis.json"):
        kpis = _load_json(root / "kpis.json")
        meta = kpis.get("meta") if isinstance(kpis.get("meta"), dict) else {}
        _check_version(root / "kpis.json", meta.get("format_version"), meta.get("fabtwin_version"))
    with _reading(root / "line.json"):
        _check_line_groups(root / "line.json", line, snaps["group_names"])
    with _reading(root / "tools.csv"):
        stats = _load_tool_stats(root / "tools.csv", snaps["tool_names"])
    maps_path = root / "wafer_maps.npz"
    wafer_maps = load_wafer_maps(maps_path) if maps_path.is_file() else None
    return RunData(
        folder=root,
        time_days=snaps["time_days"],
        tool_state=snaps["tool_state"],
        queue_lots=snaps["queue_lots"],
        tool_group=snaps["tool_group"],
        group_names=snaps["group_names"],
        group_areas=snaps["group_areas"],
        tool_names=snaps["tool_names"],
        line=line,
        tool_stats=stats,
        kpis=kpis,
        wafer_maps=wafer_maps,
    )


@contextlib.contextmanager
def _reading(path):
    """Any failure while reading ``path`` becomes one DataError naming it (a corrupt or hand-edited file)."""
    try:
        yield
    except DataError:
        raise
    except UnicodeDecodeError as err:
        raise DataError(path, None, None, f"is not UTF-8 text (byte 0x{err.object[err.start]:02X} at offset {err.start}); re-run `twin run`") from None
    except (csv.Error, zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        raise DataError(path, None, None, f"is corrupt or truncated ({type(err).__name__}: {err}); re-run `twin run`") from None
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError, RecursionError) as err:
        raise DataError(path, None, None, f"holds values of the wrong kind or shape ({type(err).__name__}: {err}); re-run `twin run`") from None


def _check_version(path, version, writer=None):
    if version is None:
        raise DataError(path, None, "format_version", "missing; this run folder predates the view format (re-run `twin run`)")
    if version != FORMAT_VERSION:
        by = f" (written by fabtwin {writer})" if writer else ""
        raise DataError(path, None, "format_version", f"is {version!r}{by}; this twin reads format_version {FORMAT_VERSION} (re-run `twin run` with this version)")


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(path, err.lineno, str(err.colno), f"not valid JSON: {err.msg}") from None
    if not isinstance(data, dict):
        raise DataError(path, None, None, "must hold a JSON object")
    return data


def _open_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise DataError(path, None, None, "is a single .npy array, not an .npz archive of named arrays")
            return {k: npz[k] for k in npz.files}
    except DataError:
        raise
    except ValueError as err:
        raise DataError(path, None, None, f"cannot be read without pickle, or is corrupt: {err}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as err:
        raise DataError(path, None, None, f"is not a readable .npz archive ({type(err).__name__}: {err}); re-run `twin run`") from None


def _load_snapshots(path: Path) -> dict:
    raw = _open_npz(path)
    missing = [k for k in SNAPSHOT_KEYS if k not in raw]
    if "format_version" in raw:
        _check_version(path, int(raw["format_version"]))
    if missing:
        raise DataError(path, None, None, f"incomplete snapshots: missing array(s) {', '.join(missing)}")
    t = np.asarray(raw["time_days"], dtype=np.float64)
    state = np.asarray(raw["tool_state"])
    queue = np.asarray(raw["queue_lots"])
    tool_group = np.asarray(raw["tool_group"])
    groups = tuple(str(s) for s in np.atleast_1d(raw["group_names"]))
    areas = tuple(str(s) for s in np.atleast_1d(raw["group_areas"]))
    tools = tuple(str(s) for s in np.atleast_1d(raw["tool_names"]))
    n_s, n_t, n_g = len(t), len(tools), len(groups)
    _expect_shape(path, "time_days", t, (n_s,))
    if n_s < 1:
        raise DataError(path, None, "time_days", "holds no snapshots (was snapshot recording off?)")
    if n_t < 1 or n_g < 1:
        raise DataError(path, None, "tool_names", "holds no tools or no tool groups")
    _expect_shape(path, "tool_state", state, (n_s, n_t))
    _expect_shape(path, "queue_lots", queue, (n_s, n_g))
    _expect_shape(path, "tool_group", tool_group, (n_t,))
    _expect_shape(path, "group_areas", np.asarray(areas), (n_g,))
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) < 0):
        raise DataError(path, None, "time_days", "must be finite and non-decreasing")
    if state.size and (state.min() < 0 or state.max() >= N_E10):
        raise DataError(path, None, "tool_state", f"holds codes outside the SEMI E10 states 0..{N_E10 - 1} (found {int(state.min())}..{int(state.max())})")
    if tool_group.min() < 0 or tool_group.max() >= n_g:
        raise DataError(path, None, "tool_group", f"must index group_names (0..{n_g - 1})")
    if queue.size and queue.min() < 0:
        raise DataError(path, None, "queue_lots", "holds negative lot counts")
    return {
        "time_days": t,
        "tool_state": state.astype(np.int8, copy=False),
        "queue_lots": queue.astype(np.int32, copy=False),
        "tool_group": tool_group.astype(np.int32, copy=False),
        "group_names": groups,
        "group_areas": areas,
        "tool_names": tools,
    }


def _expect_shape(path, key, arr, shape):
    if tuple(np.shape(arr)) != tuple(shape):
        raise DataError(path, None, key, f"has shape {tuple(np.shape(arr))}; expected {tuple(shape)} (snapshots x tools x groups must agree)")


def _check_line_groups(path, line, group_names):
    groups = line.get("groups")
    if not isinstance(groups, list):
        raise DataError(path, None, "groups", "missing or not a list")
    names = [str(g.get("name")) for g in groups if isinstance(g, dict)]
    if names != list(group_names):
        extra = sorted(set(names) ^ set(group_names))[:5]
        raise DataError(path, None, "groups", f"do not match snapshots.npz group_names (differ in: {', '.join(extra) or 'order'})")
    for i, g in enumerate(groups):
        pos = g.get("position")
        ok = pos is None or (isinstance(pos, list) and len(pos) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in pos))
        if not ok:
            raise DataError(path, None, f"groups[{i}].position", f"got {pos!r}; must be [x, y] in metres or null")


def _load_tool_stats(path: Path, tool_names) -> dict[str, np.ndarray]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        absent = [c for c in TOOLS_COLUMNS if c not in (reader.fieldnames or [])]
        if absent:
            raise DataError(path, 1, None, f"missing column(s) {', '.join(absent)}")
        rows = {}
        for line_no, row in enumerate(reader, start=2):
            rows[row["tool"]] = (line_no, row)
    index = {name: i for i, name in enumerate(tool_names)}
    lacking = [n for n in tool_names if n not in rows]
    if lacking:
        raise DataError(path, None, "tool", f"no row for {len(lacking)} tool(s) of snapshots.npz, e.g. {', '.join(lacking[:3])}")
    out = {c: np.full(len(tool_names), np.nan) for c in TOOLS_COLUMNS[2:]}
    for name, (line_no, row) in rows.items():
        if name not in index:
            continue
        for c in out:
            try:
                out[c][index[name]] = float(row[c])
            except (TypeError, ValueError):
                raise DataError(path, line_no, c, f"got {row[c]!r}; must be a number") from None
    return out


# ----------------------------------------------------------------------------- wafer maps

WAFER_KEYS = ("lot_id", "die_pass", "defect_wafer", "defect_x_mm", "defect_y_mm")


def load_wafer_maps(path) -> WaferMaps:
    """Read wafer_maps.npz (written by the yield module; docs/yield.md)."""
    path = Path(path)
    with _reading(path):
        return _wafer_maps(path, _open_npz(path))


def _wafer_maps(path, raw) -> WaferMaps:
    if "format_version" in raw:
        _check_version(path, int(raw["format_version"]))
    missing = [k for k in WAFER_KEYS if k not in raw]
    if missing:
        raise DataError(path, None, None, f"incomplete wafer maps: missing array(s) {', '.join(missing)}")
    die_pass = np.asarray(raw["die_pass"]).astype(np.int8)
    lots = np.asarray(raw["lot_id"])
    if die_pass.ndim != 3 or lots.shape != (die_pass.shape[0],):
        raise DataError(path, None, "die_pass", f"has shape {die_pass.shape}; expected [wafers, rows, cols] with lot_id [wafers]")
    dw = np.asarray(raw["defect_wafer"]).astype(np.int64)
    dxy = np.stack([np.asarray(raw["defect_x_mm"], float), np.asarray(raw["defect_y_mm"], float)], axis=1) if len(dw) else np.zeros((0, 2))
    if dxy.shape[0] != len(dw) or (len(dw) and (dw.min() < 0 or dw.max() >= die_pass.shape[0])):
        raise DataError(path, None, "defect_wafer", "defect arrays must have equal length and index wafers")
    die = _pair(raw, "die_mm", (10.0, 10.0))
    pitch = _pair(raw, "pitch_mm", die)
    ny, nx = die_pass.shape[1:]
    origin = _pair(raw, "origin_mm", (-nx * pitch[0] / 2.0, -ny * pitch[1] / 2.0))
    diameter = float(raw["wafer_diameter_mm"]) if "wafer_diameter_mm" in raw else 300.0
    killer = np.asarray(raw["defect_killer"]).astype(bool) if "defect_killer" in raw else None
    return WaferMaps(lots, die_pass, pitch, origin, die, diameter, dw, dxy,
                     killer if killer is not None and killer.shape == dw.shape else None)


def _pair(raw, key, default) -> tuple[float, float]:
    if key not in raw:
        return (float(default[0]), float(default[1]))
    v = np.atleast_1d(np.asarray(raw[key], float))
    return (float(v[0]), float(v[-1]))
