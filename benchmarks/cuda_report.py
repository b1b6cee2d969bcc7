"""CUDA resource report: every CUDA kernel of the project compiled offline for sm_90, no GPU needed.

    python -m benchmarks.cuda_report [--json] [--arch sm_90 sm_100] [--only NAME]

Two steps, so that no kernel's argument list is written down here:

1. *Discover signatures.*  A subprocess under numba's CUDA simulator runs the
   project's real CUDA entry points on tiny cases (the engine on a small line,
   the yield wafer Monte Carlo, the maintenance study) and records, for every
   kernel launch, the kernel's Python function and the numba type of each
   argument.  Whatever kernels and arguments the engine has today are found.
2. *Compile.*  This process (simulator off) builds every CUDA kernel of the
   ``kernels`` package, compiles each recorded signature to PTX with libNVVM
   for compute capability 9.0, and assembles the PTX with ``ptxas -v`` for
   each architecture.  numba-cuda asks the current device for its compute
   capability when a kernel calls device functions
   (``numba.cuda.dispatcher.get_current_device``); without a driver we supply
   (9, 0).

One line per kernel: registers, stack frame bytes, spill store and load
bytes, SASS instructions (the size of the kernel's ``.text`` section in the
cubin / 16 bytes: every instruction is 128 bits wide from sm_70 on), and the
NVVM and ptxas seconds.  The last line says whether any kernel spills.

Needs numba, numba-cuda and the ``nvidia-cuda-nvcc-cu12`` wheel (libNVVM and
ptxas); not hydra, omegaconf, pyvista or pyyaml.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPUTE_CAPABILITY = (9, 0)
ARCHS = ("sm_90", "sm_100")
SASS_INSTRUCTION_BYTES = 16


# ----------------------------------------------------------------------------- toolchain


def find_ptxas() -> Path | None:
    """ptxas from the nvidia-cuda-nvcc wheel, else from $CUDA_HOME or PATH."""
    try:
        import nvidia.cuda_nvcc as wheel

        for base in getattr(wheel, "__path__", []):
            candidate = Path(base) / "bin" / "ptxas"
            if candidate.is_file():
                return candidate
    except ImportError:
        pass
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")):
        if home and (Path(home) / "bin" / "ptxas").is_file():
            return Path(home) / "bin" / "ptxas"
    found = shutil.which("ptxas")
    return Path(found) if found else None


def toolchain_problem() -> str | None:
    """Why the report cannot run here (None when it can)."""
    try:
        import numba.cuda  # noqa: F401
    except Exception as err:  # numba-cuda missing or broken
        return f"numba-cuda is not importable ({err})"
    if find_ptxas() is None:
        return "ptxas not found (pip install nvidia-cuda-nvcc-cu12)"
    try:
        from numba.cuda.cudadrv import nvvm

        nvvm.NVVM()
    except Exception as err:
        return f"libNVVM is not loadable ({err}); pip install nvidia-cuda-nvcc-cu12"
    return None


def ptxas_archs(ptxas: Path) -> set[str]:
    """The real architectures this ptxas can assemble for (from its --help)."""
    text = subprocess.run([str(ptxas), "--help"], capture_output=True, text=True).stdout
    return set(re.findall(r"'(sm_\d+[af]?)'", text))


# ----------------------------------------------------------------------------- step 1: signatures


def _probe_engine(cuda_backend):
    from twin.compile import compile_line
    from twin.line import parse_line
    from twin.runner import run_line

    run_line(compile_line(parse_line(probe_line())), replicas=2, horizon_days=0.3, warmup_days=0.05, seed=1,
             backend=cuda_backend, snapshot_minutes=120.0, segments=2)


def _probe_engine_warp(cuda_backend):
    """The warp-per-replication launchers (32 lanes), on a very short horizon: the simulator runs each
    lane as a Python thread."""
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.line import parse_line
    from twin.runner import run_line

    run_line(compile_line(parse_line(probe_line())), replicas=1, horizon_days=0.05, warmup_days=0.0, seed=1,
             backend=resolve_backend("cuda", lanes=32), snapshot_minutes=0.0, segments=1)


def _probe_engine_wave(cuda_backend):
    """The wavefront launchers: every stage's kernel runs at each wave, whatever its list holds."""
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.line import parse_line
    from twin.runner import run_line

    run_line(compile_line(parse_line(probe_line())), replicas=2, horizon_days=0.05, warmup_days=0.0, seed=1,
             backend=resolve_backend("cuda", wavefront=True), snapshot_minutes=0.0, segments=1)


