"""Fetching dataset files: from the local data folder, or from upstream into the cache.

With ``EQUILIBRATE_DATA_DIR`` set, files are read from ``<data_dir>/<folder>/<path>``. Without it,
each file is downloaded from its pinned upstream URL into ``cache_dir("data", <folder>)``. Either
way the file's sha256 must equal the one recorded in the registry: a mismatch raises
:class:`ChecksumError` naming the file, the expected and the found digest, and a downloaded file
that fails the check is deleted rather than kept.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from equilibrate.paths import cache_dir, data_dir

log = logging.getLogger(__name__)

RAW_GITHUB = "https://raw.githubusercontent.com"
LFS_GITHUB = "https://media.githubusercontent.com/media"


class ChecksumError(ValueError):
    """A dataset file's sha256 differs from the one recorded in the registry."""

    def __init__(self, file: str | Path, expected: str, got: str) -> None:
        self.file = str(file)
        self.expected = expected
        self.got = got
        super().__init__(
            f"{self.file}: sha256 mismatch: expected {expected}, got {got}. The file is not the "
            "pinned upstream version; delete it (or fix EQUILIBRATE_DATA_DIR) and load again."
        )


@dataclass(frozen=True)
class FileSpec:
    """One file a dataset reads.

    Attributes:
        path: path inside the dataset's folder (the layout of the shared data folder).
        sha256: hex digest of the exact bytes.
        url: where the pinned bytes can be downloaded, or ``None`` when no plain URL serves them.
        unavailable: for ``url=None``, why, in words a reader can act on.
    """

    path: str
    sha256: str
    url: str | None = None
    unavailable: str = ""


def github_raw(repo: str, commit: str, path: str) -> str:
    """The raw.githubusercontent.com URL of ``path`` in ``repo`` at ``commit``."""
    return f"{RAW_GITHUB}/{repo}/{commit}/{urllib.request.pathname2url(path).lstrip('/')}"


def github_lfs(repo: str, commit: str, path: str) -> str:
    """The media.githubusercontent.com URL of a Git-LFS file (the content, not the pointer)."""
    return f"{LFS_GITHUB}/{repo}/{commit}/{urllib.request.pathname2url(path).lstrip('/')}"


def sha256_file(path: Path) -> str:
    """The hex sha256 digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_url(url: str, dest: Path) -> None:
    """Download ``url`` to ``dest`` (``file://`` URLs work too; used by the tests)."""
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:  # noqa: S310
        shutil.copyfileobj(response, out)


# Replaced in tests to exercise the download path without network.
Fetcher = Callable[[str, Path], None]
_fetch: Fetcher = fetch_url


def set_fetcher(fetcher: Fetcher | None) -> None:
    """Use ``fetcher(url, dest)`` for downloads (``None`` restores the urllib one)."""
    global _fetch
    _fetch = fetch_url if fetcher is None else fetcher


def verify(path: Path, expected: str) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has sha256 ``expected``."""
    got = sha256_file(path)
    if got != expected:
        raise ChecksumError(path, expected, got)


def resolve(folder: str, spec: FileSpec, dataset: str) -> Path:
    """A verified local path for one file of a dataset, downloading it when needed."""
    root = data_dir()
    if root is not None:
        path = root / folder / spec.path
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: not found; dataset '{dataset}' expects it under EQUILIBRATE_DATA_DIR="
                f"{root} (layout <data_dir>/{folder}/{spec.path})"
            )
        verify(path, spec.sha256)
        return path
    path = cache_dir("data", folder) / spec.path
    if path.is_file():
        if sha256_file(path) == spec.sha256:
            return path
        log.warning("%s: cached copy has the wrong sha256; downloading it again", path)
        path.unlink()
    if spec.url is None:
        raise FileNotFoundError(
            f"{folder}/{spec.path} (dataset '{dataset}') cannot be downloaded: {spec.unavailable} "
            "Set EQUILIBRATE_DATA_DIR to a folder that holds it."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    log.info("downloading %s -> %s", spec.url, path)
    try:
        _fetch(spec.url, partial)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise FileNotFoundError(
            f"{folder}/{spec.path} (dataset '{dataset}'): download from {spec.url} failed: {err}"
        ) from err
    got = sha256_file(partial)
    if got != spec.sha256:
        partial.unlink()
        raise ChecksumError(f"{spec.url} (for {path})", spec.sha256, got)
    os.replace(partial, path)
    return path
