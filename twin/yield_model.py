"""Die-level yield: wafer geometry, defect model and closed forms of a product.

The engine accumulates, per wafer, a *killer* defect density ``D`` (killer
defects per cm^2, the sum over its route of step density x (1 + tool
condition)).  This module turns ``D`` into dies: the die grid of the wafer, the
spatial defect patterns, the defect size / critical-area kill model, the
closed forms the Monte Carlo is tested against, and the chunked drivers of the
per-wafer kernels (kernels/yield_kernels.py): :func:`simulate_wafers` (every
wafer's result to the host) and :func:`simulate_lots` (the report's: wafers stay
where they ran, on CUDA in CuPy arrays, and only per-lot sums and summaries
come back).
docs/yield.md derives every formula.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np

from twin.errors import ConfigError

PATTERNS = ("random", "clustered", "edge", "centre", "scratch")
MM2_PER_CM2 = 100.0


@dataclass(frozen=True)
class YieldSpec:
    """Wafer geometry and defect model of one product (``products[].yield`` in the line)."""

    wafer_diameter_mm: float = 300.0
    edge_exclusion_mm: float = 3.0
    die_width_mm: float = 10.0
    die_height_mm: float = 10.0
    scribe_mm: float = 0.1
    alpha: float = math.inf  # negative-binomial clustering parameter; inf = Poisson
    # Share of the wafer's defects per spatial pattern (PATTERNS order); None: all
    # clustered when alpha is finite, all random otherwise (the engine's closed form).
    patterns: tuple | None = None
    cluster_block_dies: int = 4  # cluster regions are blocks of n x n dies; 0 = whole wafer
    edge_width_mm: float = 8.0  # edge ring: exponential decay length inwards from the edge
    centre_sigma_mm: float = 40.0  # centre blob: sd of an isotropic Gaussian
    scratch_probability: float = 0.05  # share of wafers that carry a scratch
    scratch_length_mm: float = 80.0
    scratch_width_mm: float = 0.5
    defect_min_um: float = 0.1  # x0 of the 1/x^3 size density
    line_width_um: float = 0.1  # w of the parallel-line critical-area model
    line_space_um: float = 0.1  # s: a defect smaller than s never kills

    @property
    def die_area_cm2(self) -> float:
        return self.die_width_mm * self.die_height_mm / MM2_PER_CM2

    @property
    def gross_dies(self) -> int:
        """Dies whose four corners lie inside the usable radius (grid corner at the wafer centre)."""
        return die_grid(self).n_dies

    @property
    def weights(self) -> tuple:
        """Normalised pattern shares in PATTERNS order."""
        if self.patterns is None:
            return (1.0, 0.0, 0.0, 0.0, 0.0) if math.isinf(self.alpha) else (0.0, 1.0, 0.0, 0.0, 0.0)
        total = float(sum(self.patterns))
        return tuple(float(w) / total for w in self.patterns)

    @property
    def kill_fraction(self) -> float:
        """Mean kill probability theta of one defect (size density x critical area)."""
        return kill_fraction(self.defect_min_um, self.line_width_um, self.line_space_um)


# ----------------------------------------------------------------------------- parsing

_POSITIVE = {"wafer_diameter_mm", "die_width_mm", "die_height_mm", "alpha", "edge_width_mm", "centre_sigma_mm",
             "scratch_length_mm", "defect_min_um", "line_width_um", "line_space_um"}
_FRACTION = {"scratch_probability"}


def parse_yield_spec(d, f) -> YieldSpec:
    """Validate ``d`` (the ``yield`` mapping at config path ``f``) before any compute."""
    if not isinstance(d, dict):
        raise ConfigError(f, d, "must be a mapping")
    allowed = set(YieldSpec.__dataclass_fields__)
    values = {}
    for key, value in d.items():
        if key not in allowed:
            raise ConfigError(f"{f}.{key}", value, f"unknown field; allowed: {', '.join(sorted(allowed))}")
        if key == "patterns":
            values[key] = _parse_patterns(value, f"{f}.patterns")
        elif key == "cluster_block_dies":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{f}.{key}", value, "must be an integer >= 0 (0 = the whole wafer is one region)")
            values[key] = value
        else:
            values[key] = _number(value, f"{f}.{key}", key)
    spec = YieldSpec(**values)
    _check_geometry(spec, f)
    return spec


def _number(value, field, key):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(field, value, "must be a number")
    if key == "alpha":
        if value <= 0:
            raise ConfigError(field, value, "must be > 0 (.inf for Poisson, no clustering)")
        return float(value)
    if not math.isfinite(value) or value < 0 or (key in _POSITIVE and value == 0):
        return _raise_range(field, value, key)
    if key in _FRACTION and value > 1:
        raise ConfigError(field, value, "must be a probability in [0, 1]")
    return float(value)


def _raise_range(field, value, key):
    raise ConfigError(field, value, "must be a finite number > 0" if key in _POSITIVE else "must be a finite number >= 0")


def _parse_patterns(value, f) -> tuple:
    if not isinstance(value, dict):
        raise ConfigError(f, value, f"must be a mapping of pattern shares; patterns: {', '.join(PATTERNS)}")
    out = []
    for key in value:
        if key not in PATTERNS:
            raise ConfigError(f"{f}.{key}", value[key], f"unknown pattern; allowed: {', '.join(PATTERNS)}")
    for name in PATTERNS:
        w = value.get(name, 0.0)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ConfigError(f"{f}.{name}", w, "must be a finite share >= 0")
        out.append(float(w))
    if sum(out) <= 0:
        raise ConfigError(f, value, "at least one pattern share must be > 0")
    return tuple(out)


def _check_geometry(spec: YieldSpec, f) -> None:
    usable = spec.wafer_diameter_mm / 2.0 - spec.edge_exclusion_mm
    if usable <= 0:
        raise ConfigError(f"{f}.edge_exclusion_mm", spec.edge_exclusion_mm,
                          f"must be less than the wafer radius ({spec.wafer_diameter_mm / 2.0:g} mm)")
    if spec.gross_dies < 1:
        raise ConfigError(f"{f}.die_width_mm", spec.die_width_mm,
                          f"no {spec.die_width_mm:g} x {spec.die_height_mm:g} mm die fits in the usable {2 * usable:g} mm circle")


def apply_yield_overrides(spec: YieldSpec, defect_scale=None, alpha=None, die_size_mm=None) -> YieldSpec:
    """Run-level sweep knobs: alpha and a square die edge replace the product's values.

    ``defect_scale`` multiplies step densities, which live on the route, not in
    the spec; it is validated here (so a sweep fails before compute) and the
    caller scales the steps (twin.app.apply_yield_settings does).
    """
    if defect_scale is not None:
        _number(defect_scale, "yield.defect_scale", "defect_scale")
    changes = {}
    if alpha is not None:
        changes["alpha"] = _number(alpha, "yield.alpha", "alpha")
    if die_size_mm is not None:
        edge = _number(die_size_mm, "yield.die_size_mm", "die_width_mm")
        changes.update(die_width_mm=edge, die_height_mm=edge)
    out = dataclasses.replace(spec, **changes)
    if changes:
        _check_geometry(out, "yield")
    return out


# ----------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class DieGrid:
    """Cells of pitch (die + scribe) covering the whole wafer; gross dies are numbered.

    Cell (j, i) has its lower-left corner at ``origin_mm + (i, j) * pitch_mm``
    (wafer centre at 0, 0); the die occupies the cell's lower-left
    ``die_mm`` part, the scribe the rest.  ``die_id[j, i]`` is the die number
    (row-major) or -1 when the die is not entirely inside the usable circle.
    """

    origin_mm: tuple
    pitch_mm: tuple
    die_mm: tuple
    die_id: np.ndarray  # [ny, nx] int32
    wafer_radius_mm: float
    usable_radius_mm: float

    @property
    def n_dies(self) -> int:
        return int((self.die_id >= 0).sum())

    @property
    def shape(self) -> tuple:
        return self.die_id.shape

    def corners_mm(self) -> np.ndarray:
        """[n_dies, 2] lower-left die corners, in die-number order."""
        j, i = np.nonzero(self.die_id >= 0)
        return np.stack([self.origin_mm[0] + i * self.pitch_mm[0], self.origin_mm[1] + j * self.pitch_mm[1]], axis=1)

    def centres_mm(self) -> np.ndarray:
        return self.corners_mm() + 0.5 * np.asarray(self.die_mm)


@functools.lru_cache(maxsize=64)
def die_grid(spec: YieldSpec) -> DieGrid:
    px, py = spec.die_width_mm + spec.scribe_mm, spec.die_height_mm + spec.scribe_mm
    radius = spec.wafer_diameter_mm / 2.0
    usable = radius - spec.edge_exclusion_mm
    nx, ny = math.ceil(radius / px), math.ceil(radius / py)
    x0 = (np.arange(-nx, nx) * px)[None, :]
    y0 = (np.arange(-ny, ny) * py)[:, None]
    x1, y1 = x0 + spec.die_width_mm, y0 + spec.die_height_mm
    far = np.maximum(x0 * x0, x1 * x1) + np.maximum(y0 * y0, y1 * y1)
    inside = far <= usable * usable * (1.0 + 1e-12)
    die_id = np.full(inside.shape, -1, np.int32)
    die_id[inside] = np.arange(int(inside.sum()), dtype=np.int32)
    return DieGrid((-nx * px, -ny * py), (px, py), (spec.die_width_mm, spec.die_height_mm), die_id, radius, usable)


def gross_dies_formula(diameter_mm: float, die_area_mm2: float) -> float:
    """Classical dies-per-wafer estimate pi d^2 / (4 S) - pi d / sqrt(2 S) (de Vries 2005)."""
    return math.pi * diameter_mm**2 / (4.0 * die_area_mm2) - math.pi * diameter_mm / math.sqrt(2.0 * die_area_mm2)


# ----------------------------------------------------------------------------- kill model and closed forms


def kill_fraction(x0: float, w: float, s: float) -> float:
    """theta = integral of kill(x) f(x) dx with f(x) = 2 x0^2 / x^3 (x >= x0), kill = clip((x - s)/(w + s), 0, 1).

    kill(x) is the critical-area fraction of a die with parallel lines of width
    w and spacing s hit by a defect of diameter x (shorts; Stapper 1983).
    """
    p = w + s
    full = 2.0 * s + w  # from this size on every position kills
    if x0 >= full:
        return 1.0
    a = max(x0, s)

    def prim(x):  # antiderivative of (x - s)/p * 2 x0^2 / x^3
        return 2.0 * x0 * x0 / p * (-1.0 / x + s / (2.0 * x * x))

    return prim(full) - prim(a) + x0 * x0 / (full * full)


def kill_probability(x_um, w: float, s: float):
    """Probability that a defect of diameter ``x_um`` kills the die it lands on."""
    return np.clip((np.asarray(x_um, float) - s) / (w + s), 0.0, 1.0)


def poisson_yield(area_cm2: float, density: float) -> float:
    return math.exp(-area_cm2 * density)


def nb_yield(area_cm2: float, density: float, alpha: float) -> float:
    """Negative-binomial (Stapper) yield (1 + A D / alpha)^-alpha; Poisson when alpha is infinite."""
    if math.isinf(alpha):
        return poisson_yield(area_cm2, density)
    return (1.0 + area_cm2 * density / alpha) ** (-alpha)


def expected_die_yield(spec: YieldSpec, density: float) -> float:
    """Mean die yield at killer density ``density`` for the spatially uniform patterns.

    Random defects are Poisson, clustered ones gamma-mixed Poisson, independent:
    Y = exp(-A w_r D) (1 + A w_c D / alpha)^-alpha.  Edge, centre and scratch
    patterns depend on the die's position: use :func:`die_yield_map`.
    """
    w = spec.weights
    if any(w[2:]):
        raise ValueError("edge, centre and scratch patterns have no position-free closed form; use die_yield_map")
    a = spec.die_area_cm2
    return poisson_yield(a, w[0] * density) * nb_yield(a, w[1] * density, spec.alpha)


def die_yield_map(spec: YieldSpec, density: float, points: int = 16) -> np.ndarray:
    """Expected yield of every gross die (die-number order) for random, clustered, edge and centre patterns.

    Each pattern is a Poisson process given its latent variables, so a die
    survives with exp(-(expected killers on the die)); the edge and centre
    intensities are integrated over the die by a ``points`` x ``points``
    midpoint rule.  Scratches are left out (they are not Poisson in position).
    """
    w = spec.weights
    if w[4] > 0:
        raise ValueError("the scratch pattern has no closed form; set its share to 0")
    g = die_grid(spec)
    a = spec.die_area_cm2
    base = poisson_yield(a, w[0] * density) * nb_yield(a, w[1] * density, spec.alpha)
    mass = w[2] * _die_mass(g, points, _edge_pdf(spec)) + w[3] * _die_mass(g, points, _centre_pdf(spec))
    wafer_cm2 = math.pi * g.wafer_radius_mm**2 / MM2_PER_CM2
    return base * np.exp(-density * wafer_cm2 * mass)


def _die_mass(g: DieGrid, points, pdf) -> np.ndarray:
    """Probability mass of a position density (per mm^2) over each die."""
    t = (np.arange(points) + 0.5) / points
    corners = g.corners_mm()
    xs = corners[:, 0:1, None] + t[None, :, None] * g.die_mm[0]
    ys = corners[:, 1:2][:, None, :] + t[None, None, :] * g.die_mm[1]
    dens = pdf(np.hypot(xs, ys))
    return dens.mean(axis=(1, 2)) * g.die_mm[0] * g.die_mm[1]


def _edge_pdf(spec):
    r_w = spec.wafer_diameter_mm / 2.0
    lam = spec.edge_width_mm
    norm = lam * (1.0 - math.exp(-r_w / lam))

    def pdf(r):  # distance from the edge ~ Exp(lam) truncated to [0, R]; uniform angle
        return np.exp(-(r_w - r) / lam) / norm / (2.0 * math.pi * np.maximum(r, 1e-9))

    return pdf


def _centre_pdf(spec):
    r_w = spec.wafer_diameter_mm / 2.0
    s2 = spec.centre_sigma_mm**2
    norm = 2.0 * math.pi * s2 * (1.0 - math.exp(-r_w * r_w / (2.0 * s2)))

    def pdf(r):  # isotropic Gaussian truncated to the wafer
        return np.exp(-r * r / (2.0 * s2)) / norm

    return pdf


def cluster_block_ids(spec: YieldSpec) -> np.ndarray:
    """Cluster region of every gross die (die-number order): blocks of n x n grid cells."""
    g = die_grid(spec)
    b = spec.cluster_block_dies
    j, i = np.nonzero(g.die_id >= 0)
    if b == 0:
        return np.zeros(j.size, np.int64)
    nbx = -(-g.shape[1] // b)
    return (j // b) * nbx + i // b


def wafer_yield_variance(spec: YieldSpec, density: float) -> float:
    """Variance of one wafer's die yield (good / gross) at killer density ``density``.

    Dies of one cluster block share a gamma intensity G, dies of different
    blocks are independent, so with p(G) = exp(-A D w_c G) exp(-A D w_r):
    Var = Var p * sum_b n_b^2 / N^2 + E[p (1 - p)] / N, where
    E p^k = exp(-k A D w_r) (1 + k A D w_c / alpha)^-alpha (negative binomial).
    Valid for the spatially uniform patterns (random, clustered).
    """
    w = spec.weights
    if any(w[2:]):
        raise ValueError("wafer_yield_variance covers the random and clustered patterns only")
    a = spec.die_area_cm2
    n_b = np.bincount(cluster_block_ids(spec)).astype(float)
    n = n_b.sum()

    def moment(k):
        return poisson_yield(a, k * w[0] * density) * nb_yield(a, k * w[1] * density, spec.alpha)

    m1, m2 = moment(1), moment(2)
    return (m2 - m1 * m1) * float((n_b**2).sum()) / (n * n) + (m1 - m2) / n


# ----------------------------------------------------------------------------- kernel tables


def kernel_tables(spec: YieldSpec):
    """(gi, gf, die_id) arrays that describe ``spec`` to kernels/yield_kernels.py."""
    from kernels import yield_kernels as Y

    g = die_grid(spec)
    w = spec.weights
    gi = np.zeros(Y.N_GI, np.int32)
    gf = np.zeros(Y.N_GF, np.float64)
    ny, nx = g.shape
    b = spec.cluster_block_dies or max(nx, ny)
    gi[Y.GI_NX], gi[Y.GI_NY], gi[Y.GI_N_DIES], gi[Y.GI_BLOCK] = nx, ny, g.n_dies, b
    gi[Y.GI_NBX], gi[Y.GI_NBY] = -(-nx // b), -(-ny // b)
    gf[Y.GF_RADIUS] = g.wafer_radius_mm
    gf[Y.GF_X0], gf[Y.GF_Y0] = g.origin_mm
    gf[Y.GF_PX], gf[Y.GF_PY] = g.pitch_mm
    gf[Y.GF_INV_PX], gf[Y.GF_INV_PY] = 1.0 / g.pitch_mm[0], 1.0 / g.pitch_mm[1]
    gf[Y.GF_DW], gf[Y.GF_DH] = g.die_mm
    gf[Y.GF_WAFER_CM2] = math.pi * g.wafer_radius_mm**2 / MM2_PER_CM2
    gf[Y.GF_THETA] = spec.kill_fraction
    gf[Y.GF_X_MIN] = spec.defect_min_um
    gf[Y.GF_KILL_S] = spec.line_space_um
    gf[Y.GF_KILL_P] = spec.line_width_um + spec.line_space_um
    gf[Y.GF_INV_KILL_P] = 1.0 / gf[Y.GF_KILL_P]
    for k in range(len(PATTERNS)):
        gf[Y.GF_W_RANDOM + k] = w[k]
    gf[Y.GF_ALPHA] = spec.alpha if math.isfinite(spec.alpha) else 0.0
    gf[Y.GF_EDGE_W] = spec.edge_width_mm
    gf[Y.GF_CENTRE_SD] = spec.centre_sigma_mm
    gf[Y.GF_SCRATCH_P] = spec.scratch_probability
    gf[Y.GF_SCRATCH_L] = spec.scratch_length_mm
    gf[Y.GF_SCRATCH_W] = spec.scratch_width_mm
    return gi, gf, np.ascontiguousarray(g.die_id)


# ----------------------------------------------------------------------------- Monte-Carlo driver


@dataclass
class WaferMC:
    """Result of :func:`simulate_wafers`: good dies per wafer plus the sampled wafers' maps."""

    good: np.ndarray  # [n] int32 good dies of every wafer
    gross: int
    sample: np.ndarray  # [k] int64 wafer indices that were recorded
    die_pass: np.ndarray  # [k, gross] uint8, 1 pass, 0 fail (die-number order)
    defects: list  # k arrays [m, 4] float64: x_mm, y_mm, size_um, killer (0/1)
    n_defects: np.ndarray  # [k] true defect count (the arrays are capped at max_defects)

    @property
    def die_yield(self) -> np.ndarray:
        return self.good / float(self.gross)


