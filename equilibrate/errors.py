"""Exceptions that tell a person what to fix: which file, which row, which field."""

from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    """A data file does not have the form its loader expects.

    The message names the file, the 1-based row (or record) and the field, says what was expected
    and what was found.
    """

    def __init__(
        self,
        file: str | Path,
        row: int | None,
        field: str | None,
        problem: str,
    ) -> None:
        self.file = str(file)
        self.row = row
        self.field = field
        self.problem = problem
        where = self.file
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {problem}")


class ConfigError(ValueError):
    """A setting has a value outside what it accepts; the message names the field."""

    def __init__(self, field: str, problem: str, source: str | Path | None = None) -> None:
        self.field = field
        self.problem = problem
        self.source = None if source is None else str(source)
        prefix = f"{self.source}: " if self.source else ""
        super().__init__(f"{prefix}setting '{field}': {problem}")
