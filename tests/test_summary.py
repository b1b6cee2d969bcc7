"""The run summary explains itself: what ± means, units, readable numbers, bottlenecks, survivor bias."""
from __future__ import annotations

import re
import warnings

import pytest

from twin import readable
from twin.app import print_summary, run_scenario
from twin.output import bottlenecks, summary_table, survivor_warnings


@pytest.mark.parametrize("mean, half, text", [
    (1123.4, 3712.0, "1,120 ± 3,700"),
    (48.234, 0.6, "48.23 ± 0.60"),
    (0.92665, 0.0001, "0.92665 ± 0.00010"),
    (1346.2, 12.3, "1,346 ± 12"),
    (2.5e9, 1.04e7, "2,500,000,000 ± 10,000,000"),
    (0.5, None, "0.500"),
    (1.0, 1.99e-15, "1.00"),  # rounding noise of a share that is 1 in every replication
    (None, None, "-"),
])
def test_mean_and_ci_read_with_the_digits_the_ci_supports(mean, half, text):
    assert readable.mean_ci(mean, half) == text


def _group(productive, setup, available, queue=1.0):
    s = lambda m: {"mean": m, "ci95": 0.01, "n": 4}  # noqa: E731
    return {"busy_of_available": s((productive + setup) / available), "e10": {"setup": s(setup)},
            "availability": s(available), "queue_lots": s(queue), "queue_wait_minutes": s(60.0 * queue),
            "utilisation": s(productive)}


def test_bottlenecks_rank_by_productive_plus_setup_over_available():
    """A group 1.4% idle with 14.6% setup is the bottleneck, though three others process more."""
    groups = {"A": _group(0.90, 0.0, 1.0), "B": _group(0.89, 0.0, 0.95), "C": _group(0.88, 0.0, 1.0),
              "SETUP_HEAVY": _group(0.80, 0.146, 0.96)}
    assert [name for name, _ in bottlenecks(groups)] == ["SETUP_HEAVY", "B", "A", "C"]


def _tiny_doc(tmp_path, horizon, warmup):
    line = {"name": "tiny", "tool_groups": [{"name": "M", "area": "A", "tools": 2, "dispatch": "fifo"}],
            "products": [{"name": "p", "route": [{"group": "M", "time": {"dist": "exponential", "mean": 30.0},
                                                  "per": "lot"}] * 3}],
            "releases": [{"name": "p", "product": "p", "kind": "poisson", "interval_minutes": 120.0, "lot_size": 1,
                          "due_days": 1000}]}
    cfg = {"line": line, "replicas": 3, "horizon_days": horizon, "warmup_days": warmup, "backend": "cpu",
           "progress": False, "snapshot_minutes": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # none may leak, even when nothing completes
        return run_scenario(cfg, tmp_path)


def test_summary_states_the_ci_units_and_no_exponents(tmp_path, capsys):
    doc = _tiny_doc(tmp_path, 20.0, 2.0)
    table = summary_table(doc)
    assert "± the 95% confidence half-width" in table and "3 replications" in table
    for unit in ("lots/day", "cycle time (days)", "on time (%)", "WIP (lots)", "busy (%)", "queue (lots)",
                 "queue wait (minutes)"):
        assert unit in table
    assert "queue wait min" not in table
    assert not re.search(r"\de[+-]\d", table)
    assert survivor_warnings(doc) == []
    print_summary(doc, tmp_path)
    assert "warning" not in capsys.readouterr().err


def test_short_horizon_warns_of_survivor_bias(tmp_path, capsys):
    doc = _tiny_doc(tmp_path / "a", 0.3, 0.05)  # 72 minutes of warm-up against cycle times of about 2 hours
    found = survivor_warnings(doc)
    assert len(found) == 1 and "biased low" in found[0] and "warmup_days" in found[0]
    print_summary(doc, tmp_path)
    assert "raise warmup_days" in capsys.readouterr().err
    none_done = _tiny_doc(tmp_path / "b", 0.02, 0.01)  # half an hour: nothing released completes
    assert "cycle time is unknown" in survivor_warnings(none_done)[0]
