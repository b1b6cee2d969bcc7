"""Small lines for tests, built as plain mappings so each test shows its model."""
from __future__ import annotations

import sys
from pathlib import Path

from twin.line import parse_line

sys.path.insert(0, str(Path(__file__).resolve().parent))


def station(name, tools, *, failures=None, pm=None, dispatch="fifo", setup=None):
    g = {"name": name, "area": "A", "tools": tools, "dispatch": dispatch}
    if failures:
        g["failures"] = failures
    if pm:
        g["pm"] = pm
    if setup:
        g["setup"] = setup
    return g


def exp_step(group, mean, **extra):
    return {"group": group, "time": {"dist": "exponential", "mean": mean}, "per": "lot", **extra}


def open_line(groups, route, interarrival, *, kind="poisson", lot_size=1, transport=0.0, releases=None, **extra):
    data = {
        "name": "test",
        "tool_groups": groups,
        "products": [{"name": "p", "route": route}],
        "releases": releases or [{"name": "p", "product": "p", "kind": kind, "interval_minutes": interarrival,
                                  "lot_size": lot_size, "due_days": 1000}],
        "transport": transport,
        **extra,
    }
    return parse_line(data)


def every_feature_line(dispatch_a="fifo", waiting_at_a=0):
    """Two condition-watched groups (condition-based and predictive PM), failures, wafer and age PM,
    setups, least-setup tool choice, rework once, a batch step, located transport, initial WIP.

    ``waiting_at_a`` more lots wait at the first step at time 0, their due dates in no order, so that a
    rule other than FIFO (``dispatch_a``) takes them from inside a queue of several blocks."""
    failures = {"ttf": {"dist": "exponential", "mean": 300.0}, "repair": {"dist": "exponential", "mean": 30.0}}
    pm = [{"name": "w", "every_wafers": 40, "duration": {"dist": "constant", "value": 15}},
          {"name": "age", "age_minutes": 400, "duration": {"dist": "uniform", "low": 5, "high": 9}}]
    wear = {"drift_per_wafer": 0.01, "noise_per_wafer": 0.02, "sensor_sd": 0.05,
            "failure_level": {"dist": "uniform", "low": 0.4, "high": 0.8},
            "warning": {"level": 0.4, "horizon_minutes": 120}}
    a = {**station("A", 2, failures=failures, pm=pm, dispatch=dispatch_a), "location": "X", "condition": wear,
         "maintenance": {"policy": "condition", "threshold": 0.3, "duration": 12}}
    b = {**station("B", 2, setup={"minutes": 5}), "location": "Y", "tool_choice": "least_setup", "condition": wear,
         "maintenance": {"policy": "predictive", "target_level": 0.5, "lead_minutes": 90, "duration": 10}}
    transport = {"default": 2.0, "table": [{"from": "X", "to": "Y", "time": {"dist": "uniform", "low": 1, "high": 3}}]}
    return open_line(
        [a, b],
        [exp_step("A", 20.0), exp_step("B", 15.0, setup="x"),
         exp_step("A", 10.0, rework={"prob": 0.3, "to_step": 2, "once": True}),
         {"group": "B", "time": 12.0, "per": "batch", "batch": {"min": 2, "max": 3, "max_wait": 30}, "setup": "y"}],
        30.0, lot_size=1, transport=transport,
        initial_wip=[{"release": "p", "step": 2, "lots": 2, "due_minutes": [60.0, 5.0]}, {"release": "p", "step": 3, "lots": 1},
                     *([{"release": "p", "step": 1, "lots": waiting_at_a,
                         "due_minutes": [100.0 + 10.0 * (k * 37 % waiting_at_a) for k in range(waiting_at_a)]}]
                       if waiting_at_a else [])])
