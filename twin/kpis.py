"""Key performance indicators: per replication, then mean and 95% CI over replications.

Every KPI is first computed per replication (an independent sample), then
summarised as ``{"mean", "ci95", "n"}`` with a Student-t half-width, so runs
compare by confidence intervals, never by single numbers.
"""
from __future__ import annotations

import math

import numpy as np

from kernels import layout as K
from twin import tool_sums
from twin.compile import MINUTES_PER_DAY

# Two-sided 97.5% quantiles of Student's t for small degrees of freedom.
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t975(df: int) -> float:
    if df < 1:
        return math.nan
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def summarize(samples) -> dict:
    """Mean and 95% CI half-width of independent per-replication values (NaNs dropped)."""
    x = np.asarray(samples, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    return summary_from_moments(x.mean() if n else None, x.std(ddof=1) if n > 1 else None, n)


def summary_from_moments(mean, sd, n: int) -> dict:
    """:func:`summarize`'s dict from a mean, sample sd (ddof 1; None below two) and count reduced elsewhere.

    The yield Monte Carlo reduces its wafers where they ran (on CUDA, on the
    device) and brings only these three numbers to the host.
    """
    if n == 0:
        return {"mean": None, "ci95": None, "n": 0}
    half = float(t975(n - 1) * sd / math.sqrt(n)) if n > 1 else None
    return {"mean": float(mean), "ci95": half, "n": n}


def _ratio(num, den):
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _percentile_from_hist(hist, bin_width, q):
    """Per-replication percentile of cycle time from a histogram (linear within a bin)."""
    out = np.full(hist.shape[0], np.nan)
    for r in range(hist.shape[0]):
        total = hist[r].sum()
        if total <= 0:
            continue
        cum = np.cumsum(hist[r])
        k = int(np.searchsorted(cum, q * total))
        before = cum[k - 1] if k > 0 else 0.0
        frac = (q * total - before) / max(hist[r, k], 1e-12)
        out[r] = (k + frac) * bin_width
    return out


def per_replication(result) -> dict:
    """Per-replication KPI arrays keyed by name (used for the CSV and the summaries)."""
    c = result.compiled
    s_f, s_i = result.stats["s_f"], result.stats["s_i"]
    window = result.horizon_days - result.warmup_days
    rows = {}
    for p, product in enumerate(c.line.products):
        streams = np.flatnonzero(c.stream_product == p)
        rows.update(_group_kpis(f"product.{product.name}", s_f[:, streams], result.stats["ct_hist"][:, streams],
                                c.rf[streams, K.RF_CT_BIN], c.raw_process_minutes[streams], window))
    for s, name in enumerate(c.stream_names):
        rows.update(_group_kpis(f"lot_type.{name}", s_f[:, [s]], result.stats["ct_hist"][:, [s]],
                                c.rf[[s], K.RF_CT_BIN], c.raw_process_minutes[[s]], window))
    rows.update(_tool_group_kpis(result))
    rows["conservation.lots_in_system"] = s_i[:, :, K.S_WIP].sum(axis=1).astype(float)
    return rows


def _group_kpis(prefix, s_f, hist, bin_widths, raw, window_days):
    done = s_f[:, :, K.SS_DONE].sum(axis=1)
    ct_n = s_f[:, :, K.SS_CT_N].sum(axis=1)
    ct_mean_min = _ratio(s_f[:, :, K.SS_CT_SUM].sum(axis=1), ct_n)
    weights = s_f[:, :, K.SS_CT_N]
    raw_mean = _ratio((weights * raw).sum(axis=1), ct_n)
    # streams of one product share a bin width only if their raw times match; use the widest
    width = float(np.max(bin_widths))
    merged = _rebin(hist, bin_widths, width)
    return {
        f"{prefix}.throughput_lots_per_day": done / window_days,
        f"{prefix}.throughput_wafers_per_day": s_f[:, :, K.SS_WAFERS_DONE].sum(axis=1) / window_days,
        f"{prefix}.cycle_time_days.mean": ct_mean_min / MINUTES_PER_DAY,
        f"{prefix}.cycle_time_days.p50": _percentile_from_hist(merged, width, 0.50) / MINUTES_PER_DAY,
        f"{prefix}.cycle_time_days.p95": _percentile_from_hist(merged, width, 0.95) / MINUTES_PER_DAY,
        f"{prefix}.x_factor": ct_mean_min / raw_mean,
        f"{prefix}.on_time_pct": 100.0 * _ratio(s_f[:, :, K.SS_ONTIME].sum(axis=1), ct_n),
        f"{prefix}.wip_lots": s_f[:, :, K.SS_WIP_AREA].sum(axis=1) / (window_days * MINUTES_PER_DAY),
        f"{prefix}.qtime_violations": s_f[:, :, K.SS_QT_VIOL].sum(axis=1),
        f"{prefix}.good_dies_per_day": s_f[:, :, K.SS_GOOD_DIES].sum(axis=1) / window_days,
    }


def _rebin(hist, widths, width):
    """Add per-stream histograms after mapping each to a common bin width."""
    R, NS, NB = hist.shape
    out = np.zeros((R, NB))
    for s in range(NS):
        idx = np.minimum((np.arange(NB) * widths[s] / width).astype(int), NB - 1)
        np.add.at(out, (slice(None), idx), hist[:, s, :])
    return out


def _tool_group_kpis(result):
    c = result.compiled
    e10_minutes = tool_sums.e10_sum(result.stats)  # [R, groups, N_E10], summed over each group's tools
    fails, pms = tool_sums.ti_sum(result.stats, K.T_FAILS), tool_sums.ti_sum(result.stats, K.T_PMS)
    qf, qi = result.stats["qf"], result.stats["qi"]
    window_min = (result.horizon_days - result.warmup_days) * MINUTES_PER_DAY
    rows = {}
    for g, (name, n_tools) in enumerate(zip(c.group_names, tool_sums.group_tools(c))):
        e10 = e10_minutes[:, g] / (window_min * n_tools)
        prefix = f"tool_group.{name}"
        for k, state in enumerate(K.E10_NAMES):
            rows[f"{prefix}.e10.{state}"] = e10[:, k]
        rows[f"{prefix}.utilisation"] = e10[:, K.PRODUCTIVE]
        rows[f"{prefix}.availability"] = 1.0 - e10[:, K.SCHED_DOWN] - e10[:, K.UNSCHED_DOWN]
        rows[f"{prefix}.busy_of_available"] = _ratio(e10[:, K.PRODUCTIVE] + e10[:, K.SETUP], rows[f"{prefix}.availability"])
        rows[f"{prefix}.queue_wait_minutes"] = _ratio(qf[:, g, K.QF_WAIT_SUM], qi[:, g, K.Q_WAIT_N])
        rows[f"{prefix}.queue_lots"] = qf[:, g, K.QF_AREA] / window_min
        rows[f"{prefix}.failures_per_tool"] = fails[:, g] / n_tools
        rows[f"{prefix}.pms_per_tool"] = pms[:, g] / n_tools
        warning = c.line.tool_groups[g].warning
        if warning is not None:
            rows.update(_warning_kpis(prefix, qf[:, g], fails[:, g], warning.window_minutes))
    return rows


def _warning_kpis(prefix, qf_g, failures, window):
    """Failure warnings of one group: precision, recall against every failure, lead times."""
    true, false = qf_g[:, K.QF_WARN_TRUE], qf_g[:, K.QF_WARN_FALSE]
    hist = qf_g[:, K.QF_LEAD_H0:K.QF_LEAD_H0 + K.N_LEAD_BINS]
    return {
        f"{prefix}.warnings.precision": _ratio(true, true + false),
        f"{prefix}.warnings.recall": _ratio(true, failures),
        f"{prefix}.warnings.lead_minutes_median": _percentile_from_hist(hist, window / K.N_LEAD_BINS, 0.5),
        f"{prefix}.warnings.lead_minutes_mean": _ratio(qf_g[:, K.QF_WARN_LEAD_SUM], true),
        f"{prefix}.warnings.pre_empted_by_pm": qf_g[:, K.QF_WARN_PREEMPTED],
    }


def conservation(result) -> dict:
    """released + initial == completed + in process (+ scrapped, which the engine never does)."""
    s_i = result.stats["s_i"]
    released = s_i[:, :, K.S_RELEASED].sum(axis=1)
    initial = s_i[:, :, K.S_INITIAL].sum(axis=1)
    done = s_i[:, :, K.S_DONE].sum(axis=1)
    wip = s_i[:, :, K.S_WIP].sum(axis=1)
    alive = result.stats["rep_i"][:, K.R_LOTS_ALIVE]
    ok = bool(np.all(released + initial == done + wip) and np.all(wip == alive))
    return {"ok": ok, "released": int(released.sum()), "initial": int(initial.sum()),
            "completed": int(done.sum()), "in_process": int(wip.sum()), "scrapped": 0}


def littles_law(rows: dict, products) -> dict:
    """Relative gap between WIP and throughput x cycle time, per product (mean over replications)."""
    out = {}
    for name in products:
        p = f"product.{name}"
        wip = _mean_or_nan(rows[f"{p}.wip_lots"])
        th_ct = _mean_or_nan(rows[f"{p}.throughput_lots_per_day"] * rows[f"{p}.cycle_time_days.mean"])
        out[name] = {"wip_lots": float(wip), "throughput_x_cycle_time": float(th_ct),
                     "relative_gap": float(abs(wip - th_ct) / max(wip, 1e-12))}
    return out


def _mean_or_nan(x) -> float:
    """Mean of the finite values; NaN, without numpy's empty-slice warning, when there are none."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else math.nan


def nest(rows: dict) -> dict:
    """Turn ``a.b.c`` keys of per-replication arrays into nested summaries."""
    tree: dict = {}
    for key, values in rows.items():
        node = tree
        parts = key.split(".")
        if parts[0] in ("product", "lot_type", "tool_group"):
            parts = [parts[0] + "s", *parts[1:]]
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = summarize(values)
    return tree
