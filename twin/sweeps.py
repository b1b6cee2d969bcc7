"""``twin run`` before Hydra runs it: every job of a sweep composed and validated, no compute.

Hydra's own errors (an unknown key, an unknown group option, a parse error, a type the schema refuses)
become one :class:`ConfigError` line naming the override; then each job's config goes through
:func:`twin.app.prepare` (the line, the rule, the backend), so ``twin run -m dispatch=fifo,foo``
refuses ``foo`` before job 0 computes.
"""
from __future__ import annotations

import itertools
import warnings

from twin.errors import ConfigError

GROUPS = {"line": "line", "backend": "backend"}
FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--info", "-i", "--config-name", "-cn", "--config-dir",
                    "-cd", "--experimental-rerun", "--shell-completion", "-sc"}
TYPE_HINTS = {"Integer": "must be an integer", "Float": "must be a number", "valid bool": "must be true or false"}


def split_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Hydra flags first (argparse wants them before the overrides), overrides after."""
    flags, overrides = [], []
    it = iter(argv)
    for arg in it:
        if arg.startswith("-"):
            flags.append(arg)
            if arg in FLAGS_WITH_VALUE and (nxt := next(it, None)) is not None:
                flags.append(nxt)
        else:
            overrides.append(arg)
    return flags, overrides


def folder_name_override(overrides: list[str]) -> list[str]:
    """Name each sweep job's folder by the values of the swept keys only (``dispatch=cr``): every
    override that is not a sweep goes into Hydra's override_dirname exclude_keys.  A sweeper other
    than the basic one (Optuna) may try the same values twice, so there the job number leads
    (``3_line.tool_groups.M.tools=4``) and no job overwrites another's folder."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    fixed, user_named = [], False
    for text in overrides:
        (parsed,) = parser.parse_overrides([text])
        key = parsed.get_key_element()
        user_named |= key.startswith(("hydra.job.config.override_dirname", "hydra.sweep.subdir"))
        if not key.lstrip("+~").startswith("hydra") and not parsed.is_sweep_override():
            fixed.append(key)
    if user_named:
        return []
    keys = ",".join(f"'{k}'" for k in ["progress", *fixed])
    out = [f"hydra.job.config.override_dirname.exclude_keys=[{keys}]"]
    if not _basic_sweeper(overrides):
        out.append("hydra.sweep.subdir='${hydra.job.num}_${hydra.job.override_dirname}'")
    return out


