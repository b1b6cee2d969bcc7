"""Compare a benchmark result file with the previous one from the same machine; flag regressions.

Two result files (written by ``twin bench``) are comparable when their machines
match: same CPU model, same core count, same GPU (or both none).  Rows pair up
by their ``key`` (or, for rows without one, by every field that is not a
measurement), and each pair compares one throughput metric, higher being
better.  A row is a regression when its median throughput fell by more than
``threshold`` (default 15%, above the run-to-run noise of a quiet machine).

    python benchmarks/compare.py NEW.json [OLD.json] [--threshold 0.15]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

SCHEMA = "fabtwin-bench/1"
THRESHOLD = 0.15
# Throughput metrics, higher is better, first match wins.
METRICS = ("events_per_s", "replication_days_per_s", "die_evals_per_s", "candidate_replication_years_per_second")
# Float fields that describe the workload rather than measure it.
CONFIG_FLOATS = {"horizon_days", "warmup_days", "horizon_years", "AD", "alpha"}
NOT_IDENTITY = {"repeats", "note", "device", "error"}


def machine_key(doc: dict) -> tuple:
    m = doc.get("machine", {})
    gpu = m.get("gpu") or {}
    return (m.get("cpu_model"), m.get("cpu_cores"), gpu.get("name"))


def metric_of(row: dict) -> str | None:
    return next((k for k in METRICS if isinstance(row.get(k), (int, float))), None)


def row_key(section: str, row: dict) -> str:
    """A row's identity: its ``key`` field, else its non-measurement fields."""
    if "key" in row:
        return f"{section}:{row['key']}"
    return f"{section}:" + ",".join(f"{k}={row[k]}" for k in sorted(row) if _identity(k, row[k]))


def _identity(field: str, value) -> bool:
    if field in NOT_IDENTITY:
        return False
    return field in CONFIG_FLOATS or isinstance(value, (str, bool, int))


def metric_rows(doc: dict) -> dict:
    """{row key: (metric name, value, row)} for every row that carries a throughput metric."""
    out = {}
    for section, rows in doc.get("sections", {}).items():
        for row in rows:
            metric = metric_of(row)
            if metric is not None:
                out[row_key(section, row)] = (metric, float(row[metric]), row)
    return out


def compare(new: dict, old: dict, threshold: float = THRESHOLD) -> dict:
    """Pair rows of two result documents; list every row slower than ``old`` by more than ``threshold``."""
    if machine_key(new) != machine_key(old):
        return {"comparable": False, "reason": f"different machine: {machine_key(new)} vs {machine_key(old)}",
                "compared": 0, "regressions": [], "improvements": []}
    a, b = metric_rows(new), metric_rows(old)
    regressions, improvements, compared = [], [], 0
    for key in sorted(set(a) & set(b)):
        metric, now, _ = a[key]
        metric_old, before, _ = b[key]
        if metric != metric_old or before <= 0:
            continue
        compared += 1
        change = now / before - 1.0
        item = {"key": key, "metric": metric, "previous": before, "current": now, "change": change}
        if change < -threshold:
            regressions.append(item)
        elif change > threshold:
            improvements.append(item)
    return {"comparable": True, "threshold": threshold, "compared": compared,
            "regressions": regressions, "improvements": improvements}


def load(path: Path) -> dict | None:
    """A result document, or None when the file is not one of ours (other JSON in the folder)."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("schema") == SCHEMA else None


def previous(results_dir: Path, new: dict, exclude: Path | None = None) -> tuple[Path, dict] | None:
    """The latest earlier result file of the same machine (same quick/full mode preferred)."""
    candidates = []
    for path in sorted(Path(results_dir).glob("*.json")):
        if exclude is not None and path.resolve() == Path(exclude).resolve():
            continue
        doc = load(path)
        if doc is None or machine_key(doc) != machine_key(new) or doc.get("created", "") >= new.get("created", ""):
            continue
        candidates.append((doc.get("quick") == new.get("quick"), doc.get("created", ""), path, doc))
    if not candidates:
        return None
    _, _, path, doc = max(candidates, key=lambda c: (c[0], c[1]))
    return path, doc


def format_report(report: dict, previous_name: str | None) -> str:
    if previous_name is None:
        return "regression check: no earlier result from this machine"
    if not report["comparable"]:
        return f"regression check: {report['reason']}"
    lines = [f"regression check against {previous_name}: {report['compared']} rows compared, "
             f"threshold {100 * report['threshold']:.0f}% on the median"]
    for item in report["regressions"]:
        lines.append(f"  REGRESSION {item['key']}: {item['metric']} {item['previous']:.4g} -> {item['current']:.4g} "
                     f"({100 * item['change']:+.1f}%)")
    for item in report["improvements"]:
        lines.append(f"  faster     {item['key']}: {item['metric']} {item['previous']:.4g} -> {item['current']:.4g} "
                     f"({100 * item['change']:+.1f}%)")
    if not report["regressions"]:
        lines.append("  no regressions")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    threshold = THRESHOLD
    if "--threshold" in argv:
        i = argv.index("--threshold")
        threshold = float(argv[i + 1])
        del argv[i:i + 2]
    if not argv:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    new_path = Path(argv[0])
    new = load(new_path)
    if new is None:
        print(f"error: {new_path} is not a twin bench result file", file=sys.stderr)
        return 2
    if len(argv) > 1:
        old_path, old = Path(argv[1]), load(Path(argv[1]))
        if old is None:
            print(f"error: {old_path} is not a twin bench result file", file=sys.stderr)
            return 2
    else:
        found = previous(new_path.parent, new, exclude=new_path)
        old_path, old = found if found else (None, None)
    report = compare(new, old, threshold) if old is not None else None
    print(format_report(report, old_path.name if old_path else None) if report else format_report({}, None))
    return 1 if report and report["regressions"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
