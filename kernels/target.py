"""Compile one kernel source for the CPU or for CUDA.

A kernel module exposes factories ``make_x(jit, ...)`` whose inner functions are
decorated with ``jit`` and call each other as closures.  :func:`device_jit`
returns the decorator for a target, so the same source becomes numba-CPU code
(``njit``, cached on disk) or CUDA device functions.  Nothing here imports the
CUDA target until a CUDA build is asked for.
"""
from __future__ import annotations

import functools

CPU = "cpu"
CUDA = "cuda"
TARGETS = (CPU, CUDA)


def keyed_cache_dir() -> None:
    """Point numba's disk cache at a folder keyed by the kernels' source hash.

    numba checks only the timestamp of the file that holds a cached launcher,
    not of the device functions it calls from other files; keying the folder
    by every kernel source makes an edited kernel recompile, and gives an
    installed (read-only) package a writable cache.  A user's own
    NUMBA_CACHE_DIR is respected.
    """
    import hashlib
    import os
    from pathlib import Path

    import numba

    if os.environ.get("NUMBA_CACHE_DIR") or getattr(keyed_cache_dir, "done", False):
        return
    digest = hashlib.sha256(numba.__version__.encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    numba.config.CACHE_DIR = str(base / "fabtwin" / "numba" / digest.hexdigest()[:16])
    keyed_cache_dir.done = True


def device_jit(target: str):
    """Decorator that compiles a scalar device function for ``target``.

    CPU device functions are compiled without numba's reference counting
    (``_nrt=False``): they only read and write arrays their launcher owns and
    never allocate, and counting references to the ~30 arrays passed down at
    every call cost more than the model itself (HVLM: 2.2 s -> 0.95 s).  NumPy's error model: a
    division by zero gives inf/nan instead of a check and branch at every division (the kernels
    never divide by a value that can be zero without guarding it).
    """
    if target == CPU:
        import numba

        keyed_cache_dir()
        compile_cpu = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy", _nrt=False)
        return lambda func: _one_specialisation(compile_cpu(func))
    if target == CUDA:
        from numba import cuda

        return cuda.jit(device=True)
    raise ValueError(f"target must be one of {TARGETS}, got {target!r}")


def inline_jit(target: str):
    """:func:`device_jit`, and on the CPU numba-IR inlining into every caller as well.

    numba compiles each CPU device function on its own, and LLVM leaves the large ones as calls:
    each call passes every array it takes as an exploded struct (about nine words an array). The
    engine's per-event path (the calendar's take and push, ``dispatch_group``, ``select_lot`` and
    ``start_job`` with about 20 arrays each, the dispatch rule's key) is inlined with this: HVLM
    ran 1.5x faster on one core, and the cold compile took about 20% longer
    (docs/benchmarks.md). CUDA inlines device functions anyway, so there it is ``device_jit``.
    """
    if target == CPU:
        import numba

        keyed_cache_dir()
        return numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy", _nrt=False, inline="always")
    return device_jit(target)


def _widen(arg_type):
    """int64 for every signed integer or integer literal, the plain type for other literals.

    Unsigned integers keep their type: the random streams shift uint64 words.
    """
    from numba.core import types

    arg_type = types.unliteral(arg_type)
    if isinstance(arg_type, types.Integer) and arg_type.signed:
        return types.int64
    return arg_type


def _one_specialisation(dispatcher):
    """Make calls from other kernels compile ``dispatcher`` once, not once per literal.

    numba specialises a jitted callee for every literal argument
    (``set_tool_state(..., STANDBY)`` and ``(..., SETUP)`` were two compiles)
    and for int32 against int64; widening the argument types at the call
    (numba casts the values) more than halves the engine's compile time.
    """
    typed = dispatcher.get_call_template

    def get_call_template(args, kws):
        return typed(tuple(_widen(a) for a in args), {k: _widen(v) for k, v in kws.items()})

    dispatcher.get_call_template = get_call_template
    return dispatcher


@functools.cache
def cuda_usable() -> bool:
    """True when a real CUDA GPU can run kernels (or numba's simulator is on).

    ``import cupy`` or ``import numba.cuda`` succeeding is not enough: a machine
    without a driver imports both and then fails on the first allocation.
    """
    import os

    try:
        from numba import cuda
    except Exception:
        return False
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return True
    try:
        if not cuda.is_available():
            return False
        cuda.current_context()
        return True
    except Exception:
        return False


def cuda_device_name() -> str:
    """Human name of the active CUDA device, or 'cuda-simulator'."""
    import os

    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "numba CUDA simulator (CPU)"
    from numba import cuda

    name = cuda.get_current_device().name
    return name.decode() if isinstance(name, bytes) else str(name)
