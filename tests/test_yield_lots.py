"""Lot-level Monte Carlo (simulate_lots) and its reductions, checked on the CPU (xp = NumPy).

``wafer_summaries`` and ``per_wafer`` are the one source of the reductions the
CUDA path runs with CuPy (tests/test_yield_cuda.py compares the two on a GPU);
here they face a plain Python loop, and ``simulate_lots`` faces
``simulate_wafers`` of the same wafers and the Poisson closed form.
"""
from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from theory import within
from twin.backend import array_module, resolve_backend
from twin.errors import ConfigError
from twin.kpis import summarize, summary_from_moments
from twin.yield_model import YieldSpec, per_wafer, simulate_lots, simulate_wafers, wafer_summaries

SMALL = YieldSpec(wafer_diameter_mm=100.0, edge_exclusion_mm=2.0, die_width_mm=5.0, die_height_mm=4.0, alpha=1.5,
                  cluster_block_dies=2, patterns=(0.3, 0.3, 0.15, 0.15, 0.1), scratch_probability=0.5)


def loop_summaries(good, lot_wafers, gross):
    """The same numbers, one lot and one wafer at a time."""
    lot_good, w = [], 0
    for count in lot_wafers:
        total = 0
        for _ in range(count):
            total += int(good[w])
            w += 1
        lot_good.append(total)
    assert w == len(good)
    y = [int(g) / gross for g in good]
    return lot_good, sum(int(g) for g in good), (statistics.fmean(y) if y else None), \
        (statistics.stdev(y) if len(y) > 1 else None)


@pytest.mark.parametrize("lot_wafers", [[3, 0, 5, 1, 0, 4], [0, 7], [1], [25] * 40, [0, 0]])
def test_wafer_summaries_match_a_loop_over_lots(lot_wafers):
    gross = 612
    rng = np.random.default_rng(len(lot_wafers))
    good = rng.integers(0, gross + 1, sum(lot_wafers)).astype(np.int32)
    s = wafer_summaries(np, good, np.array(lot_wafers), gross)
    lot_good, total, mean, sd = loop_summaries(good, lot_wafers, gross)
    assert s.lot_good.tolist() == lot_good and s.lot_good.dtype == np.int64
    assert s.good_total == total and s.wafers == good.size
    assert (s.die_yield_mean is None) == (mean is None) and (s.die_yield_sd is None) == (sd is None)
    if mean is not None:
        assert s.die_yield_mean == pytest.approx(mean, rel=1e-13)
    if sd is not None:
        assert s.die_yield_sd == pytest.approx(sd, rel=1e-12)


def test_wafer_summaries_give_the_report_exactly_what_summarize_gave_it():
    """The CPU report is bit-identical: summary_from_moments of the reduced moments equals summarize."""
    good = np.random.default_rng(5).integers(300, 613, 1001).astype(np.int32)
    s = wafer_summaries(np, good, np.array([1001]), 612)
    assert summary_from_moments(s.die_yield_mean, s.die_yield_sd, s.wafers) == summarize(good / 612.0)
    assert s.die_yield_sd == float((good / 612.0).std(ddof=1))
    assert summary_from_moments(None, None, 0) == summarize([]) and summary_from_moments(0.5, None, 1) == summarize([0.5])


@pytest.mark.parametrize("lot_wafers", [[3, 0, 5, 1, 0, 4], [0, 0], [], [2]])
def test_per_wafer_is_numpy_repeat(lot_wafers):
    values = np.linspace(0.1, 0.9, len(lot_wafers))
    got = per_wafer(np, values, np.array(lot_wafers, np.int64))
    np.testing.assert_array_equal(got, np.repeat(values, np.array(lot_wafers, np.int64)))


