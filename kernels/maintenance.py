"""Tool-level maintenance twin: one work item = one (candidate policy, replication).

A thread follows one tool through ``horizon`` calendar hours under one
maintenance policy.  While up, the tool processes wafers at ``rate x util``
per hour; its condition ``c`` is the shared Wiener-with-drift degradation of
:mod:`kernels.condition`, advanced every ``step_wafers`` wafers (a sensor
reading ``y = c + sensor_sd N(0,1)`` is taken at each step end) and reset to
0 by PM or repair.  Failure is the first of three competing causes:

* age: a life drawn at each renewal (any distribution, Weibull for the
  renewal-theory proofs), counted in operating hours;
* threshold: a level drawn at each renewal; the tool fails at the first step
  end where ``c`` reaches it;
* hazard: ``h0 exp(b c)`` per operating hour (``c`` held over a step),
  realised by drawing ``E ~ Exp(1)`` per renewal and failing when the
  cumulative hazard reaches it.

Between events the loop jumps straight to the next of: reading, failure,
scheduled PM, horizon.  A tool without degradation takes no readings, so an
age-only model costs a few operations per renewal cycle.

Remaining useful life (for the predictive policy and the warnings) comes from
a least-squares line through the readings since the last renewal, weighted
by ``forget ** age-in-readings``; ``RUL = (level - fitted c) / slope`` wafers.

Random numbers come from three keyed streams per item, each seeded by
``(stream seed, key)``: renewal draws, down durations, degradation path plus
sensor.  With common random numbers the key is the replication, so every
candidate sees the same lives, repair times and paths as far as its decisions
let it.

Tables built by :func:`twin.maintain.ToolModel.tables`: ``gi`` int32 and
``gf`` float64 vectors indexed below; per candidate ``kinds`` int32 and
``params`` float64 [n, 3].  Per item outputs: ``out`` float64 [N_OUT] and a
lead-time histogram ``hist`` int32 [bins] over (0, window].
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from kernels.target import CPU, CUDA, device_jit

# policy kinds (p0, p1): none; age T operating hours; block every T calendar hours; N wafers;
# (threshold, EWMA weight); (lead hours, failure level); age T calendar hours since the last renewal
RUN_TO_FAILURE, AGE, BLOCK, WAFERS, CONDITION, PREDICTIVE, CALENDAR_AGE = range(7)

# gi
GI_LIFE_ON, GI_LIFE_KIND, GI_THR_ON, GI_THR_KIND, GI_HAZ_ON, GI_REPAIR_KIND, GI_PM_KIND, GI_MIN_READ, GI_BINS = range(9)
N_GI = 9
# gf
(GF_HORIZON, GF_RATE, GF_UTIL, GF_DRIFT, GF_NOISE, GF_STEP_W, GF_SENSOR_SD, GF_FORGET,
 GF_LIFE_P0, GF_LIFE_P1, GF_LIFE_P2, GF_THR_P0, GF_THR_P1, GF_THR_P2, GF_H0, GF_HB,
 GF_REPAIR_P0, GF_REPAIR_P1, GF_REPAIR_P2, GF_PM_P0, GF_PM_P1, GF_PM_P2,
 GF_KILL, GF_GROSS, GF_PRICE_PM, GF_PRICE_REPAIR, GF_PRICE_DOWN,
 GF_WARN_LEVEL, GF_WARN_HORIZON, GF_WARN_WINDOW) = range(30)
N_GF = 30
# out
(O_UP, O_FAILS, O_PMS, O_WAFERS, O_GOOD, O_COST, O_DOWN_REPAIR, O_DOWN_PM, O_WARNINGS, O_TRUE, O_FALSE,
 O_DETECTED, O_LEAD_SUM, O_READINGS) = range(14)
N_OUT = 14
# streams
S_LIFE, S_DOWN, S_PATH = range(3)

INF = 1.0e300
_EV_HORIZON, _EV_READ, _EV_FAIL, _EV_PM = range(4)


def make_maintenance(jit, seed_state, uniform, sample, standard_normal, advance_condition):
    """Return ``simulate_item(gi, gf, kinds, params, seeds, cand, key, r_life, r_down, r_path, out, hist)``."""

    @jit
    def draw_renewal(gi, gf, r_life):
        """Life (operating hours), failure level of c, hazard target: one set per renewal."""
        life = INF
        level = INF
        target = INF
        if gi[GI_LIFE_ON]:
            life = sample(gi[GI_LIFE_KIND], gf[GF_LIFE_P0], gf[GF_LIFE_P1], gf[GF_LIFE_P2], r_life)
        if gi[GI_THR_ON]:
            level = sample(gi[GI_THR_KIND], gf[GF_THR_P0], gf[GF_THR_P1], gf[GF_THR_P2], r_life)
        if gi[GI_HAZ_ON]:
            target = -math.log(uniform(r_life))
        return life, level, target

    @jit
    def rul_wafers(s0, s1, s2, sy, swy, n, min_n, w, level):
        """Wafers until the fitted line reaches ``level``; INF without a rising fit."""
        if n < min_n:
            return INF
        det = s0 * s2 - s1 * s1
        if det <= 0.0:
            return INF
        slope = (s0 * swy - s1 * sy) / det
        if slope <= 0.0:
            return INF
        fitted = (sy - slope * s1) / s0 + slope * w
        if fitted >= level:
            return 0.0
        return (level - fitted) / slope

    @jit
    def down_time(gi, gf, failed, r_down):
        if failed:
            return sample(gi[GI_REPAIR_KIND], gf[GF_REPAIR_P0], gf[GF_REPAIR_P1], gf[GF_REPAIR_P2], r_down)
        return sample(gi[GI_PM_KIND], gf[GF_PM_P0], gf[GF_PM_P1], gf[GF_PM_P2], r_down)

    @jit
    def score_warning(gf, warn_t, t, failed, out, hist):
        """Match a latched warning to the cycle's end: true, false, or censored (PM inside the window)."""
        window = gf[GF_WARN_WINDOW]
        if warn_t < 0.0:
            return
        lead = t - warn_t
        if failed and lead <= window:
            out[O_TRUE] += 1.0
            out[O_DETECTED] += 1.0
            out[O_LEAD_SUM] += lead
            bins = hist.shape[0]
            b = int(lead / window * bins)
            hist[min(max(b, 0), bins - 1)] += 1
        elif lead >= window:
            out[O_FALSE] += 1.0

    @jit
    def next_event(gi, gf, kind, p0, t, age, wsr, next_read, life, hazard_rate, target, hcum, next_pm):
        """Calendar hours to the next event and its type."""
        util = gf[GF_UTIL]
        wph = gf[GF_RATE] * util
        dt = gf[GF_HORIZON] - t
        ev = _EV_HORIZON
        d = (next_read - wsr) / wph
        if d < dt:
            dt, ev = d, _EV_READ
        d = (life - age) / util
        if d < dt:
            dt, ev = d, _EV_FAIL
        if hazard_rate > 0.0:
            d = (target - hcum) / (hazard_rate * util)
            if d < dt:
                dt, ev = d, _EV_FAIL
        if kind == AGE:
            d = (p0 - age) / util
        elif kind == WAFERS:
            d = (p0 - wsr) / wph
        elif kind == BLOCK or kind == PREDICTIVE or kind == CALENDAR_AGE:
            d = next_pm - t
        else:
            d = INF
        if d < dt:
            dt, ev = d, _EV_PM
        return max(dt, 0.0), ev

    @jit
    def simulate_item(gi, gf, kinds, params, seeds, cand, key, r_life, r_down, r_path, out, hist):
        """Run one candidate policy for one replication; accumulates into ``out`` and ``hist``."""
        seed_state(r_life, seeds[S_LIFE], key)
        seed_state(r_down, seeds[S_DOWN], key)
        seed_state(r_path, seeds[S_PATH], key)
        for k in range(out.shape[0]):
            out[k] = 0.0
        for k in range(hist.shape[0]):
            hist[k] = 0
        kind = kinds[cand]
        p0 = params[cand, 0]
        p1 = params[cand, 1]
        horizon = gf[GF_HORIZON]
        util = gf[GF_UTIL]
        wph = gf[GF_RATE] * util
        step = gf[GF_STEP_W]
        min_n = gi[GI_MIN_READ]
        forget = gf[GF_FORGET]
        drift = gf[GF_DRIFT]
        noise = gf[GF_NOISE]
        sensor_sd = gf[GF_SENSOR_SD]
        dies = gf[GF_GROSS]
        kill = gf[GF_KILL]
        warn_level = gf[GF_WARN_LEVEL]
        warn_horizon = gf[GF_WARN_HORIZON]
        hazard_on = gi[GI_HAZ_ON]
        up = 0.0  # per-step sums stay in registers; written to ``out`` once at the end
        wafers = 0.0
        good = 0.0
        readings = 0.0
        t = 0.0
        next_pm = p0 if kind == BLOCK or kind == CALENDAR_AGE else INF
        life, fail_c, target = draw_renewal(gi, gf, r_life)
        c = 0.0
        age = 0.0
        wsr = 0.0
        hcum = 0.0
        next_read = step
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        sy = 0.0
        swy = 0.0
        n_read = 0
        ewma = 0.0
        warn_t = -1.0
        while t < horizon:
            hazard_rate = gf[GF_H0] * math.exp(gf[GF_HB] * c) if hazard_on else 0.0
            dt, ev = next_event(gi, gf, kind, p0, t, age, wsr, next_read, life, hazard_rate, target, hcum, next_pm)
            w = wph * dt
            c_new = c
            if w > 0.0 and step < INF:
                c_new = advance_condition(c, w, drift, noise, r_path)
            good += w * dies * math.exp(-kill * (1.0 + 0.5 * (c + c_new)))
            wafers += w
            up += dt
            hcum += hazard_rate * util * dt
            age += util * dt
            wsr += w
            t += dt
            c = c_new
            if ev == _EV_HORIZON:
                break
            if c >= fail_c:
                ev = _EV_FAIL
            if ev == _EV_READ:
                next_read += step
                y = c + sensor_sd * standard_normal(r_path)
                readings += 1.0
                s0 = forget * s0 + 1.0
                s1 = forget * s1 + wsr
                s2 = forget * s2 + wsr * wsr
                sy = forget * sy + y
                swy = forget * swy + wsr * y
                n_read += 1
                ewma = y if n_read == 1 else p1 * y + (1.0 - p1) * ewma
                rul = rul_wafers(s0, s1, s2, sy, swy, n_read, min_n, wsr, warn_level) / wph
                if warn_t < 0.0 and rul < warn_horizon:
                    warn_t = t
                    out[O_WARNINGS] += 1.0
                if kind == CONDITION and ewma >= p0:
                    ev = _EV_PM
                elif kind == PREDICTIVE:
                    if p1 != warn_level:
                        rul = rul_wafers(s0, s1, s2, sy, swy, n_read, min_n, wsr, p1) / wph
                    next_pm = t + max(rul - p0, 0.0) if rul < INF else INF
                    if next_pm <= t:
                        ev = _EV_PM
                if ev == _EV_READ:
                    continue
            failed = ev == _EV_FAIL
            score_warning(gf, warn_t, t, failed, out, hist)
            d = down_time(gi, gf, failed, r_down)
            d_in = min(d, horizon - t)
            if failed:
                out[O_FAILS] += 1.0
                out[O_DOWN_REPAIR] += d_in
                out[O_COST] += gf[GF_PRICE_REPAIR]
            else:
                out[O_PMS] += 1.0
                out[O_DOWN_PM] += d_in
                out[O_COST] += gf[GF_PRICE_PM]
            out[O_COST] += gf[GF_PRICE_DOWN] * d_in
            t += d
            life, fail_c, target = draw_renewal(gi, gf, r_life)
            c = 0.0
            age = 0.0
            wsr = 0.0
            hcum = 0.0
            next_read = step
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            sy = 0.0
            swy = 0.0
            n_read = 0
            ewma = 0.0
            warn_t = -1.0
            if kind == BLOCK:
                while next_pm <= t:
                    next_pm += p0
            elif kind == CALENDAR_AGE:
                next_pm = t + p0
            else:
                next_pm = INF
        if warn_t >= 0.0 and horizon - warn_t >= gf[GF_WARN_WINDOW]:
            out[O_FALSE] += 1.0
        out[O_UP] = up
        out[O_WAFERS] = wafers
        out[O_GOOD] = good
        out[O_READINGS] = readings

    return simulate_item


