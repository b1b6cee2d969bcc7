"""The one error a user should ever see: a bad value, named precisely."""
from __future__ import annotations


class ConfigError(ValueError):
    """A configuration or input value that the twin cannot accept.

    The message names the field, the value and what is allowed, so the CLI can
    print it alone (no traceback) and exit with code 2.
    """

    def __init__(self, field: str, value, allowed: str):
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field}: got {value!r}; {allowed}")


class DataError(ValueError):
    """A malformed input table: names the file, the line and the column."""

    def __init__(self, path, line: int | None, column: str | None, problem: str):
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if column:
            where += f", column {column}"
        super().__init__(f"{where}: {problem}")
