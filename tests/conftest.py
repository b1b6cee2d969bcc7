import sys
from pathlib import Path

# The tests import the checkout's twin and kernels, also when the package is installed (not editable):
# subprocesses the tests start put the checkout first on PYTHONPATH, and both sides must see one copy.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
