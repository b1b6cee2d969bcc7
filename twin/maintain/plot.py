"""tradeoff.png: the objective against the first policy parameter, and good dies against cost.

matplotlib is optional (the ``plot`` extra); :func:`plot_available` lets the caller say so before compute.
"""
from __future__ import annotations

import numpy as np

from twin.maintain.study import OBJECTIVES, Study, _label
from twin.maintain.summary import Summary, pareto_front


PLOT_EXTRA = 'pip install "fabtwin[plot]"'


def plot_available() -> bool:
    """True when matplotlib imports (the ``plot`` extra); found without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        return False


def plot_tradeoff(path, study: Study, s: Summary) -> None:
    """Objective against the first policy parameter (with CIs), and good dies against cost per year."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    _plot_parameter(left, study, s)
    _plot_pareto(right, study, s)
    fig.suptitle(f"{study.tool.name}: {_label(study, study.policy)}, {len(study.candidates)} candidates x "
                 f"{study.replicas} replications x {study.horizon_years:g} years")
    fig.tight_layout()
    from twin.rundir import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _plot_parameter(ax, study, s):
    key = OBJECTIVES[study.objective][0]
    mean, half = s.kpis[key]
    cands = study.candidates
    ax.set_ylabel(f"{key} (mean, 95% CI)")
    if not cands.columns:
        ax.errorbar(range(len(cands)), mean, yerr=half, fmt="o")
        ax.set_xlabel("candidate")
        return
    names = list(cands.columns)
    x = cands.columns[names[0]]
    policy_rows = np.isfinite(x)
    groups = [(None, policy_rows)]
    if len(names) > 1:
        other = cands.columns[names[1]]
        levels = np.unique(other[policy_rows])
        if levels.size <= 6:
            groups = [(f"{names[1]}={v:g}", policy_rows & (other == v)) for v in levels]
    for label, rows in groups:
        order = np.argsort(x[rows])
        xs, ys, hs = x[rows][order], mean[rows][order], np.nan_to_num(half[rows][order])
        style = "-" if study.search == "grid" else "."
        ax.plot(xs, ys, style, label=label)
        ax.fill_between(xs, ys - hs, ys + hs, alpha=0.25)
    if not policy_rows.all():
        base = np.flatnonzero(~policy_rows)[0]
        ax.axhline(mean[base], color="grey", ls="--", label="run to failure")
    if np.isfinite(x[s.best]):
        ax.plot([x[s.best]], [mean[s.best]], "r*", ms=14, label="best")
    ax.set_xlabel(names[0] + {"T": " (hours)", "N": " (wafers)", "lead": " (hours)"}.get(names[0], ""))
    ax.legend(fontsize=8)


def _plot_pareto(ax, study, s):
    """Good dies against maintenance cost, coloured by the first policy parameter; the Pareto front in black."""
    g, gh = s.kpis["good_dies_per_year"]
    c, ch = s.kpis["cost_per_year"]
    cands = study.candidates
    ax.errorbar(c, g, xerr=np.nan_to_num(ch), yerr=np.nan_to_num(gh), fmt="none", ecolor="0.8", lw=0.8, zorder=1)
    names = list(cands.columns)
    if names:
        x = cands.columns[names[0]]
        dots = ax.scatter(c, g, c=x, s=14, cmap="viridis", zorder=2)
        ax.figure.colorbar(dots, ax=ax, label=names[0])
    else:
        ax.scatter(c, g, s=14, zorder=2)
    front = pareto_front(c, g)
    ax.plot(c[front], g[front], "k.-", lw=1.2, label="Pareto front (cheaper, more good dies)", zorder=3)
    if cands.labels[0] == "run_to_failure" and len(cands) > 1:
        ax.plot([c[0]], [g[0]], "kx", ms=10, label="run to failure", zorder=4)
    ax.plot([c[s.best]], [g[s.best]], "r*", ms=14, label=f"best ({study.objective})", zorder=5)
    ax.set_xlabel(f"maintenance cost ({study.tool.currency} per year: PM + repair + down-hour prices)")
    ax.set_ylabel("good dies per year")
    from matplotlib.ticker import FuncFormatter

    whole = FuncFormatter(lambda v, _: f"{v:,.0f}")  # 1,600,000 rather than 1.6 with a 1e6 offset
    ax.xaxis.set_major_formatter(whole)
    ax.yaxis.set_major_formatter(whole)
    ax.legend(fontsize=8)
