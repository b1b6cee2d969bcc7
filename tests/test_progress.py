"""The progress bar moves once per simulated day, within a chunk, and segments never change results."""
from __future__ import annotations

import numpy as np

from lines import exp_step, open_line, station
from twin import runner
from twin.backend import resolve_backend
from twin.compile import compile_line


def _line():
    return compile_line(open_line([station("M", 2)], [exp_step("M", 30.0), exp_step("M", 20.0)], 40.0))


def test_segments_are_at_most_a_day():
    assert runner.segment_count(730.0) == 730
    assert runner.segment_count(0.25) == 1
    assert runner.segment_count(30.5) == 31
    assert runner.segment_count(1e9) == runner.MAX_SEGMENTS


def test_segment_length_does_not_change_results(monkeypatch):
    c, backend = _line(), resolve_backend("cpu")
    monkeypatch.setattr(runner, "SEGMENT_TARGET_SECONDS", 0.0)  # one launch per day
    daily = runner.run_line(c, 3, 12.0, 2.0, 5, backend)
    coarse = runner.run_line(c, 3, 12.0, 2.0, 5, backend, segments=3)
    for name in (*runner.RESULT_FIELDS, *runner.REP0_FIELDS):
        np.testing.assert_array_equal(daily.stats[name], coarse.stats[name], err_msg=name)


def _bar(monkeypatch):
    updates, postfixes, totals = [], [], []

    class Bar:
        def update(self, k):
            updates.append(k)

        def set_postfix_str(self, text, refresh=True):
            postfixes.append(text)

        def close(self):
            pass

    monkeypatch.setattr(runner, "_progress", lambda total, enabled: totals.append(total) or Bar())
    return updates, postfixes, totals


def test_bar_moves_per_day_inside_one_chunk(monkeypatch):
    """One chunk holds every replication, and a slow line moves the bar once per simulated day."""
    monkeypatch.setattr(runner, "SEGMENT_TARGET_SECONDS", 0.0)  # every day is "slow": one launch per day
    updates, postfixes, totals = _bar(monkeypatch)
    runner.run_line(_line(), 4, 10.0, 2.0, 1, resolve_backend("cpu"), chunk_replicas=4, progress=True)
    assert totals == [40.0]  # replication-days
    assert len(updates) == 10 and np.allclose(updates, 4.0)
    assert postfixes[0] == "day 1 of 10" and postfixes[-1] == "day 10 of 10"


def test_fast_lines_launch_several_days_at_once(monkeypatch):
    """Quick days are grouped (1, 2, 4, ... per launch), on whole days, and the bar still reaches the end."""
    monkeypatch.setattr(runner, "SEGMENT_TARGET_SECONDS", 1e6)
    updates, postfixes, totals = _bar(monkeypatch)
    runner.run_line(_line(), 2, 20.0, 2.0, 1, resolve_backend("cpu"), progress=True)
    assert np.allclose(updates, [2.0, 4.0, 8.0, 16.0, 10.0]) and sum(updates) == totals[0] == 40.0
    assert postfixes == ["day 1 of 20", "day 3 of 20", "day 7 of 20", "day 15 of 20", "day 20 of 20"]


def test_segment_length_does_not_change_the_default_line(monkeypatch):
    """Failures, PMs, batches, setups and snapshots on the shipped line: the same numbers either way."""
    from twin.line import load_line

    c, backend = compile_line(load_line("default")), resolve_backend("cpu")
    monkeypatch.setattr(runner, "SEGMENT_TARGET_SECONDS", 0.0)  # one launch per day
    daily = runner.run_line(c, 2, 8.0, 1.0, 2, backend)
    coarse = runner.run_line(c, 2, 8.0, 1.0, 2, backend, segments=2)
    for name in (*runner.RESULT_FIELDS, *runner.REP0_FIELDS):
        np.testing.assert_array_equal(daily.stats[name], coarse.stats[name], err_msg=name)
    np.testing.assert_array_equal(daily.lot_log, coarse.lot_log)
    np.testing.assert_array_equal(daily.snapshots["tool_state"], coarse.snapshots["tool_state"])
