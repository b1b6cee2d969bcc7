"""KPIs per replication, mean and 95% CI per candidate, the Pareto front, and the best candidate."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kernels import maintenance as M
from twin.maintain.simulate import Raw
from twin.maintain.study import OBJECTIVES
from twin.maintain.tool import ToolModel


HOURS_PER_YEAR = 8760.0


KPIS = ("availability", "good_dies_per_year", "cost_per_year", "failures_per_year", "pms_per_year",
        "wafers_per_year", "yield_factor", "warnings_per_year")


def per_replication(tool: ToolModel, raw: Raw) -> dict:
    """KPI arrays [candidates, replications]: each replication is one independent sample."""
    o = raw.out
    years = raw.horizon_hours / HOURS_PER_YEAR
    with np.errstate(divide="ignore", invalid="ignore"):
        yield_factor = np.where(o[..., M.O_WAFERS] > 0, o[..., M.O_GOOD] / (o[..., M.O_WAFERS] * tool.gross_dies),
                                np.nan)
    return {
        "availability": o[..., M.O_UP] / raw.horizon_hours,
        "good_dies_per_year": o[..., M.O_GOOD] / years,
        "cost_per_year": o[..., M.O_COST] / years,
        "failures_per_year": o[..., M.O_FAILS] / years,
        "pms_per_year": o[..., M.O_PMS] / years,
        "wafers_per_year": o[..., M.O_WAFERS] / years,
        "yield_factor": yield_factor,
        "warnings_per_year": o[..., M.O_WARNINGS] / years,
    }


def mean_ci(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise mean and 95% Student-t half-width over the last axis (NaNs dropped)."""
    from twin.kpis import t975

    import warnings

    x = np.where(np.isfinite(x), x, np.nan)
    n = np.isfinite(x).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (no wafers) summarise to NaN
        mean = np.nanmean(x, axis=-1)
        sd = np.nanstd(x, axis=-1, ddof=1)
        t = np.array([t975(int(k) - 1) for k in np.ravel(n)]).reshape(n.shape)
        half = t * sd / np.sqrt(n)
    return mean, half


def warning_scores(tool: ToolModel, raw: Raw) -> dict:
    """Precision, recall and lead times pooled over replications (docs/maintenance.md defines the matching)."""
    s = raw.out.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = s[:, M.O_TRUE] / (s[:, M.O_TRUE] + s[:, M.O_FALSE])
        recall = s[:, M.O_DETECTED] / s[:, M.O_FAILS]
        mean_lead = s[:, M.O_LEAD_SUM] / s[:, M.O_TRUE]
    median = np.array([_hist_quantile(h, tool.warn_window, 0.5) for h in raw.hist])
    return {"warning_precision": precision, "warning_recall": recall, "median_lead_hours": median,
            "mean_lead_hours": mean_lead}


def _hist_quantile(hist, width_total, q):
    total = hist.sum()
    if total <= 0:
        return math.nan
    cum = np.cumsum(hist)
    k = int(np.searchsorted(cum, q * total))
    before = cum[k - 1] if k > 0 else 0
    return (k + (q * total - before) / hist[k]) * width_total / hist.size


@dataclass
class Summary:
    """Per-candidate KPIs with CIs, the best candidate and paired gaps to it."""

    kpis: dict  # name -> (mean [n], ci95 [n])
    warnings: dict  # name -> [n]
    best: int
    gap: np.ndarray  # objective(candidate) - objective(best), mean over paired replications
    gap_ci: np.ndarray
    tied: np.ndarray  # bool: gap's CI covers 0
    front: np.ndarray | None = None  # candidates on the Pareto front of (cost per year, good dies per year), by cost


def summarise(tool: ToolModel, raw: Raw, objective: str) -> Summary:
    """KPIs with CIs, the best candidate for ``objective``, and each candidate's paired gap to it."""
    reps = per_replication(tool, raw)
    kpis = {k: mean_ci(v) for k, v in reps.items()}
    key = OBJECTIVES[objective][0]
    front = pareto_front(kpis["cost_per_year"][0], kpis["good_dies_per_year"][0])
    best = best_on_front(kpis, objective, front)
    diff = reps[key] - reps[key][best][None, :]
    gap, gap_ci = mean_ci(diff)
    gap_ci = np.nan_to_num(gap_ci, nan=0.0)
    return Summary(kpis, warning_scores(tool, raw), best, gap, gap_ci, np.abs(gap) <= gap_ci, front)


def best_on_front(kpis: dict, objective: str, front: np.ndarray) -> int:
    """The candidate with the best ``objective`` mean among those on the Pareto front.

    No candidate has at least as many good dies per year at no more cost per year, and more of one or
    less of the other: recommending a dominated policy would leave dies or money on the table.
    Without a front (no finite cost or good dies) the objective alone decides.
    """
    key, sign = OBJECTIVES[objective]
    score = sign * np.nan_to_num(kpis[key][0], nan=-np.inf)
    if front.size == 0:
        return int(np.argmax(score))
    return int(front[np.argmax(score[front])])


def pareto_front(cost: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """Indices of candidates no other beats on both lower cost and a higher benefit ``avail``, by cost."""
    ok = np.flatnonzero(np.isfinite(cost) & np.isfinite(avail))
    order = ok[np.lexsort((-avail[ok], cost[ok]))]
    front, top = [], -np.inf
    for i in order:
        if avail[i] > top:
            front.append(i)
            top = avail[i]
    return np.array(front, np.int64)
