"""A lot table that starts near the live WIP and grows gives the run of a table that never runs short.

kernels/growth.py argues why: slots and queue blocks come from LIFO free lists whose never-used entries
lie at the tail in index order, so appending the new entries there gives the larger table's lists, and
the calendar orders events by ``(time, code)`` whatever slot they sit in. Checked here against the
specification itself (a Python model of a larger table's free list; Python's sort for the calendar),
then as whole runs: every statistic, the lot log and the snapshots equal, bit for bit, those of the
largest table, on the CPU (several chunks, a checkpoint taken after the table grew) and under the CUDA
simulator for both launchers.
"""
from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import numpy as np
import pytest

from cuda_check import run_script
from kernels import layout as K
from kernels.calendar import BLOCKED, HEAP, calendar_shape, calendar_sizes, grow_calendar
from kernels.growth import grow_queue_blocks, _grown_lot_rows
from lines import every_feature_line, exp_step, open_line, station
from test_calendar import driver, reference

TESTS = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------- the free lists


def lifo_history(seed, size, steps, entries=8):
    """A free list of ``size`` entries (0 .. size - 1 in order, as the engine starts it) after ``steps``
    random takes from its head and returns to it, the moves chosen so that a list of ``entries`` never
    runs dry: ``(list, taken)``. Python lists: the specification."""
    rng = np.random.default_rng(seed)
    free, taken = list(range(size)), []
    for _ in range(steps):
        if len(taken) < entries and (not taken or rng.random() < 0.6):
            taken.append(free.pop(0))
        elif taken:
            free.insert(0, taken.pop(int(rng.integers(len(taken)))))
    return free, taken


def walk(links, head):
    out = []
    while head >= 0:
        out.append(int(head))
        head = links[head]
    return out


HISTORIES = [(1, 40), (2, 400), (3, 7)]  # (seed, steps) on 8 entries: freed entries before never-used ones,
# every entry taken (an empty list), and a list that still has its never-used tail


@pytest.mark.parametrize("seed,steps", HISTORIES)
def test_grown_lot_slots_are_the_free_list_of_a_larger_table(seed, steps):
    small, big = 8, 20
    free, taken = lifo_history(seed, small, steps)
    assert lifo_history(seed, big, steps)[1] == taken  # a larger table hands out the same slots...
    li = np.zeros((1, small, K.N_LI), np.int32)
    li[0, :, K.L_STATUS] = K.QUEUED
    li[0, free, K.L_STATUS] = K.FREE
    for a, b in zip(free, free[1:] + [-1]):
        li[0, a, K.L_NEXT] = b
    for lot in taken:
        li[0, lot, K.L_NEXT] = -1  # a lot in use may hold anything there
    rep_i = np.zeros((1, K.N_RI_STATE), np.int64)
    rep_i[0, K.R_FREE_HEAD] = free[0] if free else -1
    grown = _grown_lot_rows(np, li, rep_i, big)
    want = lifo_history(seed, big, steps)[0]  # ...and then has this free list
    assert walk(grown[0, :, K.L_NEXT], rep_i[0, K.R_FREE_HEAD]) == want
    assert (grown[0, small:, K.L_STATUS] == K.FREE).all()
    changed = np.flatnonzero((grown[0, :small] != li[0]).any(axis=1))
    assert list(changed) == ([free[-1]] if free else [])  # only the old tail's link


@pytest.mark.parametrize("seed,steps", HISTORIES)
def test_grown_queue_blocks_are_the_free_list_of_a_larger_table(seed, steps):
    small, big = 8, 20
    free, taken = lifo_history(seed, small, steps)
    qb = np.zeros((1, small, K.N_QB), np.int32)
    for a, b in zip(free, free[1:] + [-1]):
        qb[0, a, K.QB_NEXT] = b
    for block in taken:  # a block in a queue holds lots; the last one of a queue links to -1
        qb[0, block, K.QB_COUNT] = 3
        qb[0, block, K.QB_NEXT] = -1
    rep_i = np.zeros((1, K.N_RI_STATE), np.int64)
    rep_i[0, K.R_QBLOCK_FREE] = free[0] if free else -1
    grown = grow_queue_blocks(np, qb, rep_i, big)
    assert walk(grown[0, :, K.QB_NEXT], rep_i[0, K.R_QBLOCK_FREE]) == lifo_history(seed, big, steps)[0]
    assert (grown[0, small:, K.QB_COUNT] == 0).all()


# ----------------------------------------------------------------------------- the calendar


