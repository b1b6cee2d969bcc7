"""Queueing and renewal theory on every backend present: the CPU, numba's CUDA simulator, a real GPU.

The same closed forms as ``test_engine_theory.py``, on a few small cases; the simulator runs every
CUDA thread in Python, so its cases are shorter (wider intervals, still a test: the theory must lie
inside them).
"""
from __future__ import annotations

from backends import backend_kind, per_replication_kpis, sized  # noqa: F401  (backend_kind is a fixture)
from theory import mmc_wait, within
from twin import kpis


def one_station(tools: int, service_mean: float, interarrival: float, failures=None) -> dict:
    group = {"name": "M", "area": "A", "tools": tools, "dispatch": "fifo"}
    if failures:
        group["failures"] = failures
    return {
        "name": "theory",
        "tool_groups": [group],
        "products": [{"name": "p", "route": [{"group": "M", "per": "lot",
                                              "time": {"dist": "exponential", "mean": service_mean}}]}],
        "releases": [{"name": "p", "product": "p", "kind": "poisson", "interval_minutes": interarrival,
                      "lot_size": 1, "due_days": 1000}],
    }


def test_mmc_wait_matches_erlang_c(backend_kind):
    c, service, interarrival = 3, 60.0, 25.0  # utilisation 0.8
    replicas, days = sized(backend_kind, cpu=(16, 400.0), sim=(3, 16.0))
    rows = per_replication_kpis(backend_kind, one_station(c, service, interarrival), replicas, days, 10.0, seed=11)
    wait = kpis.summarize(rows["tool_group.M.queue_wait_minutes"])
    assert within(wait["mean"], wait["ci95"], mmc_wait(c, 1.0 / interarrival, service)), wait
    util = kpis.summarize(rows["tool_group.M.utilisation"])
    assert within(util["mean"], util["ci95"], service / interarrival / c), util


def test_availability_is_mtbf_over_mtbf_plus_mttr(backend_kind):
    mtbf, mttr = 1000.0, 100.0
    failures = {"ttf": {"dist": "exponential", "mean": mtbf}, "repair": {"dist": "exponential", "mean": mttr}}
    replicas, days = sized(backend_kind, cpu=(16, 200.0), sim=(3, 20.0))
    rows = per_replication_kpis(backend_kind, one_station(1, 20.0, 200.0, failures), replicas, days, 5.0, seed=3)
    s = kpis.summarize(rows["tool_group.M.availability"])
    assert within(s["mean"], s["ci95"], mtbf / (mtbf + mttr)), s
