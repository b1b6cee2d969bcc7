"""Validation helpers shared by the study's parsers: each bad value raises one ConfigError."""
from __future__ import annotations

import math

from twin.distributions import Dist
from twin.errors import ConfigError
def _mapping(value, field_name) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(field_name, value, "expected a mapping")
    return value


def _only(cfg: dict, field_name: str, allowed: set, hint: str | None = None) -> None:
    extra = sorted(set(cfg) - set(allowed))
    if extra:
        raise ConfigError(f"{field_name}.{extra[0]}", cfg[extra[0]],
                          hint or f"unknown setting; allowed: {', '.join(sorted(allowed))}")


def _num(value, field_name, low=0.0, high=math.inf, open_low=False, finite=True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = (math.isfinite(value) or (not finite and value == math.inf)) and value >= low and value <= high \
            and not (open_low and value == low)
    if not ok:
        rng = f"{'>' if open_low else '>='} {low:g}" if math.isfinite(low) else "a number"
        if math.isfinite(high):
            rng += f" and <= {high:g}"
        raise ConfigError(field_name, value, f"must be {'finite, ' if finite else ''}{rng}")
    return value


def _int(value, field_name, low) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(field_name, value, f"must be an integer >= {low}")
    return value


def _dist(spec, field_name, required=False) -> Dist | None:
    if spec is None:
        if required:
            raise ConfigError(field_name, None, "required: a number (hours) or {dist: ..., ...}")
        return None
    return Dist.parse(spec, field_name)


def _first_line(err) -> str:
    text = [t.strip() for t in str(err).strip().splitlines() if t.strip()]
    return text[0] if text else type(err).__name__
