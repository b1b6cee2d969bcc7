"""Bad input ends in one line naming the field or file, the value and what is allowed: exit 2, no traceback.

The corpus in tests/bad_inputs/ (one bad line file per case, its first line
``# expect: TEXT`` says what the message must contain) runs in one child
process with a timeout, so a hang fails the test instead of stalling it; a
representative subset and the run settings go through the real CLI.
Validation happens before compute, so nothing here simulates.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from twin.errors import ConfigError, DataError

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
BASE = CORPUS / "_base.yaml"
BYTE_CASES = {"utf16.yaml": "UTF-16", "utf16_no_bom.yaml": "NUL", "latin1.yaml": "not UTF-8", "binary.yaml": "NUL"}
ROOT = str(Path(__file__).resolve().parents[1])
ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": ROOT}


def corpus_cases() -> dict[str, str]:
    cases = {}
    for path in sorted(CORPUS.glob("*.yaml")):
        if path.name == "_base.yaml":
            continue
        if path.name in BYTE_CASES:
            cases[path.name] = BYTE_CASES[path.name]
        else:
            first = path.read_text(encoding="utf-8").split("\n", 1)[0]
            assert first.startswith("# expect: "), path
            cases[path.name] = first[len("# expect: "):]
    return cases


DRIVER = """
import json, sys, traceback
from twin.app import prepare
from twin.errors import ConfigError, DataError
out = {}
for path in sys.argv[1:]:
    try:
        prepare({"line": {"path": path}, "backend": "cpu", "replicas": 2, "horizon_days": 10})
        out[path] = ["accepted", ""]
    except (ConfigError, DataError) as err:
        out[path] = ["refused", str(err)]
    except BaseException:
        out[path] = ["traceback", traceback.format_exc()]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def corpus_results():
    paths = [str(CORPUS / name) for name in corpus_cases()] + [str(BASE)]
    proc = subprocess.run([sys.executable, "-c", DRIVER, *paths], env=ENV, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_corpus_base_line_is_valid(corpus_results):
    assert corpus_results[str(BASE)] == ["accepted", ""]


@pytest.mark.parametrize("name,expect", sorted(corpus_cases().items()))
def test_corpus_case_is_refused_in_one_line(corpus_results, name, expect):
    verdict, message = corpus_results[str(CORPUS / name)]
    assert verdict == "refused", f"{name}: {verdict}\n{message}"
    assert expect in message, message
    assert "\n" not in message and len(message) < 600, message


def test_corpus_is_large_and_covers_every_class():
    cases = corpus_cases()
    assert len(cases) >= 50
    for text in ("appears twice", "never leaves", "events per simulated day", "top level", "UTF-16", "not UTF-8", "NUL",
                 "nests more than", "alias", "not valid YAML", "line.areas"):
        assert sum(text in e for e in cases.values()) >= 1, text
    assert sum(name.startswith(("inf_", "nan_")) for name in cases) >= 5  # finiteness
    assert sum(name.endswith("_huge.yaml") for name in cases) >= 6  # storage ranges


# ----------------------------------------------------------------------------- through the real CLI


def twin(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "twin.cli", *args], env=ENV, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def assert_one_line_exit_2(proc, *expected):
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert len(lines) == 1, proc.stderr
    for text in expected:
        assert text in lines[0], lines[0]


CLI_FILES = ["dup_group_key.yaml", "inf_load.yaml", "rework_prob_one.yaml", "pm_storm.yaml", "alias_bomb.yaml",
             "utf16.yaml", "areas_mapping.yaml", "lot_size_huge.yaml"]


@pytest.mark.parametrize("name", CLI_FILES)
def test_cli_refuses_corpus_file(tmp_path, name):
    proc = twin("run", f"line={CORPUS / name}", "backend=cpu", "progress=false", f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_line_exit_2(proc, corpus_cases()[name])
    assert not (tmp_path / "run" / "kpis.json").exists()


@pytest.mark.parametrize("override,field", [
    ("yield.enabled=maybe", "yield.enabled"),
    ("seed=1180591620717411303424", "seed"),  # 2**70
    ("replicas=2000000000", "replicas"),  # memory: results of 2e9 replications
    ("horizon_days=1e9", "horizon_days"),
    ("max_lots=2147483648", "max_lots"),  # past int32 lot ids (a large max_lots allocates nothing: the table grows)
    ("progress=sometimes", "progress"),
])
def test_cli_refuses_run_setting(tmp_path, override, field):
    proc = twin("run", f"line={BASE}", "backend=cpu", override, f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_line_exit_2(proc, field)


def test_cli_maintain_refuses_endless_horizon(tmp_path):
    proc = twin("maintain", "horizon_years=1e9", f"hydra.run.dir={tmp_path / 'm'}")
    assert_one_line_exit_2(proc, "horizon_years")


# ----------------------------------------------------------------------------- run settings, in process


def _prepare(**cfg):
    from twin.app import prepare

    return prepare({"line": {"path": str(BASE)}, "backend": "cpu", **cfg})


@pytest.mark.parametrize("cfg,field", [
    ({"yield": {"enabled": "maybe"}}, "yield.enabled"),
    ({"yield": {"enabled": 1}}, "yield.enabled"),
    ({"yield": 3}, "yield"),
    ({"yield": {"enabeld": True}}, "yield.enabeld"),
    ({"yield": {"sample_wafers": 10**9}}, "yield.sample_wafers"),
    ({"progress": "yes"}, "progress"),
    ({"seed": 2**70}, "seed"),
    ({"seed": -1}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"replicas": 0}, "replicas"),
    ({"replicas": 1e12}, "replicas"),
    ({"replicas": 10**12}, "replicas"),
    ({"replicas": 2_000_000_000}, "replicas"),
    ({"horizon_days": float("inf")}, "horizon_days"),
    ({"horizon_days": 1e9}, "horizon_days"),
    ({"horizon_days": 5, "warmup_days": 9}, "horizon_days"),
    ({"snapshot_minutes": float("nan")}, "snapshot_minutes"),
    ({"snapshot_minutes": 1e-6, "horizon_days": 36000}, "snapshot_minutes"),
    ({"max_lots": 2**40}, "max_lots"),
    ({"max_lots": 2**31}, "max_lots"),
    ({"chunk_replicas": -1}, "chunk_replicas"),
    ({"dispatch": ["fifo", "cr"]}, "dispatch"),
    ({"dispatch": "fastest"}, "dispatch"),
    ({"backend": 5}, "backend"),
])
def test_run_settings_are_checked(cfg, field):
    with pytest.raises(ConfigError) as info:
        _prepare(**cfg)
    assert str(info.value).startswith(field + ":"), str(info.value)


def test_good_settings_pass():
    compiled, backend, args = _prepare(replicas=3, seed=2**64 - 1, progress=True, **{"yield": {"enabled": False}})
    assert args["replicas"] == 3 and args["seed"] == 2**64 - 1


# ----------------------------------------------------------------------------- the YAML loader


def test_yaml_size_bound_is_checked_before_parsing(tmp_path, monkeypatch):
    from twin import yamlio

    path = tmp_path / "big.yaml"
    path.write_text(BASE.read_text() + "layout: {pad: '" + "x" * 4096 + "'}\n")
    monkeypatch.setattr(yamlio, "MAX_BYTES", 2048)
    with pytest.raises(DataError) as info:
        yamlio.load_yaml_file(path, dict)
    assert "big.yaml" in str(info.value) and "MiB" in str(info.value)


def test_yaml_utf8_bom_is_accepted(tmp_path):
    from twin.line import load_line

    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.read_bytes())
    assert load_line(str(path)).name == "tiny"


def test_yaml_merge_keys_are_not_duplicates():
    from twin.yamlio import load_yaml_text

    data = load_yaml_text("a: &x {p: 1, q: 2}\nb:\n  <<: *x\n  p: 3\n", expect=dict)
    assert data["b"] == {"p": 3, "q": 2}


@pytest.mark.parametrize("text,expect", [
    ("a: 1\nb: 2\na: 3\n", "line 3"),
    ("x:\n  - {k: 1, k: 1}\n", "line 2"),
    ("1: a\n1: b\n", "appears twice"),
])
def test_yaml_duplicate_keys_name_the_line(text, expect):
    from twin.yamlio import load_yaml_text

    with pytest.raises(DataError) as info:
        load_yaml_text(text, "f.yaml")
    assert expect in str(info.value) and "f.yaml" in str(info.value)


def test_yaml_uses_the_c_loader_where_present():
    import yaml

    from twin import yamlio

    if yaml.__with_libyaml__:
        assert issubclass(yamlio._StrictLoader, yaml.CSafeLoader)


def test_smt2020_table_with_utf8_bom_reads_its_first_column(tmp_path):
    from twin.smt2020 import read_table

    path = tmp_path / "toolgrp.txt"
    path.write_bytes("\ufeffSTNFAM\tSTN\n".encode("utf-8") + b"Litho\tLitho_1\n")
    rows = read_table(path, ("STNFAM", "STN"))
    assert len(rows) == 1 and rows[0].need("STNFAM") == "Litho"


# ----------------------------------------------------------------------------- model sanity, unit level


def _line():
    from twin.compile import compile_line
    from twin.line import load_line

    return compile_line(load_line(str(BASE)))


def test_expected_processings_match_the_geometric_loop():
    """Step 3 reworks back to step 2 with p: steps 2 and 3 run 1 / (1 - p) times each."""
    from twin.sanity import expected_processings

    product = _line().line.products[0]
    visits = expected_processings(product)
    assert visits[0] == pytest.approx(1.0)
    assert visits[1] == pytest.approx(1 / 0.9) and visits[2] == pytest.approx(1 / 0.9)


def test_offered_load_is_the_hand_computed_utilisation():
    """Group A: per 60-minute lot 20 + 10/0.9 minutes plus load 1 per visit, over 2 tools x availability."""
    from twin.sanity import offered_loads

    loads = offered_loads(_line())
    busy = (20 + 1) + (10 + 1) / 0.9
    avail = 1 - 60 / 5060 - 120 / 10200
    assert loads["A"] == pytest.approx(busy / 60 / 2 / avail)
    assert loads["B"] == pytest.approx(15 / 0.9 / 60)


def test_memory_check_names_the_largest_part():
    from twin.sanity import MemoryNeed, check_memory

    need = MemoryNeed(state_per_replication=10**6, results_per_replication=10**5, chunk=8, replicas=10**6,
                      snapshots=10**6, lot_log=10**6, on_gpu=False)
    with pytest.raises(ConfigError) as info:
        check_memory(need, host_free=2**30, gpu_free=0)
    assert str(info.value).startswith("replicas:") and "lower replicas" in str(info.value)
    check_memory(need, host_free=2**40, gpu_free=0)  # fits
    gpu = MemoryNeed(10**9, 10, 4, 4, 0, 0, on_gpu=True)
    with pytest.raises(ConfigError) as info:
        check_memory(gpu, host_free=2**40, gpu_free=2**30)
    assert "GPU memory" in str(info.value) and str(info.value).startswith("max_lots:")


def test_no_module_reads_yaml_around_the_strict_loader():
    """Every YAML the project itself reads goes through twin.yamlio (Hydra composes only configs/)."""
    import re

    root = Path(ROOT)
    offenders = [str(p.relative_to(root)) for folder in ("twin", "kernels") for p in (root / folder).rglob("*.py")
                 if p.name != "yamlio.py" and re.search(r"yaml\.(safe_load|load|full_load|unsafe_load)\(", p.read_text())]
    assert offenders == []


@pytest.mark.parametrize("name,field", [
    ("pm_storm.yaml", "line.tool_groups[0].pm[0].every_minutes"),
    ("release_storm.yaml", "line.releases[0].interval_minutes"),
    ("failure_storm.yaml", "line.tool_groups[0].failures.ttf.mean"),
    ("rework_storm.yaml", "line.products[0].route[2].rework.prob"),
])
def test_event_storm_names_the_field_that_drives_it(name, field):
    from twin.app import prepare

    with pytest.raises(ConfigError) as info:
        prepare({"line": {"path": str(CORPUS / name)}, "backend": "cpu"})
    assert str(info.value).startswith(field + ": got ") and "events per simulated day" in str(info.value)
