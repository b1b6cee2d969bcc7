"""The SimPy baseline and the twin model the same line: their KPIs agree within confidence intervals.

Both run the default line from the same ``Line`` object, with independent
random streams.  For every KPI a Welch interval on the difference of the two
means (Welch-Satterthwaite degrees of freedom) must contain 0; the family of
comparisons is held to a 1% false-alarm rate by Bonferroni.  Beside the flow
KPIs, the fab's PM and failure counts check the two calendars.  Negative
controls show the comparison has teeth: a model that ignores tool failures,
or doubles transport times, fails it.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("simpy")
stats = pytest.importorskip("scipy.stats")

from twin import kpis  # noqa: E402
from twin.backend import resolve_backend  # noqa: E402
from twin.compile import compile_line  # noqa: E402
from twin.line import load_line  # noqa: E402
from twin.runner import run_line  # noqa: E402

HORIZON, WARMUP = 30.0, 5.0
SIMPY_REPS, TWIN_REPS = 24, 96
FAMILY_ALPHA = 0.01


def _baseline():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "simpy_baseline.py"
    spec = importlib.util.spec_from_file_location("simpy_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def twin_rows(line, seed=3):
    result = run_line(compile_line(line), TWIN_REPS, HORIZON, WARMUP, seed, resolve_backend("cpu"), snapshot_minutes=0)
    return with_fab_totals(kpis.per_replication(result), line)


def with_fab_totals(rows: dict, line) -> dict:
    """Add PMs and failures of the whole fab per replication: the PM and failure calendars in one number each."""
    for kind in ("pms", "failures"):
        rows[f"fab.{kind}"] = sum(np.asarray(rows[f"tool_group.{g.name}.{kind}_per_tool"], float) * g.tools
                                  for g in line.tool_groups)
    return rows


def kpi_names(line) -> list[str]:
    names = [f"product.{p.name}.{k}" for p in line.products
             for k in ("throughput_lots_per_day", "cycle_time_days.mean")]
    names += [f"tool_group.{g.name}.{k}" for g in line.tool_groups for k in ("utilisation", "availability")]
    names += [f"tool_group.{g.name}.{k}_per_tool" for g in line.tool_groups if g.watches_condition
              for k in ("pms", "failures")]  # condition-driven PM and wear-out, group by group
    return names + ["fab.pms", "fab.failures"]


def welch(a, b, alpha: float) -> tuple[float, float]:
    """Difference of means and its two-sided (1 - alpha) Welch half-width."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    if va + vb == 0.0:
        return float(a.mean() - b.mean()), 0.0
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return float(a.mean() - b.mean()), float(stats.t.ppf(1 - alpha / 2, df) * math.sqrt(va + vb))


def disagreements(simpy_rows, twin, names) -> list[str]:
    alpha = FAMILY_ALPHA / len(names)
    out = []
    for name in names:
        diff, half = welch(simpy_rows[name], twin[name], alpha)
        if abs(diff) > half:
            s, t = kpis.summarize(simpy_rows[name]), kpis.summarize(twin[name])
            out.append(f"{name}: SimPy {s['mean']:.4g} +- {s['ci95']:.2g}, twin {t['mean']:.4g} +- {t['ci95']:.2g}")
    return out


@pytest.fixture(scope="module")
def line():
    return load_line("default")


@pytest.fixture(scope="module")
def simpy_rows(line):
    return with_fab_totals(_baseline().run_replications(line, SIMPY_REPS, HORIZON, WARMUP, seed=7)["rows"], line)


@pytest.fixture(scope="module")
def twin(line):
    return twin_rows(line)


def test_twin_and_simpy_agree_on_throughput_cycle_time_utilisation(line, simpy_rows, twin):
    assert not disagreements(simpy_rows, twin, kpi_names(line))


def test_comparison_is_tight_enough_to_matter(line, simpy_rows, twin):
    """The family-wise interval on mean cycle time is narrower than 6% of it: a 6% error would show."""
    alpha = FAMILY_ALPHA / len(kpi_names(line))
    for p in line.products:
        name = f"product.{p.name}.cycle_time_days.mean"
        _, half = welch(simpy_rows[name], twin[name], alpha)
        assert half < 0.06 * np.mean(twin[name]), (name, half)


@pytest.mark.parametrize("mistake", ["no_failures", "double_transport"])
def test_a_wrong_model_fails_the_comparison(line, simpy_rows, mistake):
    if mistake == "no_failures":
        groups = tuple(dataclasses.replace(g, failure=None) for g in line.tool_groups)
        wrong = dataclasses.replace(line, tool_groups=groups)
    else:
        wrong = dataclasses.replace(line, transport=line.transport.scaled(2.0))
    bad = disagreements(simpy_rows, twin_rows(wrong), kpi_names(line))
    assert any("cycle_time" in b or "availability" in b for b in bad), bad


def test_baseline_rejects_what_it_does_not_model(line):
    from twin.errors import ConfigError

    product = line.products[0]
    step = dataclasses.replace(product.route[0], cascade_interval=5.0)
    cascading = dataclasses.replace(line, products=(dataclasses.replace(product, route=(step, *product.route[1:])),
                                                    *line.products[1:]))
    with pytest.raises(ConfigError, match="cascad"):
        _baseline().Fab(cascading, 1, 0, 1440.0, 0.0)
