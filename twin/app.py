"""One scenario run as a plain function: config in, run folder out.

The Hydra entry point in :mod:`twin.cli` only converts its config to a dict
and calls :func:`run_scenario`, so tests and notebooks call it directly.
"""
from __future__ import annotations

import dataclasses
import math
import shutil
import sys
from pathlib import Path

from twin.backend import resolve_backend
from twin.compile import MINUTES_PER_DAY, compile_line
from twin import readable
from twin.errors import ConfigError
from twin.line import Line, load_line
from twin.output import estimate_bytes, summary_table, survivor_warnings, write_run
from twin.rundir import (CHECKPOINT, FolderLock, Interrupts, RunFolderError, check_folder, remove_stale_outputs,
                         remove_temporaries, rescue_dir, staging_dir)
from twin.runner import Checkpoint, checkpoint_bytes, checkpoint_key, log_rows, run_line

MAX_HORIZON_DAYS = 36525.0  # 100 years: longer runs are no plant's question and only fill memory
YIELD_KEYS = {"enabled", "defect_scale", "alpha", "die_size_mm", "sample_wafers"}
RUN_KEYS = {"line", "replicas", "horizon_days", "warmup_days", "seed", "dispatch", "snapshot_minutes",
            "chunk_replicas", "max_lots", "progress", "yield", "backend", "resume", "checkpoint_seconds", "objective",
            "cluster"}


def prepare(cfg: dict):
    """Validate the whole config and build line, backend and run arguments — before any compute."""
    unknown = set(cfg) - RUN_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(key, cfg[key], f"unknown setting; allowed: {', '.join(sorted(RUN_KEYS))}")
    ycfg = _yield_settings(cfg.get("yield"))
    line = apply_yield_settings(load_line(cfg.get("line") or "default"), ycfg)
    defaults = line.run_defaults
    horizon = _days(cfg.get("horizon_days"), "horizon_days", defaults.get("horizon_days", 60.0))
    warmup = _days(cfg.get("warmup_days"), "warmup_days", defaults.get("warmup_days", horizon / 4.0))
    dispatch = cfg.get("dispatch") or defaults.get("dispatch")
    if dispatch is not None and not isinstance(dispatch, str):
        raise ConfigError("dispatch", dispatch, "must be one rule name (or null to keep each group's rule)")
    compiled = compile_line(line, dispatch=dispatch, max_lots=_count(cfg.get("max_lots", 0), "max_lots", 0))
    backend_cfg = cfg.get("backend") or {}
    if isinstance(backend_cfg, str):
        backend_cfg = {"name": backend_cfg}
    if not isinstance(backend_cfg, dict):
        raise ConfigError("backend", backend_cfg, "must be a backend name (auto, cpu, cuda) or a mapping {name, threads}")
    backend = resolve_backend(backend_cfg.get("name", "auto"), _count(backend_cfg.get("threads", 0), "backend.threads", 0))
    args = dict(
        replicas=_count(cfg.get("replicas", 8), "replicas", 1),
        horizon_days=horizon,
        warmup_days=warmup,
        seed=_count(cfg.get("seed", 1), "seed", 0, high=2**64 - 1),  # the RNG key is a uint64
        chunk_replicas=_count(cfg.get("chunk_replicas", 0), "chunk_replicas", 0),
        snapshot_minutes=_number(cfg.get("snapshot_minutes", 240.0), "snapshot_minutes"),
        progress=_flag(cfg.get("progress", False), "progress"),
    )
    if args["horizon_days"] <= args["warmup_days"]:
        raise ConfigError("horizon_days", horizon, f"must be greater than warmup_days ({warmup})")
    check_run_size(compiled, backend, args)
    from twin.distributed import check_cluster
    from twin.objective import check_objective

    check_cluster(cfg.get("cluster"))
    check_objective(cfg.get("objective"), compiled)
    return compiled, backend, args


def check_run_size(compiled, backend, args) -> None:
    """Event rate and memory of the run, from the compiled line, before anything is allocated."""
    from twin.runner import bytes_per_replication
    from twin.sanity import check_run

    chunk = args["chunk_replicas"] or backend.chunk_size(bytes_per_replication(compiled), args["replicas"])
    check_run(compiled, args["replicas"], args["horizon_days"], args["snapshot_minutes"], chunk, backend.name == "cuda")


