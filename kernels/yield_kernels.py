"""Per-wafer die-level Monte Carlo, one source for CPU and CUDA.

One wafer = one work item, keyed by ``(seed, global wafer index)``.  Given its
killer density ``D`` the wafer draws every defect of each spatial pattern
(position, size), decides with the critical-area kill probability whether the
defect kills, maps a killer to the die under it in O(1) through the die grid
and marks that die dead in a per-wafer bitmask.  Work is O(defects + dies / 64)
per wafer and the wafer's only output is its good-die count (plus, for sampled
wafers, the die map and the defect list).

Off-wafer candidates are thinned branch-free (a pattern may draw on a region
larger than the disk); the die lookup uses clamped indices and selects, so the
per-defect path has no data-dependent branch (less warp divergence).

Why one thread per wafer on CUDA (not per die): defects are a point process on
the wafer, so a per-die thread would have to scan every defect of its wafer
(O(defects x dies)) or scatter with atomics; per wafer each defect is visited
once and parallelism comes from the (millions of) wafers.

Tables (built by :func:`twin.yield_model.kernel_tables`): ``gi`` int32 and
``gf`` float64 vectors indexed by the constants below, ``die_id`` [ny, nx]
int32 (-1: no gross die in that cell).  Units: mm for positions, um for defect
sizes, cm^2 for areas, defects/cm^2 for densities.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from kernels.target import CPU, CUDA, device_jit

# gi
GI_NX, GI_NY, GI_N_DIES, GI_BLOCK, GI_NBX, GI_NBY = range(6)
N_GI = 6
# gf
(GF_RADIUS, GF_X0, GF_Y0, GF_PX, GF_PY, GF_DW, GF_DH, GF_WAFER_CM2, GF_THETA, GF_X_MIN, GF_KILL_S, GF_KILL_P,
 GF_W_RANDOM, GF_W_CLUSTERED, GF_W_EDGE, GF_W_CENTRE, GF_W_SCRATCH, GF_ALPHA, GF_EDGE_W, GF_CENTRE_SD,
 GF_SCRATCH_P, GF_SCRATCH_L, GF_SCRATCH_W, GF_INV_PX, GF_INV_PY, GF_INV_KILL_P) = range(26)
N_GF = 26
# defect record columns (sampled wafers)
DEF_X, DEF_Y, DEF_SIZE, DEF_KILLER = range(4)
N_DEF = 4

_TWO_PI = 2.0 * math.pi
_MM2_PER_CM2 = 100.0


def make_yield(jit, seed_state, uniform, standard_normal, hot_jit=None):
    """Return ``(poisson, gamma, simulate_wafer)`` compiled with ``jit``.

    ``hot_jit`` (default ``jit``) compiles the per-defect functions (``defect``, ``kill_die``);
    the CPU build passes an inlining decorator there (see :func:`_cpu_jits`);
    Poisson and gamma draws (a few per wafer) stay separate functions.

    ``simulate_wafer(gi, gf, die_id, density, seed, key, rng, dead, slot, maps,
    defects, n_def) -> good dies``; ``rng`` is a 2-word uint64 scratch, ``dead``
    a uint64 scratch of ceil(n_dies / 64) words, ``slot`` the wafer's row in the
    sample outputs or -1.
    """

    @jit
    def poisson(lam, state):
        """Exact Poisson draw: multiplication for lam < 10, PTRS (Hoermann 1993) above."""
        if lam <= 0.0:
            return 0
        if lam < 10.0:
            limit = math.exp(-lam)
            k = 0
            prod = uniform(state)
            while prod > limit:
                k += 1
                prod *= uniform(state)
            return k
        slam = math.sqrt(lam)
        loglam = math.log(lam)
        b = 0.931 + 2.53 * slam
        a = -0.059 + 0.02483 * b
        invalpha = 1.1239 + 1.1328 / (b - 3.4)
        vr = 0.9277 - 3.6224 / (b - 2.0)
        while True:
            u = uniform(state) - 0.5
            v = uniform(state)
            us = 0.5 - abs(u)
            k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
            if us >= 0.07 and v <= vr:
                return int(k)
            if k < 0.0 or (us < 0.013 and v > us):
                continue
            if math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b) <= -lam + k * loglam - math.lgamma(k + 1.0):
                return int(k)

    @jit
    def gamma(shape, state):
        """Gamma(shape, scale 1) by Marsaglia and Tsang (2000); boosted for shape < 1."""
        boost = 1.0
        if shape < 1.0:
            boost = math.pow(uniform(state), 1.0 / shape)
            shape += 1.0
        d = shape - 1.0 / 3.0
        c = 1.0 / math.sqrt(9.0 * d)
        while True:
            x = standard_normal(state)
            v = 1.0 + c * x
            if v <= 0.0:
                continue
            v = v * v * v
            u = uniform(state)
            if u < 1.0 - 0.0331 * x * x * x * x or math.log(u) < 0.5 * x * x + d * (1.0 - v + math.log(v)):
                return boost * d * v

    hot = hot_jit or jit

    @hot
    def kill_die(gi, gf, die_id, dead, x, y, killer):
        """Mark the die under (x, y) dead when ``killer``; 1 when that killed a live die, else 0.

        Branch-free (selects, clamped indices): a defect off the grid, in the
        scribe, on a non-gross cell or on a dead die changes nothing.
        """
        rx = x - gf[GF_X0]
        ry = y - gf[GF_Y0]
        i = min(max(int(rx * gf[GF_INV_PX]), 0), gi[GI_NX] - 1)
        j = min(max(int(ry * gf[GF_INV_PY]), 0), gi[GI_NY] - 1)
        d = die_id[j, i]
        hit = killer and rx >= 0.0 and ry >= 0.0 and rx - i * gf[GF_PX] < gf[GF_DW] and ry - j * gf[GF_PY] < gf[GF_DH] and d >= 0
        d = max(d, 0)
        word = d >> 6
        old = dead[word]
        new = old | ((np.uint64(1) << np.uint64(d & 63)) if hit else np.uint64(0))
        dead[word] = new
        return 1 if new != old else 0

    @hot
    def defect(gi, gf, die_id, dead, x, y, state, slot, defects, n_def):
        """Size and kill test of one candidate at (x, y); returns newly killed dies (0 or 1).

        A candidate off the wafer is no defect (the patterns draw on regions
        larger than the disk and let this thin them); it still consumes its two
        uniforms so the loop has no data-dependent branch.
        """
        on = x * x + y * y <= gf[GF_RADIUS] * gf[GF_RADIUS]
        size = gf[GF_X_MIN] / math.sqrt(uniform(state))  # density 2 x0^2 / x^3
        q = min(max((size - gf[GF_KILL_S]) * gf[GF_INV_KILL_P], 0.0), 1.0)  # critical-area fraction
        killer = on and uniform(state) < q
        if slot >= 0 and on:
            k = n_def[slot]
            if k < defects.shape[1]:
                defects[slot, k, DEF_X] = x
                defects[slot, k, DEF_Y] = y
                defects[slot, k, DEF_SIZE] = size
                defects[slot, k, DEF_KILLER] = 1.0 if killer else 0.0
            n_def[slot] = k + 1
        return kill_die(gi, gf, die_id, dead, x, y, killer)

    @jit
    def random_defects(gi, gf, die_id, dead, mean, state, slot, defects, n_def):
        """Poisson on the disk = Poisson on its bounding square (mean x 4/pi), thinned to the disk."""
        killed = 0
        r_w = gf[GF_RADIUS]
        for _ in range(poisson(mean * 4.0 / math.pi, state)):
            x = r_w * (2.0 * uniform(state) - 1.0)
            y = r_w * (2.0 * uniform(state) - 1.0)
            killed += defect(gi, gf, die_id, dead, x, y, state, slot, defects, n_def)
        return killed

    @jit
    def clustered_defects(gi, gf, die_id, dead, density_mm2, state, slot, defects, n_def):
        """Per block of dies a Gamma(alpha, 1/alpha) intensity, Poisson defects uniform in the block."""
        killed = 0
        r_w = gf[GF_RADIUS]
        alpha = gf[GF_ALPHA]
        bw = gi[GI_BLOCK] * gf[GF_PX]
        bh = gi[GI_BLOCK] * gf[GF_PY]
        for by in range(gi[GI_NBY]):
            y0 = gf[GF_Y0] + by * bh
            dy = max(0.0, max(y0, -(y0 + bh)))
            for bx in range(gi[GI_NBX]):
                x0 = gf[GF_X0] + bx * bw
                dx = max(0.0, max(x0, -(x0 + bw)))
                if dx * dx + dy * dy >= r_w * r_w:
                    continue  # block entirely off the wafer
                g = gamma(alpha, state) / alpha if alpha > 0.0 else 1.0
                for _ in range(poisson(density_mm2 * g * bw * bh, state)):
                    x = x0 + bw * uniform(state)
                    y = y0 + bh * uniform(state)
                    killed += defect(gi, gf, die_id, dead, x, y, state, slot, defects, n_def)
        return killed

    @jit
    def edge_defects(gi, gf, die_id, dead, mean, state, slot, defects, n_def):
        """Distance from the edge ~ Exp(edge width), truncated to the wafer; uniform angle."""
        killed = 0
        r_w = gf[GF_RADIUS]
        lam = gf[GF_EDGE_W]
        tail = math.exp(-r_w / lam)
        for _ in range(poisson(mean, state)):
            depth = -lam * math.log(1.0 - (1.0 - tail) * uniform(state))
            r = r_w - depth
            phi = _TWO_PI * uniform(state)
            killed += defect(gi, gf, die_id, dead, r * math.cos(phi), r * math.sin(phi), state, slot, defects, n_def)
        return killed

    @jit
    def centre_defects(gi, gf, die_id, dead, mean, state, slot, defects, n_def):
        """Isotropic Gaussian around the centre, truncated to the wafer (inverse CDF of the radius)."""
        killed = 0
        r_w = gf[GF_RADIUS]
        s2 = gf[GF_CENTRE_SD] * gf[GF_CENTRE_SD]
        tail = math.exp(-r_w * r_w / (2.0 * s2))
        for _ in range(poisson(mean, state)):
            r = math.sqrt(-2.0 * s2 * math.log(1.0 - (1.0 - tail) * uniform(state)))
            phi = _TWO_PI * uniform(state)
            killed += defect(gi, gf, die_id, dead, r * math.cos(phi), r * math.sin(phi), state, slot, defects, n_def)
        return killed

    @jit
    def scratch_defects(gi, gf, die_id, dead, mean, state, slot, defects, n_def):
        """With probability p one straight scratch: centre uniform on the wafer, uniform angle."""
        p = gf[GF_SCRATCH_P]
        if p <= 0.0 or uniform(state) >= p:
            return 0
        r_w = gf[GF_RADIUS]
        r = r_w * math.sqrt(uniform(state))
        phi = _TWO_PI * uniform(state)
        cx = r * math.cos(phi)
        cy = r * math.sin(phi)
        theta = math.pi * uniform(state)
        ux = math.cos(theta)
        uy = math.sin(theta)
        killed = 0
        for _ in range(poisson(mean / p, state)):
            t = gf[GF_SCRATCH_L] * (uniform(state) - 0.5)
            o = gf[GF_SCRATCH_W] * (uniform(state) - 0.5)
            killed += defect(gi, gf, die_id, dead, cx + t * ux - o * uy, cy + t * uy + o * ux, state, slot, defects, n_def)
        return killed

    @jit
    def simulate_wafer(gi, gf, die_id, density, seed, key, rng, dead, slot, maps, defects, n_def):
        seed_state(rng, seed, key)
        n_dies = gi[GI_N_DIES]
        for k in range((n_dies + 63) >> 6):
            dead[k] = np.uint64(0)
        if slot >= 0:
            n_def[slot] = 0
        # all defects (killers and not) per wafer: killer density / mean kill probability
        total = density / gf[GF_THETA] * gf[GF_WAFER_CM2]
        killed = 0
        if gf[GF_W_RANDOM] > 0.0:
            killed += random_defects(gi, gf, die_id, dead, gf[GF_W_RANDOM] * total, rng, slot, defects, n_def)
        if gf[GF_W_CLUSTERED] > 0.0:
            dens = gf[GF_W_CLUSTERED] * density / gf[GF_THETA] / _MM2_PER_CM2
            killed += clustered_defects(gi, gf, die_id, dead, dens, rng, slot, defects, n_def)
        if gf[GF_W_EDGE] > 0.0:
            killed += edge_defects(gi, gf, die_id, dead, gf[GF_W_EDGE] * total, rng, slot, defects, n_def)
        if gf[GF_W_CENTRE] > 0.0:
            killed += centre_defects(gi, gf, die_id, dead, gf[GF_W_CENTRE] * total, rng, slot, defects, n_def)
        if gf[GF_W_SCRATCH] > 0.0:
            killed += scratch_defects(gi, gf, die_id, dead, gf[GF_W_SCRATCH] * total, rng, slot, defects, n_def)
        if slot >= 0:
            for d in range(n_dies):
                maps[slot, d] = 0 if dead[d >> 6] & (np.uint64(1) << np.uint64(d & 63)) else 1
        return n_dies - killed

    return poisson, gamma, simulate_wafer


def build(jit, hot_jit=None):
    """The wafer simulator for one target, wired to the shared RNG and normal sampler."""
    from kernels.distributions import make_sampler
    from kernels.rng import make_rng

    seed_state, _, uniform = make_rng(hot_jit or jit)
    _, standard_normal = make_sampler(jit, uniform)
    return make_yield(jit, seed_state, uniform, standard_normal, hot_jit)


# ----------------------------------------------------------------------------- CPU launcher

def _cpu_jits():
    """``device_jit("cpu")``, and for the per-defect functions the same plus ``inline="always"``.

    Calls between separately compiled functions are not inlined; the per-defect
    path (``defect``, ``kill_die``, the RNG) runs millions of times per second
    and is inlined into each pattern.  The patterns and the wafer loop stay plain
    calls: inlining them too cost 2.5x the compile time (20 s vs 8 s on 2
    cores) and bought no speed (2.97 vs 2.86 s per 1e5 wafers, one thread).
    """
    jit = device_jit(CPU)
    return jit, numba.njit(cache=True, nogil=True, inline="always")


_simulate_wafer_cpu = build(*_cpu_jits())[2]


@numba.njit(parallel=True, cache=True)
def simulate_wafers_cpu(gi, gf, die_id, density, seed, key0, slot, good, rng, dead, maps, defects, n_def):
    """One prange iteration per wafer; scratch rows ``rng[w]``, ``dead[w]`` are the wafer's own."""
    for w in prange(density.shape[0]):
        good[w] = _simulate_wafer_cpu(gi, gf, die_id, density[w], seed, key0 + w, rng[w], dead[w], slot[w],
                                      maps, defects, n_def)


