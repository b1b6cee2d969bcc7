"""The PyVista scene of a run: floor, bays, rails, tools by E10 state, WIP bars, wafer maps.

One :class:`FabScene` serves both the desktop window (``twin view``) and the
off-screen renders (``twin render``); only :func:`open_window` wires the
mouse, keys and timer.  Every mesh comes from :mod:`twin.view.geometry`;
this module only hands arrays to PyVista and updates them per snapshot.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from twin.view import geometry as geo
from twin.view.layout import RAIL_Z, floor_layout

WIP_HEX = "#17becf"
RAIL_HEX = "#3d5a80"
FIXTURE_HEX = "#6f6f6f"
SLAB_HEX = "#9b9b9b"
PICK_HEX = "#111111"
KILLER_HEX = "#202020"  # killer defects, small dots on the (red) dies they kill
HELP = "click a tool or WIP bar: details   space: play/pause   left/right: step   n/p: next/previous lot"


def _pv():
    import pyvista as pv

    return pv


class FabScene:
    """All actors of one run; ``set_snapshot`` recolours tools and resizes WIP bars in place."""

    def __init__(self, run, layout=None, off_screen=False, window_size=(1600, 900), smat_dir=None):
        pv = _pv()
        self.run = run
        self.layout = layout or floor_layout(run.group_names, run.group_areas, run.tool_group, run.line, smat_dir)
        self.has_wafers = run.wafer_maps is not None
        extra = {"shape": (1, 2), "col_weights": [3, 1], "border": False} if self.has_wafers else {}
        title = f"FabTwin - {run.line.get('name', 'run')} - {run.folder.name}"
        self.plotter = pv.Plotter(off_screen=off_screen, window_size=list(window_size), title=title, **extra)
        self.index, self.picked, self.lot_index, self.playing = 0, -1, 0, False
        self.text_scale = float(np.clip(min(window_size[0] / 1600, window_size[1] / 900), 0.4, 2.5))
        self.lots = run.wafer_maps.lots() if self.has_wafers else np.array([])
        self._fab()
        self._build_floor()
        self._build_tools()
        self._build_wip()
        self._build_overlays()
        if self.has_wafers:
            self._build_wafer_panel()
        self.reset_camera()
        self.set_snapshot(0)

    # ------------------------------------------------------------------ building

    def fs(self, points: int) -> int:
        """A font size scaled with the window, so small renders keep the layout of large ones."""
        return max(5, int(round(points * self.text_scale)))

    def _fab(self):
        if self.has_wafers:
            self.plotter.subplot(0, 0)
        return self.plotter.renderers[0]

    def _build_floor(self):
        pv, p, lay = _pv(), self.plotter, self.layout
        x0, y0, x1, y1 = lay.bounds()
        self.extent = max(x1 - x0, y1 - y0, 1.0)
        m = 0.03 * self.extent
        pts, faces = geo.floor_quads([(x0 - m, y0 - m, x1 + m, y1 + m)], z=-0.05)
        p.add_mesh(pv.PolyData(pts, faces), color=SLAB_HEX, pickable=False, name="slab")
        palette = geo.area_colours([b.area for b in lay.bays])
        order = sorted(range(len(lay.bays)), key=lambda i: lay.bays[i].kind != "interbay")
        rects = [lay.bays[i].rect for i in order]
        zs = np.where([lay.bays[i].kind == "interbay" for i in order], 0.0, 0.01)
        pts, faces = geo.floor_quads(rects)
        pts[:, 2] = np.repeat(zs, 4)
        bays = pv.PolyData(pts, faces)
        bays.cell_data["rgb"] = np.array([geo.hex_rgb(palette[lay.bays[i].area if lay.bays[i].kind == "intrabay" else ""]) for i in order])
        p.add_mesh(bays, scalars="rgb", rgb=True, show_edges=True, edge_color="#6b6b6b", line_width=1, pickable=False, name="bays")
        if len(lay.rails):
            rp, rl = geo.segments_mesh(lay.rails, RAIL_Z)
            p.add_mesh(pv.PolyData(rp, lines=rl), color=RAIL_HEX, line_width=1.5, pickable=False, name="rails")
        if len(lay.fixture_xy):
            fp, ff = geo.box_mesh(lay.fixture_xy, lay.fixture_size, 0.02)
            p.add_mesh(pv.PolyData(fp, ff), color=FIXTURE_HEX, pickable=False, name="fixtures")
        self._bay_labels(palette)

    def _bay_labels(self, palette):
        labelled = [b for b in self.layout.bays if b.label and b.label_xy is not None]
        if not labelled:
            return
        pts = np.array([(*b.label_xy, 0.5) for b in labelled])
        self.plotter.add_point_labels(pts, [b.label for b in labelled], font_size=self.fs(10 if len(labelled) > 20 else 14), show_points=False,
                                      shape_opacity=0.6, shape_color="white", text_color="#222222", always_visible=True,
                                      pickable=False, name="bay_labels")

    def _build_tools(self):
        pv = _pv()
        pts, faces = geo.box_mesh(self.layout.tool_xy, self.layout.tool_size, 0.02)
        self.tools = pv.PolyData(pts, faces)
        self.tools.cell_data["rgb"] = geo.per_face(geo.state_rgb(self.run.tool_state[0]))
        self.tools_actor = self.plotter.add_mesh(self.tools, scalars="rgb", rgb=True, ambient=0.35, diffuse=0.65,
                                                 show_edges=False, name="tools")

    def _build_wip(self):
        pv = _pv()
        self.wip_scale = geo.wip_scale(self.run.queue_lots, self.extent)
        self.wip_width = float(np.clip(0.008 * self.extent, 0.8, 2.5))
        pts, faces = geo.wip_bars(self.layout.group_anchor, self.run.queue_lots[0], self.wip_scale, self.wip_width)
        self.wip = pv.PolyData(pts, faces)
        self.wip_actor = self.plotter.add_mesh(self.wip, color=WIP_HEX, ambient=0.3, name="wip")

    def _build_overlays(self):
        p = self.plotter
        self.clock = p.add_text("", position=(0.01, 0.955), viewport=True, font_size=self.fs(13), color="black", name="clock")
        self.summary = p.add_text("", position=(0.01, 0.92), viewport=True, font_size=self.fs(10), color="#333333", name="summary")
        self.info = p.add_text("click a tool for its details", position=(0.005, 0.45), viewport=True, font_size=self.fs(9),
                               color="#111111", name="info")
        self.info.GetTextProperty().SetBackgroundColor(1.0, 1.0, 1.0)
        self.info.GetTextProperty().SetBackgroundOpacity(0.85)
        lots_per_10m = 10.0 / self.wip_scale
        notes = [f"floor: {self.layout.source}", f"WIP bar: 10 m = {lots_per_10m:.0f} lots waiting", *self.layout.notes]
        p.add_text("\n".join(notes), position=(0.01, 0.1), viewport=True, font_size=self.fs(8), color="#333333", name="notes")
        entries = [[n, h] for n, h in zip(geo.E10_NAMES, geo.E10_HEX)] + [["Lots waiting (bar)", WIP_HEX]]
        if len(self.layout.rails):
            entries.append(["Overhead rail", RAIL_HEX])
        if len(self.layout.fixture_xy):
            entries.append(["Stocker / port", FIXTURE_HEX])
        legend = p.add_legend(entries, bcolor="white", border=True, loc="upper left", size=(0.15, 0.22), face="rectangle", name="legend")
        legend.GetPositionCoordinate().SetValue(0.005, 0.6)
        legend.GetPosition2Coordinate().SetValue(0.16, 0.28)
        p.set_background("#f4f4f0")
        self.highlight = None

    def _build_wafer_panel(self):
        p = self.plotter
        p.subplot(0, 1)
        p.set_background("white")
        self.wafer_title = p.add_text("", position=(0.03, 0.88), viewport=True, font_size=self.fs(9), color="black", name="wafer_title")
        p.subplot(0, 0)
        self.set_lot(0)

    def reset_camera(self, box=(0.17, 0.08, 0.99, 0.88)):
        """Oblique view from the south; the floor zoomed to fill ``box`` (viewport fractions)."""
        x0, y0, x1, y1 = self.layout.bounds()
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        d = max(x1 - x0, y1 - y0)
        self._fab()
        cam = self.plotter.camera
        self.plotter.camera_position = [(cx + 0.1 * d, cy - 0.8 * d, 1.0 * d), (cx, cy, 0.0), (0.0, 0.0, 1.0)]
        cam.view_angle = 30.0
        corners = [(x, y, z) for x in (x0, x1) for y in (y0, y1) for z in (0.0, RAIL_Z)]
        for _ in range(3):  # perspective: refit after each move
            px = np.array([self._viewport_xy(c) for c in corners])
            lo, hi = px.min(axis=0), px.max(axis=0)
            centre = (np.array(box[:2]) + np.array(box[2:])) / 2
            shift = (lo + hi) / 2 - centre
            self._pan(shift)
            cam.zoom(float(min((box[2] - box[0]) / (hi - lo)[0], (box[3] - box[1]) / (hi - lo)[1])))
        self.plotter.reset_camera_clipping_range()

    def _viewport_xy(self, point):
        ren = self.plotter.renderers[0]
        ren.SetWorldPoint(*point, 1.0)
        ren.WorldToView()
        vx, vy, _ = ren.GetViewPoint()
        return (vx + 1) / 2, (vy + 1) / 2

    def _pan(self, shift):
        """Move camera and focus together by a viewport fraction."""
        cam = self.plotter.camera
        fp, pos = np.array(cam.focal_point), np.array(cam.position)
        dist = np.linalg.norm(pos - fp)
        up = np.array(cam.up)
        view = (fp - pos) / dist
        right = np.cross(view, up)
        right /= np.linalg.norm(right)
        true_up = np.cross(right, view)
        h = 2 * dist * np.tan(np.radians(cam.view_angle) / 2)
        w_, h_ = self.plotter.renderers[0].GetSize()
        aspect = w_ / max(h_, 1)
        delta = right * shift[0] * h * aspect + true_up * shift[1] * h
        cam.focal_point = tuple(fp + delta)
        cam.position = tuple(pos + delta)

    # ------------------------------------------------------------------ updating

    def set_snapshot(self, index: int):
        """Show snapshot ``index``: tool colours, WIP bar heights, clock and state counts."""
        run = self.run
        self.index = int(np.clip(index, 0, run.n_snapshots - 1))
        states = run.tool_state[self.index]
        self.tools.cell_data["rgb"][:] = geo.per_face(geo.state_rgb(states))
        self.tools.GetCellData().GetArray("rgb").Modified()
        pts, _ = geo.wip_bars(self.layout.group_anchor, run.queue_lots[self.index], self.wip_scale, self.wip_width)
        self.wip.points[:] = pts
        self.wip.GetPoints().Modified()
        self.clock.SetInput(geo.clock_text(run.time_days, self.index, str(run.line.get("name", ""))))
        counts = geo.state_counts(states)
        short = ("productive", "standby", "setup", "sched. down", "unsched. down")
        parts = [f"{n} {c}" for n, c in zip(short, counts)]
        self.summary.SetInput(f"tools: {', '.join(parts)}  |  {int(run.queue_lots[self.index].sum())} lots waiting")
        if self.picked >= 0:
            self.show_tool(self.picked)

    def show_tool(self, tool: int):
        """Details of one tool: its state now and its run-level utilisation, availability, failures."""
        run, lay = self.run, self.layout
        self.picked = int(tool)
        g = int(run.tool_group[tool])
        st = run.tool_stats
        state = geo.E10_NAMES[int(run.tool_state[self.index, tool])]
        self.info.SetInput(
            f"tool {run.tool_names[tool]}\n"
            f"group {run.group_names[g]} (area {run.group_areas[g]})\n"
            f"state now: {state}\n"
            f"utilisation {_pct(st['utilisation'][tool])}   availability {_pct(st['availability'][tool])}\n"
            f"failures {_count(st['failures'][tool])}   lots waiting at group now: {int(run.queue_lots[self.index, g])}"
        )
        size = lay.tool_size[tool] * np.array([1.15, 1.15, 1.1])
        pts, faces = geo.box_mesh(lay.tool_xy[tool:tool + 1], size[None], 0.0)
        self._fab()
        self.highlight = self.plotter.add_mesh(_pv().PolyData(pts, faces), style="wireframe", color=PICK_HEX, line_width=3,
                                               pickable=False, name="highlight", reset_camera=False)

    def show_group(self, group: int):
        run = self.run
        now = int(run.queue_lots[self.index, group])
        peak = int(run.queue_lots[:, group].max())
        tools = np.flatnonzero(run.tool_group == group)
        self.info.SetInput(f"group {run.group_names[group]} (area {run.group_areas[group]})\n"
                           f"lots waiting now {now}, peak {peak}\n{len(tools)} tool(s)")

    def set_lot(self, k: int):
        """Wafer maps of the k-th lot in the right-hand panel (yield runs only)."""
        if not self.has_wafers:
            return
        pv, p, maps = _pv(), self.plotter, self.run.wafer_maps
        self.lot_index = int(k) % len(self.lots)
        lot = self.lots[self.lot_index]
        p.subplot(0, 1)
        w, h = p.renderer.GetSize()
        g = geo.lot_wafer_geometry(maps, lot, aspect=0.8 * w / max(h, 1))
        self.wafer_geometry = g
        dies = pv.PolyData(g["die_points"], g["die_faces"])
        dies.cell_data["rgb"] = geo.die_rgb(g["die_pass"])
        p.add_mesh(dies, scalars="rgb", rgb=True, show_edges=True, edge_color="white", line_width=0.5, lighting=False,
                   name="wafer_dies", reset_camera=False)
        edge_pts = np.concatenate([e[0] for e in g["edges"]])
        n = len(g["edges"][0][0])
        lines = np.concatenate([np.concatenate([[n + 1], k_ * n + np.arange(n), [k_ * n]]) for k_ in range(len(g["edges"]))])
        p.add_mesh(pv.PolyData(edge_pts, lines=lines), color="#444444", line_width=1.5, name="wafer_edges", reset_camera=False)
        p.view_xy()
        p.enable_parallel_projection()
        self._fit_wafers(g, maps, w / max(h, 1))
        dots = self._draw_killers(g, maps)
        ok = g["die_pass"]
        harmless = len(g["defects"]) - len(g["killers"])
        killers = f"dots: {len(g['killers'])} killer defects" if dots else f"{len(g['killers'])} killer defects, each in a red die"
        self.wafer_title.SetInput(f"wafer maps of lot {lot} ({self.lot_index + 1}/{len(self.lots)})\n"
                                  f"{len(g['wafers'])} wafers, die yield {100.0 * ok.mean() if len(ok) else 0.0:.1f} %\n"
                                  f"green: good die, red: failed die\n{killers}"
                                  + (f"\n({harmless} harmless defects not drawn)" if harmless else ""))
        p.subplot(0, 0)

    def _fit_wafers(self, g, maps, aspect):
        """Parallel camera that fills the panel below the title (its top fifth) with the lot's wafers."""
        offsets = np.asarray(g["offsets"], float).reshape(-1, 2)
        radius = maps.wafer_diameter_mm / 2
        lo, hi = offsets.min(axis=0) - radius, offsets.max(axis=0) + radius
        (cx, cy), (wx, wy) = (lo + hi) / 2, hi - lo
        scale = 1.04 * max(wy / 2, wx / 2 / aspect) / 0.8  # half the visible height; 80% for the wafers
        cam = self.plotter.camera
        cam.focal_point = (cx, cy + 0.2 * scale, 0.0)
        cam.position = (cx, cy + 0.2 * scale, 10.0 * scale)
        cam.up = (0.0, 1.0, 0.0)
        cam.parallel_scale = scale

    def _draw_killers(self, g, maps) -> bool:
        """Killer defects as dots a third of a die wide on screen; none when dies are too small for dots.

        Only killers: a wafer carries hundreds of harmless defects, and drawn alike they hid every die.
        """
        p = self.plotter
        die_px = abs(self.pixel_of((maps.die_mm[0], 0.0, 0.0), panel=1)[1] - self.pixel_of((0.0, 0.0, 0.0), panel=1)[1])
        size = geo.killer_dot_px(die_px)
        if not len(g["killers"]) or size == 0.0:
            p.remove_actor("wafer_defects")
            return False
        d = np.column_stack([g["killers"], np.full(len(g["killers"]), 0.5)])
        p.add_mesh(_pv().PolyData(d), color=KILLER_HEX, point_size=size, render_points_as_spheres=False, lighting=False,
                   name="wafer_defects", reset_camera=False)
        return True

    # ------------------------------------------------------------------ output

    def screenshot(self, path=None):
        self.plotter.render()
        return self.plotter.screenshot(filename=str(path) if path else None, return_img=True)

    def pixel_of(self, point, panel=0):
        """(row, column) in a screenshot of a world point (panel 0: fab floor, 1: wafer maps)."""
        ren = self.plotter.renderers[panel]
        ren.SetWorldPoint(float(point[0]), float(point[1]), float(point[2]), 1.0)
        ren.WorldToDisplay()
        x, y, _ = ren.GetDisplayPoint()
        height = self.plotter.window_size[1]
        return int(round(height - 1 - y)), int(round(x))

    def pick_display(self, x, y):
        """Pick at display pixel (x, y), origin bottom left: a tool, a WIP bar or a wafer."""
        from vtkmodules.vtkRenderingCore import vtkCellPicker

        ren = self.plotter.renderers[0]
        picker = vtkCellPicker()
        picker.SetTolerance(0.0005)
        if not picker.Pick(x, y, 0, ren):
            return None
        actor, cell = picker.GetActor(), picker.GetCellId()
        if actor is self.tools_actor and cell >= 0:
            self.show_tool(cell // geo.FACES_PER_BOX)
            return ("tool", cell // geo.FACES_PER_BOX)
        if actor is self.wip_actor and cell >= 0:
            self.show_group(cell // geo.FACES_PER_BOX)
            return ("group", cell // geo.FACES_PER_BOX)
        return None

    def close(self):
        self.plotter.close()


def _pct(v):
    return "n/a" if not np.isfinite(v) else f"{100.0 * v:.1f} %"


def _count(v):
    return "n/a" if not np.isfinite(v) else f"{int(v)}"


# ----------------------------------------------------------------------------- the window


def open_window(run, close_after=None, screenshot=None, window_size=(1600, 900), smat_dir=None, fps=4.0, play=False):
    """The interactive window; ``close_after`` seconds and ``screenshot`` serve smoke tests and demos."""
    scene = FabScene(run, off_screen=False, window_size=window_size, smat_dir=smat_dir)
    p = scene.plotter
    n = run.n_snapshots
    slider = p.add_slider_widget(lambda v: scene.set_snapshot(int(round(v)) - 1), rng=[1, max(n, 2)], value=1,
                                 title="", pointa=(0.3, 0.065), pointb=(0.8, 0.065), style="modern", fmt="snapshot %.0f",
                                 title_height=0.018, interaction_event="always")
    scene.slider = slider

    def go(i):
        scene.set_snapshot(i % n)
        slider.GetRepresentation().SetValue(scene.index + 1)  # the slider counts snapshots from 1, like the clock

    def toggle(state=None):
        scene.playing = (not scene.playing) if state is None else bool(state)
        button.GetRepresentation().SetState(int(scene.playing))

    fab_width = window_size[0] * (0.75 if scene.has_wafers else 1.0)
    button = p.add_checkbox_button_widget(lambda s: toggle(s), value=False, position=(int(0.22 * fab_width), int(0.04 * window_size[1])),
                                          size=28, color_on="#2ca02c", color_off="#bbbbbb")
    p.add_text("play", position=(0.22 + 34 / fab_width, 0.05), viewport=True, font_size=scene.fs(9), color="#333333")
    p.add_text(HELP, position=(0.3, 0.008), viewport=True, font_size=scene.fs(8), color="#555555")
    p.add_key_event("space", lambda: toggle())
    p.add_key_event("Right", lambda: go(scene.index + 1))
    p.add_key_event("Left", lambda: go(scene.index - 1))
    if scene.has_wafers:
        p.add_key_event("n", lambda: scene.set_lot(scene.lot_index + 1))
        p.add_key_event("p", lambda: scene.set_lot(scene.lot_index - 1))
    _wire_click_picking(scene)
    if play:
        toggle(True)
    state = {"t": 0.0, "ticks": 0}
    tick_ms = max(int(1000 / fps), 30)

    def on_timer(*_):
        state["ticks"] += 1
        state["t"] += tick_ms / 1000.0
        if scene.playing:
            go(scene.index + 1)
            p.render()
        if close_after is not None and state["t"] >= close_after:
            if screenshot:
                p.render()
                p.screenshot(str(screenshot))
            print(f"closed after {state['t']:.1f} s at snapshot {scene.index + 1}/{n}")
            p.iren.terminate_app()

    p.iren.add_observer("TimerEvent", on_timer)
    _show(p, tick_ms)
    p.close()
    if state["ticks"] == 0:  # VTK only warns when it has no X connection, and returns at once
        raise RuntimeError(f"the window's event loop did not run (no usable X display, DISPLAY={os.environ.get('DISPLAY', '')!r})")
    return 0


def _show(p, tick_ms):
    p.iren.initialize()
    p.iren.create_timer(tick_ms, repeating=True)
    p.show(auto_close=False)


def _wire_click_picking(scene):
    """Left click without drag picks; a drag still rotates the view."""
    p = scene.plotter
    press = {}

    def on_press(*_):
        press["xy"] = p.iren.get_event_position()

    def on_release(*_):
        x, y = p.iren.get_event_position()
        x0, y0 = press.get("xy", (-99, -99))
        if abs(x - x0) + abs(y - y0) <= 3:
            if scene.pick_display(x, y):
                p.render()

    p.iren.add_observer("LeftButtonPressEvent", on_press)
    p.iren.add_observer("LeftButtonReleaseEvent", on_release)


# ----------------------------------------------------------------------------- headless renders


def render_run(run, out_dir=None, stills=4, movie="gif", fps=6.0, max_frames=120, size=(1600, 900), movie_size=(960, 540),
               smat_dir=None):
    """PNG stills at a few snapshot times and a GIF/MP4 through the run; returns written paths."""
    out = Path(out_dir) if out_dir else run.folder / "render"
    out.mkdir(parents=True, exist_ok=True)
    scene = FabScene(run, off_screen=True, window_size=size, smat_dir=smat_dir)
    written = []
    try:
        for i in geo.still_indices(run.n_snapshots, stills):
            scene.set_snapshot(i)
            path = out / f"snapshot_{i:04d}_day{run.time_days[i]:07.2f}.png"
            scene.screenshot(path)
            written.append(path)
        if movie and movie != "none":
            written.append(_movie(scene, out, movie, fps, max_frames, movie_size))
    finally:
        scene.close()
    return written


def _movie(scene, out, kind, fps, max_frames, movie_size):
    """Frames rendered at the stills' height (same text layout), resampled to the movie size."""
    import imageio.v2 as imageio
    from PIL import Image

    height = scene.plotter.window_size[1]
    scene.plotter.window_size = [int(round(height * movie_size[0] / movie_size[1])), height]
    scene.reset_camera()  # refit: the movie may have another aspect ratio than the stills
    path = out / f"run.{kind}"
    if kind == "gif":
        writer = imageio.get_writer(path, mode="I", duration=1000.0 / fps, loop=0)
    else:
        writer = imageio.get_writer(path, fps=fps, codec="libx264", quality=7, macro_block_size=8)
    with writer:
        for i in geo.frame_indices(scene.run.n_snapshots, max_frames):
            scene.set_snapshot(i)
            frame = Image.fromarray(scene.screenshot()).resize(tuple(movie_size), Image.LANCZOS)
            writer.append_data(np.asarray(frame))
    return path