@dataclass(frozen=True)
class WaferSummaries:
    """Every wafer reduced to what the yield report needs, by :func:`wafer_summaries`; host values only."""

    lot_good: np.ndarray  # [n_lots] int64 good dies of each lot
    wafers: int
    good_total: int
    die_yield_mean: float | None  # mean over wafers of good / gross; None without wafers
    die_yield_sd: float | None  # sample sd (ddof 1) of the same; None below two wafers


@dataclass
class LotMC:
    """Result of :func:`simulate_lots`: per-lot sums and wafer summaries, and the sampled wafers in full."""

    summary: WaferSummaries
    gross: int
    sample: np.ndarray  # [k] int64 wafer indices that were recorded (wafers numbered lot by lot)
    sample_lot: np.ndarray  # [k] int64 lot of each sampled wafer
    sample_good: np.ndarray  # [k] int32 good dies of each sampled wafer
    die_pass: np.ndarray  # [k, gross] uint8, 1 pass, 0 fail (die-number order)
    defects: list  # k arrays [m, 4] float64: x_mm, y_mm, size_um, killer (0/1)
    n_defects: np.ndarray  # [k] true defect count (the arrays are capped at max_defects)


def simulate_wafers(spec: YieldSpec, density, seed: int, backend=None, key0: int = 0, sample=None,
                    max_defects: int | None = None, chunk: int = 1 << 18) -> WaferMC:
    """Die-level Monte Carlo of wafers with killer densities ``density`` [n] (defects/cm^2).

    Wafer ``w`` draws from the stream keyed ``(seed, key0 + w)``, so results do
    not depend on ``backend`` (a :class:`twin.backend.Backend`, the engine's;
    None: the CPU) or ``chunk``.  ``sample`` lists wafer indices whose die map
    and defects are kept.  Every wafer's good-die count comes to the host; a
    caller that needs per-lot sums and summaries only uses :func:`simulate_lots`.
    """
    from twin.backend import array_module, to_host

    density = _checked_densities(density)
    _check_chunk(chunk)
    sample = _checked_sample(sample, density.size)
    xp = array_module(backend)
    good, _, sampled = _run_wafers(spec, xp, xp.asarray(density), _top(density[sample]), seed, backend, key0, sample,
                                   max_defects, chunk)
    return WaferMC(to_host(xp, good), spec.gross_dies, sample, *sampled)


