"""Run-folder guarantees under real faults: real signals to real ``twin run`` processes.

Each fault is placed deterministically: the child process (``CHILD`` below)
wraps one function of the twin to touch a marker file and wait there; the test
waits for the marker, then sends the signal.  No fixed sleeps decide a phase.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# A short run of the default line: 4 replications, one per chunk on one thread, 20 day-long segments each
# (the child launches one segment at a time: SEGMENT_TARGET_SECONDS = 0 turns off the grouping of fast days).
RUN = ["line=default", "replicas=4", "horizon_days=20", "warmup_days=2.5", "seed=5", "backend=cpu",
       "backend.threads=1", "chunk_replicas=1", "progress=false", "yield.enabled=false", "checkpoint_seconds=0"]

CHILD = r'''
import os, sys, time, errno
from pathlib import Path
marker, pause_at = Path(os.environ["FX_MARKER"]), os.environ.get("FX_PAUSE", "")
from twin import app, output, rundir, runner
runner.SEGMENT_TARGET_SECONDS = 0.0
seen = {}

enter = rundir.Interrupts.__enter__
def capture(self):
    seen["signals"] = self
    return enter(self)
rundir.Interrupts.__enter__ = capture

def pause():
    """Tell the test where we are; wait for its signal (or its SIGKILL)."""
    marker.write_text(str(os.getpid()))
    deadline = time.time() + 60
    while time.time() < deadline:
        signals = seen.get("signals")
        if signals is not None and signals.requested and pause_at != "kill":
            return
        time.sleep(0.01)

what, _, arg = pause_at.partition(":")
if what in ("checkpoint", "kill"):
    save = runner.Checkpoint.save
    def save_then_pause(self, run, in_flight):
        save(self, run, in_flight)
        if self.saves == int(arg):
            pause()
    runner.Checkpoint.save = save_then_pause
elif what == "yield":
    section = app._yield_section
    def pause_then_report(*a, **k):
        pause()
        return section(*a, **k)
    app._yield_section = pause_then_report
elif what == "write":
    snapshots = output.write_snapshots
    def pause_then_write(*a, **k):
        pause()
        return snapshots(*a, **k)
    output.write_snapshots = pause_then_write
elif what == "full_disk":
    import shutil, collections
    usage = collections.namedtuple("usage", "total used free")
    shutil.disk_usage = lambda path: usage(10**9, 10**9 - 4096, 4096)
elif what == "checkpoint_enospc":
    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    runner.np.savez = no_space
elif what == "enospc":
    snapshots = output.write_snapshots
    def no_space_but_in_the_rescue_folder(path, result):
        if "twin-rescue-" not in str(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return snapshots(path, result)
    output.write_snapshots = no_space_but_in_the_rescue_folder

from twin.cli import main
sys.exit(main(["run", *sys.argv[1:]]))
'''


def start(folder: Path, *extra, pause="", env=None):
    marker = folder.parent / f"{folder.name}.marker"
    marker.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FX_MARKER": str(marker), "FX_PAUSE": pause, **(env or {})}
    settings = dict(a.split("=", 1) for a in (*RUN, *extra))  # Hydra refuses a key given twice
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *(f"{k}={v}" for k, v in settings.items()), f"hydra.run.dir={folder}"],
                            cwd=folder.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.marker = marker
    return proc


# A child's first run compiles the engine (about 35 s of JIT on 2 idle cores); on a busy 2-core machine a
# run of the default line took over 90 s, so a hang is caught only well past that
CHILD_TIMEOUT_S = 300.0


def wait_for_marker(proc, timeout=CHILD_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while not proc.marker.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"child ended (rc {proc.returncode}) before reaching its pause:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("child never reached its pause")
        time.sleep(0.02)


def finish(proc, timeout=CHILD_TIMEOUT_S):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def run(folder, *extra, pause="", env=None):
    return finish(start(folder, *extra, pause=pause, env=env))


def error_lines(err: str) -> list[str]:
    """stderr without Python's warnings about Hydra itself, nor the summary's warnings about a short horizon."""
    return [ln for ln in err.splitlines() if ln.strip() and "Warning" not in ln and not ln.startswith((" ", "Omit"))
            and not (ln.startswith("warning: ") and "cycle time" in ln)]


def manifest(folder: Path) -> dict:
    """kpis.json, after checking every file it lists is there, whole and readable."""
    doc = json.loads((folder / "kpis.json").read_text())
    for name, record in doc["meta"]["files"].items():
        data = (folder / name).read_bytes()
        assert len(data) == record["bytes"] and hashlib.sha256(data).hexdigest() == record["sha256"], name
        if name.endswith(".npz"):
            with np.load(folder / name) as z:
                [z[k] for k in z.files]
        elif name.endswith(".csv"):
            rows = list(csv.reader((folder / name).open()))
            assert len({len(r) for r in rows}) == 1, f"{name} is ragged"
        else:
            json.loads(data)
    assert not list(folder.glob(".*.tmp")), "temporary files left behind"
    return doc


def replication_rows(folder: Path) -> list[list[str]]:
    return list(csv.reader((folder / "replications.csv").open()))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every interrupted-and-resumed run must equal."""
    folder = tmp_path_factory.mktemp("faults") / "reference"
    code, out, err = run(folder)
    assert code == 0, err
    doc = manifest(folder)
    assert doc["meta"]["interrupted"] is False and doc["meta"]["replications"] == 4
    assert not (folder / "checkpoint.npz").exists() and not (folder / ".twin.lock").exists()
    return folder


