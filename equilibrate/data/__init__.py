"""Datasets: registry (source, licence, files with sha256, schema) and loaders.

>>> from equilibrate.data import load
>>> rows = load("xstest")   # doctest: +SKIP
>>> rows[0]["label"]        # doctest: +SKIP
'safe'

``load(name)`` returns ``list[dict]`` with an ``id: str`` in every row; ``registry()`` lists the
:class:`DatasetSpec` of every name. ``harmful_prompts()`` combines the harmful-prompt sets, and
``normalize_prompt()`` is the text key used to deduplicate prompts across sets.
"""

from equilibrate.data.download import ChecksumError, FileSpec, set_fetcher
from equilibrate.data.prompts import HARMFUL_SOURCES, harmful_prompts, normalize_prompt
from equilibrate.data.registry import DatasetSpec, clear_cache, get_spec, load, registry

__all__ = [
    "HARMFUL_SOURCES",
    "ChecksumError",
    "DatasetSpec",
    "FileSpec",
    "clear_cache",
    "get_spec",
    "harmful_prompts",
    "load",
    "normalize_prompt",
    "registry",
    "set_fetcher",
]
