"""The ``twin`` command: run, maintain, view, render, bench.

``twin run`` is a Hydra app (overrides, ``-m`` sweeps); the others parse their
own arguments.  Every bad value ends with one line on stderr and exit code 2.
"""
from __future__ import annotations

import sys
import warnings

USAGE = """usage: twin COMMAND [ARGS]

commands:
  run [key=value ...]     simulate a line (Hydra overrides; -m for sweeps), e.g.
                          twin run line=default replicas=16 horizon_days=90 backend=cpu
                          twin run -m line.tool_groups.LITHO_SCAN.tools=3,4
  compare FOLDER...       KPI differences against the first run (or --baseline), paired by
                          replication, with 95% CIs, a CSV and a plot (see docs/studies.md)
  maintain [key=value]    optimise maintenance policies (see docs/maintenance.md)
  view RUN_FOLDER         open the 3D fab view of a finished run
  render RUN_FOLDER       draw the same scene without a display (PNG + GIF)
  bench [--quick]         run the benchmark suite
"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    # Hydra 1.4 warns on every compose that version_base is deprecated: a maintainer notice, not a user error
    warnings.filterwarnings("ignore", message=".*version_base.*")
    handlers = {"run": _run, "compare": _compare, "maintain": _maintain, "view": _view, "render": _render, "bench": _bench}
    if command not in handlers:
        print(f"error: unknown command {command!r}; allowed: {', '.join(handlers)}", file=sys.stderr)
        return 2
    return guarded(handlers[command], rest)


def guarded(handler, rest) -> int:
    """Print a config or data error as one line, without a traceback."""
    from twin.errors import ConfigError, DataError

    try:
        return int(handler(rest) or 0)
    except (ConfigError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _run(rest) -> int:
    import hydra
    from omegaconf import DictConfig, OmegaConf

    from twin.configs_path import config_dir
    from twin.sweeps import check_run_overrides, folder_name_override, split_args

    flags, overrides = split_args(line_file_overrides(rest))
    multirun = "-m" in flags or "--multirun" in flags
    if not any(f in flags for f in INFO_FLAGS):
        check_run_overrides(overrides, multirun)
    naming = folder_name_override(overrides) if multirun else []
    started = []

    @hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")
    def hydra_run(cfg: DictConfig) -> float | None:
        from hydra.core.hydra_config import HydraConfig

        from twin.app import run_scenario

        started.append(True)
        out_dir = HydraConfig.get().runtime.output_dir
        config = OmegaConf.to_container(cfg, resolve=True)
        docs = []

        def run_and_print(_):
            docs.append(run_scenario(config, out_dir))
            return _print(docs[0], out_dir)

        code = guarded(run_and_print, None)
        if code:
            sys.exit(code)
        return (docs[0].get("objective") or {}).get("value")  # what a sweeper (Optuna) optimises

    def _print(doc, out_dir):
        from twin.app import print_summary

        print_summary(doc, out_dir)
        return 130 if doc["meta"]["interrupted"] else 0

    from twin.objective import fix_optuna_sampler_instantiation
    from twin.rundir import cli_folder_guard

    fix_optuna_sampler_instantiation()
    saved, sys.argv = sys.argv, ["twin run", *flags, *overrides, *naming]
    try:
        with cli_folder_guard(sys.argv[1:]):
            hydra_run()
    except SystemExit as stop:  # Hydra exits 1 on its own errors; before a job started that is bad input
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        return 2 if code == 1 and not started else code
    finally:
        sys.argv = saved
    return 0


INFO_FLAGS = ("-h", "--help", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion", "-sc")


def line_file_overrides(args: list[str]) -> list[str]:
    """``line=some/file.yaml`` becomes ``line=file line.path=...`` (Hydra groups take names only);
    then ``line.*`` overrides add to that file's content (``+line.*``), which twin.line merges in."""
    out, is_file = [], False
    for arg in args:
        key, _, value = arg.partition("=")
        if key == "line" and ("/" in value or value.endswith((".yaml", ".yml"))):
            from pathlib import Path

            out += ["line=file", f"line.path={Path(value).expanduser().resolve()}"]
            is_file = True
        else:
            out.append(arg)
    if is_file:
        out = [f"+{a}" if a.startswith("line.") and not a.startswith("line.path=") else a for a in out]
    return out


def _compare(rest) -> int:
    from twin.compare import main as compare_main

    return compare_main(rest)


def _maintain(rest) -> int:
    from twin.maintain import main as maintain_main

    return maintain_main(rest)


def _view(rest) -> int:
    from twin.view.cli import view_main

    return view_main(rest)


def _render(rest) -> int:
    from twin.view.cli import render_main

    return render_main(rest)


def _bench(rest) -> int:
    from twin.bench import main as bench_main

    return bench_main(rest)


if __name__ == "__main__":
    sys.exit(main())
