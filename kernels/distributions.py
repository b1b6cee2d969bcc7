"""Sampling of the line's time distributions, one source for CPU and CUDA.

A distribution is encoded as ``(kind, p0, p1, p2)`` by
:func:`twin.distributions.Dist.encode`; the parameter meaning per kind is:

=========== ==== ================ ============= ==========
kind        code p0               p1            p2
=========== ==== ================ ============= ==========
constant    0    value
uniform     1    low              high
exponential 2    mean
lognormal   3    mu (of log)      sigma (of log)
triangular  4    low              mode          high
weibull     5    shape            scale
=========== ==== ================ ============= ==========
"""
from __future__ import annotations

import math

CONSTANT, UNIFORM, EXPONENTIAL, LOGNORMAL, TRIANGULAR, WEIBULL = range(6)
KIND_CODES = {
    "constant": CONSTANT,
    "uniform": UNIFORM,
    "exponential": EXPONENTIAL,
    "lognormal": LOGNORMAL,
    "triangular": TRIANGULAR,
    "weibull": WEIBULL,
}


def make_sampler(jit, uniform):
    """Return ``(sample, standard_normal)``: ``sample(kind, p0, p1, p2, rng_state) -> float``."""

    @jit
    def standard_normal(state):
        u1 = uniform(state)
        u2 = uniform(state)
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)

    @jit
    def sample(kind, p0, p1, p2, state):
        if kind == CONSTANT:
            return p0
        if kind == UNIFORM:
            return p0 + (p1 - p0) * uniform(state)
        if kind == EXPONENTIAL:
            return -p0 * math.log(uniform(state))
        if kind == LOGNORMAL:
            return math.exp(p0 + p1 * standard_normal(state))
        if kind == TRIANGULAR:
            u = uniform(state)
            cut = (p1 - p0) / (p2 - p0) if p2 > p0 else 0.5
            if u < cut:
                return p0 + math.sqrt(u * (p2 - p0) * (p1 - p0))
            return p2 - math.sqrt((1.0 - u) * (p2 - p0) * (p2 - p1))
        if kind == WEIBULL:
            return p1 * math.pow(-math.log(uniform(state)), 1.0 / p0)
        return p0

    return sample, standard_normal
