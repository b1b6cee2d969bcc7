"""twin.simulate: the same scenario as twin run, KPIs of every replication as tidy, numeric tables."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import twin
from twin.errors import ConfigError

from test_studies_cli import TINY

pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def tiny_line(tmp_path_factory):
    path = tmp_path_factory.mktemp("line") / "tiny.yaml"
    path.write_text(TINY)
    return str(path)


@pytest.fixture(scope="module")
def result(tiny_line):
    return twin.simulate(line=tiny_line, replicas=5, horizon_days=15, warmup_days=3, backend="cpu", seed=4,
                         overrides=["line.tool_groups.ETCH.tools=5"], snapshot_minutes=0)


def test_the_settings_reach_the_run(result):
    meta = result.kpis["meta"]
    assert (meta["replications"], meta["horizon_days"], meta["warmup_days"], meta["seed"], meta["backend"]) == (5, 15, 3, 4, "cpu")
    assert result.folder is None  # the temporary run folder is gone


def test_to_pandas_is_long_format_over_every_replication(result):
    df = result.to_pandas()
    assert list(df.columns) == ["replication", "scope", "entity", "kpi", "value"]
    assert pd.api.types.is_integer_dtype(df["replication"]) and pd.api.types.is_float_dtype(df["value"])
    assert sorted(df["replication"].unique()) == [0, 1, 2, 3, 4]
    per_kpi = df.groupby(["scope", "entity", "kpi"]).size()
    assert (per_kpi == 5).all()
    assert {"product", "lot_type", "tool_group"} <= set(df["scope"])


def test_the_tidy_values_are_the_kpis_of_kpis_json(result):
    df = result.to_pandas()
    for scope, section in (("product", "products"), ("tool_group", "tool_groups")):
        for entity, kpis in result.kpis[section].items():
            for kpi in ("throughput_lots_per_day", "utilisation"):
                if kpi not in kpis:
                    continue
                values = df[(df.scope == scope) & (df.entity == entity) & (df.kpi == kpi)]["value"]
                assert values.mean() == pytest.approx(kpis[kpi]["mean"], rel=1e-5)


def test_lot_and_tool_tables_hold_numbers_in_numeric_columns(result):
    lots, tools = result.to_pandas("lots"), result.to_pandas("tools")
    for column in ("release_day", "completion_day", "cycle_time_days", "due_day", "on_time"):
        assert pd.api.types.is_numeric_dtype(lots[column]), column
    assert lots["initial"].dtype == bool
    assert lots.loc[lots["initial"], "release_day"].isna().all()
    assert (lots.loc[~lots["initial"], "release_day"] >= 0).all()
    assert set(tools["group"]) == {"PREP", "ETCH"} and (tools["group"] == "ETCH").sum() == 5  # the override
    assert pd.api.types.is_float_dtype(tools["utilisation"])


def test_a_kept_folder_reads_back_the_same(tiny_line, tmp_path):
    kept = twin.simulate(line=tiny_line, replicas=3, horizon_days=10, warmup_days=2, backend="cpu", out_dir=tmp_path / "run")
    again = twin.open_run(tmp_path / "run")
    assert kept.folder == tmp_path / "run"
    assert again.kpis == kept.kpis
    assert np.array_equal(again.table()["value"], kept.table()["value"], equal_nan=True)


@pytest.mark.parametrize("settings, field", [({"seed": "x"}, "seed"), ({"no_such": 1}, "no_such"),
                                             ({"yield": {"defect_scal": 2}}, "yield")])
def test_bad_settings_raise_config_errors_naming_the_field(tiny_line, settings, field):
    with pytest.raises(ConfigError, match=field):
        twin.simulate(line=tiny_line, replicas=2, horizon_days=5, warmup_days=1, **settings)


def test_import_twin_stays_light():
    code = "import sys, twin; print(sorted(m for m in ('hydra', 'pandas', 'omegaconf') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
