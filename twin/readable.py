"""Numbers for people: a mean and its 95% CI half-width with the digits the CI supports.

``1123.4 ± 3712`` reads ``1,120 ± 3,700``: the half-width keeps two significant digits, the mean
three (or as many as the half-width shows, if more), thousands are separated, and no exponent
appears between 1e-4 and 1e12.
"""
from __future__ import annotations

import math

MAX_DECIMALS = 6
NOISE = 1e-9  # a half-width this small against the mean is floating-point rounding, shown as none


def decimals_for(value: float, significant: int) -> int:
    """Decimal places that show ``significant`` digits of ``value`` (negative: round to tens, hundreds...)."""
    if value == 0 or not math.isfinite(value):
        return 0
    return min(MAX_DECIMALS, significant - 1 - math.floor(math.log10(abs(value))))


def number(value, significant: int = 3, places: int | None = None) -> str:
    """``value`` with ``significant`` digits (or fixed ``places``), thousands separated; '-' for none."""
    if value is None or not math.isfinite(float(value)):
        return "-"
    value = float(value)
    if value != 0 and abs(value) < 10.0 ** -MAX_DECIMALS:
        return f"{value:.{significant - 1}e}"
    places = decimals_for(value, significant) if places is None else places
    rounded = round(value, places)
    return f"{rounded:,.{max(places, 0)}f}"


def mean_ci(mean, half, scale: float = 1.0) -> str:
    """``mean ± half`` (both multiplied by ``scale``, e.g. 100 for percent); the mean alone without a CI."""
    if mean is None or not math.isfinite(float(mean)):
        return "-"
    mean = float(mean) * scale
    half = float(half) * scale if half is not None else math.nan
    if not math.isfinite(half) or abs(half) <= NOISE * max(abs(mean), 1.0):
        return number(mean)  # no spread, or only rounding noise (a share that is 1 in every replication)
    places = max(decimals_for(half, 2), decimals_for(mean, 3))
    return f"{number(mean, places=places)} ± {number(half, places=decimals_for(half, 2))}"


def summary(s: dict | None, scale: float = 1.0) -> str:
    """A ``{"mean", "ci95"}`` summary as ``mean ± half``."""
    if not isinstance(s, dict):
        return "-"
    return mean_ci(s.get("mean"), s.get("ci95"), scale)
