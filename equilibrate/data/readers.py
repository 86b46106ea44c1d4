"""Readers for the file formats the datasets come in, and the field checks every loader uses.

Row numbers in errors are 1-based and mean what a person sees when opening the file:

- CSV with a header: the spreadsheet row, so the header is row 1 and the first record is row 2
  (a record whose text spans several lines still counts as one row).
- CSV without a header (MMLU): the record number, first record = row 1.
- JSON holding a list (or a list under a key): the position of the record in the list, from 1.
- JSONL and JSONL.GZ: the line number, from 1 (blank lines are skipped but counted).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from equilibrate.errors import DataFormatError

Record = tuple[int, dict[str, Any]]


def _open_text(path: Path) -> io.TextIOBase:
    """Open ``path`` as UTF-8 text, decompressing ``.gz`` files."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")  # type: ignore[return-value]
    return open(path, encoding="utf-8", newline="")  # noqa: SIM115


def _csv_records(path: Path, handle: io.TextIOBase) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(row, cells)`` for each CSV record, the first being row 1; a malformed record
    raises ``DataFormatError`` naming its row."""
    reader = csv.reader(handle)
    row = 0
    while True:
        row += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataFormatError(path, row, None, f"not valid CSV: {err}") from None
        yield row, cells


def read_csv(path: Path, required: Sequence[str]) -> Iterator[Record]:
    """Yield ``(row, record)`` for each record of a CSV file with a header line.

    Raises ``DataFormatError`` (row 1) when a ``required`` column is missing from the header, and
    for a record with more or fewer cells than the header has columns.
    """
    with _open_text(path) as handle:
        records = _csv_records(path, handle)
        first = next(records, None)
        if first is None:
            raise DataFormatError(path, 1, None, "the file is empty; expected a header")
        header = first[1]
        for name in required:
            if name not in header:
                raise DataFormatError(
                    path, 1, name, f"column missing from the header (found: {header})"
                )
        for row, cells in records:
            if not cells:
                continue
            if len(cells) != len(header):
                raise DataFormatError(
                    path, row, None, f"{len(cells)} cells, but the header has {len(header)}"
                )
            yield row, dict(zip(header, cells, strict=True))


def read_csv_headerless(path: Path, columns: Sequence[str]) -> Iterator[Record]:
    """Yield ``(row, record)`` for a CSV file without a header, naming cells by ``columns``."""
    with _open_text(path) as handle:
        for row, cells in _csv_records(path, handle):
            if len(cells) != len(columns):
                raise DataFormatError(
                    path, row, None,
                    f"{len(cells)} cells; expected {len(columns)} ({', '.join(columns)})",
                )
            yield row, dict(zip(columns, cells, strict=True))


def read_json(path: Path, key: str | None = None) -> Any:
    """Parse a whole JSON file; with ``key``, return that member of the top-level object."""
    with _open_text(path) as handle:
        try:
            data = json.load(handle)
        except json.JSONDecodeError as err:
            raise DataFormatError(
                path, None, None, f"not valid JSON at line {err.lineno}, column {err.colno}: "
                f"{err.msg}"
            ) from None
    if key is not None:
        if not isinstance(data, dict) or key not in data:
            raise DataFormatError(path, None, key, "expected a JSON object with this key")
        data = data[key]
    return data


def read_json_records(path: Path, key: str | None = None) -> Iterator[Record]:
    """Yield ``(row, record)`` for each object of a JSON list (optionally under ``key``)."""
    data = read_json(path, key)
    if not isinstance(data, list):
        raise DataFormatError(path, None, key, f"expected a JSON list, found {type(data).__name__}")
    for row, record in enumerate(data, start=1):
        if not isinstance(record, dict):
            raise DataFormatError(
                path, row, None, f"expected a JSON object, found {type(record).__name__}"
            )
        yield row, record


def read_jsonl(path: Path) -> Iterator[Record]:
    """Yield ``(line, record)`` for each JSON object of a JSONL (or JSONL.GZ) file."""
    with _open_text(path) as handle:
        for row, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(
                    path, row, None, f"not valid JSON (column {err.colno}: {err.msg})"
                ) from None
            if not isinstance(record, dict):
                raise DataFormatError(
                    path, row, None, f"expected a JSON object, found {type(record).__name__}"
                )
            yield row, record


def text(path: Path, row: int, record: dict[str, Any], field: str, *, empty: bool = False) -> str:
    """Return ``record[field]`` as a string, checking it is present, a string and (unless
    ``empty``) not blank."""
    if field not in record or record[field] is None:
        raise DataFormatError(path, row, field, "missing; expected text")
    value = record[field]
    if not isinstance(value, str):
        raise DataFormatError(path, row, field, f"expected text, found {type(value).__name__}")
    if not empty and not value.strip():
        raise DataFormatError(path, row, field, "empty; expected non-blank text")
    return value


def choice(
    path: Path, row: int, record: dict[str, Any], field: str, allowed: dict[str, str]
) -> str:
    """Return the normalised label for ``record[field]``; ``allowed`` maps raw -> normalised."""
    raw = text(path, row, record, field)
    if raw not in allowed:
        raise DataFormatError(
            path, row, field, f"unknown label {raw!r}; expected one of {sorted(allowed)}"
        )
    return allowed[raw]


def text_list(path: Path, row: int, value: Any, field: str) -> list[str]:
    """Check that ``value`` is a non-empty list of strings."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise DataFormatError(path, row, field, "expected a non-empty list of strings")
    return list(value)
