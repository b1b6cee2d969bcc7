"""A sweep's jobs, as twin run checks them before the first computes: the basic sweeper's order, and
the quick per-job config (one compose per group choice, value overrides applied) equal to Hydra's."""
from __future__ import annotations

import pytest

from twin.errors import ConfigError
from twin.sweeps import _job_config, check_run_overrides, compose_run, folder_name_override, sweep_jobs


def test_jobs_are_every_combination_in_the_basic_sweepers_order():
    jobs = sweep_jobs(["dispatch=fifo,cr", "replicas=2", "seed=range(1,4)", "hydra.sweep.dir=x"], multirun=True)
    assert jobs == [[f"dispatch={d}", "replicas=2", f"seed={s}"] for d in ("fifo", "cr") for s in (1, 2, 3)]


def test_the_quick_job_config_equals_hydras_compose():
    jobs = sweep_jobs(["line=default,default_extra_scanner", "line.tool_groups.LITHO_SCAN.tools=3,5",
                       "+line.tool_groups.NEW_GROUP={area: X, tools: 2}", "yield.alpha=2.5", "dispatch=null"], True)
    bases = {}
    for job in jobs:
        assert _job_config(job, bases) == compose_run(job), job
    assert len(bases) == 2  # one compose per line choice


def test_a_bad_job_is_named_and_refused_before_any_compute():
    with pytest.raises(ConfigError, match=r"job 2 \(dispatch=foo backend=cpu\): dispatch"):
        check_run_overrides(["dispatch=fifo,cr,foo", "backend=cpu"], multirun=True)


def test_folder_names_leave_out_the_fixed_overrides():
    (exclude,) = folder_name_override(["dispatch=fifo,cr", "replicas=2", "+line.tool_groups.X.tools=2"])
    assert exclude == "hydra.job.config.override_dirname.exclude_keys=['progress','replicas','+line.tool_groups.X.tools']"
    assert folder_name_override(["dispatch=fifo,cr", "hydra.sweep.subdir=mine"]) == []
