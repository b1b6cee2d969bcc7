"""The run folder's guarantees: atomic files, one run at a time, room to write, safe interrupts.

A run folder is either complete or visibly not: every file lands by an atomic
rename, and ``kpis.json`` (the manifest) lands last.  docs/outputs.md, "Run
folder guarantees", is the user's side of this module.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

from twin.errors import DataError

MANIFEST = "kpis.json"
CHECKPOINT = "checkpoint.npz"
LOCK = ".twin.lock"
STAGING = ".staging"
# Every file a run writes; a fresh run removes these (and nothing else) from its folder first.
OUTPUT_NAMES = ("kpis.json", "replications.csv", "lots_rep0.csv", "tools.csv", "snapshots.npz", "line.json",
                "wafer_maps.npz", "yield_lots_rep0.csv", "smt2020_report.csv", CHECKPOINT)
OUTPUT_PATTERNS = ("wafer_maps_*.npz", ".*.tmp")


_UMASK = os.umask(0o022)
os.umask(_UMASK)


class RunFolderError(DataError):
    """The run folder cannot be used: names the folder or file and what to do (exit 2, one line)."""

    def __init__(self, path, problem: str):
        super().__init__(path, None, None, problem)


# ---------------------------------------------------------------- atomic files

@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    The rename is atomic within one folder, so a reader sees the old file or
    the whole new one, never a torn one; on any error the temporary file goes.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_open(path, mode="w", **kwargs):
    """``open()`` for writing, landing atomically on close (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def atomic_write_text(path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


def atomic_move(src, dst) -> None:
    """Move a finished file into place atomically (same file system: fsync, then rename)."""
    with open(src, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(src, dst)
    fsync_dir(Path(dst).parent)


def fsync_dir(folder) -> None:
    """Make a rename durable: fsync the folder (a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------- the folder

def check_folder(out_dir, need_bytes: int = 0) -> Path:
    """Create ``out_dir`` if needed and prove it writable with ``need_bytes`` free — before compute."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RunFolderError(out, "the output folder is a file; choose another hydra.run.dir")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", suffix=".tmp", dir=out)
        try:
            os.write(fd, b"x")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as err:
        raise RunFolderError(out, f"cannot write the output folder ({err.strerror or err}); "
                                  "choose another hydra.run.dir") from None
    free = shutil.disk_usage(out).free
    if need_bytes > free:
        raise RunFolderError(out, f"{_mib(free)} free, the run needs about {_mib(need_bytes)} for its files and "
                                  "checkpoint; free space or choose another hydra.run.dir")
    return out


def _mib(n) -> str:
    return f"{n / 2**20:.1f} MiB"


def remove_stale_outputs(out: Path) -> list[str]:
    """Delete a previous run's files (only names this module lists), the manifest first."""
    names = [n for n in OUTPUT_NAMES if (out / n).is_file()]
    for pattern in OUTPUT_PATTERNS:
        names += sorted(p.name for p in out.glob(pattern) if p.is_file())
    for name in names:
        (out / name).unlink()
    shutil.rmtree(out / STAGING, ignore_errors=True)
    if names:
        fsync_dir(out)
    return names


def remove_temporaries(out: Path) -> None:
    """Temporary files a killed run left behind (never part of a result)."""
    for path in out.glob(".*.tmp"):
        path.unlink(missing_ok=True)
    shutil.rmtree(out / STAGING, ignore_errors=True)


def staging_dir(out: Path) -> Path:
    """A scratch folder inside the run folder (same file system, so its files rename into place)."""
    path = out / STAGING
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    return path


def rescue_dir() -> Path | None:
    """A fresh writable folder for results that could not be written where asked, or None."""
    for base in (tempfile.gettempdir(), Path.home(), Path.cwd()):
        with contextlib.suppress(OSError):
            return Path(tempfile.mkdtemp(prefix="twin-rescue-", dir=base))
    return None


@contextlib.contextmanager
def cli_folder_guard(overrides):
    """Check (and lock) ``twin run``'s folder before Hydra writes its config files into it.

    Hydra makes the folder and writes ``.hydra/`` before the run starts, so a
    file in the way or a read-only folder would end in Hydra's traceback, and a
    second run would overwrite the first one's record.  A folder given as
    ``hydra.run.dir=`` is checked and locked; otherwise (a new dated folder)
    the folder it will be made in is checked.
    """
    sweep = any(a in ("-m", "--multirun") for a in overrides)
    key = "hydra.sweep.dir=" if sweep else "hydra.run.dir="
    given = [a[len(key):] for a in overrides if a.startswith(key)]
    if given and "${" in given[-1]:  # Hydra resolves it; the run checks the folder once it exists
        yield
        return
    if not given:
        check_folder(Path("multirun" if sweep else "outputs"))
        yield
        return
    out = check_folder(Path(given[-1]).expanduser())
    if sweep:
        yield
        return
    with FolderLock(out):
        yield


# ---------------------------------------------------------------- the lock

_HELD: dict[str, "FolderLock"] = {}


class FolderLock:
    """One run per folder: ``.twin.lock`` holds the owner's pid under an exclusive ``flock``.

    The kernel drops a ``flock`` when its process dies (even by ``kill -9``), so
    a lock file whose lock can be taken is stale and is taken over.  Where
    ``flock`` is unsupported, a recorded pid that no longer runs marks it stale.
    Re-entrant within a process (the CLI locks before Hydra writes, the run again).
    """

    def __init__(self, out: Path):
        self.path = Path(out) / LOCK
        self.key = str(Path(out).resolve())
        self.fd = None
        self.depth = 0
        self.owner = self

    def __enter__(self):
        self.owner = _HELD.get(self.key) or self
        if self.owner is self:
            self._acquire()
            _HELD[self.key] = self
        self.owner.depth += 1
        return self.owner

    def __exit__(self, *exc):
        owner = self.owner
        owner.depth -= 1
        if owner.depth == 0:
            _HELD.pop(owner.key, None)
            owner._release()

    def _acquire(self):
        import fcntl

        for _ in range(10):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise RunFolderError(self.path.parent, f"in use by another twin run ({self._owner()}); "
                                                           "wait for it or choose another hydra.run.dir") from None
                if not self._stale_by_pid():
                    raise RunFolderError(self.path.parent, f"in use by another twin run ({self._owner()})") from None
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            if self._same_file(fd):
                os.ftruncate(fd, 0)
                os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                         "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode())
                self.fd = fd
                return
            os.close(fd)  # the file was removed and re-created by its owner meanwhile: try again
        raise RunFolderError(self.path, "could not take the run folder's lock")

    def _same_file(self, fd) -> bool:
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self.path))
        except OSError:
            return False

    def _owner(self) -> str:
        try:
            info = json.loads(self.path.read_text() or "{}")
            return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}"
        except (OSError, ValueError):
            return "owner unknown"

    def _stale_by_pid(self) -> bool:
        try:
            pid = int(json.loads(self.path.read_text() or "{}").get("pid", 0))
        except (OSError, ValueError, TypeError):
            return True
        if pid <= 0:
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def _release(self):
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            if self._same_file(self.fd):
                os.unlink(self.path)
        os.close(self.fd)
        self.fd = None