def same_results(folder: Path, reference: Path, same_settings=True):
    a, b = manifest(folder), manifest(reference)
    assert replication_rows(folder) == replication_rows(reference)
    for key in ("products", "lot_types", "tool_groups", "checks"):
        assert a[key] == b[key], key
    assert a["meta"]["events"] == b["meta"]["events"]
    assert (a["meta"]["config_hash"] == b["meta"]["config_hash"]) == same_settings  # resume=true is not hashed
    for name in ("lots_rep0.csv", "tools.csv", "snapshots.npz"):
        assert (folder / name).read_bytes() == (reference / name).read_bytes(), name


def test_sigint_mid_run_keeps_finished_replications_and_resume_equals_an_uninterrupted_run(tmp_path, reference):
    folder = tmp_path / "run"
    proc = start(folder, pause="checkpoint:45")  # 19 boundaries per chunk: this is inside the third chunk
    wait_for_marker(proc)
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 130, err
    assert "Traceback" not in err
    doc = manifest(folder)
    assert doc["meta"]["interrupted"] is True
    assert doc["meta"]["replications"] == 2 and doc["meta"]["planned_replications"] == 4
    assert len(replication_rows(folder)) == 1 + 2
    assert replication_rows(folder) == replication_rows(reference)[:3]  # the finished ones are the real ones
    assert (folder / "checkpoint.npz").is_file() and "resume=true" in err

    code, out, err = run(folder, "resume=true")
    assert code == 0, err
    same_results(folder, reference)
    assert not (folder / "checkpoint.npz").exists()


def test_kill_9_then_resume_continues_into_the_same_folder_with_identical_results(tmp_path, reference):
    folder = tmp_path / "run"
    one_chunk = "chunk_replicas=4"  # every replication in one chunk: nothing finishes before the end
    proc = start(folder, one_chunk, pause="checkpoint:1")  # day 1 (stopping at day 2): still inside the warm-up
    wait_for_marker(proc)
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 130 and "Traceback" not in err and "nothing to report" in err and "resume=true" in err, err
    assert (folder / "checkpoint.npz").is_file() and not (folder / "kpis.json").exists()

    proc = start(folder, one_chunk, "resume=true", pause="kill:3")
    wait_for_marker(proc)
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    assert (folder / "checkpoint.npz").is_file() and not (folder / "kpis.json").exists()
    assert (folder / ".twin.lock").is_file()  # left by the killed run: stale, since its flock died with it

    code, out, err = run(folder, "resume=true", one_chunk)
    assert code == 0, err
    same_results(folder, reference, same_settings=False)  # chunk_replicas differs, the numbers do not


