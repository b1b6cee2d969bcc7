"""FabTwin: a digital twin of a semiconductor wafer fab.

``import twin`` needs NumPy and numba only; CUDA, CuPy and PyVista load when a
command uses them.  Start with :func:`twin.simulate` (docs/studies.md) or ``twin run``.
"""
__version__ = "0.1.0"

_API = ("simulate", "open_run", "SimulationResult")


def __getattr__(name):
    """``twin.simulate`` and friends load twin.api (and Hydra) on first use, so ``import twin`` stays light."""
    if name in _API:
        from twin import api

        return getattr(api, name)
    raise AttributeError(f"module 'twin' has no attribute {name!r}")
