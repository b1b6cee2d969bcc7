"""Long-run engine defects and the run-size estimates, checked on small lines that simulate in seconds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kernels import layout as K
from twin import tool_sums
from twin.backend import resolve_backend
from twin.compile import compile_line
from twin.errors import ConfigError
from twin.line import load_line, parse_line
from twin.runner import run_line

BASE = Path(__file__).resolve().parent / "bad_inputs" / "_base.yaml"

# Wear-out every 100 wafers (4 lots) and a calendar failure clock of mean 2e5 minutes on the same tools:
# before the fix each wear-out repair left the old failure event in the calendar, which then held
# some 3 stale events per tool per day until their times came (overflow within weeks here).
WEAR_AND_CALENDAR = {
    "name": "wear_and_calendar",
    "tool_groups": [{
        "name": "ETCH", "tools": 2,
        "failures": {"ttf": {"dist": "exponential", "mean": 2.0e5}, "repair": 60, "basis": "calendar"},
        "condition": {"drift_per_wafer": 0.01, "failure_level": 1.0},
    }],
    "products": [{"name": "P", "route": [{"group": "ETCH", "time": {"dist": "exponential", "mean": 30}}]}],
    "releases": [{"name": "L", "product": "P", "interval_minutes": 60, "lot_size": 25}],
}


def test_wear_out_repairs_keep_the_event_calendar_bounded_for_20_years():
    c = compile_line(parse_line(WEAR_AND_CALENDAR))
    years = 20
    r = run_line(c, replicas=2, horizon_days=365.0 * years, warmup_days=0.0, seed=3, backend=resolve_backend("cpu"),
                 snapshot_minutes=0)
    rep_i, s_i = r.stats["rep_i"], r.stats["s_i"]
    assert (rep_i[:, K.R_ERROR] == K.ERR_NONE).all()
    # what can be pending at the end: per tool an activity end, a failure and its PMs; per lot an arrival
    structural = c.n_tools * (2 + K.MAX_PM) + s_i[:, :, K.S_WIP].max() + len(c.stream_names) + len(c.group_names)
    assert rep_i[:, K.R_HEAP_N].max() <= structural
    # every life holds at most 100 wafers (then it wears out), so repairs >= lives - 1 >= wafers / 100 - 1 per tool;
    # the calendar clock adds about horizon / 2e5 failures per tool (Poisson; 5 sd margin)
    wafers = s_i[:, :, K.S_DONE].sum(axis=1) * 25
    repairs = tool_sums.ti_sum(r.stats, K.T_FAILS).sum(axis=1)
    calendar = c.n_tools * 365.0 * years * 1440.0 / 2.0e5
    assert (repairs >= wafers / 100 - c.n_tools).all()
    assert (repairs <= (wafers + 25 * c.n_tools) / 100 + calendar + 5 * np.sqrt(calendar)).all()


# Lu and Kumar (1991): two stations, route S1 -> S2 -> S2 -> S1, each station below load 1 (0.7), but
# priority to the last buffer at S1 and to the second at S2 is unstable because m2 + m4 > interval.
LU_KUMAR = {
    "name": "lu_kumar",
    "tool_groups": [{"name": "S1", "tools": 1, "dispatch": "step_priority"},
                    {"name": "S2", "tools": 1, "dispatch": "step_priority"}],
    "products": [{"name": "P", "route": [
        {"group": "S1", "time": {"dist": "exponential", "mean": 1.0}, "priority": 0},
        {"group": "S2", "time": {"dist": "exponential", "mean": 6.0}, "priority": 1},
        {"group": "S2", "time": {"dist": "exponential", "mean": 1.0}, "priority": 0},
        {"group": "S1", "time": {"dist": "exponential", "mean": 6.0}, "priority": 1},
    ]}],
    "releases": [{"name": "L", "product": "P", "kind": "poisson", "interval_minutes": 10.0}],
}


def test_lot_table_full_below_load_one_names_both_causes():
    line = parse_line(LU_KUMAR)
    c = compile_line(line, max_lots=400)
    with pytest.raises(ConfigError) as info:
        run_line(c, replicas=2, horizon_days=200.0, warmup_days=10.0, seed=1, backend=resolve_backend("cpu"), snapshot_minutes=0)
    msg = str(info.value)
    assert msg.startswith("max_lots: got 400;") and "\n" not in msg
    assert "S1 0.70" in msg and "S2 0.70" in msg  # measured offered loads (7 minutes per 10-minute lot)
    assert "lots in" in msg and "out" in msg  # WIP growth
    assert "dispatch rule" in msg and "Lu-Kumar" in msg and "raise max_lots" in msg
    assert "utilisation >= 1" not in msg
    # the same line under FIFO is stable in the same lot table
    fifo = compile_line(line, dispatch="fifo", max_lots=400)
    r = run_line(fifo, replicas=2, horizon_days=200.0, warmup_days=10.0, seed=1, backend=resolve_backend("cpu"), snapshot_minutes=0)
    assert (r.stats["rep_i"][:, K.R_ERROR] == K.ERR_NONE).all()


def test_lot_table_full_above_load_one_names_the_group():
    overloaded = {**LU_KUMAR, "releases": [{"name": "L", "product": "P", "kind": "poisson", "interval_minutes": 6.0}],
                  "tool_groups": [{"name": "S1", "tools": 1}, {"name": "S2", "tools": 1}]}
    c = compile_line(parse_line(overloaded), max_lots=300)
    with pytest.raises(ConfigError) as info:
        run_line(c, replicas=1, horizon_days=200.0, warmup_days=10.0, seed=1, backend=resolve_backend("cpu"), snapshot_minutes=0)
    assert "is overloaded (load >= 1)" in str(info.value) and "1.17" in str(info.value)


def test_event_and_memory_estimates_match_a_real_run():
    """The events-per-day estimate is within a factor 2 of a run; the result bytes are exact."""
    from twin.sanity import events_per_day, memory_needed
    from twin.runner import RESULT_FIELDS

    c = compile_line(load_line(str(BASE)))
    days, reps = 60.0, 2
    r = run_line(c, replicas=reps, horizon_days=days, warmup_days=1.0, seed=5, backend=resolve_backend("cpu"), snapshot_minutes=240)
    measured = r.events / reps / days
    estimated = sum(events_per_day(c).values())
    assert 0.5 < estimated / measured < 2.0, (estimated, measured)
    need = memory_needed(c, reps, days, 240.0, reps, on_gpu=False)
    assert need.replicas * need.results_per_replication == sum(r.stats[k].nbytes for k in RESULT_FIELDS)
    snaps = r.snapshots
    assert need.snapshots >= sum(a.nbytes for a in snaps.values())