def test_ctrl_c_twice_in_a_single_chunk_run_keeps_every_replication_cut_at_the_last_boundary(tmp_path):
    folder = tmp_path / "run"
    proc = start(folder, "chunk_replicas=4", pause="checkpoint:8")  # day 8 of 20, past the warm-up
    wait_for_marker(proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 130 and "Traceback" not in err, err
    meta = manifest(folder)["meta"]
    assert meta["interrupted"] is True and meta["replications"] == 4
    assert meta["horizon_days"] == pytest.approx(20 * 9 / 20) and meta["planned_horizon_days"] == 20
    with np.load(folder / "snapshots.npz") as z:
        assert z["time_days"].max() <= meta["horizon_days"]


def test_sigterm_during_the_yield_report_keeps_the_run_and_drops_only_the_report(tmp_path):
    folder = tmp_path / "run"
    proc = start(folder, "yield.enabled=true", pause="yield")
    wait_for_marker(proc)
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc)
    assert code == 130 and "Traceback" not in err, err
    doc = manifest(folder)
    assert doc["meta"]["interrupted"] is True and doc["meta"]["replications"] == 4
    assert "interrupted" in doc["yield"]["skipped"]
    assert not list(folder.glob("wafer_maps*.npz")) and not (folder / ".staging").exists()


def test_ctrl_c_during_the_file_writes_finishes_a_consistent_folder_marked_interrupted(tmp_path, reference):
    folder = tmp_path / "run"
    proc = start(folder, pause="write")
    wait_for_marker(proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 130 and "Traceback" not in err, err
    doc = manifest(folder)
    assert doc["meta"]["interrupted"] is True and doc["meta"]["replications"] == 4
    assert replication_rows(folder) == replication_rows(reference)


def test_a_second_run_into_a_folder_in_use_is_refused_and_a_mismatched_resume_too(tmp_path):
    folder = tmp_path / "run"
    first = start(folder, pause="kill:3")
    wait_for_marker(first)
    code, out, err = run(folder)
    assert code == 2 and error_lines(err) == [error_lines(err)[0]] and "in use by another twin run" in err, err
    assert f"pid {first.pid}" in err
    first.send_signal(signal.SIGKILL)
    finish(first)

    code, out, err = run(folder, "seed=6", "resume=true")
    assert code == 2 and len(error_lines(err)) == 1 and "seed=5" in err and "seed=6" in err, err
    code, out, err = run(folder)
    assert code == 2 and len(error_lines(err)) == 1 and "resume=true" in err, err


@pytest.mark.parametrize("fault", ["file", "unwritable", "read_only", "full_disk"])
def test_an_unusable_folder_is_one_line_and_exit_2_before_any_compute(tmp_path, fault):
    folder, pause = tmp_path / "run", ""
    if fault == "file":
        folder.write_text("not a folder")
    elif fault == "unwritable":
        folder = Path("/proc/fabtwin-no-such-folder")  # no one, not even root, can make folders in /proc
    elif fault == "read_only":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        folder.mkdir()
        folder.chmod(0o555)
    else:
        pause = "full_disk"
    code, out, err = run(folder, pause=pause)
    assert code == 2, err
    assert len(error_lines(err)) == 1 and error_lines(err)[0].startswith("error: ") and "Traceback" not in err, err
    assert "events in" not in out  # nothing was simulated
    if fault == "full_disk":
        assert "MiB free" in err and not (folder / "checkpoint.npz").exists()


def test_an_io_error_after_compute_saves_the_results_elsewhere_and_says_where(tmp_path, reference):
    rescue_base = tmp_path / "tmp"
    rescue_base.mkdir()
    code, out, err = run(tmp_path / "run", pause="enospc", env={"TMPDIR": str(rescue_base)})
    assert code == 2 and len(error_lines(err)) == 1 and "No space left on device" in err, err
    saved = next(rescue_base.glob("twin-rescue-*"))
    assert str(saved) in err
    assert not (tmp_path / "run" / "kpis.json").exists()
    assert manifest(saved)["meta"]["replications"] == 4
    assert replication_rows(saved) == replication_rows(reference)


def test_a_disk_that_fills_during_the_run_costs_the_checkpoints_not_the_run(tmp_path, reference):
    folder = tmp_path / "run"
    code, out, err = run(folder, pause="checkpoint_enospc")
    assert code == 0, err
    assert error_lines(err) == [f"checkpoint: could not write {folder / 'checkpoint.npz'} (No space left on device); "
                                "continuing without checkpoints"]
    assert replication_rows(folder) == replication_rows(reference)


def test_a_fresh_run_removes_a_previous_runs_files_but_nothing_else(tmp_path, reference):
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("wafer_maps.npz", "wafer_maps_other.npz", "kpis.json", ".snapshots.npz.x.tmp"):
        (folder / name).write_text("stale")
    (folder / "notes.txt").write_text("mine")
    code, out, err = run(folder)
    assert code == 0, err
    manifest(folder)
    assert not list(folder.glob("wafer_maps*")) and (folder / "notes.txt").read_text() == "mine"


# ---------------------------------------------------------------- in-process pieces

def test_a_failed_atomic_write_leaves_the_old_file_whole(tmp_path):
    from twin.rundir import atomic_open

    path = tmp_path / "a.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(path) as f:
            f.write("half")
            raise RuntimeError("disk gone")
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["a.csv"]
    with atomic_open(path) as f:
        f.write("new\n")
    umask = os.umask(0)
    os.umask(umask)
    assert path.read_text() == "new\n" and path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_a_lock_whose_owner_died_is_taken_over_and_a_live_one_refused(tmp_path):
    from twin.errors import DataError
    from twin.rundir import LOCK, FolderLock

    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT);"
                               "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'{\"pid\": %d}' % os.getpid()); print(flush=True); time.sleep(60)",
                               str(tmp_path / LOCK)], stdout=subprocess.PIPE, text=True)
    holder.stdout.readline()
    with pytest.raises(DataError, match=f"pid {holder.pid}"):
        with FolderLock(tmp_path):
            pass
    holder.kill()
    holder.wait()
    with FolderLock(tmp_path):
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK).exists()


