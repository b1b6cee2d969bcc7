"""``twin maintain``: the Hydra entry point; every job's config is composed and validated before compute."""
from __future__ import annotations

import itertools
import sys

from twin.errors import ConfigError
from twin.maintain.checks import _first_line
from twin.maintain.outputs import print_summary, run_study
from twin.maintain.study import load_study
from twin.sweeps import compose_or_name_the_override, split_args  # as twin run splits and composes


def config_search_path() -> str:
    from twin.configs_path import config_dir

    return f"hydra.searchpath=[file://{config_dir() / 'maintain'}]"


def compose_config(overrides: list[str] = ()) -> dict:
    """The study config ``twin maintain`` would run with ``overrides`` (for tests and notebooks)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from twin.configs_path import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="maintain", overrides=[*overrides, config_search_path()])
    return OmegaConf.to_container(cfg, resolve=True)


def validate_overrides(overrides: list[str], multirun: bool) -> None:
    """Compose and validate every job's config (each sweep combination) before any compute."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            parsed += parser.parse_overrides([text])
        except Exception as err:  # Hydra's OverrideParseException
            key, _, value = text.partition("=")
            raise ConfigError(key, value, f"cannot parse: {_first_line(err)}") from None
    parsed = [o for o in parsed if not o.get_key_element().lstrip("+~").startswith("hydra.")]
    choices = []
    for o in parsed:
        if o.is_sweep_override():
            if not multirun:
                raise ConfigError(o.get_key_element(), o.input_line.partition("=")[2], "a sweep needs -m (multirun)")
            choices.append([f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()])
        else:
            choices.append([o.input_line])
    for combo in list(itertools.product(*choices))[:256]:
        load_study(_compose_checked(list(combo)))


GROUPS = {"tool": "maintain/tool", "policy": "maintain/policy", "backend": "backend"}


def group_options(group: str) -> list[str]:
    from twin.configs_path import config_dir

    return sorted(p.stem for p in (config_dir() / GROUPS[group]).glob("*.yaml"))


def _compose_checked(overrides: list[str]) -> dict:
    """compose_config, with Hydra's composition errors turned into one-line ConfigErrors."""
    for o in overrides:
        key, _, value = o.partition("=")
        if key in GROUPS and value not in group_options(key):
            raise ConfigError(key, value, f"allowed: {', '.join(group_options(key))}")
    return compose_or_name_the_override(compose_config, overrides, lambda err, before, key: _why(before, key, err))


def _why(before: list[str], key: str, err) -> str:
    """'unknown setting; grid takes: T' when the key is missing, else Hydra's own first line."""
    parent, _, _ = key.rpartition(".")
    node = compose_config(before)
    for part in parent.split(".") if parent else []:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and key.rpartition(".")[2] not in node:
        return f"unknown setting; {parent or 'the config'} takes: {', '.join(map(str, node)) or 'nothing'}"
    return _first_line(err.__cause__ or err)  # the schema's own words (type, key)


def main(argv: list[str]) -> int:
    """``twin maintain [key=value ...]``: a Hydra app over configs/maintain.yaml; 2 on a bad config."""
    flags, overrides = split_args(list(argv))
    multirun = "-m" in flags or "--multirun" in flags
    info_only = any(f in flags for f in ("-h", "--help", "--hydra-help", "--cfg", "-c", "--info", "-i"))
    try:
        if not info_only:
            validate_overrides(overrides, multirun)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return _run_hydra(flags, overrides)


def _run_hydra(flags, overrides) -> int:
    import hydra
    from omegaconf import DictConfig, OmegaConf

    from twin.configs_path import config_dir

    started = []

    @hydra.main(config_path=str(config_dir()), config_name="maintain", version_base="1.3")
    def app(cfg: DictConfig) -> None:
        from hydra.core.hydra_config import HydraConfig

        started.append(True)
        out_dir = HydraConfig.get().runtime.output_dir
        try:
            doc = run_study(OmegaConf.to_container(cfg, resolve=True), out_dir)
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        print_summary(doc, out_dir)

    saved = sys.argv
    sys.argv = ["twin maintain", *flags, *overrides, config_search_path()]
    try:
        app()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        return 2 if code == 1 and not started else code
    finally:
        sys.argv = saved
    return 0
