"""Where the advance kernel's registers go: offline sm_90 probes, no GPU needed.

    python -m benchmarks.register_probe [--toy-only]

1. *The kernel as built (offset views, kernels/repview.py) against the same kernel over plain views,
   and over plain views with the replication index fixed at 0.* With ``r = 0`` every replication view
   is a kernel parameter, which ptxas reads from the constant bank where it is used; with ``r`` a
   thread index each plain view is ``base + r x stride``, a value LLVM computes once and keeps live
   across the event loop. The difference is what the per-replication tables' pointers cost; the offset
   views are the fix.
2. *A toy kernel* (12 tables, a data-dependent chase through all of them, one replication per block)
   in three layouts: 12 separate ``[replication, n]`` tables; one table per replication with the
   sub-table offsets read from memory where they are used; the same with compile-time-constant
   offsets.

Same toolchain as :mod:`benchmarks.cuda_report` (numba-cuda, libNVVM and ptxas from
``nvidia-cuda-nvcc-cu12``). docs/ARCHITECTURE.md ("Where the registers go") has the readings.
"""
from __future__ import annotations

import base64
import json
import pickle
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import cuda_report as R  # noqa: E402

TABLES = 12
ROW = 1000


def assemble(dispatcher, argtypes, arch="sm_90") -> R.ArchResources:
    with R.offline_device():
        ptx = R.compile_ptx(dispatcher, argtypes)
    return R.Assembly(R.find_ptxas(), ptx, arch).result()


def plain_view_kernels():
    """The thread-per-replication advance kernel of kernels/launch_cuda.py over plain views
    (``state.table[r]``, the form before kernels/repview.py), and the same with ``r`` replaced by 0."""
    from numba import cuda, float64

    from kernels import launch_cuda as C
    from kernels.layout import ERR_ROW_WIDTH, R_ERROR
    from kernels.state import make_state_views
    from kernels.target import CUDA, device_jit

    replication = make_state_views(device_jit(CUDA))

    def build(fixed_row):
        @cuda.jit
        def advance_kernel_plain(line, state, rep_zero, rep0, until, warmup, horizon):
            r = cuda.grid(1)
            if r < state.rng.shape[0]:
                mail = cuda.local.array(1, float64)
                view = replication(state, 0 if fixed_row else r)
                if not C.has_layout_widths(line, view, rep_zero):
                    view.rep_i[R_ERROR] = ERR_ROW_WIDTH
                    return
                C._advance_rep(line, view, rep_zero, mail, until, warmup, horizon, 1 if rep0 + r == 0 else 0)

        return advance_kernel_plain

    return build(False), build(True)


def without_offsets(argtypes):
    """The advance kernel's argument types without its offset table (the plain-view kernels' arguments)."""
    return (*argtypes[:3], *argtypes[4:])


def advance_argtypes():
    from numba.core import types  # noqa: F401  (unpickling numba types needs numba.core loaded)

    from kernels import launch_cuda as C

    wanted = json.dumps(R._kernel_key(C._advance_kernel.py_func))
    found = R.discover_signatures()["kernels"]
    return pickle.loads(base64.b64decode(found[wanted]["sigs"][0]))


def _toy(source: str):
    from numba import cuda

    namespace = {"cuda": cuda}
    exec(source, namespace)
    return cuda.jit(namespace["k"])


def toy_separate():
    names = [f"a{i}" for i in range(TABLES)]
    views = [f"    v{i} = a{i}[r]" for i in range(TABLES)]
    reads = [f"        x = v{i}[(x + {i}) % {ROW}]\n        acc += x" for i in range(TABLES)]
    writes = [f"        v{i}[x % {ROW}] = acc" for i in range(TABLES)]
    return _toy("\n".join([f"def k({', '.join(names)}, steps, out):", "    r = cuda.blockIdx.x",
                           *views, "    x = 0", "    acc = 0", "    for s in range(steps):",
                           *reads, *writes, "    out[r] = acc"]))


def toy_one_table(constant_offsets: bool):
    def offset(i):
        return str(i * ROW) if constant_offsets else f"offsets[{i}]"

    reads = [f"        x = b[{offset(i)} + (x + {i}) % {ROW}]\n        acc += x" for i in range(TABLES)]
    writes = [f"        b[{offset(i)} + x % {ROW}] = acc" for i in range(TABLES)]
    head = "def k(buf, steps, out):" if constant_offsets else "def k(buf, offsets, steps, out):"
    return _toy("\n".join([head, "    r = cuda.blockIdx.x", "    b = buf[r]", "    x = 0", "    acc = 0",
                           "    for s in range(steps):", *reads, *writes, "    out[r] = acc"]))


def toy_rows():
    from numba import types

    table, flat, count = types.int32[:, ::1], types.int64[::1], types.int64
    return [
        (f"toy: {TABLES} separate [replication, n] tables", toy_separate(), (*[table] * TABLES, count, flat)),
        ("toy: one table per replication, offsets read where used", toy_one_table(False), (table, flat, count, flat)),
        ("toy: one table per replication, constant offsets", toy_one_table(True), (table, count, flat)),
    ]


def _line(name: str, res: R.ArchResources) -> str:
    return (f"{name:58s} {res.registers:4d} registers  spills {res.spill_store_bytes}/{res.spill_load_bytes} B  "
            f"{res.sass_instructions:6d} SASS")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    problem = R.toolchain_problem()
    if problem:
        print(f"CUDA toolchain missing: {problem}", file=sys.stderr)
        return 2
    rows = toy_rows()
    if "--toy-only" not in argv:
        from kernels import launch_cuda as C

        plain, fixed = plain_view_kernels()
        argtypes = advance_argtypes()
        rows = [("advance kernel as built (offset views)", C._advance_kernel, argtypes),
                ("advance kernel, plain views", plain, without_offsets(argtypes)),
                ("advance kernel, plain views, replication index fixed at 0", fixed, without_offsets(argtypes)),
                *rows]
    for name, dispatcher, argtypes in rows:
        print(_line(name, assemble(dispatcher, argtypes)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
