"""`import twin` needs NumPy and numba only: CUDA, CuPy, PyVista, Hydra load when used."""
import subprocess
import sys


def test_import_twin_is_light():
    code = ("import sys, twin, twin.line, twin.compile, twin.runner, twin.kpis, twin.app; "
            "heavy = [m for m in ('cupy', 'pyvista', 'vtk', 'matplotlib', 'numba.cuda', 'simpy') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
