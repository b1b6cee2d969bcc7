"""Closed forms the engine is tested against (queueing and renewal theory)."""
from __future__ import annotations

import math


def erlang_c(c: int, offered: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load a = lambda/mu (< c)."""
    top = offered**c / math.factorial(c) * c / (c - offered)
    bottom = sum(offered**k / math.factorial(k) for k in range(c)) + top
    return top / bottom


def mmc_wait(c: int, arrival_rate: float, service_mean: float) -> float:
    """Mean time in queue Wq of M/M/c (Erlang-C formula)."""
    mu = 1.0 / service_mean
    offered = arrival_rate / mu
    return erlang_c(c, offered) / (c * mu - arrival_rate)


def within(mean: float, ci95: float, theory: float, slack: float = 1.7) -> bool:
    """Theory inside the run's CI widened to ~99.9% (1.7 x the 95% half-width)."""
    return abs(mean - theory) <= slack * ci95