def test_a_large_cpu_run_is_split_into_quarters_and_a_small_one_is_not():
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.line import load_line
    from twin.runner import default_chunk

    c, cpu = compile_line(load_line("default")), resolve_backend("cpu", 2)
    threads = cpu.threads
    assert default_chunk(c, cpu, 4 * threads) == 4 * threads  # at least four replications per thread
    assert default_chunk(c, cpu, 64 * threads) == 16 * threads  # a quarter of a large run
    assert default_chunk(c, cpu, 10, chunk_replicas=3) == 3


def test_a_run_cut_short_at_a_boundary_equals_a_run_whose_horizon_is_that_boundary(monkeypatch):
    """What an interrupt keeps when no replication finished is a real run: the one with the shorter horizon."""
    from twin import runner
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.line import load_line

    monkeypatch.setattr(runner, "SEGMENT_TARGET_SECONDS", 0.0)  # one segment a launch: a boundary after each
    c, cpu = compile_line(load_line("default")), resolve_backend("cpu", 1)
    asks = iter(range(1000))
    cut = runner.run_line(c, 4, 6.0, 1.0, 3, cpu, segments=20, stop=lambda: next(asks) >= 8)  # stops at boundary 9 of 20
    assert cut.interrupted and cut.horizon_days == pytest.approx(6.0 * 9 / 20) and cut.planned_horizon_days == 6.0
    short = runner.run_line(c, 4, cut.horizon_days, 1.0, 3, cpu)
    for key in (*runner.RESULT_FIELDS, *runner.REP0_FIELDS):  # equal but for float sums closed at another moment
        np.testing.assert_allclose(cut.stats[key], short.stats[key], rtol=1e-12, atol=1e-9, equal_nan=True, err_msg=key)
    np.testing.assert_array_equal(cut.lot_log, short.lot_log)
    for key in short.snapshots:
        np.testing.assert_array_equal(cut.snapshots[key], short.snapshots[key])
