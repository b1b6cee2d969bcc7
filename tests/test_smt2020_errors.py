"""Malformed SMT2020 tables: one clear DataError naming the file, the line and the column.

Each case copies the HVLM tables to a temporary folder, breaks one thing the
way files get broken (a lost column, a typo, a cut-off copy) and loads it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from twin.errors import ConfigError, DataError
from twin.smt2020 import load_smt2020, resolve_data_dir


@pytest.fixture
def tables(tmp_path):
    """A writable copy of the HVLM tables; yields (data_dir, folder)."""
    try:
        source = resolve_data_dir(None, "HVLM")
    except ConfigError as err:
        pytest.skip(f"SMT2020 data absent (expected ../shared/data/smt2020 beside the repository): {err}")
    folder = tmp_path / "smt2020" / "HVLM"
    shutil.copytree(source, folder, copy_function=shutil.copyfile)
    os.chmod(folder, 0o755)
    return tmp_path / "smt2020", folder


def load(data_dir):
    return load_smt2020({"loader": "smt2020", "dataset": "HVLM", "data_dir": str(data_dir)})


# ----------------------------------------------------------------------------- ways to break a table


def _lines(path):
    return path.read_text().split("\n")


def set_cell(name, line, column, value):
    def mutate(folder):
        path = folder / name
        rows = _lines(path)
        header = rows[0].split("\t")
        fields = rows[line - 1].split("\t")
        fields += [""] * (len(header) - len(fields))
        fields[header.index(column)] = value
        rows[line - 1] = "\t".join(fields)
        path.write_text("\n".join(rows))
    return mutate


def drop_column(name, column):
    def mutate(folder):
        path = folder / name
        rows = _lines(path)
        k = rows[0].split("\t").index(column)
        path.write_text("\n".join("\t".join(f for j, f in enumerate(r.split("\t")) if j != k) for r in rows))
    return mutate


def cut_after(name, line, fields):
    """Keep the file up to ``line`` and only the first ``fields`` fields of that line (a cut-off copy)."""
    def mutate(folder):
        path = folder / name
        rows = _lines(path)[:line]
        rows[-1] = "\t".join(rows[-1].split("\t")[:fields])
        path.write_text("\n".join(rows))
    return mutate


def clear_column(name, column):
    def mutate(folder):
        path = folder / name
        rows = _lines(path)
        k = rows[0].split("\t").index(column)
        cleared = ["\t".join("" if j == k else f for j, f in enumerate(r.split("\t"))) for r in rows[1:]]
        path.write_text("\n".join([rows[0], *cleared]))
    return mutate


def header_only(name):
    def mutate(folder):
        path = folder / name
        path.write_text(_lines(path)[0] + "\n")
    return mutate


def remove(name):
    def mutate(folder):
        (folder / name).unlink()
    return mutate


def both(first, second):
    def mutate(folder):
        first(folder)
        second(folder)
    return mutate


def append_field(name, line, value):
    def mutate(folder):
        path = folder / name
        rows = _lines(path)
        rows[line - 1] += "\t" + value
        path.write_text("\n".join(rows))
    return mutate


def duplicate_header(name, column, replaced):
    def mutate(folder):
        path = folder / name
        rows = _lines(path)
        rows[0] = "\t".join(column if h == replaced else h for h in rows[0].split("\t"))
        path.write_text("\n".join(rows))
    return mutate


# (mutation, file, line, column, words of the problem); line/column None where the error has none.
CASES = {
    "missing column": (drop_column("route_3.txt", "PTIME"), "route_3.txt", 1, "PTIME", "missing column"),
    "unknown family in a route": (set_cell("route_4.txt", 10, "STNFAM", "Litho_XX_1"), "route_4.txt", 10, "STNFAM", "unknown tool family 'Litho_XX_1'"),
    "non-numeric time": (set_cell("route_3.txt", 5, "PTIME", "12,5"), "route_3.txt", 5, "PTIME", "not a number: '12,5'"),
    "non-numeric tool count": (set_cell("tool.txt.1l", 4, "STNQTY", "ten"), "tool.txt.1l", 4, "STNQTY", "not a number"),
    "truncated route file": (cut_after("route_3.txt", 300, 4), "route_3.txt", 300, None, "truncated?"),
    "truncated WIP file": (cut_after("WIP.txt", 1200, 2), "WIP.txt", 1200, None, "truncated?"),
    "header only": (header_only("order.txt"), "order.txt", None, None, "no data rows"),
    "empty file": (lambda f: (f / "downcal.txt").write_text(""), "downcal.txt", 1, "DOWNCALNAME", "missing column"),
    "unknown time unit": (set_cell("tool.txt.1l", 3, "LTUNITS", "minutes"), "tool.txt.1l", 3, "LTUNITS", "unknown time unit 'minutes'"),
    "unknown distribution": (set_cell("route_3.txt", 7, "PDIST", "gamma"), "route_3.txt", 7, "PDIST", "unknown distribution 'gamma'"),
    "half-width above the mean": (set_cell("route_3.txt", 8, "PTIME2", "1e6"), "route_3.txt", 8, "PTIME2", "negative times"),
    "unknown time basis": (set_cell("route_4.txt", 12, "PTPER", "per_wafer"), "route_4.txt", 12, "PTPER", "unknown time basis"),
    "bad date": (set_cell("order.txt", 2, "DUE", "2018-02-23"), "order.txt", 2, "DUE", "not a date"),
    "unknown priority": (set_cell("order.txt", 3, "PRIOR", "15"), "order.txt", 3, "PRIOR", "unknown priority 15"),
    "initial lot beyond its route": (set_cell("WIP.txt", 3, "CURSTEP", "9999"), "WIP.txt", 3, "CURSTEP", "beyond the 583 steps"),
    "initial lot of no lot type": (both(set_cell("WIP.txt", 4, "LOT", "Init_Mystery_1"), set_cell("WIP.txt", 4, "PART", "part_9")),
                                   "WIP.txt", 4, "LOT", "cannot tell the lot type of 'Init_Mystery_1'"),
    "unknown calendar": (set_cell("attach.txt", 2, "CALNAME", "BREAK_Nowhere"), "attach.txt", 2, "CALNAME", "unknown breakdown calendar 'BREAK_Nowhere'"),
    "calendar on an unknown family": (set_cell("attach.txt", 20, "RESNAME", "DE_XX_1"), "attach.txt", 20, "RESNAME", "unknown tool family 'DE_XX_1'"),
    "rework to a later step": (set_cell("route_3.txt", 68, "RWKSTEP", "500"), "route_3.txt", 68, "RWKSTEP", "after this step"),
    "dedication across families": (set_cell("route_3.txt", 14, "FORSTEP", "15"), "route_3.txt", 14, "FORSTEP", "runs on"),
    "queue time to an earlier step": (set_cell("route_3.txt", 31, "STEP_CQT", "1"), "route_3.txt", 31, "STEP_CQT", "not a later step"),
    "steps out of order": (set_cell("route_4.txt", 10, "STEP", "11"), "route_4.txt", 10, "STEP", "where step 9 was expected"),
    "missing route file": (remove("route_4.txt"), "part.txt", 3, "ROUTEFILE", "not found"),
    "missing table": (remove("pmcal.txt"), "pmcal.txt", None, None, "file not found"),
    "extra field": (append_field("setup.txt", 3, "99"), "setup.txt", 3, None, "fields but the header has"),
    "duplicate column": (duplicate_header("fromto.txt", "DTIME", "DTIME2"), "fromto.txt", 1, "DTIME", "appears twice"),
    "transport from an unknown location": (set_cell("fromto.txt", 2, "TOLOC", "Moon"), "fromto.txt", 2, "TOLOC", "unknown location 'Moon'"),
    "transport pair given twice": (lambda f: (f / "fromto.txt").write_text((f / "fromto.txt").read_text().rstrip("\n") + "\nFab\tFab\tconstant\t3\t\tmin\n"),
                                   "fromto.txt", 3, "FROMLOC", "second row for Fab -> Fab"),
    "bad due date of an initial lot": (set_cell("WIP.txt", 5, "DUE", "tomorrow"), "WIP.txt", 5, "DUE", "not a date"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_malformed_table_names_file_line_and_column(tables, case):
    mutate, name, line, column, words = CASES[case]
    data_dir, folder = tables
    mutate(folder)
    with pytest.raises(DataError) as err:
        load(data_dir)
    message = str(err.value)
    assert message.startswith(str(folder / name)), message
    if line is not None:
        assert f", line {line}" in message, message
    if column is not None:
        assert f", column {column}:" in message, message
    if words is not None:
        assert words in message, message


def test_tables_without_setups_load(tables):
    """setup.txt and setupgrp.txt may hold no rows: a fab without sequence-dependent setups."""
    data_dir, folder = tables
    header_only("setup.txt")(folder)
    header_only("setupgrp.txt")(folder)
    clear_column("tool.txt.1l", "SETUPGRP")(folder)
    groups = {g.name: g for g in load(data_dir).tool_groups}
    assert groups["Implant_128"].min_run == 0 and groups["DE_BE_13"].setup_matrix == {}
    assert groups["LithoTrack_FE_115"].setup_minutes == 8.0  # route STIME still applies


def test_the_copy_loads_before_it_is_broken(tables):
    """The cases above fail because of their one change, not because of the copy."""
    data_dir, _ = tables
    assert sum(g.tools for g in load(data_dir).tool_groups) == 1443


def test_cli_prints_one_line_without_traceback(tables, tmp_path):
    import twin as package

    data_dir, folder = tables
    set_cell("route_4.txt", 10, "STNFAM", "Litho_XX_1")(folder)
    root = str(Path(package.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": root}
    proc = subprocess.run(
        [sys.executable, "-m", "twin.cli", "run", "line=smt2020_hvlm", f"line.data_dir={data_dir}", "backend=cpu",
         f"hydra.run.dir={tmp_path / 'out'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0] == f"error: {folder / 'route_4.txt'}, line 10, column STNFAM: unknown tool family 'Litho_XX_1' (not in tool.txt.1l)"