def run_scenario(cfg: dict, out_dir) -> dict:
    """Run the scenario ``cfg`` and write its run folder; returns kpis.json's content.

    Before compute the folder is proven writable with room to spare and locked
    against other runs.  An interrupt at any phase keeps the finished
    replications and marks the run interrupted; a checkpoint lets
    ``resume=true`` continue it (docs/outputs.md, "Run folder guarantees").
    """
    compiled, backend, args = prepare(cfg)
    ycfg = cfg.get("yield") or {}
    with_yield = ycfg.get("enabled", True) and any(p.yield_spec is not None for p in compiled.line.products)
    resume = _flag(cfg.get("resume", False), "resume")
    every = _number(cfg.get("checkpoint_seconds", 60.0), "checkpoint_seconds")
    out = check_folder(out_dir, _needed_bytes(compiled, backend, args, with_yield, ycfg))
    with FolderLock(out), Interrupts() as signals:
        checkpoint = _checkpoint(out, compiled, backend, args, every, resume)
        yield_compile = _start_yield_compile(backend) if with_yield else None
        try:
            result = _simulate(compiled, backend, args, cfg.get("cluster"), checkpoint, lambda: signals.requested)
        except BaseException as err:
            if yield_compile is not None:
                yield_compile.terminate()
            if isinstance(err, KeyboardInterrupt):
                _say_interrupted(out, None, checkpoint)
            raise
        staged, extra = [], {}
        if with_yield:
            staged, extra["yield"] = _yield_phase(result, out, backend, args["seed"], ycfg, yield_compile, signals)
        staged += _smt2020_phase(result, out, cfg.get("line"))
        objective = _objective(cfg.get("objective"), compiled, result)
        if objective is not None:
            extra["objective"] = objective
        doc = _write(result, out, _meta_config(cfg, compiled.line), extra, staged, signals)
        shutil.rmtree(out / ".staging", ignore_errors=True)
        if doc["meta"]["interrupted"]:
            _say_interrupted(out, doc, checkpoint)
        else:
            checkpoint.remove()
    return doc


def _checkpoint(out: Path, compiled, backend, args, every: float, resume: bool) -> Checkpoint:
    """The run's checkpoint; a fresh run clears a previous run's files, a mismatched resume is refused."""
    key, settings = checkpoint_key(compiled, backend.name, args["replicas"], args["horizon_days"],
                                   args["warmup_days"], args["seed"], args["snapshot_minutes"])
    checkpoint = Checkpoint(out / CHECKPOINT, key, settings, every, resume)
    if checkpoint.path.is_file() and not resume:
        raise RunFolderError(out, f"holds {CHECKPOINT} of an unfinished run; add resume=true to continue it, "
                                  "or choose another hydra.run.dir")
    try:
        remove_temporaries(out)
        if checkpoint.path.is_file():
            checkpoint.load()
        else:
            if resume:
                print(f"resume: no {CHECKPOINT} in {out}; starting from the beginning", file=sys.stderr)
            remove_stale_outputs(out)
    except OSError as err:
        raise RunFolderError(out, f"cannot clear the previous run's files ({err.strerror or err})") from None
    return checkpoint


