"""The real desktop window, opened under a virtual X display (Xvfb) and closed by itself.

Runs in a subprocess under ``xvfb-run -a`` so the test process never needs a
display; skipped (with the reason) where Xvfb or OpenGL is missing.  CI's
.ci/run installs xvfb, so there it runs.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_view_fixture import SMALL_LINE, gl_unavailable_reason, write_run
from twin.view import geometry as geo

ROOT = Path(__file__).resolve().parents[1]
DOWN = 5


def _display_prefix():
    if shutil.which("xvfb-run"):
        return ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24"]
    if os.environ.get("DISPLAY"):
        return []
    pytest.skip("no X display and xvfb-run is not installed (apt-get install xvfb)")


@pytest.fixture(scope="module", autouse=True)
def _gl():
    reason = gl_unavailable_reason()
    if reason:
        pytest.skip(reason)


def _run_in_display(cmd):
    """Run under the virtual display; retry if Xvfb was not ready (a start-up race of xvfb-run -a on a busy machine).

    The window then exits non-zero, saying its event loop did not run, and VTK has warned of a bad X connection.
    """
    for _ in range(4):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=_env())
        if done.returncode == 0 or "bad X server connection" not in done.stderr:
            return done
    return done


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    n_s = 12
    state = np.zeros((n_s, sum(g[2] for g in SMALL_LINE)), np.int8)
    state[:, DOWN] = 4
    return write_run(tmp_path_factory.mktemp("window") / "run", n_snapshots=n_s, tool_state=state, yield_on=True)


def test_window_opens_plays_and_closes(run_folder, tmp_path):
    shot = tmp_path / "window.png"
    cmd = [*_display_prefix(), sys.executable, "-m", "twin.view.cli", "view", str(run_folder), "--size", "960x540",
           "--play", "--fps", "10", "--close-after", "2", "--screenshot", str(shot)]
    done = _run_in_display(cmd)
    assert done.returncode == 0, done.stderr[-2000:]
    last = [line for line in done.stdout.splitlines() if line.startswith("closed after")]
    assert last, done.stdout
    index = int(last[-1].split("snapshot ")[1].split("/")[0])
    assert index > 3  # the play timer advanced through the snapshots in the live event loop
    import imageio.v2 as imageio

    img = imageio.imread(shot)[:, :, :3]
    assert img.shape[:2] == (540, 960)
    green = np.all(np.abs(img.astype(int) - geo.E10_RGB[0]) < 40, axis=2).mean()
    assert green > 0.002  # tools are drawn in the window


CLICK_SCRIPT = """
import sys
import numpy as np
from twin.view import geometry as geo, scene as S
from twin.view.run_folder import load_run

run = load_run(sys.argv[1])
seen = {}
wire = S._wire_click_picking

def wire_and_click(scene):
    wire(scene)
    p = scene.plotter
    def click(*_):
        if seen.get("clicked"):
            return
        seen["clicked"] = True
        top = geo.top_centres(scene.layout.tool_xy, scene.layout.tool_size, 0.02)[int(sys.argv[2])]
        row, col = scene.pixel_of(top)
        x, y = col, p.window_size[1] - 1 - row
        iren = p.iren.interactor
        iren.SetEventInformation(x, y, 0, 0, chr(0), 0)
        iren.InvokeEvent("LeftButtonPressEvent")
        iren.InvokeEvent("LeftButtonReleaseEvent")
        iren.SetEventInformation(0, 0, 0, 0, "n", 0, "n")
        iren.InvokeEvent("KeyPressEvent")
        seen["info"] = scene.info.GetInput()
        seen["lot"] = scene.lot_index
    p.iren.add_observer("TimerEvent", click)

S._wire_click_picking = wire_and_click
S.open_window(run, close_after=1.0, window_size=(960, 540))
print("INFO|" + seen["info"].replace(chr(10), "|"))
print("LOT", seen["lot"])
"""


def test_clicking_a_tool_in_the_window_shows_its_details(run_folder):
    cmd = [*_display_prefix(), sys.executable, "-c", CLICK_SCRIPT, str(run_folder), str(DOWN)]
    done = _run_in_display(cmd)
    assert done.returncode == 0, done.stderr[-2000:]
    info = next(line for line in done.stdout.splitlines() if line.startswith("INFO|"))
    assert "tool LithoTrack_A#2|" in info and "Unscheduled down" in info and "utilisation" in info and "failures" in info
    assert "LOT 1" in done.stdout  # the n key moved the wafer panel to the next lot


def test_a_window_without_an_x_display_exits_2_and_says_why(run_folder):
    """VTK only warns when the X server is missing; the window must not then return 0 as if it had been shown."""
    env = dict(_env(), DISPLAY=":987")  # no X server listens there
    cmd = [sys.executable, "-m", "twin.view.cli", "view", str(run_folder), "--close-after", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "event loop did not run" in done.stderr and "DISPLAY=':987'" in done.stderr
    assert "Traceback" not in done.stderr