def _probe_engine_persistent(cuda_backend):
    """The persistent-warp launcher: its reset, start and persistent kernels run at each segment."""
    from twin.backend import resolve_backend
    from twin.compile import compile_line
    from twin.line import parse_line
    from twin.runner import run_line

    run_line(compile_line(parse_line(probe_line())), replicas=2, horizon_days=0.05, warmup_days=0.0, seed=1,
             backend=resolve_backend("cuda", persistent=True), snapshot_minutes=0.0, segments=1)


def _probe_yield(cuda_backend):
    import numpy as np

    from twin.yield_model import YieldSpec, simulate_wafers

    spec = YieldSpec(wafer_diameter_mm=60.0, edge_exclusion_mm=2.0, die_width_mm=6.0, die_height_mm=6.0,
                     alpha=1.5, cluster_block_dies=2, patterns=(0.3, 0.3, 0.15, 0.15, 0.1),
                     scratch_probability=0.5, scratch_length_mm=20.0)
    simulate_wafers(spec, np.array([0.1, 0.3]), seed=1, backend=cuda_backend, sample=[1])


def _probe_maintenance(cuda_backend):
    import numpy as np

    from kernels import maintenance as M
    from twin.distributions import Dist
    from twin.maintain import Candidates, ToolModel, simulate

    tool = ToolModel("all", 20.0, utilisation=0.8, drift=2e-3, noise=1e-2, step_wafers=25.0,
                     life=Dist("weibull", (1.5, 200.0)), threshold=Dist("lognormal", (1.0, 0.1)),
                     hazard_h0=1e-3, hazard_b=2.0, repair=Dist("exponential", (5.0,)),
                     pm_duration=Dist("constant", (2.0,)), sensor_noise=0.05, forget=0.9, min_readings=3,
                     d0=0.2, gross_dies=100.0, price_pm=1.0, price_repair=5.0, price_down_hour=0.1,
                     warn_level=1.0, warn_horizon=6.0, warn_window=12.0, warn_bins=4)
    cands = Candidates(("rtf", "age"), np.array([M.RUN_TO_FAILURE, M.AGE], np.int32),
                       np.array([[0, 0, 0], [20, 0, 0]], np.float64))
    simulate(tool, cands, replicas=1, horizon_hours=10.0, seed=1, backend=cuda_backend)


PROBES = {"engine": _probe_engine, "engine_warp": _probe_engine_warp, "engine_wave": _probe_engine_wave,
          "engine_persistent": _probe_engine_persistent,
          "yield": _probe_yield,
          "maintenance": _probe_maintenance}