def simulate_lots(spec: YieldSpec, lot_density, lot_wafers, seed: int, backend=None, key0: int = 0, sample=None,
                  max_defects: int | None = None, chunk: int = 1 << 18) -> LotMC:
    """Die-level Monte Carlo of lots: lot ``l`` has ``lot_wafers[l]`` wafers at killer density ``lot_density[l]``.

    Wafers are numbered lot by lot and keyed as in :func:`simulate_wafers`, so
    both give the same dies.  Here every per-wafer array stays where the kernel
    runs (on CUDA, in CuPy's memory pool): the densities are expanded per wafer
    there, the lot sums and wafer summaries are reduced there
    (:func:`wafer_summaries`), and only those and the ``sample`` wafers (indices
    in that numbering) reach the host.
    """
    from twin.backend import array_module

    lot_density = _checked_densities(lot_density)
    lot_wafers = _checked_wafer_counts(lot_wafers, lot_density.size)
    _check_chunk(chunk)
    lot_end = np.cumsum(lot_wafers)
    sample = _checked_sample(sample, int(lot_end[-1]) if lot_end.size else 0)
    sample_lot = np.searchsorted(lot_end, sample, side="right")
    xp = array_module(backend)
    wafers_xp = xp.asarray(lot_wafers)
    density = per_wafer(xp, xp.asarray(lot_density), wafers_xp)
    good, sample_good, sampled = _run_wafers(spec, xp, density, _top(lot_density[sample_lot]), seed, backend, key0,
                                             sample, max_defects, chunk)
    summary = wafer_summaries(xp, good, wafers_xp, spec.gross_dies)
    return LotMC(summary, spec.gross_dies, sample, sample_lot, sample_good, *sampled)


