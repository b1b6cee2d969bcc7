"""Die-level yield: wafer geometry and defect model of a product.

(Skeleton used by the engine; the yield twin extends it.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from twin.errors import ConfigError


@dataclass(frozen=True)
class YieldSpec:
    wafer_diameter_mm: float = 300.0
    edge_exclusion_mm: float = 3.0
    die_width_mm: float = 10.0
    die_height_mm: float = 10.0
    scribe_mm: float = 0.1
    alpha: float = math.inf  # negative-binomial clustering parameter; inf = Poisson

    @property
    def die_area_cm2(self) -> float:
        return self.die_width_mm * self.die_height_mm / 100.0

    @property
    def gross_dies(self) -> int:
        """Dies whose four corners lie inside the usable radius, on a centred grid."""
        pitch_x = self.die_width_mm + self.scribe_mm
        pitch_y = self.die_height_mm + self.scribe_mm
        radius = self.wafer_diameter_mm / 2.0 - self.edge_exclusion_mm
        n = int(radius // min(pitch_x, pitch_y)) + 2
        count = 0
        for i in range(-n, n):
            for j in range(-n, n):
                x0, y0 = i * pitch_x, j * pitch_y
                x1, y1 = x0 + self.die_width_mm, y0 + self.die_height_mm
                if max(x0 * x0, x1 * x1) + max(y0 * y0, y1 * y1) <= radius * radius:
                    count += 1
        return count


def parse_yield_spec(d, f) -> YieldSpec:
    if not isinstance(d, dict):
        raise ConfigError(f, d, "must be a mapping")
    allowed = set(YieldSpec.__dataclass_fields__)
    for key, value in d.items():
        if key not in allowed:
            raise ConfigError(f"{f}.{key}", value, f"unknown field; allowed: {', '.join(sorted(allowed))}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"{f}.{key}", value, "must be a number >= 0")
    return YieldSpec(**{k: float(v) for k, v in d.items()})
