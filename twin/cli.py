"""The ``twin`` command: run, maintain, view, render, bench.

``twin run`` is a Hydra app (overrides, ``-m`` sweeps); the others parse their
own arguments.  Every bad value ends with one line on stderr and exit code 2.
"""
from __future__ import annotations

import sys

USAGE = """usage: twin COMMAND [ARGS]

commands:
  run [key=value ...]     simulate a line (Hydra overrides; -m for sweeps), e.g.
                          twin run line=default replicas=16 horizon_days=90 backend=cpu
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
    handlers = {"run": _run, "maintain": _maintain, "view": _view, "render": _render, "bench": _bench}
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

    @hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")
    def hydra_run(cfg: DictConfig) -> float | None:
        from hydra.core.hydra_config import HydraConfig

        from twin.app import run_scenario

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

    fix_optuna_sampler_instantiation()
    sys.argv = ["twin run", *line_file_overrides(rest)]
    hydra_run()
    return 0


def line_file_overrides(args: list[str]) -> list[str]:
    """``line=some/file.yaml`` becomes ``line=file line.path=...`` (Hydra groups take names only)."""
    out = []
    for arg in args:
        key, _, value = arg.partition("=")
        if key == "line" and ("/" in value or value.endswith((".yaml", ".yml"))):
            from pathlib import Path

            out += ["line=file", f"line.path={Path(value).expanduser().resolve()}"]
        else:
            out.append(arg)
    return out


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
