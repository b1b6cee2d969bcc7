"""Every Hydra config composes, and every option of every group validates before compute."""
from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from kernels import layout as K
from kernels.dispatch import RULE_IDS
from twin.app import prepare
from twin.configs_path import config_dir

BACKENDS = sorted(p.stem for p in (config_dir() / "backend").glob("*.yaml"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_default_config_composes_and_validates(backend):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"backend={backend}"])
    config = OmegaConf.to_container(cfg, resolve=True)
    assert config["backend"]["name"] == backend
    if backend == "cuda":
        from kernels.target import cuda_usable

        if not cuda_usable():
            pytest.skip("no CUDA GPU: backend=cuda is rejected, as it should be")
    compiled, resolved, args = prepare(config)
    assert compiled.line.name == "default"
    assert args["horizon_days"] > args["warmup_days"]


def test_a_sweep_value_reaches_the_line():
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["yield.defect_scale=2", "dispatch=cr", "backend=cpu"])
    config = OmegaConf.to_container(cfg, resolve=True)
    compiled, _, _ = prepare(config)
    base, _, _ = prepare({**config, "yield": {**config["yield"], "defect_scale": 1.0}})
    assert (compiled.sf[:, K.SF_DEFECT] == 2 * base.sf[:, K.SF_DEFECT]).all()
    assert (compiled.gi[:, K.GI_RULE] == RULE_IDS["cr"]).all()
