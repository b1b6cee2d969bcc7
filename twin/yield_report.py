"""Yield section of a run: die yield with CIs, good dies per day, loss Pareto, wafer maps.

Two estimates sit side by side, on purpose:

* die-level Monte Carlo (kernels/yield_kernels.py) of every wafer of
  replication 0's lots completed after warm-up, each at its lot's killer
  density: spatial patterns and the kill model are in it (``simulate_lots``:
  on CUDA the wafers stay on the device and only per-lot sums and summaries
  come to the host);
* the engine's closed form (negative-binomial die yield per lot) summed per
  replication: independent replications give the 95% CIs of good dies per day.

The loss Pareto attributes each product's lost dies to its steps in
proportion to the killer density each step put on its wafers (exact in log
yield for Poisson defects; docs/yield.md), then sums steps per tool group.
"""
from __future__ import annotations

import math
import re
import time
from pathlib import Path

import numpy as np

from kernels.rng import splitmix64_host
from twin.kpis import summarize, summary_from_moments, t975
from twin.yield_model import PATTERNS, die_grid, expected_die_yield, simulate_lots

MINUTES_PER_DAY = 1440.0
WAFER_MAPS_VERSION = 1
_YIELD_STREAM = 0x5969656C64  # "Yield": keeps wafer streams apart from the engine's replication streams
_PRODUCT_KEY_STRIDE = 1 << 40  # wafer key = product index * stride + wafer index within the product


def yield_seed(seed: int) -> int:
    """Sub-seed of the wafer Monte Carlo derived from the run seed."""
    return splitmix64_host(int(seed) ^ _YIELD_STREAM)


def yield_report(result, out_dir, backend, seed: int, sample_wafers: int = 200, pareto_top: int = 20) -> dict:
    """kpis.json["yield"] for ``result``; writes wafer_maps*.npz and yield_lots_rep0.csv into ``out_dir``."""
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    line = result.line
    window = float(result.horizon_days) - float(result.warmup_days)
    lots, lots_window = _lots_in_window(result.lot_log, float(result.warmup_days) * MINUTES_PER_DAY)
    sub_seed = yield_seed(seed)
    budgets = _sample_budgets(line, lots, sample_wafers)
    products, mc_rows, files, evaluations = {}, [], {}, 0
    for pi, product in enumerate(line.products):
        spec = product.yield_spec
        if spec is None:
            continue
        mine = lots[lots["product"] == pi]
        mc = _simulate_product(spec, mine, sub_seed, backend, pi, budgets.get(pi, 0))
        evaluations += mc.summary.wafers * mc.gross if mc is not None else 0
        products[product.name] = _product_section(result, pi, spec, mine, mc, window)
        mc_rows.append((pi, mine, mc))
        if mc is not None and mc.sample.size:
            files[product.name] = _write_maps(out, product.name, not files, spec, mine, mc)
    _write_lot_table(out / "yield_lots_rep0.csv", line, result, mc_rows)
    pareto_steps, pareto_groups = _pareto(result, line, window, pareto_top)
    total_mc = sum(mc.summary.good_total for _, _, mc in mc_rows if mc is not None)
    return {
        "method": {
            "die_yield": "die-level Monte Carlo of every wafer of replication 0's lots completed after warm-up"
                         + ("" if lots_window else " (none completed after warm-up: all completed lots)"),
            "die_yield_closed_form": "engine's negative-binomial die yield per lot, one value per replication",
            "ci95": "half-width of a Student-t 95% interval (lots or replications as independent units)",
            "pareto": "lost dies attributed to steps in proportion to their killer-density contributions",
        },
        "seed": int(sub_seed),
        "backend": getattr(backend, "name", "cpu"),
        "window_days": window,
        "products": products,
        "total": {
            "good_dies_per_day": summarize(_per_rep_good(result, None) / window),
            "good_dies_per_day_mc_rep0": total_mc / window,
        },
        "pareto_steps": pareto_steps,
        "pareto_groups": pareto_groups,
        "wafer_maps": {"files": files, "format_version": WAFER_MAPS_VERSION},
        "die_evaluations": evaluations,
        "seconds": time.perf_counter() - started,
    }


# ----------------------------------------------------------------------------- lots and Monte Carlo


def _lots_in_window(log, warmup_min):
    """Lots of replication 0 completed after warm-up (all lots when none did), with their log index."""
    idx = np.arange(len(log))
    keep = log["done_min"] >= warmup_min if len(log) else np.zeros(0, bool)
    in_window = bool(keep.any())
    sel = idx[keep] if in_window else idx
    lots = np.zeros(sel.size, [("index", np.int64), ("stream", np.int32), ("product", np.int32),
                               ("wafers", np.int32), ("defect_density", np.float64)])
    for name in ("stream", "product", "wafers", "defect_density"):
        lots[name] = log[name][sel]
    lots["index"] = sel
    return lots, in_window


