"""The Python API: one call runs a scenario and hands back its KPIs and tidy tables.

    import twin
    result = twin.simulate(line="default", replicas=64, horizon_days=90, seed=3,
                           overrides=["line.tool_groups.LITHO_SCAN.tools=4"])
    result.kpis["products"]["logic_a"]["cycle_time_days"]["mean"]   # {"mean", "ci95", "n"}
    result.to_pandas()          # replication, scope, entity, kpi, value: every KPI of every replication

The scenario is composed exactly as ``twin run`` composes it (Hydra, the typed schema, the same
validation), and the numbers are those of its run folder, so a notebook and the CLI agree.
:func:`open_run` reads a folder that ``twin run`` wrote into the same result.
"""
from __future__ import annotations

import csv
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twin.errors import ConfigError

SCOPES = ("product", "lot_type", "tool_group")
TABLES = ("kpis", "lots", "tools")


@dataclass
class SimulationResult:
    """A finished run: ``kpis`` is kpis.json's content, the tables are held in memory."""

    kpis: dict
    replications: dict  # column -> array, from replications.csv
    lots: dict = field(default_factory=dict)  # column -> array, from lots_rep*.csv
    tools: dict = field(default_factory=dict)  # column -> array, from tools.csv
    folder: Path | None = None  # the run folder when one was kept (out_dir=...)

    def table(self, name: str = "kpis") -> dict:
        """A tidy table as ``{column: numpy array}``: ``kpis`` (long format, every replication),
        ``lots`` or ``tools`` (one row per lot / tool, with their replication)."""
        if name == "kpis":
            return tidy_kpis(self.replications)
        if name in ("lots", "tools"):
            return getattr(self, name)
        raise ConfigError("table", name, f"allowed: {', '.join(TABLES)}")

    def to_pandas(self, name: str = "kpis"):
        """:meth:`table` as a pandas DataFrame (pandas is imported here, not by ``import twin``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas needs pandas: pip install pandas (or fabtwin[studies])") from None
        return pd.DataFrame(self.table(name))


def simulate(line="default", replicas: int = 64, horizon_days: float | None = 90, *, overrides=(), out_dir=None,
             **settings) -> SimulationResult:
    """Run one scenario and return its results.

    ``line``: an embedded name, a YAML path, or a line mapping.  ``settings``: any top-level setting of
    configs/config.yaml (``seed=3``, ``backend="cpu"``, ``dispatch="cr"``).  ``overrides``: Hydra override
    strings, for nested items (``"line.tool_groups.LITHO_SCAN.tools=4"``, and ``"yield.defect_scale=2"``:
    ``yield`` is a Python keyword).
    ``out_dir``: keep the run folder there (``twin view``/``twin compare`` read it); else a temporary one.
    """
    from twin.app import run_scenario

    config = scenario_config(line, replicas, horizon_days, list(overrides), settings)
    if out_dir is not None:
        run_scenario(config, out_dir)
        return open_run(out_dir)
    with tempfile.TemporaryDirectory(prefix="fabtwin-") as tmp:
        run_scenario(config, tmp)
        result = open_run(tmp)
    result.folder = None
    return result


def scenario_config(line, replicas, horizon_days, overrides: list[str], settings: dict) -> dict:
    """The config dict ``twin run`` would run: composed by Hydra, then ``settings`` merged under the schema."""
    from omegaconf import OmegaConf

    from twin.cli import line_file_overrides
    from twin.sweeps import compose_config

    given_line = None
    if isinstance(line, dict):
        given_line, line_args = line, []
    else:
        line_args = line_file_overrides([f"line={line}", *overrides])
    cfg = compose_config(line_args if given_line is None else list(overrides))
    values = {"replicas": replicas, "horizon_days": horizon_days, "progress": False, **settings}
    if isinstance(values.get("backend"), str):
        values["backend"] = {"name": values["backend"]}
    for key, value in values.items():
        try:
            cfg.merge_with({key: value})
        except Exception as err:  # OmegaConf's key and type errors
            raise ConfigError(key, value, _reason(err)) from None
    config = OmegaConf.to_container(cfg, resolve=True)
    if given_line is not None:
        config["line"] = given_line
    return config


def _reason(err) -> str:
    text = [t.strip() for t in str(err).splitlines() if t.strip()]
    return text[0] if text else type(err).__name__


def open_run(folder) -> SimulationResult:
    """A run folder written by ``twin run`` (or ``simulate(out_dir=...)``) as a :class:`SimulationResult`."""
    import json

    folder = Path(folder)
    if not (folder / "kpis.json").is_file():
        raise ConfigError("folder", str(folder), "is not a run folder (no kpis.json)")
    doc = json.loads((folder / "kpis.json").read_text())
    lots = [read_table(p, replication=_rep_of(p)) for p in sorted(folder.glob("lots_rep*.csv"))]
    tools = read_table(folder / "tools.csv", replication=0) if (folder / "tools.csv").is_file() else {}
    return SimulationResult(doc, read_table(folder / "replications.csv"), _concat(lots), tools, folder)


def tidy_kpis(replications: dict) -> dict:
    """replications.csv (one column per KPI) in long format: replication, scope, entity, kpi, value.

    ``product.logic_a.cycle_time_days.mean`` is scope ``product``, entity ``logic_a``, kpi
    ``cycle_time_days.mean``; a column outside the per-entity scopes is scope and entity ``line``.
    """
    rep = np.asarray(replications["replication"], dtype=np.int64)
    names = [k for k in replications if k != "replication"]
    parts = [_split(k) for k in names]
    n = rep.size
    return {
        "replication": np.tile(rep, len(names)),
        "scope": np.repeat(np.array([p[0] for p in parts], dtype=object), n),
        "entity": np.repeat(np.array([p[1] for p in parts], dtype=object), n),
        "kpi": np.repeat(np.array([p[2] for p in parts], dtype=object), n),
        "value": np.concatenate([np.asarray(replications[k], dtype=np.float64) for k in names]) if names else np.zeros(0),
    }


def _split(column: str) -> tuple[str, str, str]:
    scope, _, rest = column.partition(".")
    if scope in SCOPES and "." in rest:
        entity, _, kpi = rest.partition(".")
        return scope, entity, kpi
    return "line", "line", column


def read_table(path: Path, replication: int | None = None) -> dict:
    """A CSV as ``{column: array}``: float arrays (NaN where blank) for numeric columns, object arrays
    for text.  ``release_day`` reads ``initial`` (a lot in the line at time 0) as NaN, with a boolean
    ``initial`` column beside it, so numeric columns hold numbers only."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    out = {}
    if replication is not None and "replication" not in header:
        out["replication"] = np.full(len(body), replication, dtype=np.int64)
    for j, name in enumerate(header):
        texts = [row[j] if j < len(row) else "" for row in body]
        if name == "release_day" and "initial" not in header:
            out["initial"] = np.array([t == "initial" for t in texts], dtype=bool)
            texts = ["" if t == "initial" else t for t in texts]
        out[name] = _column(texts, integer=name == "replication")
    return out


def _column(texts: list[str], integer: bool = False):
    try:
        values = np.array([float(t) if t != "" else math.nan for t in texts], dtype=np.float64)
    except ValueError:
        return np.array(texts, dtype=object)
    return values.astype(np.int64) if integer and np.isfinite(values).all() else values


def _rep_of(path: Path) -> int:
    digits = path.stem.rpartition("rep")[2]
    return int(digits) if digits.isdigit() else 0


def _concat(tables: list[dict]) -> dict:
    if not tables:
        return {}
    keys = list(tables[0])
    return {k: np.concatenate([t[k] for t in tables if k in t]) for k in keys}
