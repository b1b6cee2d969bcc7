"""Line variants: a line file that extends another one, and named overrides of loaded lines.

A line YAML may start with a Hydra-style ``defaults:`` list naming the lines it extends (embedded
names, or paths relative to the file).  They merge in order as Hydra merges configs: mappings key by
key, lists replaced whole, ``null`` removing a named item; ``_self_`` places the file's own keys
(last when absent).  So ``configs/line/default_extra_scanner.yaml`` composes the same whether Hydra
or :func:`twin.line.load_line` reads it.

Lines built from data tables (``loader: smt2020``) have no YAML groups to merge into; for them
``tool_groups: {FAMILY: {tools: N, dispatch: RULE}}`` changes the loaded groups, and any other field
is refused with the one line that says so.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from twin.errors import ConfigError

LOADER_GROUP_FIELDS = ("tools", "dispatch")


def compose_line(data: dict, path: Path | None, overrides: dict | None = None, _seen=()) -> dict:
    """The line mapping with its ``defaults`` merged in and then ``overrides`` (``line.*`` keys)."""
    from omegaconf import OmegaConf

    data = dict(data)
    defaults = data.pop("defaults", None)
    if defaults is None and not overrides:
        return data
    if not isinstance(defaults, (list, type(None))):
        raise ConfigError(f"{path or 'line'}: defaults", defaults, "must be a list of line names (and _self_)")
    parts, self_placed = [], False
    for entry in defaults or []:
        if entry == "_self_":
            parts.append(data)
            self_placed = True
        else:
            parts.append(_base_line(entry, path, _seen))
    if not self_placed:
        parts.append(data)
    if overrides:
        parts.append(overrides)
    merged = OmegaConf.merge(*(OmegaConf.create(p) for p in parts))
    return OmegaConf.to_container(merged, resolve=True)


def _base_line(entry, path: Path | None, seen) -> dict:
    from twin.line import resolve_line_path
    from twin.yamlio import load_yaml_file

    if not isinstance(entry, str):
        raise ConfigError(f"{path or 'line'}: defaults", entry, "each entry names a line (embedded name or YAML path)")
    local = (path.parent / entry) if path is not None else None
    if local is not None and local.suffix not in (".yaml", ".yml"):
        local = local.with_suffix(".yaml")
    base = local if local is not None and local.is_file() else resolve_line_path(entry)
    base = base.resolve()
    if base in seen:
        raise ConfigError(f"{path}: defaults", entry, "extends itself (a cycle of defaults)")
    data = load_yaml_file(base, dict, "a YAML mapping (a base line)")
    return compose_line(data, base, None, (*seen, base))


def load_loader_line(data: dict, load):
    """Load a table-built line with ``load(data)`` and apply its named ``tool_groups`` changes."""
    changes = data.get("tool_groups") or {}
    line = load({k: v for k, v in data.items() if k != "tool_groups"})
    return apply_group_changes(line, changes) if changes else line


def apply_group_changes(line, changes: dict):
    """``{group: {tools, dispatch}}`` applied to a loaded line's groups (named, never by index)."""
    from kernels.dispatch import RULE_NAMES
    from twin.line import _integer

    if not isinstance(changes, dict):
        raise ConfigError("line.tool_groups", changes, "must map tool group names to {tools, dispatch}")
    groups = {g.name: g for g in line.tool_groups}
    for name, change in changes.items():
        field = f"line.tool_groups.{name}"
        if name not in groups:
            close = sorted(n for n in groups if n.lower()[:4] == str(name).lower()[:4])[:5]
            raise ConfigError(field, name, f"no such tool group in {line.name}" + (f" (similar: {', '.join(close)})" if close else ""))
        if not isinstance(change, dict):
            raise ConfigError(field, change, "must be a mapping of tools and/or dispatch")
        unknown = sorted(set(change) - set(LOADER_GROUP_FIELDS))
        if unknown:
            raise ConfigError(f"{field}.{unknown[0]}", change[unknown[0]],
                              f"a line built from data tables can change only: {', '.join(LOADER_GROUP_FIELDS)}")
        new = {}
        if "tools" in change:
            new["tools"] = _integer(change["tools"], f"{field}.tools", low=1)
        if "dispatch" in change:
            if change["dispatch"] not in RULE_NAMES:
                raise ConfigError(f"{field}.dispatch", change["dispatch"], f"allowed: {', '.join(RULE_NAMES)}")
            new["dispatch"] = change["dispatch"]
        groups[name] = dataclasses.replace(groups[name], **new)
    return dataclasses.replace(line, tool_groups=tuple(groups.values()))
