"""Runner guarantees: interrupted runs keep finished work; capacity errors are clear."""
from __future__ import annotations

import json

import pytest

from lines import exp_step, open_line, station
from twin import runner
from twin.backend import resolve_backend
from twin.compile import compile_line
from twin.errors import ConfigError
from twin.output import write_run


def test_interrupt_keeps_finished_chunks(tmp_path, monkeypatch):
    line = open_line([station("M", 1)], [exp_step("M", 20.0)], 40.0)
    real = runner._run_chunk
    calls = {"n": 0}

    def interrupt_on_second_chunk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # warm-up, chunk 1, then Ctrl-C during chunk 2
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "_run_chunk", interrupt_on_second_chunk)
    result = runner.run_line(compile_line(line), 6, 10.0, 1.0, 3, resolve_backend("cpu"), chunk_replicas=2)
    assert result.interrupted and result.replicas == 2
    doc = write_run(result, tmp_path, {"replicas": 6})
    assert doc["meta"]["interrupted"] is True
    assert json.loads((tmp_path / "kpis.json").read_text())["meta"]["replications"] == 2


def test_overloaded_line_reports_capacity_not_garbage():
    line = open_line([station("M", 1)], [exp_step("M", 60.0)], 30.0)  # utilisation 2
    with pytest.raises(ConfigError) as err:
        runner.run_line(compile_line(line, max_lots=64), 2, 30.0, 1.0, 1, resolve_backend("cpu"))
    assert "overloaded" in str(err.value)


def test_snapshot_at_time_zero_shows_the_initial_wip_queued():
    """A snapshot at t shows the state after every event at t: initial WIP is already waiting."""
    line = open_line([station("M", 1)], [exp_step("M", 20.0), exp_step("M", 20.0)], 40.0,
                     initial_wip=[{"release": "p", "step": 2, "lots": 5}])
    result = runner.run_line(compile_line(line), 1, 2.0, 0.0, 3, resolve_backend("cpu"), snapshot_minutes=60)
    snaps = result.snapshots
    assert snaps["time_days"][0] == 0.0
    in_process = int(snaps["tool_state"][0, 0] == 0)  # E10 productive
    assert snaps["queue_lots"][0, 0] + in_process == 6  # 5 initial lots + the first release, all at t = 0
