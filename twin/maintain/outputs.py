"""The study's files (policies.csv, best_policy.json, tradeoff.png) and its terminal summary."""
from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np

from twin import readable
from twin.maintain.line_tool import line_maintenance
from twin.maintain.plot import PLOT_EXTRA, plot_available, plot_tradeoff
from twin.maintain.simulate import Raw, simulate, warm_up
from twin.maintain.study import OBJECTIVES, Study, _label, load_study
from twin.maintain.summary import HOURS_PER_YEAR, KPIS, Summary, summarise
from twin.rundir import atomic_open, atomic_write_text


def run_study(cfg: dict, out_dir) -> dict:
    """Validate ``cfg``, evaluate every candidate, write the study's outputs; returns best_policy.json's content."""
    study = load_study(cfg)
    with_plot = plot_available()
    if not with_plot:  # said before compute, and the study still runs
        print(f"note: tradeoff.png will be skipped: it needs matplotlib ({PLOT_EXTRA})", file=sys.stderr)
    backend = study.backend
    compile_s = warm_up(study.tool, backend)
    hours = study.horizon_years * HOURS_PER_YEAR
    raw = simulate(study.tool, study.candidates, study.replicas, hours, study.seed, backend, study.crn,
                   chunk_items=study.chunk_items)
    summary = summarise(study.tool, raw, study.objective)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_policies_csv(out / "policies.csv", study, summary)
    doc = best_policy_doc(study, summary, raw, compile_s, cfg)
    if with_plot:
        plot_tradeoff(out / "tradeoff.png", study, summary)
    # every file lands atomically; best_policy.json last, so its presence means a complete folder
    atomic_write_text(out / "best_policy.json", json.dumps(doc, indent=2, default=_json_default) + "\n")
    return doc


def write_policies_csv(path, study: Study, s: Summary) -> None:
    cands = study.candidates
    key, sign = OBJECTIVES[study.objective]
    on_front = np.zeros(len(cands), bool)
    on_front[s.front] = True
    score = np.nan_to_num(sign * s.kpis[key][0], nan=-np.inf)
    order = np.argsort(np.lexsort((-score, ~on_front)))  # the front first (the best is rank 1), then the rest
    params = list(cands.columns)
    with atomic_open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["candidate", "policy", *params, *(f"{k}{s_}" for k in KPIS for s_ in ("", "_ci95")),
                    *s.warnings, "rank", "gap_to_best", "gap_ci95", "tied_with_best",
                    "on_pareto_front"])
        for i in range(len(cands)):
            w.writerow([i, _label(study, cands.labels[i]), *(_fmt(cands.columns[p][i]) for p in params),
                        *(_fmt(s.kpis[k][j][i]) for k in KPIS for j in (0, 1)),
                        *(_fmt(v[i]) for v in s.warnings.values()), int(order[i]) + 1, _fmt(s.gap[i]),
                        _fmt(s.gap_ci[i]), int(s.tied[i]), int(on_front[i])])