def per_wafer(xp, lot_values, lot_wafers):
    """``lot_values`` repeated ``lot_wafers`` times (NumPy's ``repeat``), built where ``xp`` keeps arrays.

    A gather through ``searchsorted``: ``cupy.repeat`` takes device counts only
    from CuPy 14 on (before, it wants host counts and copies lot by lot).
    """
    lot_end = xp.cumsum(lot_wafers)
    n = int(lot_end[-1]) if lot_end.size else 0
    return lot_values[xp.searchsorted(lot_end, xp.arange(n), side="right")]


def wafer_summaries(xp, good, lot_wafers, gross: int) -> WaferSummaries:
    """Per-lot good dies, total, and the mean and sd of wafer die yield, reduced where ``good`` lives.

    ``good`` [n] holds good dies per wafer, lot by lot (lot ``l`` has
    ``lot_wafers[l]`` wafers), as an ``xp`` array; only the results cross to the
    host.  Lot sums are differences of an int64 running sum, exact on any
    device; mean and sd are ``xp``'s (NumPy: pairwise summation, as the CPU
    report always did; CuPy's tree reduction may differ in the last bits).
    """
    from twin.backend import to_host

    lot_wafers = xp.asarray(lot_wafers, dtype=xp.int64)
    running = xp.concatenate([xp.zeros(1, xp.int64), xp.cumsum(good, dtype=xp.int64)])
    lot_end = xp.cumsum(lot_wafers)
    lot_good = running[lot_end] - running[lot_end - lot_wafers]
    n = int(good.size)
    die_yield = good / float(gross)
    return WaferSummaries(
        lot_good=to_host(xp, lot_good),
        wafers=n,
        good_total=int(running[-1]),
        die_yield_mean=float(die_yield.mean()) if n else None,
        die_yield_sd=float(die_yield.std(ddof=1)) if n > 1 else None,
    )


