"""The one YAML reader of the project: bounded, strict, fast.

Hand-edited files reach the twin, so a YAML file is refused in one line
(:class:`~twin.errors.DataError` naming the file, and the line where there is
one) before anything is built from it when it is

- larger than :data:`MAX_BYTES` (checked before reading: a valid 50 MB line
  took minutes to parse and is no hand-written line);
- not UTF-8 text (a UTF-8 byte-order mark is accepted and dropped; UTF-16/32
  and other encodings are named);
- a mapping with a key written twice (YAML keeps the last one silently);
- nested deeper than :data:`MAX_DEPTH` levels (a line is about 8 deep);
- an alias bomb: anchors and aliases expanding to more than
  :data:`MAX_EXPANDED_NODES` nodes;
- of the wrong type at the top level, when the caller says which it expects.

PyYAML's C parser (libyaml) is used where present, the pure-Python one
otherwise; both give the same objects.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from twin.errors import DataError

# 8 MiB: the largest line in configs/ is a few kB, a hand-written 1,000-tool line about 1 MB.  Composing
# YAML nodes costs most of a load even with libyaml (measured: a 0.33 MiB line in 1.35 s with the C loader,
# 6.0 s pure-Python, on a 2-core machine under load 10), so a bigger file would take minutes.
MAX_BYTES = 8 * 2**20
MAX_DEPTH = 64
MAX_EXPANDED_NODES = 2_000_000

_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_BOMS = ((b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe\x00\x00", "UTF-32"), (b"\xfe\xff", "UTF-16"), (b"\xff\xfe", "UTF-16"))


class _StrictLoader(_BASE_LOADER):
    """Safe loader that refuses a key written twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first_line = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in first_line:
                        raise _Duplicate(key, key_node.start_mark, first_line[key])
                    first_line[key] = key_node.start_mark.line + 1
                except TypeError:  # an unhashable key: the constructor reports it
                    continue
        return super().construct_mapping(node, deep=deep)


class _Duplicate(Exception):
    def __init__(self, key, mark, first_line):
        self.key, self.mark, self.first_line = key, mark, first_line


def load_yaml_file(path, expect: type | None = None, what: str = "a YAML mapping"):
    """Read ``path`` within the bounds above; ``expect`` (dict or list) checks the top-level value."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise DataError(path, None, None, f"is {size / 2**20:.1f} MiB; a YAML file may hold at most {MAX_BYTES // 2**20} MiB "
                            "(split the line or generate it in Python and pass the mapping)")
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(path, None, None, f"cannot be read: {err.strerror or err}") from None
    return load_yaml_text(decode_text(raw, path), path, expect, what)


def decode_text(raw: bytes, path) -> str:
    """UTF-8 text of ``raw`` without a byte-order mark; any other encoding is named and refused."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            raise DataError(path, None, None, f"is {name} text (byte-order mark {bom.hex(' ').upper()}); save it as UTF-8")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise DataError(path, line, None, "holds NUL bytes: a binary file, or UTF-16/32 text without a byte-order mark; save it as UTF-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(path, line, None, f"is not UTF-8 text (byte 0x{raw[err.start]:02X} at offset {err.start}); save it as UTF-8") from None


def load_yaml_text(text: str, path="<text>", expect: type | None = None, what: str = "a YAML mapping"):
    """Parse ``text`` strictly (see the module docstring); errors name ``path``."""
    if len(text) > MAX_BYTES:
        raise DataError(path, None, None, f"holds {len(text):,} characters; YAML text may hold at most {MAX_BYTES:,}")
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_shape(node, path)
        data = loader.construct_document(node) if node is not None else None
    except _Duplicate as dup:
        raise DataError(path, dup.mark.line + 1, None,
                        f"key {dup.key!r} appears twice in one mapping (first at line {dup.first_line}); YAML would keep only the last") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        col = f" (column {mark.column + 1})" if mark is not None else ""
        raise DataError(path, line, None, f"is not valid YAML{col}: {err.problem or err.context or err}") from None
    except yaml.YAMLError as err:
        raise DataError(path, None, None, f"is not valid YAML: {err}") from None
    except RecursionError:
        raise DataError(path, None, None, f"nests too deeply (at most {MAX_DEPTH} levels)") from None
    finally:
        loader.dispose()
    if expect is not None and not isinstance(data, expect):
        got = "empty" if data is None else f"a {_kind(data)}"
        raise DataError(path, None, None, f"top level is {got}; it must be {what}")
    return data


def _kind(value) -> str:
    return {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(value), type(value).__name__)


def _check_shape(root, path) -> None:
    """Depth and alias expansion of the node graph, walked without recursion and with a budget."""
    stack = [(root, 1)]
    expanded = 0
    while stack:
        node, depth = stack.pop()
        expanded += 1
        if expanded > MAX_EXPANDED_NODES:
            raise DataError(path, None, None, f"expands to more than {MAX_EXPANDED_NODES:,} values through anchors and aliases "
                            "(an alias bomb?); write the values out or use fewer nested aliases")
        if depth > MAX_DEPTH:
            raise DataError(path, node.start_mark.line + 1, None, f"nests more than {MAX_DEPTH} levels deep; a line needs about 8")
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
