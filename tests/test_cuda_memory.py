"""CUDA state is allocated and zeroed on the device, and CUDA kernels are cached on disk.

Both need a real GPU (marker ``cuda``); without one they are skipped. The simulator keeps host
arrays and does not cache, so it cannot show either property.
"""
from __future__ import annotations

import textwrap

import pytest

from cuda_check import run_script

ZEROS = textwrap.dedent("""
    import numpy as np
    from numba import cuda
    from twin.backend import resolve_backend

    backend = resolve_backend("cuda")
    try:
        import cupy
        dirty = cupy.full((4096, 8, 3), 7.0)  # leave non-zero bytes in the memory pool
        del dirty
    except ImportError:
        pass
    state = backend.zeros(3, (4096, 8), np.float64)
    assert cuda.is_cuda_array(state), type(state)
    assert state.shape == (3, 4096, 8), state.shape
    host = state.copy_to_host()
    assert host.dtype == np.float64 and not host.any(), "state is not zero"
    print("OK zeros")
""")

CACHE = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numba
    sys.path.insert(0, {tests!r})
    from lines import exp_step, open_line, station
    from twin.backend import resolve_backend
    from twin.compile import compile_line

    c = compile_line(open_line([station("A", 1)], [exp_step("A", 10.0)], 30.0))
    resolve_backend("cuda").warm_up(c)
    folder = Path(numba.config.CACHE_DIR)
    print("CACHED" if any(folder.rglob("launch_cuda._advance_kernel-*.nbi")) else "NOT CACHED", folder)
""")


@pytest.mark.cuda
def test_cuda_state_is_zeroed_on_the_device():
    proc = run_script(ZEROS, simulator=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK zeros" in proc.stdout


@pytest.mark.cuda
def test_cuda_kernels_are_cached_on_disk(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    script = CACHE.format(tests=str(Path(__file__).resolve().parent))
    proc = run_script(script, simulator=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "CACHED" in proc.stdout and "NOT CACHED" not in proc.stdout, proc.stdout
