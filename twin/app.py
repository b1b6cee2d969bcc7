"""One scenario run as a plain function: config in, run folder out.

The Hydra entry point in :mod:`twin.cli` only converts its config to a dict
and calls :func:`run_scenario`, so tests and notebooks call it directly.
"""
from __future__ import annotations

import dataclasses
import math
import sys

from twin.backend import resolve_backend
from twin.compile import compile_line
from twin.errors import ConfigError
from twin.line import Line, load_line
from twin.output import summary_table, write_run
from twin.runner import run_line

RUN_KEYS = {"line", "replicas", "horizon_days", "warmup_days", "seed", "dispatch", "snapshot_minutes",
            "chunk_replicas", "max_lots", "progress", "yield", "backend"}


def prepare(cfg: dict):
    """Validate the whole config and build line, backend and run arguments — before any compute."""
    unknown = set(cfg) - RUN_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(key, cfg[key], f"unknown setting; allowed: {', '.join(sorted(RUN_KEYS))}")
    line = apply_yield_settings(load_line(cfg.get("line") or "default"), cfg.get("yield") or {})
    defaults = line.run_defaults
    horizon = _days(cfg.get("horizon_days"), "horizon_days", defaults.get("horizon_days", 60.0))
    warmup = _days(cfg.get("warmup_days"), "warmup_days", defaults.get("warmup_days", horizon / 4.0))
    dispatch = cfg.get("dispatch") or defaults.get("dispatch")
    compiled = compile_line(line, dispatch=dispatch, max_lots=_count(cfg.get("max_lots", 0), "max_lots", 0))
    backend_cfg = cfg.get("backend") or {}
    if isinstance(backend_cfg, str):
        backend_cfg = {"name": backend_cfg}
    backend = resolve_backend(backend_cfg.get("name", "auto"), _count(backend_cfg.get("threads", 0), "backend.threads", 0))
    args = dict(
        replicas=_count(cfg.get("replicas", 8), "replicas", 1),
        horizon_days=horizon,
        warmup_days=warmup,
        seed=_count(cfg.get("seed", 1), "seed", 0),
        chunk_replicas=_count(cfg.get("chunk_replicas", 0), "chunk_replicas", 0),
        snapshot_minutes=_number(cfg.get("snapshot_minutes", 240.0), "snapshot_minutes"),
        progress=bool(cfg.get("progress", False)),
    )
    if args["horizon_days"] <= args["warmup_days"]:
        raise ConfigError("horizon_days", horizon, f"must be greater than warmup_days ({warmup})")
    return compiled, backend, args


def run_scenario(cfg: dict, out_dir) -> dict:
    """Run the scenario ``cfg`` and write its run folder; returns kpis.json's content."""
    compiled, backend, args = prepare(cfg)
    ycfg = cfg.get("yield") or {}
    with_yield = ycfg.get("enabled", True) and any(p.yield_spec is not None for p in compiled.line.products)
    yield_compile = _start_yield_compile(backend) if with_yield else None
    try:
        result = run_line(compiled, backend=backend, **args)
    except BaseException:
        if yield_compile is not None:
            yield_compile.terminate()
        raise
    extra = {}
    if with_yield:
        if yield_compile is not None:
            yield_compile.wait()
        extra["yield"] = _yield_section(result, out_dir, backend, args["seed"], ycfg)
    doc = write_run(result, out_dir, _meta_config(cfg, compiled.line), extra)
    if result.interrupted:
        print(f"interrupted: wrote the {result.completed_replicas} finished replications to {out_dir}", file=sys.stderr)
    return doc


def _meta_config(cfg: dict, line) -> dict:
    """The run's settings for kpis.json: the line by name plus a hash of its full content."""
    from twin.output import config_hash

    line_cfg = cfg.get("line")
    return {**cfg, "line": line.name, "line_hash": config_hash(line_cfg if isinstance(line_cfg, dict) else {"line": line_cfg})}


def _start_yield_compile(backend):
    """On the CPU, compile the wafer kernel in a second process while the engine compiles here."""
    if backend.name != "cpu":
        return None
    from twin.yield_model import compile_cpu_kernel_in_background

    return compile_cpu_kernel_in_background()


def _yield_section(result, out_dir, backend, seed, ycfg) -> dict:
    from twin.yield_report import yield_report

    return yield_report(result, out_dir, backend, seed, sample_wafers=_count(ycfg.get("sample_wafers", 200), "yield.sample_wafers", 0))


def apply_yield_settings(line: Line, ycfg: dict) -> Line:
    """Run-level yield knobs (for sweeps): scale defect densities, override alpha and die size."""
    from twin.yield_model import apply_yield_overrides

    scale = _number(ycfg.get("defect_scale", 1.0), "yield.defect_scale")
    alpha, die = ycfg.get("alpha"), ycfg.get("die_size_mm")
    if scale == 1.0 and alpha is None and die is None:
        return line
    products = []
    for p in line.products:
        route = tuple(dataclasses.replace(s, defect_density=s.defect_density * scale) for s in p.route)
        spec = p.yield_spec
        if spec is not None:
            spec = apply_yield_overrides(spec, scale, alpha, die)
        products.append(dataclasses.replace(p, route=route, yield_spec=spec))
    return dataclasses.replace(line, products=tuple(products))


def _days(value, field, default):
    if value is None:
        value = default
    return _number(value, field)


def _number(value, field, positive=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ConfigError(field, value, "must be a finite number > 0" if positive else "must be a finite number >= 0")
    return float(value)


def _count(value, field, low):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(field, value, f"must be an integer >= {low}")
    return value


def print_summary(doc: dict, out_dir) -> None:
    meta = doc["meta"]
    print(f"FabTwin: line {meta['line']}, {meta['replications']} replications x {meta['horizon_days']:g} days "
          f"(warm-up {meta['warmup_days']:g}) on {meta['backend']} ({meta['device']})")
    print(f"{meta['events']:,} events in {meta['wall_seconds']:.2f} s (+{meta['compile_seconds']:.1f} s JIT/cache load)")
    print(summary_table(doc))
    if "yield" in doc and isinstance(doc["yield"], dict):
        print(_yield_line(doc["yield"]))
    check = doc["checks"]["conservation"]
    print(f"lots conserved: {check['ok']} (released {check['released']} + initial {check['initial']} = "
          f"completed {check['completed']} + in process {check['in_process']})")
    print(f"results: {out_dir}")


def _yield_line(y: dict) -> str:
    parts = []
    for name, p in (y.get("products") or {}).items():
        dy = p.get("die_yield") if isinstance(p, dict) else None
        if isinstance(dy, dict) and dy.get("mean") is not None:
            parts.append(f"{name} {100 * dy['mean']:.1f}%")
    return "die yield: " + (", ".join(parts) if parts else "see kpis.json")