def build(jit):
    """The item simulator for one target, wired to the shared RNG, sampler and condition model."""
    from kernels.condition import make_condition
    from kernels.distributions import make_sampler
    from kernels.rng import make_rng

    seed_state, _, uniform = make_rng(jit)
    sample, standard_normal = make_sampler(jit, uniform)
    advance_condition = make_condition(jit, standard_normal)
    return make_maintenance(jit, seed_state, uniform, sample, standard_normal, advance_condition)


# ----------------------------------------------------------------------------- CPU launcher

_simulate_item_cpu = build(device_jit(CPU))


@numba.njit(parallel=True, cache=True)
def simulate_cpu(gi, gf, kinds, params, seeds, cand0, reps, rep0, stride, out, hist, rng):
    """One prange iteration per (candidate, replication); item ``i`` is candidate ``cand0 + i // reps``."""
    for i in prange(out.shape[0]):
        cand = cand0 + i // reps
        key = cand * stride + rep0 + i % reps
        _simulate_item_cpu(gi, gf, kinds, params, seeds, cand, key, rng[i, S_LIFE], rng[i, S_DOWN], rng[i, S_PATH],
                           out[i], hist[i])


# ----------------------------------------------------------------------------- CUDA launcher

THREADS_PER_BLOCK = 128