def _checked_densities(density) -> np.ndarray:
    density = np.ascontiguousarray(density, np.float64).ravel()
    if density.size and (not np.all(np.isfinite(density)) or density.min() < 0):
        raise ConfigError("defect_density", float(density.min()), "killer densities must be finite and >= 0")
    return density


def _checked_wafer_counts(lot_wafers, n_lots: int) -> np.ndarray:
    counts = np.asarray(lot_wafers).ravel()
    if counts.size != n_lots:
        raise ConfigError("lot_wafers", counts.size, f"must give one wafer count per lot ({n_lots} lots)")
    if counts.size and (counts.dtype.kind not in "iu" or counts.min() < 0):
        raise ConfigError("lot_wafers", counts.min(), "wafer counts must be integers >= 0")
    return counts.astype(np.int64)


def _check_chunk(chunk) -> None:
    if not isinstance(chunk, int) or chunk < 1:
        raise ConfigError("chunk", chunk, "must be an integer >= 1")


def _checked_sample(sample, n: int) -> np.ndarray:
    sample = np.unique(np.asarray([] if sample is None else sample, np.int64))
    if sample.size and (sample[0] < 0 or sample[-1] >= n):
        bad = sample[0] if sample[0] < 0 else sample[-1]  # sorted: the out-of-range value is at an end
        raise ConfigError("sample", int(bad), f"wafer indices must lie in [0, {n})")
    return sample


