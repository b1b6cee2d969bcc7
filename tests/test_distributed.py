"""Scale-out: Dask shards of replications and Hydra's joblib launcher give one process's numbers.

Streams are keyed by the global replication index, so shards of replications run anywhere must give
bit-identical statistics; a shard that raises or whose worker dies is rerun, and counted once.
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import twin.distributed as dist
from lines import exp_step, open_line, station
from twin.app import prepare, run_scenario
from twin.backend import resolve_backend
from twin.compile import compile_line
from twin.errors import ConfigError
from twin.runner import run_line

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # worker processes do not import tests/

ARGS = dict(horizon_days=4.0, warmup_days=1.0, seed=9)
REPLICAS = 10


def small_line():
    fail = {"ttf": {"dist": "exponential", "mean": 400.0}, "repair": {"dist": "exponential", "mean": 40.0}}
    pm = [{"name": "age", "age_minutes": 300.0, "duration": 10.0}]
    return compile_line(open_line([station("A", 2, failures=fail, pm=pm), station("B", 1)],
                                  [exp_step("A", 20.0), exp_step("B", 15.0, rework={"prob": 0.2, "to_step": 1})], 25.0))


@pytest.fixture(scope="module")
def reference():
    c = small_line()
    return c, run_line(c, REPLICAS, backend=resolve_backend("cpu"), snapshot_minutes=60.0, **ARGS)


def assert_identical(a, b):
    assert a.replicas == b.replicas
    for key in b.stats:
        np.testing.assert_array_equal(a.stats[key], b.stats[key], err_msg=key)
    np.testing.assert_array_equal(a.lot_log, b.lot_log)
    np.testing.assert_array_equal(a.snapshots["tool_state"], b.snapshots["tool_state"])


@pytest.fixture(scope="module")
def threads_client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0")
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_shards_on_a_cluster_equal_one_process(reference, threads_client):
    c, single = reference
    sharded = dist.run_distributed(c, REPLICAS, cluster=threads_client, shard_replicas=3, snapshot_minutes=60.0, **ARGS)
    assert sharded.extra["shards"] == 4
    assert_identical(sharded, single)


def fail_once(marker: str, compiled, first, n, *args, **kwargs):
    """A shard that raises on its first attempt (the marker file remembers the attempt)."""
    with open(marker, "a") as f:
        f.write(f"{first}\n")
    if first == 3 and Path(marker).read_text().split().count("3") == 1:
        raise RuntimeError("shard lost")
    return dist.run_shard(compiled, first, n, *args, **kwargs)


def test_a_failed_shard_is_rerun_and_counted_once(reference, threads_client, tmp_path):
    c, single = reference
    marker = tmp_path / "attempts"
    sharded = dist.run_distributed(c, REPLICAS, cluster=threads_client, shard_replicas=3, snapshot_minutes=60.0,
                                   shard_function=functools.partial(fail_once, str(marker)), **ARGS)
    attempts = marker.read_text().split()
    assert sorted(attempts) == ["0", "3", "3", "6", "9"], attempts
    assert_identical(sharded, single)


def test_back_to_back_runs_of_one_line_keep_their_data(threads_client):
    """Runs that follow each other at once must not lose the line they scattered.

    With content-hashed scatter keys every run of one line shares a key, and the release of the
    previous run's key can reach the scheduler after this run scattered it (dask/distributed#8576);
    the shards were then cancelled for "lost dependencies".
    """
    c = small_line()
    for _ in range(25):
        result = dist.run_distributed(c, 2, cluster=threads_client, shard_replicas=1, snapshot_minutes=0.0,
                                      horizon_days=0.2, warmup_days=0.0, seed=1)
        assert result.replicas == 2


def die_once(marker: str, compiled, first, n, *args, **kwargs):
    """A shard whose worker process dies the first time it runs shard 3."""
    if first == 3 and not Path(marker).exists():
        Path(marker).write_text("died")
        os._exit(1)
    return dist.run_shard(compiled, first, n, *args, **kwargs)


def test_a_lost_worker_s_shard_is_rerun(reference, tmp_path):
    c, single = reference
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    try:
        with distributed.Client(cluster) as client:
            sharded = dist.run_distributed(c, REPLICAS, cluster=client, shard_replicas=3, snapshot_minutes=60.0,
                                           shard_function=functools.partial(die_once, str(tmp_path / "died")), **ARGS)
    finally:
        cluster.close()
    assert (tmp_path / "died").exists()
    assert_identical(sharded, single)


def test_bad_cluster_is_refused_before_compute():
    with pytest.raises(ConfigError, match="cluster"):
        prepare({"line": "single_station", "cluster": "nowhere"})
    with pytest.raises(ConfigError, match="cluster"):
        dist.connect(42)


def csv_of(folder) -> str:
    return (Path(folder) / "replications.csv").read_text()


def test_joblib_launcher_jobs_equal_single_runs(tmp_path):
    """`twin run -m hydra/launcher=joblib`: each job's results equal the same run in this process."""
    cfg = {"line": "single_station", "replicas": 2, "horizon_days": 3.0, "warmup_days": 1.0, "progress": False,
           "backend": "cpu", "snapshot_minutes": 240.0}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(dist.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "twin.cli", "run", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                           f"hydra.sweep.dir={tmp_path / 'sweep'}", "line=single_station", "replicas=2", "horizon_days=3",
                           "warmup_days=1", "progress=false", "backend=cpu", "seed=1,2"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = {json.loads((p / "kpis.json").read_text())["meta"]["seed"]: p for p in (tmp_path / "sweep").iterdir() if (p / "kpis.json").exists()}
    assert sorted(jobs) == [1, 2]
    for seed, folder in jobs.items():
        run_scenario({**cfg, "seed": seed}, tmp_path / f"single{seed}")
        assert csv_of(folder) == csv_of(tmp_path / f"single{seed}")
    assert csv_of(jobs[1]) != csv_of(jobs[2])


def test_cluster_local_setting_gives_the_single_process_folder(tmp_path):
    """`twin run cluster=local` (a LocalCluster of worker processes) writes the same replications."""
    cfg = {"line": "single_station", "replicas": 5, "horizon_days": 3.0, "warmup_days": 1.0, "progress": False,
           "backend": "cpu", "seed": 4}
    run_scenario(cfg, tmp_path / "one")
    run_scenario({**cfg, "cluster": "local"}, tmp_path / "many")
    assert csv_of(tmp_path / "one") == csv_of(tmp_path / "many")
    assert (tmp_path / "one" / "lots_rep0.csv").read_text() == (tmp_path / "many" / "lots_rep0.csv").read_text()
