"""Every Hydra config composes, every option of every group validates before compute, and the
typed schemas refuse bad keys and types while composing."""
from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from kernels import layout as K
from kernels.dispatch import RULE_IDS
from twin.app import prepare
from twin.configs_path import config_dir
from twin.errors import ConfigError

BACKENDS = sorted(p.stem for p in (config_dir() / "backend").glob("*.yaml"))
LINES = sorted(p.stem for p in (config_dir() / "line").glob("*.yaml"))
TOOLS = sorted(p.stem for p in (config_dir() / "maintain" / "tool").glob("*.yaml"))
POLICIES = sorted(p.stem for p in (config_dir() / "maintain" / "policy").glob("*.yaml"))
NEEDS = {"file": [f"line.path={config_dir() / 'line' / 'default_extra_scanner.yaml'}"]}
TOOL_NEEDS = {"line": ["tool.wafers_per_hour=20", "tool.utilisation=0.8"]}  # or tool.run=RUN_FOLDER
NO_SIGNAL = {("weibull_renewal", "condition_based"), ("weibull_renewal", "predictive")}


def _compose(overrides, name="config"):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name=name, overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_default_config_composes_and_validates(backend):
    config = _compose([f"backend={backend}"])
    assert config["backend"]["name"] == backend
    if backend == "cuda":
        from kernels.target import cuda_usable

        if not cuda_usable():
            pytest.skip("no CUDA GPU: backend=cuda is rejected, as it should be")
    compiled, resolved, args = prepare(config)
    assert compiled.line.name == "default"
    assert args["horizon_days"] > args["warmup_days"]


@pytest.mark.parametrize("line", LINES)
def test_every_line_option_composes_and_validates(line):
    config = _compose([f"line={line}", "backend=cpu", *NEEDS.get(line, [])])
    try:
        compiled, _, args = prepare(config)
    except ConfigError as err:
        if err.field == "line.data_dir":
            pytest.skip(f"SMT2020 data not on this machine: {err}")
        raise
    expected = "default_extra_scanner" if line == "file" else line
    assert compiled.line.name == expected
    assert args["horizon_days"] > args["warmup_days"]


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("policy", POLICIES)
def test_every_maintenance_option_composes_and_validates(tool, policy):
    from twin.maintain import compose_config, load_study

    config = compose_config([f"tool={tool}", f"policy={policy}", "backend=cpu", *TOOL_NEEDS.get(tool, [])])
    assert config["policy"]["name"] == policy
    if (tool, policy) in NO_SIGNAL:
        with pytest.raises(ConfigError, match="does not degrade"):
            load_study(config)
    else:
        load_study(config)


def test_a_sweep_value_reaches_the_line():
    config = _compose(["yield.defect_scale=2", "dispatch=cr", "backend=cpu"])
    compiled, _, _ = prepare(config)
    base, _, _ = prepare({**config, "yield": {**config["yield"], "defect_scale": 1.0}})
    assert (compiled.sf[:, K.SF_DEFECT] == 2 * base.sf[:, K.SF_DEFECT]).all()
    assert (compiled.gi[:, K.GI_RULE] == RULE_IDS["cr"]).all()


@pytest.mark.parametrize("override, config_name", [
    ("replicas=abc", "config"), ("replicas=2.5", "config"), ("progress=maybe", "config"),
    ("backend.threads=x", "config"), ("yield.defect_scale=big", "config"), ("yield.defect_scal=2", "config"),
    ("no_such_setting=1", "config"), ("samples=x", "maintain"), ("warnings.bins=many", "maintain"),
    ("crn=perhaps", "maintain"), ("no_such_setting=1", "maintain"),
])
def test_the_schemas_refuse_bad_keys_and_types_while_composing(override, config_name):
    extra = [f"hydra.searchpath=[file://{config_dir() / 'maintain'}]"] if config_name == "maintain" else []
    with pytest.raises(Exception) as err:
        _compose([override, *extra], config_name)
    cause = err.value.__cause__ or err.value
    assert type(cause).__name__ in ("ValidationError", "ConfigAttributeError", "ConfigKeyError", "ConfigCompositionException"), cause


def test_the_schema_types_the_values():
    config = _compose(["replicas=3", "horizon_days=20", "yield.defect_scale=2"])
    assert config["replicas"] == 3 and isinstance(config["horizon_days"], float) and config["yield"]["defect_scale"] == 2.0