def _basic_sweeper(overrides: list[str]) -> bool:
    """Whether the composed config sweeps with Hydra's BasicSweeper (every combination once)."""
    from hydra import compose, initialize_config_dir

    from twin.configs_path import config_dir

    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    first = []
    try:
        for text in overrides:  # each sweep at its first value
            (parsed,) = parser.parse_overrides([text])
            if parsed.is_sweep_override():
                text = f"{parsed.get_key_element()}={next(iter(parsed.sweep_string_iterator()))}"
            first.append(text)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
                cfg = compose(config_name="config", overrides=first, return_hydra_config=True)
        return str(cfg.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper")
    except Exception:
        return False  # unknown: number the folders, which is always safe


def check_run_overrides(overrides: list[str], multirun: bool) -> list[dict]:
    """Compose and prepare every job's config; returns the configs (in job order)."""
    jobs = sweep_jobs(overrides, multirun)
    configs, seen, bases = [], {}, {}
    for num, job in enumerate(jobs):
        config = _job_config(job, bases) if len(jobs) > 1 else compose_run(job)
        key = repr(config)
        if key not in seen:
            seen[key] = _prepared(config, num, job, multirun and len(jobs) > 1)
        configs.append(config)
    return configs


def _job_config(job: list[str], bases: dict) -> dict:
    """A sweep job's config without a full compose per job (composing the default line takes seconds):
    the group choices (``line=``, ``backend=``) are composed once, then the value overrides are applied
    as Hydra applies them (OmegaConf.update with merge).  Anything unusual, or any error, takes the
    full compose, which also words the error."""
    import copy

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf, open_dict

    from twin.configs_path import config_dir

    groups = {p.name for p in config_dir().iterdir() if p.is_dir()}
    parser = OverridesParser.create()
    parsed = [parser.parse_overrides([text])[0] for text in job]
    choice = tuple(t for t, o in zip(job, parsed) if o.get_key_element().lstrip("+~") in groups)
    try:
        if choice not in bases:
            bases[choice] = _compose_raw(list(choice))
        cfg = copy.deepcopy(bases[choice])
        for text, o in zip(job, parsed):
            if text in choice:
                continue
            key = o.get_key_element().lstrip("+~")
            if o.is_delete() or o.is_list_extend() or "(" in text:
                raise LookupError(text)  # rare forms: let Hydra compose them
            if o.is_add() or o.is_force_add():
                if o.is_add() and OmegaConf.select(cfg, key, default=None) is not None:
                    raise LookupError(text)
                with open_dict(cfg):
                    OmegaConf.update(cfg, key, o.value(), merge=True, force_add=True)
            else:
                OmegaConf.update(cfg, key, o.value(), merge=True)
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:
        return compose_run(job)


def sweep_jobs(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The override list of each job, as Hydra's basic sweeper orders them (hydra.* left out)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    choices = []
    for text in overrides:
        key, _, value = text.partition("=")
        try:
            (parsed,) = parser.parse_overrides([text])
        except Exception as err:  # Hydra's OverrideParseException
            raise ConfigError(key, value, f"cannot parse this override: {_hydra_reason(err)}") from None
        bare = parsed.get_key_element().lstrip("+~")
        if bare.startswith("hydra"):
            continue
        if not parsed.is_sweep_override():
            _check_group_option(bare, parsed.get_value_element_as_str())
            choices.append([text])
            continue
        if not multirun:
            raise ConfigError(key, value, "a sweep (several values) needs -m: twin run -m ...")
        try:
            values = list(parsed.sweep_string_iterator())
        except Exception:  # interval(...) and the like: a sweeper plugin draws them; Hydra checks types
            continue
        for v in values:
            _check_group_option(bare, v)
        choices.append([f"{parsed.get_key_element()}={v}" for v in values])
    return [list(combo) for combo in itertools.product(*choices)]


def group_options(group: str) -> list[str]:
    from twin.configs_path import config_dir

    return sorted(p.stem for p in (config_dir() / GROUPS[group]).glob("*.yaml"))


def _check_group_option(key: str, value: str) -> None:
    if key in GROUPS and value not in group_options(key):
        extra = " or a path to a line YAML file" if key == "line" else ""
        raise ConfigError(key, value, f"allowed: {', '.join(group_options(key))}{extra}")


def compose_run(overrides: list[str]) -> dict:
    """config.yaml with ``overrides`` as ``twin run`` composes it, Hydra's errors as one ConfigError."""
    return compose_or_name_the_override(_compose, overrides, _hydra_reason)


def compose_or_name_the_override(compose, overrides: list[str], why) -> dict:
    """``compose(overrides)``, or a ConfigError naming the first override that breaks it, with
    ``why(err, overrides before it, its key)`` as the reason (shared by twin run and twin maintain)."""
    try:
        return compose(overrides)
    except ConfigError:
        raise
    except Exception:
        pass
    for i in range(len(overrides)):
        try:
            compose(overrides[: i + 1])
        except Exception as err:
            key, _, value = overrides[i].partition("=")
            raise ConfigError(key.lstrip("+~"), value, why(err, overrides[:i], key.lstrip("+~"))) from None
    raise ConfigError("overrides", " ".join(overrides), "Hydra could not compose this config")


def compose_config(overrides: list[str]):
    """config.yaml composed with ``overrides`` (a DictConfig typed by twin.schema.RunConfig)."""
    try:
        return _compose_raw(overrides)
    except Exception:
        compose_run(overrides)  # raises the one-line ConfigError
        raise


def _compose(overrides: list[str]) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(_compose_raw(overrides), resolve=True)


def _compose_raw(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from twin.configs_path import config_dir

    with warnings.catch_warnings():  # Hydra 1.4 warns about version_base on every compose
        warnings.simplefilter("ignore")
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))


def _hydra_reason(err, before=None, key=None) -> str:
    """The first line that explains a Hydra/OmegaConf error, in the words the rest of the CLI uses."""
    cause = err.__cause__ or err
    text = _first_line(cause)
    for marker, hint in TYPE_HINTS.items():
        if marker in text:
            return f"{hint} ({_schema_name(cause)})"
    if "not in" in text or "Could not override" in _first_line(err) or "Could not append" in _first_line(err):
        return _unknown_key(before, key) or text
    if "no viable alternative" in str(err) or "mismatched input" in str(err) or "extraneous input" in str(err):
        lines = [t.strip() for t in str(err).splitlines() if t.strip()]
        return lines[1] if len(lines) > 1 else text
    return text


def _unknown_key(before, key) -> str | None:
    """Name the first part of ``key`` that the composed config lacks, and what is there instead."""
    if before is None or key is None:
        return None
    try:
        node = _compose(before)
    except Exception:
        return None
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, dict):
            return None
        if part not in node:
            where = ".".join(parts[:depth]) or "the config"
            has = ", ".join(map(str, node)) or "nothing"
            if parts[0] != "line":
                return f"unknown setting {part!r}; {where} takes: {has}"
            if "loader" in node and part == "tool_groups":
                return f"{node['loader']} lines have no tool_groups to override: +{key}=... changes a loaded group"
            return f"unknown key {part!r}; {where} has: {has} (+{key}=... adds one)"
        node = node[part]
    return None


def _schema_name(cause) -> str:
    obj = getattr(cause, "object_type", None)
    return f"schema {obj.__name__}" if isinstance(obj, type) else "typed schema"


def _first_line(err) -> str:
    text = [t.strip() for t in str(err).strip().splitlines() if t.strip()]
    return text[0] if text else type(err).__name__


def _prepared(config: dict, num: int, job: list[str], name_job: bool):
    from twin.app import prepare

    try:
        return prepare(config)
    except ConfigError as err:
        if not name_job:
            raise
        raise ConfigError(f"job {num} ({' '.join(job)}): {err.field}", err.value, err.allowed) from None
