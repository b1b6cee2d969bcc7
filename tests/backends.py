"""Every backend present, as one pytest fixture: ``cpu``, ``cuda-sim`` and ``cuda``.

* ``cpu``: the numba CPU engine, in this process;
* ``cuda-sim``: the CUDA launchers under numba's CUDA simulator.  The simulator must be switched on
  before numba is imported, so the run happens in a subprocess (as in ``cuda_check.py``); it executes
  every CUDA thread in Python, so tests give it tiny cases (:func:`sized`);
* ``cuda``: a real GPU, skipped when none is usable.

Use: ``from backends import backend_kind, per_replication_kpis, sized`` (or ``tool_tables``) in a test
module, then take ``backend_kind`` as an argument.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

KINDS = ("cpu", "cuda-sim", "cuda")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=KINDS)
def backend_kind(request) -> str:
    kind = request.param
    if kind == "cuda-sim":
        pytest.importorskip("numba.cuda")
    if kind == "cuda":
        from cuda_check import require_real_gpu

        require_real_gpu()
    return kind


def sized(kind: str, cpu, sim, gpu=None):
    """The case size for a backend: ``sim`` for the simulator (tiny), ``gpu`` (default ``cpu``) on a GPU."""
    return {"cpu": cpu, "cuda-sim": sim, "cuda": cpu if gpu is None else gpu}[kind]


def per_replication_kpis(kind: str, line_data: dict, replicas: int, horizon_days: float, warmup_days: float,
                         seed: int) -> dict:
    """``twin.kpis.per_replication`` of one run of the line mapping ``line_data`` on backend ``kind``."""
    if kind == "cuda-sim":
        return _in_simulator(line_data, replicas, horizon_days, warmup_days, seed)
    return _run(kind, line_data, replicas, horizon_days, warmup_days, seed)


def _run(kind, line_data, replicas, horizon_days, warmup_days, seed) -> dict:
    from twin import kpis
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.line import parse_line
    from twin.runner import run_line

    backend = resolve_backend("cpu" if kind == "cpu" else "cuda")
    result = run_line(compile_line(parse_line(line_data)), replicas, horizon_days, warmup_days, seed, backend,
                      snapshot_minutes=0)
    assert kpis.conservation(result)["ok"], f"lots were lost on {kind}"
    assert result.backend == ("cpu" if kind == "cpu" else "cuda")
    return kpis.per_replication(result)


def tool_tables(kind: str, line_data: dict, replicas: int, horizon_days: float, warmup_days: float, seed: int,
                chunk_replicas: int = 0) -> dict:
    """A run's results (``stats``) next to the full per-tool tables ``ti`` and ``tf`` ``[R, tools, columns]``
    its chunks held on the device when they were reduced, on backend ``kind``, and the line's ``tool_group``."""
    if kind == "cuda-sim":
        return _in_simulator(line_data, replicas, horizon_days, warmup_days, seed, chunk_replicas=chunk_replicas,
                             function="_tool_tables")
    return _tool_tables(kind, line_data, replicas, horizon_days, warmup_days, seed, chunk_replicas)


def _tool_tables(kind, line_data, replicas, horizon_days, warmup_days, seed, chunk_replicas=0) -> dict:
    from twin import runner
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.line import parse_line

    backend = resolve_backend("cpu" if kind == "cpu" else "cuda")
    c = compile_line(parse_line(line_data))
    backend.warm_up(c)
    backend.warm_up = lambda c: 0.0  # compiled: from here on every reduction is one of the run's chunks
    tables = {"ti": [], "tf": []}
    reduce = runner.tools_to_host

    def keep_tables(c, backend, state, n):
        for name in tables:
            tables[name].append(np.array(backend.to_host(state[name])))
        return reduce(c, backend, state, n)

    runner.tools_to_host = keep_tables
    try:
        result = runner.run_line(c, replicas, horizon_days, warmup_days, seed, backend, chunk_replicas=chunk_replicas,
                                 snapshot_minutes=0)
    finally:
        runner.tools_to_host = reduce
    out = {f"stats.{k}": v for k, v in result.stats.items()}
    out.update({name: np.concatenate(parts) for name, parts in tables.items()})
    out["tool_group"], out["chunks"], out["backend"] = c.tool_group, np.int64(len(tables["ti"])), result.device_name
    return out


_SIM_SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
    import numpy as np
    sys.path.insert(0, {tests!r})
    import backends
    args = json.loads(open({args!r}).read())
    rows = getattr(backends, {function!r})("cuda-sim", **args)
    np.savez({out!r}, **{{k: np.asarray(v) for k, v in rows.items()}})
""")


def _in_simulator(line_data, replicas, horizon_days, warmup_days, seed, function="_run", **extra) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        args, out = Path(tmp) / "args.json", Path(tmp) / "rows.npz"
        args.write_text(json.dumps({"line_data": line_data, "replicas": replicas, "horizon_days": horizon_days,
                                    "warmup_days": warmup_days, "seed": seed, **extra}))
        script = _SIM_SCRIPT.format(tests=str(Path(__file__).resolve().parent), args=str(args), out=str(out),
                                    function=function)
        env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
        with np.load(out) as data:
            return {k: data[k] for k in data.files}
