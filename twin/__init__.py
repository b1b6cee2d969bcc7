"""FabTwin: a digital twin of a semiconductor wafer fab.

``import twin`` needs NumPy and numba only; CUDA, CuPy and PyVista load when a
command uses them.  Start with :func:`twin.app.run_scenario` or ``twin run``.
"""
__version__ = "0.1.0"
