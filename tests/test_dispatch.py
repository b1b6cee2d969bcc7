"""Dispatch rules rank lots as their definitions say (lexicographic chains included)."""
from __future__ import annotations

from kernels.dispatch import RULES


def key(rule, **lot):
    base = dict(now=1000.0, entry=0.0, due=5000.0, priority=0, process=10.0, remaining=100.0, step_priority=0, needs_setup=0)
    return RULES[rule](**{**base, **lot})


def test_hot_lot_setup_cr_ranks_hot_then_setup_then_critical_ratio():
    assert key("hot_lot_setup_cr", priority=1, needs_setup=1, due=9e9) < key("hot_lot_setup_cr", priority=0, due=1001.0)
    assert key("hot_lot_setup_cr", needs_setup=0, due=9e9) < key("hot_lot_setup_cr", needs_setup=1, due=1001.0)
    assert key("hot_lot_setup_cr", due=1200.0) < key("hot_lot_setup_cr", due=3000.0)
    assert key("hot_lot_setup_cr", due=900.0) < key("hot_lot_setup_cr", due=1001.0)  # late lots first


def test_hot_lot_setup_breaks_ties_first_in_first_out():
    assert key("hot_lot_setup", entry=5.0) < key("hot_lot_setup", entry=6.0)
    assert key("hot_lot_setup", priority=2, entry=9.0) < key("hot_lot_setup", priority=1, entry=1.0)


def test_simple_rules():
    assert key("spt", process=1.0) < key("spt", process=2.0)
    assert key("edd", due=10.0) < key("edd", due=20.0)
    assert key("least_slack", due=1200.0, remaining=150.0) < key("least_slack", due=1200.0, remaining=100.0)
    assert key("step_priority", step_priority=3, entry=50.0) < key("step_priority", step_priority=1, entry=0.0)