def _needed_bytes(compiled, backend, args, with_yield: bool, ycfg: dict) -> int:
    """Room the run folder needs: its files, plus two checkpoints (the old one stays until the new one lands)."""
    horizon = args["horizon_days"] * MINUTES_PER_DAY
    snaps = int(horizon // args["snapshot_minutes"]) + 1 if args["snapshot_minutes"] > 0 else 1
    maps = _count(ycfg.get("sample_wafers", 200), "yield.sample_wafers", 0) * len(compiled.line.products) if with_yield else 0
    files = estimate_bytes(args["replicas"], compiled, snaps, log_rows(compiled, horizon), maps)
    return files + 2 * checkpoint_bytes(compiled, backend, args["replicas"], args["chunk_replicas"])


def _yield_phase(result, out: Path, backend, seed, ycfg, yield_compile, signals):
    """The yield report, into a staging folder; an interrupt or a write error drops only this section."""
    if signals.requested or result.interrupted:
        if yield_compile is not None:
            yield_compile.terminate()
        return [], {"skipped": "the run was interrupted before the yield report"}
    try:
        with signals.raising():
            staging = staging_dir(out)
            if yield_compile is not None:
                yield_compile.wait()
            section = _yield_section(result, staging, backend, seed, ycfg)
    except KeyboardInterrupt:
        if yield_compile is not None:
            yield_compile.terminate()
        result.interrupted = True
        return [], {"skipped": "interrupted during the yield report"}
    except OSError as err:
        return [], {"skipped": f"its files could not be written ({err.strerror or err})"}
    return sorted(staging.iterdir()), section


def _smt2020_phase(result, out: Path, line_cfg) -> list[Path]:
    """``smt2020_report.csv`` (the published tables' terms) into the staging folder, on SMT2020 lines."""
    from twin.rundir import STAGING
    from twin.smt2020_report import write_if_smt2020

    folder = out / STAGING
    folder.mkdir(exist_ok=True)
    path = write_if_smt2020(result, folder, line_cfg)
    return [path] if path is not None else []


def _write(result, out: Path, config: dict, extra: dict, staged, signals) -> dict:
    """Write the run folder; on an I/O error save the results in a fresh folder and say where, in one line."""
    try:
        return write_run(result, out, config, extra, staged, interrupted=lambda: signals.requested)
    except OSError as err:
        problem = f"writing the results failed ({err.strerror or err})"
        place = rescue_dir()
        if place is None:
            raise RunFolderError(out, problem + "; no writable folder was found to save them in") from None
        try:
            copies = staging_dir(place)
            moved = [Path(p) if Path(p).is_file() else out / Path(p).name for p in staged]  # some may be in place
            kept = [Path(shutil.copy2(p, copies / p.name)) for p in moved if p.is_file()]
            write_run(result, place, config, extra, kept, interrupted=lambda: signals.requested)
            shutil.rmtree(copies, ignore_errors=True)
        except OSError as again:
            raise RunFolderError(out, f"{problem}; saving them in {place} failed too ({again.strerror or again})") from None
        raise RunFolderError(out, f"{problem}; the results were saved in {place}") from None


def _say_interrupted(out: Path, doc: dict | None, checkpoint: Checkpoint) -> None:
    more = (f"; {CHECKPOINT} keeps the progress: continue with resume=true hydra.run.dir={out}"
            if checkpoint.path.is_file() else "")
    if doc is None:
        print(f"interrupted before any replication passed the warm-up: nothing to report{more}", file=sys.stderr)
        return
    meta = doc["meta"]
    if meta["horizon_days"] < meta["planned_horizon_days"]:
        kept = f"all {meta['replications']} replications cut at day {meta['horizon_days']:g} of {meta['planned_horizon_days']:g}"
    else:
        kept = f"the {meta['replications']} finished replications (of {meta['planned_replications']})"
    print(f"interrupted: wrote {kept} to {out}{more}", file=sys.stderr)


def _simulate(compiled, backend, args, cluster, checkpoint, stop):
    """One process (checkpointed), or shards of replications on a Dask cluster (same numbers, docs/studies.md)."""
    if not cluster:
        return run_line(compiled, backend=backend, checkpoint=checkpoint, stop=stop, **args)
    from twin.distributed import run_distributed

    return run_distributed(compiled, args["replicas"], args["horizon_days"], args["warmup_days"], args["seed"],
                           cluster=cluster, backend=backend.name, snapshot_minutes=args["snapshot_minutes"])


def _objective(spec, compiled, result):
    from twin import kpis
    from twin.objective import check_objective, objective_section

    spec = check_objective(spec, compiled)
    return None if spec is None else objective_section(spec, kpis.per_replication(result))


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
    days = _number(value, field)
    if days > MAX_HORIZON_DAYS:
        raise ConfigError(field, value, f"must be at most {MAX_HORIZON_DAYS:g} days (100 years)")
    return days


def _number(value, field, positive=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ConfigError(field, value, "must be a finite number > 0" if positive else "must be a finite number >= 0")
    return float(value)


def _count(value, field, low, high=2**31 - 1):
    """An integer in [low, high]; ``high`` defaults to the engine's int32 indices."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(field, value, f"must be an integer in {low}..{high:,}")
    return value


def _flag(value, field) -> bool:
    """Strictly true or false: ``maybe``, ``1`` or ``"yes"`` are refused, not read as truthy."""
    if not isinstance(value, bool):
        raise ConfigError(field, value, "must be true or false")
    return value


def _yield_settings(ycfg) -> dict:
    """The run's ``yield`` mapping, checked key by key (its numbers are checked where they are used)."""
    if ycfg is None:
        return {}
    if not isinstance(ycfg, dict):
        raise ConfigError("yield", ycfg, f"must be a mapping with keys {', '.join(sorted(YIELD_KEYS))}")
    unknown = sorted(set(ycfg) - YIELD_KEYS)
    if unknown:
        raise ConfigError(f"yield.{unknown[0]}", ycfg[unknown[0]], f"unknown setting; allowed: {', '.join(sorted(YIELD_KEYS))}")
    _flag(ycfg.get("enabled", True), "yield.enabled")
    _count(ycfg.get("sample_wafers", 200), "yield.sample_wafers", 0, high=100_000)
    return ycfg


def print_summary(doc: dict, out_dir) -> None:
    meta = doc["meta"]
    print(f"FabTwin: line {meta['line']}, {meta['replications']} replications x {meta['horizon_days']:g} days "
          f"(warm-up {meta['warmup_days']:g}) on {meta['backend']} ({meta['device']})")
    print(f"{meta['events']:,} events in {meta['wall_seconds']:.2f} s (+{meta['compile_seconds']:.1f} s JIT/cache load)")
    print(summary_table(doc))
    for warning in survivor_warnings(doc):
        print(warning, file=sys.stderr)
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
            parts.append(f"{name} {readable.summary(dy, 100)}")
    return "die yield (%): " + (", ".join(parts) if parts else "see kpis.json")
