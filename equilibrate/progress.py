"""Progress bars that stay out of the built book.

``EQUILIBRATE_PROGRESS=0`` (set by the book build) switches every bar off.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    """Whether progress bars should be drawn."""
    return os.environ.get("EQUILIBRATE_PROGRESS", "1").lower() not in ("0", "false", "no")


def progress(iterable: Iterable[T], **kwargs) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar unless bars are switched off."""
    kwargs.setdefault("disable", not progress_enabled())
    kwargs.setdefault("leave", False)
    return iter(tqdm(iterable, **kwargs))