def test_simulate_lots_gives_the_dies_of_simulate_wafers():
    dens, wafers = np.array([0.1, 0.5, 0.0, 0.3, 0.8]), np.array([4, 0, 3, 6, 2])
    lots = simulate_lots(SMALL, dens, wafers, seed=9, key0=77, sample=[2, 4, 14], chunk=5)
    one = simulate_wafers(SMALL, np.repeat(dens, wafers), seed=9, key0=77, sample=[2, 4, 14])
    assert lots.summary.lot_good.tolist() == [int(one.good[a:b].sum()) for a, b in ((0, 4), (4, 4), (4, 7), (7, 13), (13, 15))]
    assert lots.summary.lot_good[2] == 3 * SMALL.gross_dies  # density 0: every die good
    assert lots.summary.good_total == int(one.good.sum()) and lots.summary.wafers == 15
    assert lots.summary.die_yield_mean == float(one.die_yield.mean())
    assert lots.summary.die_yield_sd == float(one.die_yield.std(ddof=1))
    assert lots.sample_lot.tolist() == [0, 2, 4] and lots.sample_good.tolist() == one.good[[2, 4, 14]].tolist()
    np.testing.assert_array_equal(lots.die_pass, one.die_pass)
    np.testing.assert_array_equal(lots.n_defects, one.n_defects)
    for a, b in zip(lots.defects, one.defects):
        np.testing.assert_array_equal(a, b)


def test_lot_die_yield_covers_the_poisson_closed_form():
    s = YieldSpec()
    dens = 0.5 / s.die_area_cm2
    lots = simulate_lots(s, np.full(40, dens), np.full(40, 25), seed=12)
    lot_yield = lots.summary.lot_good / (25.0 * s.gross_dies)
    st = summarize(lot_yield)
    assert within(st["mean"], st["ci95"], math.exp(-0.5)), st
    assert lots.summary.die_yield_mean == pytest.approx(st["mean"], rel=1e-12)  # equal lots: the same mean


@pytest.mark.parametrize("kw, field", [
    (dict(lot_density=[0.1, -0.2], lot_wafers=[2, 2]), "defect_density"),
    (dict(lot_density=[0.1, math.nan], lot_wafers=[2, 2]), "defect_density"),
    (dict(lot_density=[0.1, 0.2], lot_wafers=[2, -1]), "lot_wafers"),
    (dict(lot_density=[0.1, 0.2], lot_wafers=[2.0, 1.0]), "lot_wafers"),
    (dict(lot_density=[0.1, 0.2], lot_wafers=[2]), "lot_wafers"),
    (dict(lot_density=[0.1, 0.2], lot_wafers=[2, 1], sample=[3]), "sample"),
    (dict(lot_density=[0.1, 0.2], lot_wafers=[2, 1], chunk=0), "chunk"),
])
def test_bad_lot_input_is_refused_by_name_before_compute(kw, field):
    with pytest.raises(ConfigError) as e:
        simulate_lots(SMALL, seed=1, **kw)
    assert e.value.field == field


@pytest.mark.parametrize("sample, bad", [([0, -2, 1], -2), ([1, 7, 0], 7)])
def test_a_bad_sample_index_is_named_whichever_end_it_lies_at(sample, bad):
    with pytest.raises(ConfigError) as e:
        simulate_lots(SMALL, [0.1, 0.2], [2, 1], seed=1, sample=sample)
    assert e.value.field == "sample" and e.value.value == bad


def test_the_array_module_is_numpy_without_a_gpu_and_cupy_stays_unimported():
    """The CPU path dispatches to NumPy and never imports CuPy (a light command must not pay for it)."""
    assert array_module(None) is np and array_module(resolve_backend("cpu")) is np
    code = ("import sys, numpy as np\n"
            "from twin.backend import array_module, resolve_backend\n"
            "from twin.yield_model import YieldSpec, simulate_lots\n"
            "import twin.yield_report\n"
            "mc = simulate_lots(YieldSpec(wafer_diameter_mm=50.0), [0.2], [3], seed=1, backend=resolve_backend('cpu'))\n"
            "assert array_module(resolve_backend('cpu')) is np and mc.summary.wafers == 3\n"
            "print('cupy' in sys.modules)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
