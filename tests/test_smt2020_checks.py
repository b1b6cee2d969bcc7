"""SMT2020 through the engine, against the tables: calendars, throughput, Little's law, conservation.

- Breakdown and PM shares: calendar-basis failures and time-based PMs do not depend on the load in
  this engine (a failure due during a PM waits for its end; a PM due on a busy tool waits for the
  job), so the calendars are checked over the full 730 days on the line with its releases and
  initial WIP removed, with enough replications that every family's share is known to ~0.1 pp.
- Throughput, Little's law and conservation: the loaded HVLM line with its default (native) rules.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from twin import kpis
from twin.backend import resolve_backend
from twin.compile import compile_line
from twin.errors import ConfigError
from twin.runner import run_line

CPU = resolve_backend("cpu")


def load(dataset):
    from twin.line import load_line

    try:
        return load_line({"loader": "smt2020", "dataset": dataset, "dispatch": "native"})
    except ConfigError as err:
        pytest.skip(f"SMT2020 data absent: {err}")


def calendar_only(line):
    """The same tools and calendars, with no lots (releases never fire, no initial WIP)."""
    releases = tuple(dataclasses.replace(r, max_lots=0) for r in line.releases)
    return dataclasses.replace(line, releases=releases, initial_wip=())


@pytest.mark.parametrize("dataset", ["HVLM", "LVHM"])
def test_breakdown_and_pm_shares_match_their_calendars_over_730_days(dataset):
    line = load(dataset)
    result = run_line(compile_line(calendar_only(line)), 24, 730.0, 0.0, 3, CPU, snapshot_minutes=0)
    rows = kpis.per_replication(result)
    for g in line.tool_groups:
        if g.failure is not None:
            expected = g.failure.repair.mean / (g.failure.ttf.mean + g.failure.repair.mean)
            share = rows[f"tool_group.{g.name}.e10.unscheduled_down"].mean()
            assert abs(share - expected) < 0.005, (g.name, share, expected)
        time_pms = [p for p in g.pms if math.isfinite(p.every_minutes)]
        if time_pms:
            expected = sum(p.duration.mean / p.every_minutes for p in time_pms)
            share = rows[f"tool_group.{g.name}.e10.scheduled_down"].mean()
            assert abs(share - expected) < 0.005, (g.name, share, expected)


@pytest.fixture(scope="module")
def hvlm_run():
    line = load("HVLM")
    result = run_line(compile_line(line), 2, 300.0, 90.0, 5, CPU, snapshot_minutes=0)
    return line, result, kpis.per_replication(result)


def test_hvlm_lot_types_leave_at_their_release_rate_once_warm(hvlm_run):
    line, result, rows = hvlm_run
    window = result.horizon_days - result.warmup_days
    for rel in line.releases:
        rate = 1440.0 / rel.interval_minutes
        out = rows[f"lot_type.{rel.name}.throughput_lots_per_day"].mean()
        # 6% covers the fab's slow drift; the Poisson-like term covers the rare hot lots
        slack = max(0.06 * rate, 3.0 * math.sqrt(rate * window / len(rows[f"lot_type.{rel.name}.wip_lots"])) / window)
        assert abs(out - rate) <= slack, (rel.name, out, rate)


def test_hvlm_littles_law_and_conservation(hvlm_run):
    line, result, rows = hvlm_run
    assert kpis.conservation(result)["ok"]
    for product, gap in kpis.littles_law(rows, [p.name for p in line.products]).items():
        assert gap["relative_gap"] < 0.10, (product, gap)
    ct = {p.name: np.nanmean(rows[f"product.{p.name}.cycle_time_days.mean"]) for p in line.products}
    assert ct["part_3"] > ct["part_4"]  # 583 steps take longer than 343