# ---------------------------------------------------------------- interrupts

STOP_SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None)


class Interrupts:
    """SIGINT/SIGTERM/SIGHUP while a run is in progress: remember them, stop at a safe point.

    ``mode`` says what a signal does: ``"defer"`` only records it (the runner
    stops at the next segment boundary, file writing finishes its folder);
    ``"raise"`` also raises KeyboardInterrupt (a phase that can simply be
    dropped, like the yield report).  Pressing Ctrl-C again never loses work:
    each press is recorded the same way.
    """

    def __init__(self):
        self.signal = None
        self.mode = "defer"
        self._saved = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in STOP_SIGNALS:
                self._saved[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, old in self._saved.items():
            signal.signal(s, old)
        self._saved.clear()

    @contextlib.contextmanager
    def raising(self):
        old, self.mode = self.mode, "raise"
        try:
            yield
        finally:
            self.mode = old

    def _handle(self, signum, frame):
        first = self.signal is None
        self.signal = signum
        if self.mode == "raise":
            self.mode = "defer"  # a second press while this one unwinds is only recorded
            raise KeyboardInterrupt
        if first:
            with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
                os.write(2, f"\n{signal.Signals(signum).name}: stopping at the next safe point; finished "
                            "replications are kept (docs/outputs.md)\n".encode())