def _top(sample_density) -> float:
    return float(sample_density.max()) if sample_density.size else 0.0


def _run_wafers(spec, xp, density, top_density, seed, backend, key0, sample, max_defects, chunk):
    """The wafer kernel over ``density`` (an ``xp`` array, one killer density per wafer), in chunks.

    Returns ``good`` [n] int32 where the kernel ran (an ``xp`` array), and on
    the host the sampled wafers' good dies and ``(die_pass, defects,
    n_defects)``.  Outputs and scratch are allocated by ``xp`` where the kernel
    runs: nothing is built on the host and copied over.
    """
    from kernels import yield_kernels as Y
    from twin.backend import cpu_threads, on_cuda, to_host

    gi, gf, die_id = kernel_tables(spec)
    n, n_dies, k = density.size, int(gi[Y.GI_N_DIES]), sample.size
    if max_defects is None:
        mean = top_density / spec.kill_fraction * gf[Y.GF_WAFER_CM2]
        max_defects = int(3.0 * mean + 10.0 * math.sqrt(mean) + 64)
    sample_xp = xp.asarray(sample)
    slot = xp.full(n, -1, xp.int32)  # the wafer's row in the sample outputs, or -1
    slot[sample_xp] = xp.arange(k, dtype=xp.int32)
    good = xp.zeros(n, xp.int32)
    maps = xp.zeros((max(k, 1), n_dies), xp.uint8)
    defects = xp.zeros((max(k, 1), max_defects, Y.N_DEF), xp.float64)
    n_def = xp.zeros(max(k, 1), xp.int32)
    run = _cuda_chunks if on_cuda(backend) else _cpu_chunks
    with cpu_threads(backend):
        run(xp, Y, gi, gf, die_id, density, np.uint64(seed), int(key0), slot, good, maps, defects, n_def, chunk)
    n_def = to_host(xp, n_def[:k]).astype(np.int64)
    kept = [to_host(xp, defects[s, : min(int(n_def[s]), max_defects)]).copy() for s in range(k)]
    return good, to_host(xp, good[sample_xp]), (to_host(xp, maps[:k]), kept, n_def)


