"""One file out of an npm package's tarball, checked and cached.

The tarball comes from the npm registry and is checked against the
registry's integrity hash (``sha512-<base64 digest>``) before anything in it
is read; the file is written under a temporary name and renamed, so a reader
never sees half of it. A file already in place is reused.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

__all__ = ["NpmFetchError", "cache_root", "download", "fetch_member", "write_atomic"]


class NpmFetchError(RuntimeError):
    """A package could not be downloaded, verified or read."""


def cache_root() -> Path:
    """``$SAVIN_CACHE_DIR``, or ``~/.cache/savin``."""
    return Path(os.environ.get("SAVIN_CACHE_DIR") or Path.home() / ".cache" / "savin")


def fetch_member(dest: Path, url: str, integrity: str, member: str, *, what: str = "the package",
                 check: Callable[[bytes], object] | None = None, error: type[Exception] = NpmFetchError,
                 timeout: float = 60.0) -> Path:
    """``dest``, after downloading ``url``, checking it and extracting ``member`` if it is missing.

    ``check`` is called on the member's content and may raise ``ValueError``;
    ``error`` is the exception class raised for every failure.
    """
    if dest.exists():
        return dest
    tarball = download(url, what=what, instead=f"put {member} from that tarball at {dest}", error=error,
                       timeout=timeout)
    algorithm, _, expected = integrity.partition("-")
    try:
        actual = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode()
    except ValueError as e:
        raise error(f"unknown integrity algorithm {algorithm!r}") from e
    if actual != expected:
        raise error(f"{url} failed its integrity check: {algorithm} is {actual}, expected {expected}")
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
            extracted = tar.extractfile(member)
            if extracted is None:
                raise KeyError(member)
            content = extracted.read()
    except (KeyError, tarfile.TarError) as e:
        raise error(f"{member} could not be read from {url}: {e}") from e
    if check is not None:
        try:
            check(content)
        except ValueError as e:
            raise error(f"{member} in {url} is not usable: {e}") from e
    return write_atomic(dest, content)


def download(url: str, *, what: str, instead: str, error: type[Exception], timeout: float) -> bytes:
    """The body at ``url``. A failure raises ``error`` naming ``what`` was fetched
    and what to do ``instead`` without the network."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise error(f"could not download {what} from {url}: {e}. Check the network, or {instead}.") from e


def write_atomic(dest: Path, content: bytes) -> Path:
    """Write ``content`` to ``dest`` under a temporary name, then rename it into
    place, so a reader never sees half of it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest
