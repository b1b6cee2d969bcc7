"""``twin view RUN`` (desktop window) and ``twin render RUN`` (PNG stills and a movie).

Both check the run folder first and print one clear message, exit code 2,
for a missing, incomplete or incompatible folder; no traceback.
"""
from __future__ import annotations

import argparse
import os
import sys

from twin.errors import ConfigError, DataError

MOVIES = ("gif", "mp4", "none")
NO_OPENGL = ("drawing needs OpenGL: a desktop session, or on a server Mesa (apt install libgl1 libosmesa6) "
             "and a virtual display (xvfb-run twin ...)")


def view_main(argv: list[str]) -> int:
    """Open the 3D window on a finished run."""
    parser = argparse.ArgumentParser(prog="twin view", description="Watch a finished run in a 3D window: fab floor, tool states, WIP, wafer maps.")
    parser.add_argument("run_folder", help="output folder of `twin run`")
    parser.add_argument("--size", default="1600x900", help="window size WIDTHxHEIGHT (default 1600x900)")
    parser.add_argument("--fps", type=float, default=4.0, help="snapshots per second while playing (default 4)")
    parser.add_argument("--play", action="store_true", help="start playing through the snapshots at once")
    parser.add_argument("--smat2022", default=None, help="SMAT2022 floor folder (default: $FABTWIN_SMAT2022_DIR, $FABTWIN_DATA/smat2022, shared/data/smat2022 above the checkout)")
    parser.add_argument("--close-after", type=float, default=None, metavar="SECONDS", help="close the window after this many seconds (demos, smoke tests)")
    parser.add_argument("--screenshot", default=None, metavar="PNG", help="with --close-after: save the window as PNG before closing")
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args
    return _guarded("twin view", lambda: _view(args))


def render_main(argv: list[str]) -> int:
    """Draw the scene off-screen into RUN/render/: PNG stills and a GIF or MP4."""
    parser = argparse.ArgumentParser(prog="twin render", description="Render a finished run off-screen: PNG stills at a few times and a movie.")
    parser.add_argument("run_folder", help="output folder of `twin run`")
    parser.add_argument("--out", default=None, help="output folder (default RUN_FOLDER/render)")
    parser.add_argument("--stills", type=int, default=4, help="PNG stills, spread over the run (default 4)")
    parser.add_argument("--movie", default="gif", help="gif, mp4 (needs imageio-ffmpeg) or none (default gif)")
    parser.add_argument("--fps", type=float, default=6.0, help="movie frames per second (default 6)")
    parser.add_argument("--max-frames", type=int, default=120, help="thin the snapshots to at most this many frames (default 120)")
    parser.add_argument("--size", default="1600x900", help="still size WIDTHxHEIGHT (default 1600x900)")
    parser.add_argument("--movie-size", default="960x540", help="movie frame size WIDTHxHEIGHT (default 960x540)")
    parser.add_argument("--smat2022", default=None, help="SMAT2022 floor folder (default: $FABTWIN_SMAT2022_DIR, $FABTWIN_DATA/smat2022, shared/data/smat2022 above the checkout)")
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args
    return _guarded("twin render", lambda: _render(args))


def _parse(parser, argv):
    try:
        return parser.parse_args(argv)
    except SystemExit as stop:  # argparse has printed usage and the problem
        return int(stop.code or 0)


def _guarded(prog, action) -> int:
    try:
        return action()
    except (ConfigError, DataError) as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    except ImportError as err:
        if "libGL" in str(err) or "libEGL" in str(err) or "libOSMesa" in str(err):
            print(f"{prog}: {NO_OPENGL} ({err})", file=sys.stderr)
        else:
            print(f"{prog}: needs PyVista and imageio ({err.name or err}); install them with: pip install 'fabtwin[view]'", file=sys.stderr)
        return 2
    except RuntimeError as err:  # VTK could not open an OpenGL context
        print(f"{prog}: could not draw: {err}; {NO_OPENGL}", file=sys.stderr)
        return 2


def _check_view_packages() -> None:
    """Before reading or writing anything: the ``view`` extra's packages are there (found, not imported)."""
    import importlib.util

    for name in ("pyvista", "imageio"):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ImportError(f"No module named {name!r}", name=name)


def _size(text, field):
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ConfigError(field, text, "must be WIDTHxHEIGHT in pixels, e.g. 1600x900") from None
    if not (64 <= w <= 8192 and 64 <= h <= 8192):
        raise ConfigError(field, text, "each side must be 64..8192 pixels")
    return w, h


def _view(args) -> int:
    from twin.view.run_folder import load_run

    size = _size(args.size, "--size")
    if args.fps <= 0:
        raise ConfigError("--fps", args.fps, "must be > 0")
    _check_view_packages()
    run = load_run(args.run_folder)
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ConfigError("DISPLAY", os.environ.get("DISPLAY", ""),
                          "no display for a window: run on a desktop, under `xvfb-run -a twin view ...`, or use `twin render` for files")
    _say_floor(run, args.smat2022)
    from twin.view.scene import open_window

    return open_window(run, close_after=args.close_after, screenshot=args.screenshot, window_size=size, smat_dir=args.smat2022, fps=args.fps,
                       play=args.play)


def _render(args) -> int:
    from twin.view.run_folder import load_run

    size = _size(args.size, "--size")
    movie_size = _size(args.movie_size, "--movie-size")
    if args.movie not in MOVIES:
        raise ConfigError("--movie", args.movie, f"allowed: {', '.join(MOVIES)}")
    if args.stills < 0 or args.max_frames < 1 or args.fps <= 0:
        raise ConfigError("--stills/--max-frames/--fps", (args.stills, args.max_frames, args.fps), "need stills >= 0, max-frames >= 1, fps > 0")
    _check_view_packages()
    run = load_run(args.run_folder)
    if args.movie == "mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise ConfigError("--movie", "mp4", "needs imageio-ffmpeg (pip install imageio-ffmpeg); --movie gif needs nothing more") from None
    _say_floor(run, args.smat2022)
    from twin.view.scene import render_run

    paths = render_run(run, args.out, stills=args.stills, movie=None if args.movie == "none" else args.movie, fps=args.fps,
                       max_frames=args.max_frames, size=size, movie_size=movie_size, smat_dir=args.smat2022)
    for path in paths:
        print(path)
    return 0


def _say_floor(run, smat_dir) -> None:
    """Which floor the scene draws and why, on stdout before drawing (stderr is kept for the one error line)."""
    from twin.view.layout import choose_floor

    print(choose_floor(run.group_names, run.line or {}, smat_dir)[1], flush=True)


if __name__ == "__main__":  # python -m twin.view.cli view|render RUN
    commands = {"view": view_main, "render": render_main}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print("usage: python -m twin.view.cli {view,render} RUN_FOLDER [options]", file=sys.stderr)
        sys.exit(2)
    sys.exit(commands[sys.argv[1]](sys.argv[2:]))
