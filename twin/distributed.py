"""Replications of one scenario spread over Dask workers, bit-identical to one process.

Every replication's random streams are keyed by (seed, global replication index, purpose, entity),
so a shard — a range of global replication indices run by :func:`twin.runner.run_line` with
``first_replica`` — gives exactly the numbers those replications give in a single-process run.
The client concatenates the shards in index order.  A shard is identified by its first index: a
shard lost with its worker is rerun by the scheduler, a shard that raised is retried, and a result
that arrives twice is kept once, so no replication is lost or counted twice.

``cluster`` names where the workers are:

- ``local``: a :class:`distributed.LocalCluster` of worker processes on this machine;
- ``local-cuda``: a ``dask_cuda.LocalCUDACluster``, one worker per visible GPU (``backend=cuda``);
- ``tcp://host:8786`` (or any scheduler address): an existing cluster;
- a ``distributed.Client``: used as it is (tests use an in-process cluster).
"""
from __future__ import annotations

import math
import threading
import time
import uuid

import numpy as np

from twin.errors import ConfigError
from twin.runner import REP0_FIELDS, RESULT_FIELDS, RunResult, check_run_args

# Thread workers of one process share numba's parallel runtime; runs in one process take turns
# (each run already uses every core it was given), runs in worker processes do not wait.
_IN_PROCESS = threading.Lock()


def run_distributed(compiled, replicas: int, horizon_days: float, warmup_days: float, seed: int,
                    cluster="local", backend: str = "cpu", shard_replicas: int = 0, snapshot_minutes: float = 240.0,
                    retries: int = 3, shard_function=None) -> RunResult:
    """Run ``replicas`` replications as shards on ``cluster``; same numbers as :func:`run_line`."""
    check_run_args(replicas, horizon_days, warmup_days)
    client, owned = connect(cluster)
    try:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        size = shard_replicas or max(1, math.ceil(replicas / (2 * workers)))
        shards = [(first, min(size, replicas - first)) for first in range(0, replicas, size)]
        started = time.perf_counter()
        parts = _run_shards(client, shards, shard_function or run_shard, compiled,
                            dict(horizon_days=horizon_days, warmup_days=warmup_days, seed=seed, backend=backend,
                                 snapshot_minutes=snapshot_minutes), retries)
        wall = time.perf_counter() - started
    finally:
        if owned:
            _close(client)
    return _merge(compiled, parts, replicas, horizon_days, warmup_days, seed, wall)


def run_shard(compiled, first: int, n: int, horizon_days, warmup_days, seed, backend, snapshot_minutes) -> dict:
    """Replications ``first .. first + n - 1`` on this worker (what a worker runs; picklable)."""
    from twin.backend import resolve_backend
    from twin.runner import run_line

    with _IN_PROCESS:
        result = run_line(compiled, n, horizon_days, warmup_days, seed, resolve_backend(backend),
                          snapshot_minutes=snapshot_minutes if first == 0 else 0.0, first_replica=first)
    return {"first": first, "n": result.replicas, "stats": result.stats, "lot_log": result.lot_log,
            "snapshots": result.snapshots, "backend": result.backend, "device_name": result.device_name,
            "compile_seconds": result.compile_seconds}


def connect(cluster):
    """``(client, owned)``: a Dask client for ``cluster``; ``owned`` clients are closed after the run."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ConfigError("cluster", cluster, "needs dask[distributed]: pip install 'fabtwin[studies]'") from err
    if isinstance(cluster, Client):
        return cluster, False
    if cluster == "local":
        return Client(LocalCluster(processes=True, threads_per_worker=1, dashboard_address=":0")), True
    if cluster == "local-cuda":
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError as err:
            raise ConfigError("cluster", cluster, "needs dask-cuda (pip install dask-cuda) and CUDA GPUs") from err
        return Client(LocalCUDACluster()), True
    if isinstance(cluster, str) and "://" in cluster:
        try:
            return Client(cluster, timeout="20s"), True
        except (OSError, TimeoutError) as err:
            raise ConfigError("cluster", cluster, f"no Dask scheduler answered there ({err.__class__.__name__})") from None
    raise ConfigError("cluster", cluster, "allowed: null (one process), local, local-cuda, or a scheduler "
                      "address such as tcp://host:8786")


def _run_shards(client, shards, function, compiled, kwargs, retries) -> dict:
    """Submit every shard, collect one result per first index; a failed shard raises after its retries."""
    from distributed import as_completed

    token = uuid.uuid4().hex[:12]
    # hash=False: a fresh key per run.  With content-hashed keys, two runs of the same line share a key,
    # and the release of the first run's key can reach the scheduler after the second run scattered it,
    # which cancels the second run's shards for "lost dependencies" (dask/distributed#8576).
    [line] = client.scatter([compiled], broadcast=True, hash=False)
    futures = [client.submit(function, line, first, n, **kwargs, key=f"twin-shard-{token}-{first}",
                             retries=retries, pure=False) for first, n in shards]
    parts = {}
    for future in as_completed(futures):
        part = future.result()
        parts.setdefault(part["first"], part)  # a shard that came back twice counts once
    expected = {first: n for first, n in shards}
    got = {first: part["n"] for first, part in parts.items()}
    if got != expected:
        raise RuntimeError(f"shards came back incomplete: expected {expected}, got {got}")
    return parts


def _merge(compiled, parts: dict, replicas, horizon_days, warmup_days, seed, wall) -> RunResult:
    ordered = [parts[first] for first in sorted(parts)]
    stats = {k: np.concatenate([p["stats"][k] for p in ordered]) for k in RESULT_FIELDS}
    assert stats["rep_i"].shape[0] == replicas
    head = ordered[0]
    stats.update({k: head["stats"][k] for k in REP0_FIELDS})  # replication 0's per-tool rows: the first shard's
    return RunResult(
        compiled=compiled, replicas=replicas, horizon_days=horizon_days, warmup_days=warmup_days, seed=seed,
        backend=head["backend"], device_name=head["device_name"], stats=stats, lot_log=head["lot_log"],
        snapshots=head["snapshots"], wall_seconds=wall, compile_seconds=max(p["compile_seconds"] for p in ordered),
        completed_replicas=replicas, extra={"shards": len(ordered)},
    )


def _close(client):
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def check_cluster(cluster) -> None:
    """Refuse a bad ``cluster`` setting before any compute (connecting happens at run time)."""
    if cluster in (None, "", "local", "local-cuda") or (isinstance(cluster, str) and "://" in cluster):
        return
    if type(cluster).__name__ == "Client":
        return
    raise ConfigError("cluster", cluster, "allowed: null (one process), local, local-cuda, or a scheduler "
                      "address such as tcp://host:8786")
