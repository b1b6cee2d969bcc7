"""Time distributions of the line: parsed, validated, encoded for the kernels.

Distributions know their analytic mean and variance, so tests can compare
samples drawn by the kernels with them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from kernels.distributions import KIND_CODES
from twin.errors import ConfigError

# Parameters each kind needs, in the order the user writes them.
PARAMS = {
    "constant": ("value",),
    "uniform": ("low", "high"),
    "exponential": ("mean",),
    "lognormal": ("mean", "sd"),
    "triangular": ("low", "mode", "high"),
    "weibull": ("shape", "scale"),
}


@dataclass(frozen=True)
class Dist:
    """A non-negative time distribution (minutes, unless said otherwise)."""

    kind: str
    params: tuple[float, ...]

    @staticmethod
    def constant(value: float) -> "Dist":
        return Dist("constant", (float(value),))

    @staticmethod
    def parse(spec, field: str) -> "Dist":
        """Build from ``{dist: kind, <params>}`` or a bare number (constant)."""
        if isinstance(spec, (int, float)) and not isinstance(spec, bool):
            spec = {"dist": "constant", "value": spec}
        if not isinstance(spec, dict):
            raise ConfigError(field, spec, "expected a number or a mapping like {dist: exponential, mean: 10}")
        kind = spec.get("dist")
        if not isinstance(kind, str) or kind not in PARAMS:
            raise ConfigError(f"{field}.dist", kind, f"allowed: {', '.join(PARAMS)}")
        names = PARAMS[kind]
        extra = set(spec) - set(names) - {"dist"}
        if extra:
            raise ConfigError(f"{field}.{sorted(extra)[0]}", spec[sorted(extra)[0]], f"{kind} takes only {', '.join(names)}")
        values = []
        for name in names:
            if name not in spec:
                raise ConfigError(f"{field}.{name}", None, f"{kind} needs {', '.join(names)}")
            values.append(_non_negative(spec[name], f"{field}.{name}"))
        dist = Dist(kind, tuple(values))
        dist._check_shape(field)
        dist._check_moments(field)
        return dist

    def _check_moments(self, field: str) -> None:
        """A law whose mean or variance is not a finite number (a Weibull shape near 0) cannot be simulated."""
        try:
            finite = math.isfinite(self.mean) and math.isfinite(self.variance)
        except OverflowError:
            finite = False
        if not finite:
            raise ConfigError(field, dict(zip(("dist", *PARAMS[self.kind]), (self.kind, *self.params))),
                              "its mean or variance is not finite; choose parameters with a finite mean and variance")

    def _check_shape(self, field: str) -> None:
        p = self.params
        if self.kind == "uniform" and p[1] < p[0]:
            raise ConfigError(f"{field}.high", p[1], f"must be >= low ({p[0]})")
        if self.kind == "triangular" and not p[0] <= p[1] <= p[2]:
            raise ConfigError(f"{field}.mode", p[1], f"must lie in [low, high] = [{p[0]}, {p[2]}]")
        if self.kind in ("exponential", "lognormal") and p[0] <= 0:
            raise ConfigError(f"{field}.mean", p[0], "must be > 0")
        if self.kind == "weibull" and (p[0] <= 0 or p[1] <= 0):
            raise ConfigError(f"{field}.shape", p[0], "shape and scale must be > 0")

    @property
    def mean(self) -> float:
        p = self.params
        return {
            "constant": lambda: p[0],
            "uniform": lambda: 0.5 * (p[0] + p[1]),
            "exponential": lambda: p[0],
            "lognormal": lambda: p[0],
            "triangular": lambda: (p[0] + p[1] + p[2]) / 3.0,
            "weibull": lambda: p[1] * math.gamma(1.0 + 1.0 / p[0]),
        }[self.kind]()

    @property
    def variance(self) -> float:
        p = self.params
        if self.kind == "constant":
            return 0.0
        if self.kind == "uniform":
            return (p[1] - p[0]) ** 2 / 12.0
        if self.kind == "exponential":
            return p[0] ** 2
        if self.kind == "lognormal":
            return p[1] ** 2
        if self.kind == "triangular":
            a, c, b = p
            return (a * a + b * b + c * c - a * b - a * c - b * c) / 18.0
        k, lam = p
        return lam * lam * (math.gamma(1 + 2 / k) - math.gamma(1 + 1 / k) ** 2)

    def scaled(self, factor: float) -> "Dist":
        """The distribution of ``factor * X`` (used for unit conversion)."""
        if self.kind == "weibull":
            return Dist("weibull", (self.params[0], self.params[1] * factor))
        return Dist(self.kind, tuple(v * factor for v in self.params))

    def encode(self) -> tuple[int, float, float, float]:
        """``(kind code, p0, p1, p2)`` as :mod:`kernels.distributions` expects."""
        p = list(self.params)
        if self.kind == "lognormal":
            mean, sd = p
            sigma2 = math.log1p((sd / mean) ** 2)
            p = [math.log(mean) - 0.5 * sigma2, math.sqrt(sigma2)]
        p += [0.0] * (3 - len(p))
        return KIND_CODES[self.kind], float(p[0]), float(p[1]), float(p[2])


def _non_negative(value, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(field, value, "must be a number")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(field, value, "must be a finite number >= 0")
    return float(value)