def _cpu_chunks(xp, Y, gi, gf, die_id, density, seed, key0, slot, good, maps, defects, n_def, chunk):
    """One parallel CPU kernel call per chunk (``xp`` is NumPy; the argument keeps one signature with CUDA)."""
    words = (int(gi[Y.GI_N_DIES]) + 63) >> 6
    for a in range(0, density.size, chunk):
        b = min(a + chunk, density.size)
        rng = np.zeros((b - a, 2), np.uint64)
        dead = np.zeros((b - a, words), np.uint64)
        Y.simulate_wafers_cpu(gi, gf, die_id, density[a:b], seed, np.int64(key0 + a), slot[a:b], good[a:b],
                              rng, dead, maps, defects, n_def)


def _cuda_chunks(xp, Y, gi, gf, die_id, density, seed, key0, slot, good, maps, defects, n_def, chunk):
    """One kernel launch per chunk; numba takes the ``xp`` (CuPy) arrays through ``__cuda_array_interface__``.

    The scratch (RNG state, dead-die bitmask; wafer axis last, coalesced) comes
    from CuPy's memory pool uninitialised: the kernel seeds and clears its own.
    """
    launch = Y.cuda_launcher()
    words = (int(gi[Y.GI_N_DIES]) + 63) >> 6
    gi, gf, die_id = xp.asarray(gi), xp.asarray(gf), xp.asarray(die_id)
    for a in range(0, density.size, chunk):
        b = min(a + chunk, density.size)
        rng = xp.empty((2, b - a), xp.uint64)
        dead = xp.empty((words, b - a), xp.uint64)
        launch(gi, gf, die_id, density[a:b], seed, np.int64(key0 + a), slot[a:b], good[a:b], rng, dead, maps,
               defects, n_def)


def compile_cpu_kernel() -> None:
    """Compile (or load from the cache) the CPU wafer kernel: a one-wafer run."""
    simulate_wafers(YieldSpec(), np.zeros(1), 0)


def cpu_kernel_cached() -> bool:
    """Whether numba's disk cache already holds the CPU wafer kernel."""
    from pathlib import Path

    import numba

    from kernels.target import keyed_cache_dir

    keyed_cache_dir()
    root = Path(numba.config.CACHE_DIR or ".")
    return any(root.rglob("yield_kernels.simulate_wafers_cpu-*.nbi"))


def compile_cpu_kernel_in_background():
    """Start compiling the CPU wafer kernel in a second process, or None when it is cached.

    numba compiles on one core; a first run would compile the engine and then
    this kernel one after the other.  In a second process the two overlap.
    Callers ``wait()`` on the process before they simulate wafers.
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    if os.environ.get("NUMBA_DISABLE_CACHING") == "1" or cpu_kernel_cached():
        return None
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    code = "from twin.yield_model import compile_cpu_kernel; compile_cpu_kernel()"
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
