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
