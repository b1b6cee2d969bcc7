"""smt2020_report.csv (the published tables' format) and the stability windows, against theory and the run."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from kernels import layout as K
from lines import exp_step, open_line, station
from theory import within
from twin import kpis
from twin.backend import resolve_backend
from twin.compile import compile_line
from twin.runner import run_line
from twin.smt2020_report import (COLUMNS, REPORT_NAME, is_smt2020_line, stability_windows, write_if_smt2020,
                                 write_rows)

CPU = resolve_backend("cpu")
RHO, SERVICE = 0.5, 10.0


def mm1():
    return open_line([station("M", 1)], [exp_step("M", SERVICE)], SERVICE / RHO)


def test_each_window_of_an_mm1_line_holds_its_steady_state():
    """M/M/1 at rho = 0.5 from empty: after the first window, every 10-day window's WIP is rho / (1 - rho)
    and its mean cycle time 1 / (mu - lambda), within the replications' CI: no drift."""
    rows = stability_windows(compile_line(mm1()), 12, 40.0, 10.0, 7, CPU)
    cell = {(r["window_start_days"], r["name"], r["metric"]): r for r in rows}
    assert sorted({r["window_start_days"] for r in rows}) == [0.0, 10.0, 20.0, 30.0]
    for start in (10.0, 20.0, 30.0):
        wip = cell[(start, "all", "wip_lots")]
        assert within(wip["mean"], wip["ci95"], RHO / (1 - RHO)), wip
        ct = cell[(start, "normal", "cycle_time_days")]
        assert within(ct["mean"] * 1440.0, ct["ci95"] * 1440.0, SERVICE / (1 - RHO)), ct


def test_windows_partition_the_run():
    """The windows' completions add up to the same run's total (same seed, warm-up 0): nothing is lost or
    counted twice at a window boundary, and the last window's end WIP is the run's final WIP."""
    c = compile_line(mm1())
    rows = stability_windows(c, 3, 30.0, 10.0, 11, CPU)
    done = sum(r["mean"] * 10.0 for r in rows if r["name"] == "all" and r["metric"] == "throughput_lots_per_day")
    result = run_line(c, 3, 30.0, 0.0, 11, CPU, snapshot_minutes=0)
    assert done == pytest.approx(result.stats["s_f"][:, :, K.SS_DONE].sum(axis=1).mean())
    end = next(r for r in rows if r["window_start_days"] == 20.0 and r["name"] == "all" and r["metric"] == "wip_lots_at_end")
    assert end["mean"] == pytest.approx(result.stats["s_i"][:, :, K.S_WIP].sum(axis=1).mean())


def test_the_report_is_written_only_for_smt2020_lines(tmp_path):
    assert is_smt2020_line({"loader": "smt2020", "dataset": "HVLM"}) and is_smt2020_line("smt2020_lvhm")
    assert not is_smt2020_line("default") and not is_smt2020_line({"name": "x"})
    result = run_line(compile_line(mm1()), 2, 3.0, 1.0, 1, CPU, snapshot_minutes=0)
    assert write_if_smt2020(result, tmp_path, "default") is None
    path = write_if_smt2020(result, tmp_path, "smt2020_hvlm")
    assert path == tmp_path / REPORT_NAME and [p.name for p in tmp_path.iterdir()] == [REPORT_NAME]
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == COLUMNS
    by = {(r["table"], r["name"], r["metric"]): r for r in rows}
    shares = [float(by[("tool_family", "M", m)]["mean"]) for m in ("availability_pct", "breakdown_pct", "pm_pct")]
    assert shares[0] + shares[1] + shares[2] == pytest.approx(100.0)
    util = float(by[("tool_family", "M", "utilisation_pct")]["mean"])
    assert 20.0 < util < 80.0  # rho = 0.5 on a tool that never fails
    done = float(by[("lot_type", "p", "finished_of_released")]["mean"])
    released = float(by[("lot_type", "p", "released_in_window")]["mean"])
    assert 0 < done <= released


def test_a_failed_write_leaves_no_partial_file(tmp_path):
    path = tmp_path / REPORT_NAME
    with pytest.raises(KeyError):
        write_rows(path, [{"table": "t"}])  # a row without the other columns
    assert list(tmp_path.iterdir()) == []


def test_utilisation_of_available_time_on_a_failing_tool():
    """Tool busy share of calendar = rho; utilisation of available time = rho / availability."""
    group = station("M", 1, failures={"ttf": {"dist": "exponential", "mean": 900.0},
                                      "repair": {"dist": "exponential", "mean": 100.0}})
    line = open_line([group], [exp_step("M", SERVICE)], SERVICE / RHO * 1.25)
    result = run_line(compile_line(line), 8, 60.0, 5.0, 2, CPU, snapshot_minutes=0)
    from twin.smt2020_report import tool_family_samples
    shares = tool_family_samples(result)["M"]
    busy_calendar = shares["utilisation_pct"] * shares["availability_pct"] / 100.0
    s = kpis.summarize(busy_calendar)
    assert within(s["mean"], s["ci95"], 100.0 * RHO / 1.25), s
    a = kpis.summarize(shares["availability_pct"])
    assert within(a["mean"], a["ci95"], 100.0 * 900.0 / 1000.0), a
    assert np.allclose(shares["availability_pct"] + shares["breakdown_pct"] + shares["pm_pct"], 100.0)