def probe_line() -> dict:
    """A two-station line with failures, PM, setups, batching, rework and a condition model (no YAML)."""
    exp = lambda mean: {"dist": "exponential", "mean": mean}  # noqa: E731
    wear = {"drift_per_wafer": 0.01, "noise_per_wafer": 0.02, "sensor_sd": 0.05,
            "failure_level": {"dist": "uniform", "low": 0.4, "high": 0.8}}
    groups = [
        {"name": "A", "area": "A", "tools": 2, "dispatch": "fifo", "failures": {"ttf": exp(300.0), "repair": exp(30.0)},
         "pm": [{"name": "w", "every_wafers": 40, "duration": {"dist": "constant", "value": 15}}], "condition": wear},
        {"name": "B", "area": "A", "tools": 2, "dispatch": "fifo", "setup": {"minutes": 5},
         "tool_choice": "least_setup"},
    ]
    route = [{"group": "A", "time": exp(20.0), "per": "lot"},
             {"group": "B", "time": exp(15.0), "per": "lot", "setup": "x"},
             {"group": "A", "time": exp(10.0), "per": "lot", "rework": {"prob": 0.3, "to_step": 2}},
             {"group": "B", "time": 12.0, "per": "batch", "batch": {"min": 2, "max": 3, "max_wait": 30}}]
    return {"name": "probe", "tool_groups": groups, "products": [{"name": "p", "route": route}],
            "releases": [{"name": "p", "product": "p", "kind": "poisson", "interval_minutes": 30.0, "lot_size": 1,
                          "due_days": 10}]}


def _kernel_key(fn) -> tuple:
    code = fn.__code__
    return (str(Path(code.co_filename).resolve()), code.co_firstlineno, fn.__qualname__)


def record_signatures() -> dict:
    """In this (simulator) process: run every probe, return {kernel key: [pickled arg types]} and failures."""
    assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "record_signatures needs the CUDA simulator"
    import warnings

    from numba import typeof
    from numba.core.typing.typeof import Purpose
    from numba.cuda.simulator import kernel as sim

    from twin.backend import resolve_backend

    warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
    seen: dict = {}
    distinct: dict = {}
    launch = sim.FakeCUDAKernel.__call__

    def recording_call(self, *args):
        if not self._device and not sim._kernel_context:
            try:
                _record(self.fn, args)
            except Exception as err:  # an argument numba cannot type or pickle: name it, keep probing
                failures[f"record {self.fn.__qualname__}"] = f"{type(err).__name__}: {err}"
        return launch(self, *args)

    def _record(fn, args):
        types = tuple(typeof(a, Purpose.argument) for a in args)
        key = json.dumps(_kernel_key(fn))
        entry = seen.setdefault(key, {"name": fn.__qualname__, "module": fn.__module__, "sigs": []})
        if types not in distinct.setdefault(key, []):  # equal types may pickle to different bytes
            distinct[key].append(types)
            entry["sigs"].append(base64.b64encode(pickle.dumps(types)).decode())

    failures = {}
    sim.FakeCUDAKernel.__call__ = recording_call
    backend = resolve_backend("cuda")
    for name, probe in PROBES.items():
        try:
            probe(backend)
        except Exception as err:  # one failing entry point must not hide the others' kernels
            failures[name] = f"{type(err).__name__}: {err}"
    return {"kernels": seen, "probe_failures": failures}


