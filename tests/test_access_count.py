"""benchmarks/access_count.py counts state accesses with views whose numba types are the plain views':
it must refuse to count where the disk cache is shared, or a counted run would load uncounted functions
and a plain run could load counting ones (which write past their offsets array)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TRY_COUNTING = """
from benchmarks import access_count
try:
    access_count.offset_views(counting=True)
except RuntimeError as err:
    print("refused:", err)
else:
    print("counted with a shared cache")
"""


def test_counting_with_the_shared_numba_cache_is_refused():
    env = {k: v for k, v in os.environ.items() if k != "FABTWIN_ACCESS_COUNT_CACHE"}
    proc = subprocess.run([sys.executable, "-c", TRY_COUNTING], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "refused: count with a numba cache folder of the count's own" in proc.stdout, proc.stdout


def test_a_bad_days_value_exits_2_before_any_compile(tmp_path):
    (tmp_path / "HVLM").mkdir()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.access_count", "--days", "-1", "--smt2020-dir",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "--days -1.0: must be > 0" in proc.stderr and "Traceback" not in proc.stderr