# ----------------------------------------------------------------------------- CUDA launcher

THREADS_PER_BLOCK = 128


def cuda_launcher():
    """Build (once) the CUDA kernel: one thread per wafer, scratch with the wafer axis trailing (coalesced)."""
    global _CUDA, cuda
    if _CUDA is None:
        # A module global (not a local import), so numba's CUDA simulator can swap it inside the kernel.
        from numba import cuda

        _, _, simulate_wafer = build(device_jit(CUDA))

        @cuda.jit
        def kernel(gi, gf, die_id, density, seed, key0, slot, good, rng, dead, maps, defects, n_def):
            w = cuda.grid(1)
            if w < density.shape[0]:
                good[w] = simulate_wafer(gi, gf, die_id, density[w], seed, key0 + w, rng[:, w], dead[:, w], slot[w],
                                         maps, defects, n_def)

        def launch(gi, gf, die_id, density, seed, key0, slot, good, rng, dead, maps, defects, n_def):
            n = density.shape[0]
            blocks = (n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
            kernel[blocks, THREADS_PER_BLOCK](gi, gf, die_id, density, seed, key0, slot, good, rng, dead, maps,
                                              defects, n_def)

        _CUDA = launch
    return _CUDA


_CUDA = None
cuda = None  # numba.cuda, imported by cuda_launcher() only when the CUDA backend is used