def discover_signatures(timeout: float = 900.0) -> dict:
    """Run :func:`record_signatures` in a subprocess with the simulator switched on before numba loads."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": path}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "signatures.json"
        proc = subprocess.run([sys.executable, "-m", "benchmarks.cuda_report", "--record-to", str(out)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not out.is_file():
            raise RuntimeError(f"signature probe failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        return json.loads(out.read_text())


# ----------------------------------------------------------------------------- step 2: compile


@contextlib.contextmanager
def offline_device(cc=COMPUTE_CAPABILITY):
    """Make numba-cuda believe the current device has compute capability ``cc`` (no driver needed)."""
    import numba.cuda.dispatcher as dispatcher

    class OfflineDevice:
        compute_capability = cc
        name = f"offline sm_{cc[0]}{cc[1]}"

    saved = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: OfflineDevice()
    try:
        yield
    finally:
        dispatcher.get_current_device = saved


def project_kernels() -> list:
    """Every CUDA kernel (not device function) the ``kernels`` package builds.

    Imports each module of the package and calls any ``cuda_launcher()`` it
    has (kernels built on demand).  Kernels are the ``CUDADispatcher`` objects
    created meanwhile, plus those held by module globals or by the closures of
    module functions and launchers (built before this call).
    """
    import importlib
    import pkgutil

    import kernels
    from numba.cuda.dispatcher import CUDADispatcher

    made = []
    init = CUDADispatcher.__init__

    def recording_init(self, py_func, *args, **kwargs):
        init(self, py_func, *args, **kwargs)
        made.append(self)

    CUDADispatcher.__init__ = recording_init
    try:
        with offline_device():
            names = [info.name for info in pkgutil.walk_packages(kernels.__path__, "kernels.")]
            modules = [importlib.import_module(name) for name in names]
            launchers = [m.cuda_launcher() for m in modules if callable(getattr(m, "cuda_launcher", None))]
    finally:
        CUDADispatcher.__init__ = init
    for holder in [*(v for m in modules for v in vars(m).values()), *launchers]:
        made.extend(_dispatchers_in(holder, CUDADispatcher))
    unique = {id(d): d for d in made if not d.targetoptions.get("device")}
    return list(unique.values())


def _dispatchers_in(obj, kind, depth: int = 1) -> list:
    """Kernels ``obj`` is, or holds in its closure, or (one level down) in its attributes' closures: a
    launcher object built on an earlier call (``cuda_launcher()`` caches) creates no new dispatcher."""
    if isinstance(obj, kind):
        return [obj]
    cells = getattr(obj, "__closure__", None)
    cells = cells if isinstance(cells, tuple) else ()
    found = []
    for cell in cells:
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(value, kind):
            found.append(value)
    if depth and not callable(obj) and hasattr(obj, "__dict__") and not isinstance(obj, type):
        for value in vars(obj).values():
            found.extend(_dispatchers_in(value, kind, depth - 1))
    return found


@dataclass
class ArchResources:
    arch: str
    registers: int
    stack_bytes: int
    spill_store_bytes: int
    spill_load_bytes: int
    sass_instructions: int
    ptxas_seconds: float

    @property
    def spills(self) -> bool:
        return self.spill_store_bytes > 0 or self.spill_load_bytes > 0


@dataclass
class KernelReport:
    name: str
    module: str
    signature: str
    ptx_bytes: int = 0
    nvvm_seconds: float = 0.0
    archs: list = field(default_factory=list)
    error: str = ""
    cached: bool = False  # reused from an earlier report of the same sources (its seconds are that run's)

    @property
    def spills(self) -> bool:
        return any(a.spills for a in self.archs)


def compile_ptx(dispatcher, argtypes, cc=COMPUTE_CAPABILITY) -> str:
    """PTX of one kernel signature, with the kernel's own jit options."""
    from numba import cuda

    opts = dispatcher.targetoptions
    with offline_device(cc):
        ptx, _ = cuda.compile_ptx(dispatcher.py_func, argtypes, debug=opts.get("debug"),
                                  lineinfo=bool(opts.get("lineinfo")), fastmath=bool(opts.get("fastmath")), cc=cc,
                                  opt=opts.get("opt", True), launch_bounds=opts.get("launch_bounds"))
    return ptx


_ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(sm_\w+)'")
_PROPERTIES = re.compile(r"Function properties for (\S+)")
_STACK = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_REGS = re.compile(r"Used (\d+) registers")
_COMPILE_MS = re.compile(r"Compile time = ([\d.]+) ms")


