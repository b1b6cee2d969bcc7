"""Tool condition: one degradation model shared by the engine, yield and maintenance.

Condition ``c >= 0`` is a Wiener process with drift in the wafers a tool has
processed since its last PM or repair: processing ``w`` wafers adds
``drift * w + noise * sqrt(w) * N(0, 1)`` (clipped at 0).  PM and repair reset
it to 0 (as good as new).  A step's killer-defect density on that tool is
``D_step * (1 + c)``; the maintenance model lets the failure hazard grow with
``c`` and observes ``c`` through a noisy sensor.
"""
from __future__ import annotations

import math


def make_condition(jit, standard_normal):
    """Return ``advance_condition(c, wafers, drift, noise, rng_state) -> c'``."""

    @jit
    def advance_condition(c, wafers, drift, noise, state):
        c = c + drift * wafers
        if noise > 0.0:
            c += noise * math.sqrt(wafers) * standard_normal(state)
        if c < 0.0:
            c = 0.0
        return c

    return advance_condition