def filling_ops(seed, peak):
    """Puts three times as often as takes until ``peak`` events are pending, with tied times and
    cancellations (test_calendar's operation rows), then a drain."""
    rng = np.random.default_rng(seed)
    ops, live, code = [], [], 0
    while len(live) < peak:
        u = rng.random()
        if u < 0.72 or not live:
            t = float(rng.integers(0, 40)) if rng.random() < 0.6 else float(rng.exponential(50.0))
            ops.append((0, t, code))
            live.append((t, code))
            code += 1
        elif u < 0.96:
            ops.append((1, 0.0, 0))
            live.remove(min(live))
        else:
            victim = live.pop(int(rng.integers(len(live))))
            ops.append((2, 0.0, victim[1]))
    ops += [(1, 0.0, 0)] * (len(live) + 1)
    return np.array(ops, np.float64)


@pytest.mark.parametrize("form", [HEAP, BLOCKED])
def test_a_grown_calendar_gives_the_events_in_time_and_code_order(form):
    """The operations up to the moment the calendar of one super-block row would overflow, then the
    rest in the calendar grown to three times that: the events come out in Python's sort order."""
    small = calendar_shape(1)[0]
    ops = filling_ops(11, 3 * small)
    pending = np.zeros(len(ops), np.int64)
    n = 0
    for i, (kind, _, _) in enumerate(ops):
        n = n + 1 if kind == 0 else max(n - 1, 0)  # a cancellation names a pending event
        pending[i] = n
    split = int(np.argmax(pending >= small))  # the put that would find the small calendar full
    assert 0 < split and pending.max() > 2 * small  # and the grown calendar holds far more
    ht = np.zeros((1, calendar_sizes(small)[0]))
    hc = np.zeros((1, calendar_sizes(small)[1]), np.int64)
    rep_i = np.zeros((1, K.N_RI_STATE), np.int64)
    out = np.zeros((len(ops), 2))
    run = driver(form)
    n = run(ops[:split], ht[0], hc[0], rep_i[0], out, 0, True)
    in_outbox = rep_i[0, K.R_OUTBOX_N] if form == HEAP else 0  # the heap counts its out-box apart
    assert rep_i[0, K.R_HEAP_N] + in_outbox == small - 1  # one short of full, maybe with an unflushed put
    ht, hc = grow_calendar(np, ht, hc, 3 * small)
    assert calendar_shape(3 * small)[0] == hc.shape[1] // 2 > small
    n = run(ops[split:], ht[0], hc[0], rep_i[0], out, n, False)
    assert rep_i[0, K.R_ERROR] == 0
    np.testing.assert_array_equal(out[:n], reference(ops))
    assert rep_i[0, K.R_HEAP_N] == 0


# ----------------------------------------------------------------------------- whole runs


def two_stream_line():
    """A Poisson stream and a CONWIP stream of one product, on a line with failures."""
    failures = {"ttf": {"dist": "exponential", "mean": 300.0}, "repair": {"dist": "exponential", "mean": 30.0}}
    releases = [{"name": "open", "product": "p", "kind": "poisson", "interval_minutes": 25.0, "lot_size": 1, "due_days": 1000},
                {"name": "closed", "product": "p", "kind": "conwip", "wip_cap": 6, "lot_size": 1, "due_days": 1000}]
    return open_line([station("A", 2, failures=failures), station("B", 1)], [exp_step("A", 20.0), exp_step("B", 15.0)],
                     25.0, releases=releases)


LINES = {"every feature": lambda: every_feature_line(waiting_at_a=40), "poisson and conwip": two_stream_line}


def assert_same_run(grown, whole):
    from twin.runner import REP0_FIELDS, RESULT_FIELDS

    assert grown.events == whole.events > 1000
    for key in (*RESULT_FIELDS, *REP0_FIELDS):
        np.testing.assert_array_equal(grown.stats[key], whole.stats[key], err_msg=key)
    np.testing.assert_array_equal(grown.lot_log, whole.lot_log)
    for key in whole.snapshots:
        np.testing.assert_array_equal(grown.snapshots[key], whole.snapshots[key], err_msg=key)


def start_small(c):
    """The smallest table the initial WIP fits: it must grow soon."""
    return dataclasses.replace(c, lot_slots=c.wip.shape[0] + 1)


@pytest.mark.parametrize("name", LINES)
@pytest.mark.parametrize("chunk", [0, 1])
def test_a_run_whose_lot_table_grows_equals_the_run_of_the_largest_table(name, chunk):
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.runner import run_line

    c = compile_line(LINES[name]())
    cpu = resolve_backend("cpu", 1)
    args = dict(replicas=4, horizon_days=3.0, warmup_days=0.5, seed=5, snapshot_minutes=60, backend=cpu)
    grown = run_line(start_small(c), chunk_replicas=chunk, **args)
    whole = run_line(dataclasses.replace(c, lot_slots=c.lot_capacity), **args)
    assert c.wip.shape[0] + 1 < grown.lot_slots < c.lot_capacity == whole.lot_slots
    assert_same_run(grown, whole)