class Assembly:
    """One ``ptxas -v`` run in the background (several assemble in parallel while NVVM compiles)."""

    def __init__(self, ptxas: Path, ptx: str, arch: str, max_registers: int | None = None):
        self.arch = arch
        self.tmp = tempfile.TemporaryDirectory()
        src, self.cubin = Path(self.tmp.name) / "k.ptx", Path(self.tmp.name) / "k.cubin"
        src.write_text(ptx)
        self.started = time.perf_counter()
        cap = [f"-maxrregcount={max_registers}"] if max_registers else []  # what the driver's JIT applies
        self.proc = subprocess.Popen([str(ptxas), "-v", f"-arch={arch}", *cap, "-o", str(self.cubin), str(src)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self) -> ArchResources:
        try:
            _, log = self.proc.communicate()
            seconds = time.perf_counter() - self.started
            if self.proc.returncode != 0:
                raise RuntimeError(f"ptxas -arch={self.arch} failed: {log.strip()[-2000:]}")
            entry, regs, stack, spill_store, spill_load = parse_ptxas_log(log)
            sass = sass_instructions(self.cubin.read_bytes(), entry)
            own = [float(x) for x in _COMPILE_MS.findall(log)]
            seconds = sum(own) / 1e3 if own else seconds  # ptxas's own figure; our wall clock includes waiting
        finally:
            self.tmp.cleanup()
        return ArchResources(self.arch, regs, stack, spill_store, spill_load, sass, round(seconds, 2))


def parse_ptxas_log(log: str) -> tuple:
    """(entry name, entry registers, entry stack bytes, spill store bytes, spill load bytes) of a ``-v`` log.

    Spills are summed over every function in the module (a device function
    that was not inlined, libdevice's slow paths): a spill anywhere costs
    local-memory traffic in the kernel.
    """
    entry = _ENTRY.search(log)
    if not entry:
        raise RuntimeError(f"no entry function in the ptxas log:\n{log[-2000:]}")
    name, lines = entry.group(1), log.splitlines()
    stack, spill_store, spill_load, regs = 0, 0, 0, None
    for i, line in enumerate(lines):
        props = _PROPERTIES.search(line)
        frame = _STACK.search(lines[i + 1]) if props and i + 1 < len(lines) else None
        if frame:
            st, ss, sl = (int(x) for x in frame.groups())
            spill_store, spill_load = spill_store + ss, spill_load + sl
            if props.group(1) == name:
                stack = st
                used = _REGS.search("\n".join(lines[i + 2: i + 4]))
                regs = int(used.group(1)) if used else None
    if regs is None:
        raise RuntimeError(f"no register count for {name} in the ptxas log:\n{log[-2000:]}")
    return name, regs, stack, spill_store, spill_load


def sass_instructions(cubin: bytes, entry: str) -> int:
    """Instructions in ``.text.<entry>`` of an ELF64 cubin (16 bytes each from sm_70 on)."""
    shoff, = struct.unpack_from("<Q", cubin, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", cubin, 0x3A)

    def section(i):
        name, _, _, _, offset, size = struct.unpack_from("<IIQQQQ", cubin, shoff + i * shentsize)
        return name, offset, size

    _, names_at, _ = section(shstrndx)
    wanted = f".text.{entry}".encode()
    for i in range(shnum):
        name, _, size = section(i)
        end = cubin.index(b"\0", names_at + name)
        if cubin[names_at + name: end] == wanted:
            return size // SASS_INSTRUCTION_BYTES
    return 0


def cache_key(dispatcher, argtypes, ptxas: Path) -> str:
    """Hash of every kernel source, the compilers' versions, the kernel and its signature."""
    import hashlib

    import numba

    import kernels

    digest = hashlib.sha256()
    for path in sorted(Path(kernels.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    fn = dispatcher.py_func
    parts = (numba.__version__, _dist_version("numba-cuda"), _dist_version("nvidia-cuda-nvcc-cu12"), str(ptxas),
             fn.__module__, fn.__qualname__, repr(argtypes), repr(sorted(dispatcher.targetoptions.items(), key=str)),
             repr(COMPUTE_CAPABILITY))
    digest.update("\0".join(parts).encode())
    return digest.hexdigest()[:32]


def _dist_version(name: str) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return "?"


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "fabtwin" / "cuda_report"


def _cached(key: str, archs) -> tuple:
    """(cached row holding those of ``archs`` it has, cached PTX), or (None, None)."""
    import gzip

    folder = cache_dir()
    try:
        d = json.loads((folder / f"{key}.json").read_text())
        ptx = gzip.decompress((folder / f"{key}.ptx.gz").read_bytes()).decode()
    except (OSError, ValueError, EOFError):
        return None, None
    by_arch = {a["arch"]: ArchResources(**{k: v for k, v in a.items() if k != "spills"}) for a in d.pop("archs")}
    row = KernelReport(**{k: v for k, v in d.items() if k in KernelReport.__dataclass_fields__})
    row.archs, row.cached = [by_arch[a] for a in archs if a in by_arch], True
    return row, ptx


def _store(key: str, row: KernelReport, ptx: str | None) -> None:
    """Atomic writes (temp file + rename): a concurrent report never reads half a file."""
    import gzip

    if row.error or ptx is None:
        return
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    old, _ = _cached(key, ())
    merged = {a.arch: a for a in (old.archs if old else [])} | {a.arch: a for a in row.archs}
    doc = _as_dict(KernelReport(row.name, row.module, row.signature, row.ptx_bytes, row.nvvm_seconds,
                                list(merged.values())))
    for name, data in ((f"{key}.ptx.gz", gzip.compress(ptx.encode())), (f"{key}.json", json.dumps(doc).encode())):
        tmp = folder / f"{name}.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, folder / name)


def report(archs=ARCHS, only: str | None = None, signatures: dict | None = None, use_cache: bool = True) -> dict:
    """Compile every discovered kernel signature (or reuse an unchanged kernel's result); a dict ready for JSON."""
    from numba.core import types  # noqa: F401  (unpickling numba types needs numba.core loaded)

    ptxas = find_ptxas()
    supported = ptxas_archs(ptxas)
    archs = [a for a in archs if a in supported]
    started = time.perf_counter()
    signatures = signatures or discover_signatures()
    probe_seconds = time.perf_counter() - started
    by_key = {tuple(json.loads(k)): v for k, v in signatures["kernels"].items()}
    pending, unlaunched = [], []
    found = project_kernels()
    built = {_kernel_key(d.py_func) for d in found}
    not_built = [f"{v['module']}.{v['name']}" for k, v in by_key.items() if k not in built]
    for dispatcher in found:
        fn = dispatcher.py_func
        key = _kernel_key(fn)
        if only and only not in fn.__qualname__ and only not in fn.__module__:
            continue
        if key not in by_key:
            unlaunched.append(f"{fn.__module__}.{fn.__qualname__}")
            continue
        for blob in by_key[key]["sigs"]:
            argtypes = pickle.loads(base64.b64decode(blob))
            key = cache_key(dispatcher, argtypes, ptxas)
            old, ptx = _cached(key, archs) if use_cache else (None, None)
            if old and len(old.archs) == len(archs):
                pending.append((key, old, ptx, [], None))
                continue
            missing = [a for a in archs if not old or a not in {r.arch for r in old.archs}]
            pending.append((key, *_start_kernel(dispatcher, argtypes, ptxas, missing, ptx), old))
    rows = []
    for key, row, ptx, jobs, old in pending:
        if jobs or row.error:
            _finish_kernel(row, jobs)
            if old:  # PTX and some architectures from the cache, the others assembled now
                row.nvvm_seconds, row.cached = old.nvvm_seconds, True
                row.archs = sorted(old.archs + row.archs, key=lambda r: list(archs).index(r.arch))
            _store(key, row, ptx)
        rows.append(row)
    return {
        "compute_capability": list(COMPUTE_CAPABILITY), "archs": archs, "ptxas": str(ptxas),
        "probe_seconds": round(probe_seconds, 1), "probe_failures": signatures["probe_failures"],
        "not_launched_by_probes": unlaunched, "not_found_here": not_built, "kernels": [_as_dict(r) for r in rows],
        "any_spill": any(r.spills for r in rows),
    }


def _start_kernel(dispatcher, argtypes, ptxas, archs, ptx: str | None = None) -> tuple:
    """NVVM here (unless the PTX is cached), then each architecture's ptxas started in the background."""
    fn = dispatcher.py_func
    row = KernelReport(_short_name(fn), fn.__module__, f"({', '.join(str(t) for t in argtypes)})")
    try:
        started = time.perf_counter()
        if ptx is None:  # launch bounds, if any, are in the PTX (.maxntid, .minnctapersm)
            ptx = compile_ptx(dispatcher, argtypes)
            row.nvvm_seconds = round(time.perf_counter() - started, 2)
        row.ptx_bytes = len(ptx)
        cap = dispatcher.targetoptions.get("max_registers")
        return row, ptx, [Assembly(ptxas, ptx, arch, cap) for arch in archs]
    except Exception as err:
        row.error = f"{type(err).__name__}: {str(err)[:500]}"
        return row, None, []


def _finish_kernel(row: KernelReport, jobs) -> KernelReport:
    for job in jobs:
        try:
            row.archs.append(job.result())
        except Exception as err:
            row.error = f"{type(err).__name__}: {str(err)[:500]}"
    return row


def _short_name(fn) -> str:
    return f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__qualname__.replace('.<locals>', '')}"


def _as_dict(row: KernelReport) -> dict:
    d = asdict(row)
    d["spills"] = row.spills
    for a, obj in zip(d["archs"], row.archs):
        a["spills"] = obj.spills
    return d


# ----------------------------------------------------------------------------- output


def format_report(data: dict) -> str:
    head = (f"{'kernel':<44} {'arch':<7} {'regs':>4} {'stack':>6} {'spill st':>8} {'spill ld':>8} "
            f"{'SASS':>8} {'PTX kB':>7} {'nvvm s':>7} {'ptxas s':>7}")
    out = [f"CUDA resource report: libNVVM for compute capability {data['compute_capability'][0]}."
           f"{data['compute_capability'][1]}, ptxas {data['ptxas']}", head, "-" * len(head)]
    for k in data["kernels"]:
        if k["error"]:
            out.append(f"{k['name']:<44} ERROR {k['error']}")
            continue
        for a in k["archs"]:
            out.append(f"{k['name']:<44} {a['arch']:<7} {a['registers']:>4} {a['stack_bytes']:>6} "
                       f"{a['spill_store_bytes']:>8} {a['spill_load_bytes']:>8} {a['sass_instructions']:>8} "
                       f"{k['ptx_bytes'] / 1e3:>7.0f} {k['nvvm_seconds']:>7.1f} {a['ptxas_seconds']:>7.1f}"
                       f"{' (cached)' if k.get('cached') else ''}")
    for name, why in data["probe_failures"].items():
        out.append(f"probe {name} failed, its kernels are missing: {why}")
    for name in data.get("not_found_here", []):
        out.append(f"launched by a probe but not built by the kernels package here (not compiled): {name}")
    for name in data["not_launched_by_probes"]:
        out.append(f"not launched by any probe (no signature, not compiled): {name}")
    spilling = [k["name"] for k in data["kernels"] if k["spills"]]
    errors = [k["name"] for k in data["kernels"] if k["error"]]
    verdict = f"SPILLS: {', '.join(spilling)}" if spilling else "no kernel spills"
    if errors:
        verdict += f"; {len(errors)} kernel(s) failed to compile"
    out.append(verdict)
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cuda_report", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--arch", nargs="+", default=list(ARCHS), help="ptxas architectures (default: sm_90 sm_100)")
    parser.add_argument("--only", help="compile only kernels whose name or module contains this")
    parser.add_argument("--no-cache", action="store_true", help="recompile even when the kernel sources are unchanged")
    parser.add_argument("--record-to", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.record_to:
        data = record_signatures()
        Path(args.record_to).write_text(json.dumps(data))
        return 0
    problem = toolchain_problem()
    if problem:
        print(f"cuda_report: {problem}", file=sys.stderr)
        return 2
    data = report(args.arch, args.only, use_cache=not args.no_cache)
    print(json.dumps(data, indent=1) if args.json else format_report(data))
    return 1 if any(k["error"] for k in data["kernels"]) else 0


if __name__ == "__main__":
    sys.exit(main())