def best_policy_doc(study: Study, s: Summary, raw: Raw, compile_s: float, cfg: dict) -> dict:
    from twin.output import package_versions

    b = s.best
    cands = study.candidates
    items_years = len(cands) * study.replicas * study.horizon_years
    doc = {
        "tool": study.tool.name,
        "objective": study.objective,
        "policy": _label(study, cands.labels[b]),
        "parameters": {k: float(v[b]) for k, v in cands.columns.items() if np.isfinite(v[b])},
        "kpis": {k: _ci_doc(s.kpis[k], b) for k in KPIS},
        "warnings": {k: _num_or_none(v[b]) for k, v in s.warnings.items()},
        "candidates_tied_with_best": int(s.tied.sum()),
        "candidates_on_pareto_front": int(s.front.size),
        "selection": f"the best {study.objective} mean among the candidates on the Pareto front of good dies per "
                     "year against cost per year (no other candidate has as many good dies at no more cost)",
        "cost_unit": f"{study.tool.currency} per year",
        "candidates": len(cands),
        "meta": {
            "backend": study.backend.name,
            "device": study.backend.device_name,
            "replications": study.replicas,
            "horizon_years": study.horizon_years,
            "search": study.search,
            "seed": study.seed,
            "common_random_numbers": study.crn,
            "wall_seconds": round(raw.seconds, 3),
            "compile_seconds": round(compile_s, 3),
            "candidate_replication_years_per_second": items_years / max(raw.seconds, 1e-9),
            "packages": package_versions(),
            "config": cfg,
        },
    }
    tool_cfg = cfg.get("tool") or {}
    if isinstance(tool_cfg, dict) and "group" in tool_cfg:
        doc["line_maintenance"] = {"line": tool_cfg.get("line") or "default", "group": tool_cfg["group"],
                                   **line_maintenance(cands.labels[b], doc["parameters"], study.tool, study.basis)}
    if cands.labels[0] == "run_to_failure":  # warnings scored without PM censoring them
        doc["warnings_under_run_to_failure"] = {k: _num_or_none(v[0]) for k, v in s.warnings.items()}
        if b != 0:
            doc["gain_over_run_to_failure"] = {"mean": float(-s.gap[0]), "ci95": float(s.gap_ci[0])}
    return doc


def _ci_doc(pair, i):
    return {"mean": _num_or_none(pair[0][i]), "ci95": _num_or_none(pair[1][i])}


def _num_or_none(v):
    v = float(v)
    return v if math.isfinite(v) else None


def _fmt(v) -> str:
    v = float(v)
    return "" if not math.isfinite(v) else f"{v:.6g}"


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def print_summary(doc: dict, out_dir) -> None:
    meta = doc["meta"]
    k = doc["kpis"]
    print(f"FabTwin maintain: tool {doc['tool']}, {doc['candidates']} candidates x {meta['replications']} "
          f"replications x {meta['horizon_years']:g} years on {meta['backend']} ({meta['device']})")
    print(f"{meta['wall_seconds']:.2f} s (+{meta['compile_seconds']:.1f} s JIT/cache load), "
          f"{meta['candidate_replication_years_per_second']:,.0f} candidate-replication-years/s")
    params = ", ".join(f"{n}={v:.4g}" for n, v in doc["parameters"].items())
    print(f"best for {doc['objective']}: {doc['policy']} {params}")
    print(f"  chosen among the {doc['candidates_on_pareto_front']} candidates on the Pareto front (no other has as "
          f"many good dies at no more cost); {doc['candidates_tied_with_best']} candidates within the CI of the best")
    print(f"  means over {meta['replications']} replications ± the 95% confidence half-width")
    cost_unit = doc.get("cost_unit", "per year")
    for name, label, scale, unit in (("availability", "availability", 100.0, "% of calendar time"),
                                     ("good_dies_per_year", "good dies", 1.0, "per year"),
                                     ("cost_per_year", "maintenance cost", 1.0, cost_unit),
                                     ("failures_per_year", "failures", 1.0, "per year"),
                                     ("pms_per_year", "PMs", 1.0, "per year")):
        print(f"  {label:<17} {readable.mean_ci(k[name]['mean'], k[name]['ci95'], scale)} {unit}")
    w = doc["warnings"]
    print(f"  warnings: precision {_g(w['warning_precision'])}, recall {_g(w['warning_recall'])}, "
          f"median lead {_g(w['median_lead_hours'])} hours")
    if "line_maintenance" in doc:
        lm = {k: v for k, v in doc["line_maintenance"].items() if k not in ("line", "group")}
        print(f"  for line {doc['line_maintenance']['line']}, group {doc['line_maintenance']['group']}: {json.dumps(lm)}")
    print(f"results: {out_dir}")


def _g(v):
    return readable.number(v)