def cuda_launcher():
    """Build (once) the CUDA kernel: one thread per item, item axis leading (as the CPU launcher)."""
    global _CUDA, cuda
    if _CUDA is None:
        # A module global (not a local import), so numba's CUDA simulator can swap it inside the kernel.
        from numba import cuda

        simulate_item = build(device_jit(CUDA))

        @cuda.jit
        def kernel(gi, gf, kinds, params, seeds, cand0, reps, rep0, stride, out, hist, rng):
            i = cuda.grid(1)
            if i < out.shape[0]:
                cand = cand0 + i // reps
                key = cand * stride + rep0 + i % reps
                simulate_item(gi, gf, kinds, params, seeds, cand, key, rng[i, S_LIFE], rng[i, S_DOWN], rng[i, S_PATH],
                              out[i], hist[i])

        def launch(gi, gf, kinds, params, seeds, cand0, reps, rep0, stride, out, hist, rng):
            n = out.shape[0]
            blocks = (n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
            kernel[blocks, THREADS_PER_BLOCK](gi, gf, kinds, params, seeds, cand0, reps, rep0, stride, out, hist, rng)

        _CUDA = launch
    return _CUDA


_CUDA = None
cuda = None  # numba.cuda, imported by cuda_launcher() only when the CUDA backend is used
