"""Dispatching rules: each rule is one small scalar function, registered by name.

A rule maps what the engine knows about a waiting lot to a key; the engine
serves the lot with the smallest key (ties: the lot that joined the queue
first).  Inputs, all in minutes except ``priority`` and ``needs_setup``:

- ``now``: simulation clock;
- ``entry``: when the lot joined this queue;
- ``due``: the lot's due date;
- ``priority``: 0 normal, 1 hot, 2 super-hot;
- ``process``: mean processing time of this step;
- ``remaining``: mean processing time left on the route, this step included;
- ``step_priority``: the step's static priority (higher first);
- ``needs_setup``: 1 if serving the lot forces a setup change on this tool.

To add a rule: write ``def my_rule(now, entry, due, priority, process,
remaining, step_priority, needs_setup)`` below, add it to ``RULES`` and a
branch to ``make_rule_key``.  Nothing in the engine changes.
"""
from __future__ import annotations

BIG = 1.0e12  # separates lexicographic levels of a composite key (minutes stay far below)


def fifo(now, entry, due, priority, process, remaining, step_priority, needs_setup):
    return entry


def spt(now, entry, due, priority, process, remaining, step_priority, needs_setup):
    return process


def edd(now, entry, due, priority, process, remaining, step_priority, needs_setup):
    return due


def critical_ratio(now, entry, due, priority, process, remaining, step_priority, needs_setup):
    """Time left to due date over work left; smallest ratio is most urgent."""
    slack_time = due - now
    if slack_time <= 0.0:
        return slack_time / max(remaining, 1e-9) - BIG * 1e-6  # already late: most urgent, latest first
    return slack_time / max(remaining, 1e-9)


def least_slack(now, entry, due, priority, process, remaining, step_priority, needs_setup):
    return due - now - remaining


def step_priority_rule(now, entry, due, priority, process, remaining, step_priority, needs_setup):
    return -step_priority * BIG + entry


def hot_lot_setup(now, entry, due, priority, process, remaining, step_priority, needs_setup):
    """Hot lots first, then lots that need no setup change, then FIFO."""
    return -priority * 4.0 * BIG + needs_setup * BIG + entry


def hot_lot_setup_cr(now, entry, due, priority, process, remaining, step_priority, needs_setup):
    """Hot lots first, then lots that need no setup change, then smallest critical ratio."""
    return -priority * 4.0 * BIG + needs_setup * BIG + critical_ratio(now, entry, due, priority, process,
                                                                        remaining, step_priority, needs_setup)


def setup_hot_lot(now, entry, due, priority, process, remaining, step_priority, needs_setup):
    """Lots that need no setup change first, then hot lots, then FIFO (setup avoidance over priority)."""
    return needs_setup * 4.0 * BIG - priority * BIG + entry


def setup_hot_lot_cr(now, entry, due, priority, process, remaining, step_priority, needs_setup):
    """Lots that need no setup change first, then hot lots, then smallest critical ratio."""
    return needs_setup * 4.0 * BIG - priority * BIG + critical_ratio(now, entry, due, priority, process,
                                                                      remaining, step_priority, needs_setup)


RULES = {
    "fifo": fifo,
    "spt": spt,
    "edd": edd,
    "cr": critical_ratio,
    "least_slack": least_slack,
    "step_priority": step_priority_rule,
    "hot_lot_setup": hot_lot_setup,
    "hot_lot_setup_cr": hot_lot_setup_cr,
    "setup_hot_lot": setup_hot_lot,
    "setup_hot_lot_cr": setup_hot_lot_cr,
}
RULE_NAMES = tuple(RULES)
RULE_IDS = {name: i for i, name in enumerate(RULE_NAMES)}


def make_rule_key(jit):
    """Compile every rule with ``jit`` and return ``rule_key(rule_id, ...)``."""
    r0, r1, r2, r3, r4, r5, r6 = (jit(RULES[name]) for name in RULE_NAMES[:7])
    cr = r3

    @jit
    def r7(now, entry, due, priority, process, remaining, step_priority, needs_setup):
        # hot_lot_setup_cr, composed from the compiled CR rule (a jitted body cannot call the plain one)
        return -priority * 4.0 * BIG + needs_setup * BIG + cr(now, entry, due, priority, process, remaining,
                                                              step_priority, needs_setup)

    r8 = jit(RULES["setup_hot_lot"])

    @jit
    def r9(now, entry, due, priority, process, remaining, step_priority, needs_setup):
        # setup_hot_lot_cr, composed from the compiled CR rule as r7 is
        return needs_setup * 4.0 * BIG - priority * BIG + cr(now, entry, due, priority, process, remaining,
                                                             step_priority, needs_setup)

    @jit
    def rule_key(rule_id, now, entry, due, priority, process, remaining, step_priority, needs_setup):
        if rule_id == 0:
            return r0(now, entry, due, priority, process, remaining, step_priority, needs_setup)
        if rule_id == 1:
            return r1(now, entry, due, priority, process, remaining, step_priority, needs_setup)
        if rule_id == 2:
            return r2(now, entry, due, priority, process, remaining, step_priority, needs_setup)
        if rule_id == 3:
            return r3(now, entry, due, priority, process, remaining, step_priority, needs_setup)
        if rule_id == 4:
            return r4(now, entry, due, priority, process, remaining, step_priority, needs_setup)
        if rule_id == 5:
            return r5(now, entry, due, priority, process, remaining, step_priority, needs_setup)
        if rule_id == 6:
            return r6(now, entry, due, priority, process, remaining, step_priority, needs_setup)
        if rule_id == 7:
            return r7(now, entry, due, priority, process, remaining, step_priority, needs_setup)
        if rule_id == 8:
            return r8(now, entry, due, priority, process, remaining, step_priority, needs_setup)
        return r9(now, entry, due, priority, process, remaining, step_priority, needs_setup)

    return rule_key
