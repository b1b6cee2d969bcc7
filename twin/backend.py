"""The backend is a value, resolved once from config and passed down.

``Backend`` hides where arrays live (NumPy on the CPU, numba device arrays on
CUDA) and which launchers run the shared kernel bodies.  Both keep the
replication axis leading (kernels/layout.py says why).
"""
from __future__ import annotations

import os
import platform
import time

import numpy as np

from kernels import layout as K
from kernels.state import LineTables, RepZero
from kernels.target import CPU, CUDA, cuda_device_name, cuda_usable
from twin.errors import ConfigError

BACKENDS = ("auto", "cpu", "cuda")


def resolve_backend(name: str = "auto", threads: int = 0, lanes: int = 0, wavefront: bool = False,
                    persistent: bool = False) -> "Backend":
    """``auto`` picks CUDA only when a GPU can really run kernels. ``lanes`` (CUDA): 0 runs one thread
    per replication; 32 runs a warp per replication whose lanes share the calendar's scans
    (kernels/launch_warp.py; a smaller power of two for tests under the simulator). ``wavefront``
    (CUDA): each stage of an event is a kernel over the replications that need it
    (kernels/launch_wave.py). ``persistent`` (CUDA): resident warps each run one stage for up to 32
    replications at it, with no barrier between events (kernels/launch_persistent.py)."""
    if name not in BACKENDS:
        raise ConfigError("backend", name, f"allowed: {', '.join(BACKENDS)}")
    if not isinstance(threads, int) or threads < 0:
        raise ConfigError("backend.threads", threads, "must be an integer >= 0 (0 = all cores)")
    if name == "cuda" and not cuda_usable():
        raise ConfigError("backend", "cuda", "no usable CUDA GPU was found; use backend=cpu or backend=auto")
    if not isinstance(lanes, int) or lanes < 0 or lanes == 1 or lanes > 32 or lanes & (lanes - 1):
        raise ConfigError("backend.lanes", lanes,
                          "must be 0 (a thread per replication) or a power of two from 2 to 32 (lane 0 leads, the others scan)")
    if not isinstance(wavefront, bool) or (wavefront and lanes):
        raise ConfigError("backend.wavefront", wavefront,
                          "must be true or false, and true only with lanes 0 (a wave runs a thread per replication)")
    if not isinstance(persistent, bool) or (persistent and (lanes or wavefront)):
        raise ConfigError("backend.persistent", persistent,
                          "must be true or false, and true only with lanes 0 and wavefront false "
                          "(a lane of a persistent warp runs one replication's stage)")
    if name == "cuda" or (name == "auto" and cuda_usable() and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1"):
        return CudaBackend(lanes, wavefront, persistent)
    return CpuBackend(threads)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class Backend:
    name = "?"
    device_name = "?"

    def warm_up(self, c) -> float:
        """Compile (or load cached) kernels on a one-replication run; returns seconds."""
        from twin import runner

        started = time.perf_counter()
        tiny = runner._RepZeroBuffers(c, 1.0, 0, 1.0)
        runner._run_chunk(c, self, 1, 1, 0, 1.0, 0.0, 1, tiny, None)
        return time.perf_counter() - started


class CpuBackend(Backend):
    name = CPU

    def __init__(self, threads: int = 0):
        import numba

        self.threads = min(threads or numba.config.NUMBA_NUM_THREADS, numba.config.NUMBA_NUM_THREADS)
        self.device_name = f"{cpu_model()}, {self.threads} threads"

    def launchers(self):
        """The CPU launchers, each run on this backend's threads (building a backend sets nothing)."""
        from kernels import launch_cpu

        return _OnThreads(launch_cpu, self)

    def zeros(self, n, shape, dtype):
        return np.zeros((n, *shape), dtype)

    def static(self, c):
        return c.static_tables()

    def wip(self, c):
        return c.wip

    def rep_zero(self, buffers, has_rep0):
        return RepZero(buffers.log, buffers.snap_t, buffers.snap_tool, buffers.snap_queue)

    def copy_rep_zero(self, buffers, logs, has_rep0):
        pass

    def synchronize(self):
        pass

    def to_host(self, a):
        return a

    def from_host(self, a):
        """The inverse of ``to_host``: a host array (replication axis first) in this backend's layout."""
        return np.ascontiguousarray(a)

    def chunk_size(self, bytes_per_rep, replicas):
        return max(1, min(replicas, int(2e9 // max(bytes_per_rep, 1))))


class _OnThreads:
    """A launcher module whose functions run inside :func:`cpu_threads` of one backend."""

    def __init__(self, module, backend):
        self._module, self._backend = module, backend

    def __getattr__(self, name):
        launcher = getattr(self._module, name)

        def on_threads(*args):
            with cpu_threads(self._backend):
                return launcher(*args)

        return on_threads


class CudaBackend(Backend):
    name = CUDA

    def __init__(self, lanes: int = 0, wavefront: bool = False, persistent: bool = False):
        self.lanes, self.wavefront, self.persistent = lanes, wavefront, persistent
        self.device_name = cuda_device_name()
        if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
            import warnings

            # The simulator runs uint64 RNG arithmetic in NumPy, which warns on the intended wrap-around.
            warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
        self._static_cache = {}

    def launchers(self):
        if self.persistent:
            from kernels import launch_persistent

            return launch_persistent
        if self.wavefront:
            from kernels import launch_wave

            return launch_wave
        if self.lanes:
            from kernels import launch_warp

            return launch_warp.build(self.lanes)
        from kernels import launch_cuda

        return launch_cuda

    def zeros(self, n, shape, dtype):
        """State array ``[n, *shape]`` allocated and zeroed on the device: nothing is built on the host
        or crosses PCIe (34k HVLM replications are about 61 GB). CuPy's memory pool keeps the blocks
        for the next chunk; without CuPy, a numba device array and a device memset."""
        from numba import cuda

        full = (n, *shape)
        if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
            return cuda.to_device(np.zeros(full, dtype))  # the simulator's "device" is host memory
        try:
            import cupy
        except ImportError:
            cupy = None
        if cupy is not None:
            return cuda.as_cuda_array(cupy.zeros(full, dtype))
        from numba.cuda.cudadrv.driver import device_memset

        array = cuda.device_array(full, dtype)
        if array.nbytes:
            device_memset(array, 0, array.nbytes)
        return array

    def static(self, c):
        from numba import cuda

        key = id(c)
        if key not in self._static_cache:
            self._static_cache[key] = LineTables(*(cuda.to_device(np.ascontiguousarray(a)) for a in c.static_tables()))
        return self._static_cache[key]

    def wip(self, c):
        from numba import cuda

        return cuda.to_device(c.wip if c.wip.size else np.zeros((0, K.N_W), np.float64))

    def rep_zero(self, buffers, has_rep0):
        from numba import cuda

        return RepZero(*(cuda.to_device(a) for a in (buffers.log, buffers.snap_t, buffers.snap_tool, buffers.snap_queue)))

    def copy_rep_zero(self, buffers, logs, has_rep0):
        if has_rep0:
            for host, dev in zip((buffers.log, buffers.snap_t, buffers.snap_tool, buffers.snap_queue), logs):
                dev.copy_to_host(host)

    def synchronize(self):
        from numba import cuda

        cuda.synchronize()

    def to_host(self, a):
        return a.copy_to_host()

    def from_host(self, a):
        from numba import cuda

        return cuda.to_device(np.ascontiguousarray(a))

    def adopt(self, a):
        """A CuPy array as this backend's state array, sharing its memory (the array stays its owner)."""
        from numba import cuda

        return cuda.as_cuda_array(a)

    def chunk_size(self, bytes_per_rep, replicas):
        from numba import cuda

        try:
            free, _ = cuda.current_context().get_memory_info()
        except Exception:
            free = 2e9
        if not 0 < free < 1e15:  # the simulator reports infinite memory
            free = 2e9
        return max(1, min(replicas, int(0.6 * free // max(bytes_per_rep, 1))))


# ----------------------------------------------------------------------------- kernels beside the engine
# The yield and maintenance kernels take the same Backend value as the engine (never a "cpu"/"cuda"
# string); a CPU backend's thread count applies only while its kernels run.
import contextlib  # noqa: E402  (kept in this section so it merges apart from the engine's hunks)


def on_cuda(backend) -> bool:
    """True for a CUDA backend, False for a CPU one or None (the CPU with numba's current threads)."""
    if backend is None:
        return False
    if not isinstance(backend, Backend):
        raise TypeError(f"backend must be a twin.backend.Backend (resolve_backend(...)), got {backend!r}")
    return backend.name == CUDA


@contextlib.contextmanager
def cpu_threads(backend):
    """Run numba CPU kernels on ``backend.threads`` inside the block, then restore the caller's count."""
    import numba

    threads = getattr(backend, "threads", 0) if backend is not None and not on_cuda(backend) else 0
    before = numba.get_num_threads()
    if threads:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def array_module(backend):
    """The array module that holds ``backend``'s bulk arrays: CuPy on a real GPU, NumPy otherwise.

    CuPy is imported here only, on the CUDA path; its memory pool keeps freed device blocks for the
    next allocation, and numba kernels take its arrays through ``__cuda_array_interface__``. Under
    numba's CUDA simulator the "device" is host memory and CuPy cannot run, so NumPy stands in (the
    simulator copies NumPy arguments in and out of each launch). A GPU without CuPy also gets NumPy:
    correct, but numba then copies every argument across PCIe at each launch, hence the warning.
    """
    if not on_cuda(backend) or os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return np
    try:
        import cupy
    except ImportError:
        import warnings

        warnings.warn("CuPy is not installed: CUDA kernels beside the engine copy host arrays at every launch "
                      "(pip install cupy-cuda12x)", RuntimeWarning, stacklevel=2)
        return np
    return cupy


def to_host(xp, a) -> np.ndarray:
    """``a`` (an array of module ``xp``) as a NumPy array; a NumPy array is returned as it is."""
    return a if xp is np else xp.asnumpy(a)
