"""Compute kernels of FabTwin: no I/O, printing or config parsing.

Every kernel body is written once as a factory ``make_*(jit)`` and compiled for
the CPU (``numba.njit``) and for CUDA (``numba.cuda.jit(device=True)``) by
:mod:`kernels.target`.
"""
