"""Maintenance-policy study: ``twin maintain`` evaluates many candidate policies in one launch.

A study is one tool group's model (``tool=``, configs/maintain/tool), one
policy family (``policy=``, configs/maintain/policy) and a grid or random
search over that family's parameters.  Every (candidate, replication) is one
work item of :mod:`kernels.maintenance`; KPIs are computed per replication and
summarised as mean and 95% CI, and candidates are compared with the best by a
paired CI (common random numbers make the pairing informative).

One concern per module, in the order a study runs:

- ``tool``: the tool model (:class:`ToolModel`, :func:`parse_tool`); ``line_tool``: a line's tool group as
  that model, and the best policy back in the line's terms;
- ``candidates``: the policy family's grid or random search; ``study``: :func:`load_study` validates a
  composed config before any compute;
- ``simulate``: launches the kernel; ``summary``: KPIs with CIs, the Pareto front and the best candidate;
- ``outputs``: policies.csv, best_policy.json and the terminal summary; ``plot``: tradeoff.png;
- ``cli``: :func:`main`, the Hydra entry point; ``checks``: the validation helpers.

docs/maintenance.md describes the model and every output.
"""
from __future__ import annotations

from twin.maintain.tool import ToolModel, parse_tool
from twin.maintain.line_tool import LINE_TOOL_KEYS, line_maintenance, run_throughput, tool_config_from_line
from twin.maintain.candidates import BASES, Candidates, POLICIES, check_parameters, grid_values, make_candidates
from twin.maintain.study import OBJECTIVES, STUDY_KEYS, Study, load_study
from twin.maintain.simulate import Raw, simulate, stream_seeds, warm_up
from twin.maintain.summary import (HOURS_PER_YEAR, KPIS, Summary, mean_ci, pareto_front, per_replication,
                                   summarise, warning_scores)
from twin.maintain.outputs import best_policy_doc, print_summary, run_study, write_policies_csv
from twin.maintain.plot import plot_tradeoff
from twin.maintain.cli import (GROUPS, compose_config, config_search_path, group_options, main, split_args,
                               validate_overrides)

__all__ = ["ToolModel", "parse_tool", "LINE_TOOL_KEYS", "line_maintenance", "run_throughput",
           "tool_config_from_line", "BASES", "Candidates", "POLICIES", "check_parameters", "grid_values",
           "make_candidates", "OBJECTIVES", "STUDY_KEYS", "Study", "load_study", "Raw", "simulate", "stream_seeds",
           "warm_up", "HOURS_PER_YEAR", "KPIS", "Summary", "mean_ci", "pareto_front", "per_replication",
           "summarise", "warning_scores", "best_policy_doc", "print_summary", "run_study", "write_policies_csv",
           "plot_tradeoff", "GROUPS", "compose_config", "config_search_path", "group_options", "main",
           "split_args", "validate_overrides"]
