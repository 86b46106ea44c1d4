"""JSONL input and output shared by the commands that rewrite a file row by row.

:func:`read_jsonl_rows` reads and checks the whole input before anything is written; its errors
are :class:`~equilibrate.errors.DataFormatError` naming the file, the 1-based line (reported as
``row``) and the field. :func:`write_rows_atomically` writes to a temporary file beside the output
and renames it onto the output only when complete, so a failure never leaves a half-written file
(an existing output stays as it was); the new file gets the mode a plain ``open(path, "w")``
would give it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from equilibrate._files import write_text_atomically
from equilibrate.errors import DataFormatError

RowCheck = Callable[[Path, int, dict[str, Any]], None]


def read_jsonl_rows(path: Path, check: RowCheck | None = None) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file, one per non-blank line.

    ``check(path, line, row)`` is called on every object and raises ``DataFormatError`` for a row
    without the fields the caller needs.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        DataFormatError: for a line that is not valid JSON, not a JSON object, or fails ``check``.
    """
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(path, number, None, f"not valid JSON ({err.msg})") from err
            if not isinstance(row, dict):
                raise DataFormatError(path, number, None, "expected a JSON object per line")
            if check is not None:
                check(path, number, row)
            rows.append(row)
    return rows


def write_rows_atomically(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write ``rows`` as JSONL to a temporary file beside ``path``, then rename it onto it."""
    write_text_atomically(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
