"""The Compose Specification's JSON Schema, as compose-go ships it, and
validation of a compose file against it.

compose-go is the loader ``docker compose`` itself uses; its Go module carries
the schema it validates every file with (``schema/compose-spec.json``). The
module's zip comes from the Go module proxy and is checked against the module's
``h1:`` hash, the one ``go.sum`` and Go's checksum database hold for it, before
anything in it is read. The schema is cached under
``$SAVIN_CACHE_DIR/compose-spec`` (default ``~/.cache/savin/compose-spec``) and
reused by later runs.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from savin.dev.testing.npm import cache_root, download, write_atomic

__all__ = ["H1", "MODULE", "VERSION", "ComposeSpecError", "dirhash", "fetch_module_file", "load_schema",
           "problems", "schema_path"]

MODULE = "github.com/compose-spec/compose-go/v2"
VERSION = "v2.16.2"
#: The module's hash as ``go mod download -json`` reports it (checked against sum.golang.org).
H1 = "h1:pTp1DqQwJzFd85GzlWsSszKA1ABrV/ySqsClujIcWA8="
MEMBER = "schema/compose-spec.json"
PROXY = "https://proxy.golang.org"


class ComposeSpecError(RuntimeError):
    """The schema could not be downloaded, verified or read."""


def dirhash(archive: zipfile.ZipFile) -> str:
    """Go's ``h1:`` hash of a module zip (golang.org/x/mod/sumdb/dirhash ``Hash1``):
    SHA-256 over the sorted lines ``<sha256 hex>  <file name>`` of its files."""
    lines = "".join(f"{hashlib.sha256(archive.read(name)).hexdigest()}  {name}\n"
                    for name in sorted(archive.namelist()))
    return "h1:" + base64.b64encode(hashlib.sha256(lines.encode()).digest()).decode()


def _escape(path: str) -> str:
    """A module path as the proxy spells it: each capital letter as ``!`` and the lower case."""
    return "".join(f"!{c.lower()}" if c.isupper() else c for c in path)


def fetch_module_file(dest: Path, module: str, version: str, h1: str, member: str, *,
                      proxy: str = PROXY, timeout: float = 60.0) -> Path:
    """``dest``, after downloading the module's zip, checking its ``h1:`` hash and
    extracting ``member`` (a path inside the module) if it is missing."""
    if dest.exists():
        return dest
    url = f"{proxy.rstrip('/')}/{_escape(module)}/@v/{_escape(version)}.zip"
    data = download(url, what=f"{module}@{version}", instead=f"put {member} from that module at {dest}",
                    error=ComposeSpecError, timeout=timeout)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            actual = dirhash(archive)
            if actual != h1:
                raise ComposeSpecError(f"{url} failed its checksum: {actual}, expected {h1}")
            content = archive.read(f"{module}@{version}/{member}")
    except (KeyError, zipfile.BadZipFile) as e:
        raise ComposeSpecError(f"{member} could not be read from {url}: {e}") from e
    return write_atomic(dest, content)


def schema_path() -> Path:
    """The cached schema file, downloaded first if needed."""
    dest = cache_root() / "compose-spec" / f"compose-spec-compose-go-{VERSION}.json"
    return fetch_module_file(dest, MODULE, VERSION, H1, MEMBER)


def load_schema() -> dict[str, Any]:
    path = schema_path()
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ComposeSpecError(f"could not read the compose schema at {path}: {e}; delete it to fetch it again") from e


def problems(document: Any, schema: dict[str, Any] | None = None) -> list[str]:
    """What in a loaded compose document breaks the Compose Specification, each as
    ``path: message``; empty when it is valid."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema or load_schema())
    found = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in found]