def test_a_checkpoint_taken_after_the_table_grew_resumes_to_the_same_run(tmp_path, monkeypatch):
    from twin import runner
    from twin.backend import resolve_backend
    from twin.compile import compile_line

    monkeypatch.setattr(runner, "SEGMENT_TARGET_SECONDS", 0.0)  # one segment a launch: a boundary after each
    c = start_small(compile_line(every_feature_line(waiting_at_a=40)))
    args = dict(replicas=3, horizon_days=3.0, warmup_days=0.5, seed=5, snapshot_minutes=60,
                backend=resolve_backend("cpu", 1), segments=12)
    whole = runner.run_line(dataclasses.replace(c, lot_slots=c.lot_capacity), **args)
    key, settings = runner.checkpoint_key(c, "cpu", 3, 3.0, 0.5, 5, 60.0, 12)
    path = tmp_path / "checkpoint.npz"
    asks = iter(range(100))
    cut = runner.run_line(c, checkpoint=runner.Checkpoint(path, key, settings, 0), stop=lambda: next(asks) >= 6, **args)
    assert cut.interrupted and cut.lot_slots > c.lot_slots  # the table had grown when the run stopped
    with np.load(path) as saved:
        assert saved["state_li"].shape[1] == cut.lot_slots
    resumed = runner.run_line(c, checkpoint=runner.Checkpoint(path, key, settings, 0, resume=True), **args)
    assert_same_run(resumed, whole)


@pytest.mark.parametrize("dataset", ["HVLM", "LVHM"])
def test_smt2020_tables_start_near_their_initial_wip(dataset):
    """HVLM's and LVHM's tables start a quarter above their initial WIP (the datasets' own snapshot of a
    running fab), less than half of the ceiling (Little's law at 8x the raw time, the old fixed table)."""
    from twin.compile import compile_line
    from twin.errors import ConfigError
    from twin.runner import bytes_per_replication
    from twin.smt2020 import load_smt2020, resolve_data_dir

    try:
        data_dir = resolve_data_dir(None, dataset)
    except ConfigError as err:
        pytest.skip(f"SMT2020 data absent: {err}")
    c = compile_line(load_smt2020({"loader": "smt2020", "dataset": dataset, "data_dir": str(data_dir.parent)}))
    assert c.wip.shape[0] < c.lot_slots <= 1.25 * c.wip.shape[0] + 64
    assert 2 * c.lot_slots < c.lot_capacity
    assert bytes_per_replication(c) < 0.55 * bytes_per_replication(c, c.lot_capacity)


SIMULATED = textwrap.dedent("""
    import dataclasses, sys
    sys.path.insert(0, {tests!r})
    import numpy as np
    from lines import every_feature_line
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.runner import REP0_FIELDS, RESULT_FIELDS, run_line

    c = compile_line(every_feature_line())
    small = dataclasses.replace(c, lot_slots=c.wip.shape[0] + 1)
    args = dict(replicas=2, horizon_days=0.3, warmup_days=0.1, seed=5, snapshot_minutes=60)
    cpu = run_line(dataclasses.replace(c, lot_slots=c.lot_capacity), backend=resolve_backend("cpu"), **args)
    for lanes in (0, 2):
        run = run_line(small, backend=resolve_backend("cuda", lanes=lanes), **args)
        assert small.lot_slots < run.lot_slots, run.lot_slots
        assert run.events == cpu.events > 100, (run.events, cpu.events)
        for key in (*RESULT_FIELDS, *REP0_FIELDS):
            np.testing.assert_array_equal(run.stats[key], cpu.stats[key], err_msg=key)
        np.testing.assert_array_equal(run.lot_log, cpu.lot_log)
        print("OK", lanes, run.lot_slots, run.events)
""")


def test_both_cuda_launchers_grow_the_table_to_the_cpu_run_under_the_simulator():
    proc = run_script(SIMULATED.format(tests=str(TESTS)), simulator=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK 0" in proc.stdout and "OK 2" in proc.stdout, proc.stdout


def test_memory_running_out_while_the_table_grows_is_one_clear_error(monkeypatch):
    """The chunk's state must be allocated again to grow: when that fails, the message names the
    setting to change and the size the table had to reach, not a MemoryError's traceback."""
    from twin import runner
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.errors import ConfigError

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(runner, "grow_lot_table", no_memory)
    c = start_small(compile_line(every_feature_line(waiting_at_a=40)))
    with pytest.raises(ConfigError) as info:
        runner.run_line(c, 2, 3.0, 0.5, 5, resolve_backend("cpu", 1))
    message = str(info.value)
    assert message.startswith("chunk_replicas: got 2;") and "\n" not in message, message
    assert "the lot table had to grow to 96 slots" in message and "set chunk_replicas smaller" in message