def _sample_budgets(line, lots, sample_wafers) -> dict:
    """Sampled-wafer budget per product with yield, split evenly."""
    having = [pi for pi, p in enumerate(line.products) if p.yield_spec is not None and np.any(lots["product"] == pi)]
    if not having or sample_wafers <= 0:
        return {}
    each = max(1, sample_wafers // len(having))
    return {pi: each for pi in having}


def _simulate_product(spec, lots, seed, backend, pi, budget):
    """Monte Carlo of every wafer of ``lots``; per-wafer arrays stay where the kernel ran (simulate_lots)."""
    if lots.size == 0:
        return None
    wafers = np.maximum(lots["wafers"].astype(np.int64), 0)
    first = np.concatenate([[0], np.cumsum(wafers)[:-1]])
    sample = _sample_whole_lots(wafers, first, budget)
    return simulate_lots(spec, lots["defect_density"], wafers, seed, backend=backend, key0=pi * _PRODUCT_KEY_STRIDE,
                         sample=sample)


def _sample_whole_lots(wafers, first, budget) -> np.ndarray:
    """Whole lots spread evenly over the run, at most ``budget`` wafers (at least one lot)."""
    if budget <= 0 or wafers.sum() == 0:
        return np.zeros(0, np.int64)
    n_lots = int(min(wafers.size, max(1, budget // max(1, int(wafers.max())))))
    picks = np.unique(np.linspace(0, wafers.size - 1, n_lots).round().astype(np.int64))
    return np.concatenate([np.arange(first[k], first[k] + wafers[k]) for k in picks])


def ratio_ci(num, den) -> dict:
    """Sum(num)/sum(den) with the ratio estimator's 95% half-width over independent units."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    n = num.size
    if n == 0 or den.sum() <= 0:
        return {"mean": None, "ci95": None, "n": int(n)}
    r = num.sum() / den.sum()
    if n < 2:
        return {"mean": float(r), "ci95": None, "n": 1}
    resid = num - r * den
    se = math.sqrt((resid**2).sum() / (n - 1) / n) / den.mean()
    return {"mean": float(r), "ci95": float(t975(n - 1) * se), "n": int(n)}


def _product_section(result, pi, spec, lots, mc, window) -> dict:
    gross = spec.gross_dies
    summary = mc.summary if mc is not None else None
    section = {
        "gross_dies": int(gross),
        "die_area_cm2": spec.die_area_cm2,
        "alpha": spec.alpha if math.isfinite(spec.alpha) else None,
        "patterns": dict(zip(PATTERNS, spec.weights)),
        "lots": int(lots.size),
        "wafers": summary.wafers if summary is not None else 0,
        "die_yield_closed_form": summarize(_per_rep_yield(result, pi, gross)),
        "good_dies_per_day": summarize(_per_rep_good(result, pi) / window),
    }
    if summary is None or summary.wafers == 0:
        section.update(die_yield=None, wafer_yield=None, lot_yield=None, good_dies_per_day_mc_rep0=0.0)
        return section
    lot_good = summary.lot_good
    lot_gross = lots["wafers"].astype(float) * gross
    with np.errstate(invalid="ignore", divide="ignore"):
        lot_yield = np.where(lot_gross > 0, lot_good / np.maximum(lot_gross, 1), np.nan)
    section.update(
        die_yield=ratio_ci(lot_good, lot_gross),
        wafer_yield=summary_from_moments(summary.die_yield_mean, summary.die_yield_sd, summary.wafers),
        lot_yield=summarize(lot_yield),
        wafer_yield_sd=summary.die_yield_sd,
        good_dies_per_day_mc_rep0=float(summary.good_total) / window,
        die_yield_expected=_expected(spec, lots),
    )
    return section


def _expected(spec, lots):
    """Model mean die yield of the same wafers (closed form; None for position-dependent patterns)."""
    try:
        y = np.array([expected_die_yield(spec, d) for d in lots["defect_density"]])
    except ValueError:
        return None
    w = lots["wafers"].astype(float)
    return float((y * w).sum() / w.sum()) if w.sum() > 0 else None


def _stream_mask(result, pi):
    sp = np.asarray(result.stream_product)
    return np.ones(sp.size, bool) if pi is None else sp == pi


def _per_rep_good(result, pi) -> np.ndarray:
    return np.asarray(result.stream_good_dies, float)[:, _stream_mask(result, pi)].sum(axis=1)


def _per_rep_yield(result, pi, gross) -> np.ndarray:
    wafers = np.asarray(result.stream_wafers_done, float)[:, _stream_mask(result, pi)].sum(axis=1)
    good = _per_rep_good(result, pi)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(wafers > 0, good / np.maximum(wafers * gross, 1e-300), np.nan)


# ----------------------------------------------------------------------------- loss Pareto


def step_table(line) -> tuple[np.ndarray, list]:
    """Product index and tool-group name of every global route step (products in order, steps in order)."""
    product, group = [], []
    for pi, p in enumerate(line.products):
        for st in p.route:
            product.append(pi)
            group.append(st.group)
    return np.asarray(product, np.int64), group


def dies_lost_by_step(result, line) -> np.ndarray:
    """[R, S] lost dies per replication and step: each product's loss split by density share."""
    step_product, _ = step_table(line)
    dens = np.asarray(result.step_defect_wafers, float)
    lost = np.zeros_like(dens)
    for pi, p in enumerate(line.products):
        if p.yield_spec is None:
            continue
        steps = step_product == pi
        wafers = np.asarray(result.stream_wafers_done, float)[:, _stream_mask(result, pi)].sum(axis=1)
        loss = wafers * p.yield_spec.gross_dies - _per_rep_good(result, pi)
        total = dens[:, steps].sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0, dens[:, steps] / np.where(total > 0, total, 1.0), 0.0)
        lost[:, steps] = share * loss[:, None]
    return lost


def _pareto(result, line, window, top):
    step_product, step_group = step_table(line)
    names = list(result.step_names)
    _check_step_order(names, line, step_product)
    lost = dies_lost_by_step(result, line)
    steps = _ranked(lost / window, names, top, lambda s: {"product": line.products[step_product[s]].name,
                                                          "group": step_group[s]})
    groups = list(result.group_names)
    by_group = np.zeros((lost.shape[0], len(groups)))
    for s, g in enumerate(step_group):
        by_group[:, groups.index(g)] += lost[:, s]
    return steps, _ranked(by_group / window, groups, top, lambda g: {})


def _check_step_order(names, line, step_product) -> None:
    """The engine numbers steps product by product, route order ("product/k ..."); fail loudly if not."""
    if len(names) != step_product.size:
        raise ValueError(f"result has {len(names)} route steps but the line has {step_product.size}")
    k = 0
    for pi, p in enumerate(line.products):
        for j in range(len(p.route)):
            if not str(names[k]).startswith(f"{p.name}/{j + 1}"):
                raise ValueError(f"route step {k} is named {names[k]!r}; expected {p.name}/{j + 1}")
            k += 1


def _ranked(per_rep_per_day, names, top, extra) -> list:
    total = per_rep_per_day.sum(axis=1)
    mean = per_rep_per_day.mean(axis=0)
    order = [k for k in np.argsort(-mean, kind="stable") if mean[k] > 0][:top]
    rows = []
    for k in order:
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0, per_rep_per_day[:, k] / np.where(total > 0, total, 1.0), np.nan)
        rows.append({"name": names[k], **extra(k), "dies_lost_per_day": summarize(per_rep_per_day[:, k]),
                     "share": summarize(share)})
    return rows


# ----------------------------------------------------------------------------- files


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _write_maps(out: Path, product: str, primary: bool, spec, lots, mc) -> str:
    """wafer_maps.npz (first product: the one `twin view` shows) or wafer_maps_<product>.npz; docs/yield.md."""
    g = die_grid(spec)
    ny, nx = g.shape
    k = mc.sample.size
    die_pass = np.full((k, ny, nx), -1, np.int8)
    j, i = np.nonzero(g.die_id >= 0)
    die_pass[:, j, i] = mc.die_pass
    counts = np.array([len(d) for d in mc.defects], np.int64)
    d = np.concatenate(mc.defects) if counts.sum() else np.zeros((0, 4))
    lot_rows = mc.sample_lot
    name = "wafer_maps.npz" if primary else f"wafer_maps_{_safe(product)}.npz"
    np.savez_compressed(
        out / name,
        format_version=np.array(WAFER_MAPS_VERSION), product=np.array(product),
        lot_id=np.array([f"L{int(x):06d}" for x in lots["index"][lot_rows]]),
        lot_index=lots["index"][lot_rows].astype(np.int64), wafer_key=mc.sample.astype(np.int64),
        wafer_density=lots["defect_density"][lot_rows], wafer_good_dies=mc.sample_good.astype(np.int32),
        gross_dies=np.array(mc.gross), die_pass=die_pass, die_id=g.die_id,
        defect_wafer=np.repeat(np.arange(k), counts).astype(np.int32),
        defect_x_mm=d[:, 0].astype(np.float32), defect_y_mm=d[:, 1].astype(np.float32),
        defect_size_um=d[:, 2].astype(np.float32), defect_killer=d[:, 3].astype(np.int8),
        defect_count=mc.n_defects.astype(np.int64),
        die_mm=np.array(g.die_mm), pitch_mm=np.array(g.pitch_mm), origin_mm=np.array(g.origin_mm),
        wafer_diameter_mm=np.array(spec.wafer_diameter_mm), edge_exclusion_mm=np.array(spec.edge_exclusion_mm),
    )
    return name


def _write_lot_table(path: Path, line, result, rows) -> None:
    import csv

    names = list(result.stream_names)
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["lot_index", "stream", "product", "wafers", "defect_density", "gross_dies", "good_dies", "die_yield"])
        for pi, lots, mc in rows:
            if mc is None:
                continue
            good = mc.summary.lot_good
            gross = line.products[pi].yield_spec.gross_dies
            for r in range(lots.size):
                w = int(lots["wafers"][r])
                y = good[r] / (w * gross) if w > 0 else float("nan")
                out.writerow([int(lots["index"][r]), names[int(lots["stream"][r])], line.products[pi].name, w,
                              f"{lots['defect_density'][r]:.6g}", gross, int(good[r]), f"{y:.6f}"])
