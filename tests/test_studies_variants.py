"""Named line items: overrides and variant files address tool groups, PMs, products and releases by
name, and a variant composes the same through Hydra as through twin.line."""
from __future__ import annotations

import copy

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from twin.configs_path import config_dir
from twin.errors import ConfigError
from twin.line import load_line, parse_line

DEFAULT = config_dir() / "line" / "default.yaml"


def _hydra_line(*overrides):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return load_line(OmegaConf.to_container(cfg, resolve=True)["line"])


def _groups(line):
    return {g.name: g for g in line.tool_groups}


def test_the_mapping_form_and_the_list_form_give_the_same_line():
    data = yaml.safe_load(DEFAULT.read_text())
    as_lists = copy.deepcopy(data)
    for key in ("tool_groups", "products", "releases"):
        as_lists[key] = [{"name": name, **item} for name, item in data[key].items()]
    for g in as_lists["tool_groups"]:
        g["pm"] = [{"name": name, **pm} for name, pm in (g.get("pm") or {}).items()]
    assert parse_line(as_lists) == parse_line(data)


def test_a_named_override_changes_that_group_only():
    base, changed = _groups(_hydra_line()), _groups(_hydra_line("line.tool_groups.CLEAN_WB.tools=5"))
    assert base["CLEAN_WB"].tools == 3 and changed["CLEAN_WB"].tools == 5
    assert {n: g for n, g in changed.items() if n != "CLEAN_WB"} == {n: g for n, g in base.items() if n != "CLEAN_WB"}


def test_a_named_pm_and_release_are_addressable():
    line = _hydra_line("line.tool_groups.CVD_OX.pm.weekly.every_minutes=20160", "line.releases.logic_a.interval_minutes=300")
    assert [(p.name, p.every_minutes) for p in _groups(line)["CVD_OX"].pms][0] == ("weekly", 20160.0)
    assert {r.name: r for r in line.releases}["logic_a"].interval_minutes == 300.0


@pytest.mark.parametrize("variant", ["default_extra_scanner", "default_biweekly_pm"])
def test_a_variant_file_composes_the_same_through_hydra_and_twin_line(variant):
    assert _hydra_line(f"line={variant}") == load_line(variant)


def test_the_extra_scanner_variant_changes_exactly_its_groups():
    base, variant = _groups(load_line("default")), _groups(load_line("default_extra_scanner"))
    differ = sorted(n for n in base if base[n] != variant[n])
    assert differ == ["LITHO_SCAN", "LITHO_TRACK"]
    assert (variant["LITHO_SCAN"].tools, variant["LITHO_TRACK"].tools) == (4, 6)


def test_null_removes_a_named_pm():
    base, variant = _groups(load_line("default")), _groups(load_line("default_biweekly_pm"))
    assert [p.name for p in base["CVD_OX"].pms] == ["weekly", "wafer_count"]
    assert [p.name for p in variant["CVD_OX"].pms] == ["weekly"]
    assert variant["CLEAN_WB"].pms[0].every_minutes == 2 * base["CLEAN_WB"].pms[0].every_minutes


def test_a_user_file_extends_an_embedded_line_and_takes_overrides(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("defaults: [default_extra_scanner]\nname: mine\ntool_groups: {EPI: {tools: 2}}\n")
    line = _hydra_line("line=file", f"line.path={path}", "+line.tool_groups.CLEAN_WB.tools=4")
    groups = _groups(line)
    assert line.name == "mine" and groups["EPI"].tools == 2 and groups["LITHO_SCAN"].tools == 4 and groups["CLEAN_WB"].tools == 4


def test_a_cycle_of_defaults_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("defaults: [b]\n")
    (tmp_path / "b.yaml").write_text("defaults: [a]\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_line(str(tmp_path / "a.yaml"))


def test_a_key_that_differs_from_its_name_is_refused():
    data = yaml.safe_load(DEFAULT.read_text())
    data["tool_groups"]["CLEAN_WB"]["name"] = "OTHER"
    with pytest.raises(ConfigError, match="line.tool_groups.CLEAN_WB.name"):
        parse_line(data)


def test_errors_name_the_group_by_its_name():
    data = yaml.safe_load(DEFAULT.read_text())
    data["tool_groups"]["LITHO_SCAN"]["tools"] = 0
    with pytest.raises(ConfigError, match=r"line\.tool_groups\.LITHO_SCAN\.tools"):
        parse_line(data)


def _smt2020_or_skip():
    from twin.smt2020 import resolve_data_dir

    try:
        resolve_data_dir(None, "HVLM")
    except ConfigError:
        pytest.skip("SMT2020 data not on this machine")


def test_an_smt2020_family_takes_tools_and_dispatch_by_name():
    _smt2020_or_skip()
    base = load_line("smt2020_hvlm")
    name = base.tool_groups[0].name
    changed = _hydra_line("line=smt2020_hvlm", f"+line.tool_groups.{name}.tools=99", f"+line.tool_groups.{name}.dispatch=fifo")
    g = _groups(changed)[name]
    assert (g.tools, g.dispatch) == (99, "fifo")
    assert changed.tool_groups[1:] == base.tool_groups[1:]


@pytest.mark.parametrize("change, field", [({"NOPE": {"tools": 3}}, "line.tool_groups.NOPE"),
                                           ({"__first__": {"area": "x"}}, "area"),
                                           ({"__first__": {"tools": 0}}, "tools")])
def test_an_smt2020_change_outside_tools_and_dispatch_is_refused(change, field):
    _smt2020_or_skip()
    name = load_line("smt2020_hvlm").tool_groups[0].name
    change = {name if k == "__first__" else k: v for k, v in change.items()}
    with pytest.raises(ConfigError, match=field):
        load_line({"loader": "smt2020", "dataset": "HVLM", "tool_groups": change})
