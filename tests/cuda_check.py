"""Run a script that compares CUDA and CPU kernels, under numba's simulator or on a real GPU.

The simulator must be switched on before numba is imported, hence a subprocess; it
imports the same source tree the tests import.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_script(script: str, simulator: bool) -> subprocess.CompletedProcess:
    import twin

    root = str(Path(twin.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root}
    if simulator:
        pytest.importorskip("numba.cuda")
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    else:
        require_real_gpu()
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)


def require_real_gpu() -> None:
    from kernels.target import cuda_usable

    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or not cuda_usable():
        pytest.skip("no real CUDA GPU on this machine")
