"""Twilio's official OpenAPI description of its 2010-04-01 REST API.

Fetched from the npm package ``@twilio/cli-core`` (which ships Twilio's specs),
checked against the registry's integrity hash, and cached under
``$SAVIN_CACHE_DIR/twilio`` (default ``~/.cache/savin``) for later runs.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import tempfile
import urllib.request
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["SpecError", "spec_path", "load_spec", "trimmed_spec"]

PACKAGE = "@twilio/cli-core"
VERSION = "9.0.0"
TARBALL = f"https://registry.npmjs.org/{PACKAGE}/-/cli-core-{VERSION}.tgz"
INTEGRITY = "sha512-FPHm5gXAUwM2oATmQi3AGYPFz4Urg5G5/vDkpUu5WqNuwueQaS93HwXjdX1OM+miuq0LMimdfbXDTLEp4Nsjfg=="
MEMBER = "package/src/services/twilio-api/twilio_api_v2010.json"


class SpecError(RuntimeError):
    pass


def cache_dir() -> Path:
    return Path(os.environ.get("SAVIN_CACHE_DIR", Path.home() / ".cache" / "savin")) / "twilio"


def spec_path() -> Path:
    """The cached spec file, downloading it first if needed."""
    path = cache_dir() / f"twilio_api_v2010-cli-core-{VERSION}.json"
    if path.exists():
        return path
    try:
        with urllib.request.urlopen(TARBALL, timeout=60) as r:
            tarball = r.read()
    except OSError as e:
        raise SpecError(f"could not download Twilio's OpenAPI spec from {TARBALL}: {e}") from e
    algorithm, _, expected = INTEGRITY.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode()
    if actual != expected:
        raise SpecError(f"{TARBALL} failed its integrity check ({algorithm} {actual} != {expected})")
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        member = tar.extractfile(MEMBER)
        if member is None:
            raise SpecError(f"{MEMBER} not found in {TARBALL}")
        content = member.read()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
        tmp.write(content)
    os.replace(tmp.name, path)
    return path


@lru_cache(maxsize=1)
def load_spec() -> dict[str, Any]:
    return json.loads(spec_path().read_text())


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            if isinstance(ref := n.get("$ref"), str):
                found.add(ref)
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)
    return found


def trimmed_spec(operations: dict[str, list[str]]) -> dict[str, Any]:
    """The spec restricted to ``{path: [methods]}`` and the components they use.

    Validation then walks a small document instead of Twilio's whole API; every
    schema that matters for those operations is kept exactly as published.
    """
    spec = load_spec()
    paths: dict[str, Any] = {}
    for path, methods in operations.items():
        item = spec["paths"][path]
        paths[path] = {k: v for k, v in item.items() if k not in {"get", "post", "put", "delete", "patch"}}
        for method in methods:
            paths[path][method] = item[method]
    components: dict[str, dict[str, Any]] = {"securitySchemes": spec["components"]["securitySchemes"]}
    pending = _refs(paths)
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, kind, name = ref.split("/", 3)  # "#/components/<kind>/<name>"
        target = spec["components"][kind][name]
        components.setdefault(kind, {})[name] = target
        pending |= _refs(target)
    return {
        "openapi": spec["openapi"],
        "info": spec["info"],
        "servers": spec.get("servers", []),
        "security": spec.get("security", []),
        "paths": paths,
        "components": components,
    }


def _inline(node: Any, spec: dict[str, Any]) -> Any:
    """``node`` with every ``$ref`` into ``#/components`` replaced by its target."""
    if isinstance(node, dict):
        if isinstance(ref := node.get("$ref"), str):
            _, _, kind, name = ref.split("/", 3)
            return _inline(spec["components"][kind][name], spec)
        return {k: _inline(v, spec) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, spec) for v in node]
    return node


class OperationValidator:
    """Validates one operation's requests against the published spec.

    The path parameters and the form body are checked with the OpenAPI 3.0
    schema validator (``openapi-schema-validator``, the engine under
    ``openapi-core``) compiled once per operation, so a request costs tens of
    microseconds instead of milliseconds; ``tests/test_fake_twilio.py`` checks
    that it agrees with ``openapi-core``'s full request validator.
    """

    def __init__(self, path: str, method: str):
        from openapi_schema_validator import OAS30Validator, oas30_format_checker

        spec = trimmed_spec({path: [method]})
        op = _inline(spec["paths"][path][method], spec)
        self.path, self.method = path, method
        checker = copy_checker(oas30_format_checker)
        self.path_params = {
            p["name"]: OAS30Validator(p["schema"], format_checker=checker)
            for p in op.get("parameters", []) if p["in"] == "path"
        }
        body = op.get("requestBody", {}).get("content", {})
        self.content_types = set(body)
        form = body.get("application/x-www-form-urlencoded", {}).get("schema", {"type": "object"})
        self.properties: dict[str, Any] = form.get("properties", {})
        self.body = OAS30Validator(form, format_checker=checker)

    def errors(self, path_params: dict[str, str], content_type: str, form: list[tuple[str, str]]) -> list[str]:
        """Everything wrong with the request, each naming its parameter; empty when valid."""
        problems = []
        for name, validator in self.path_params.items():
            for e in validator.iter_errors(path_params.get(name)):
                problems.append(f"path parameter {name}: {e.message}")
        if self.content_types and content_type not in self.content_types:
            problems.append(f"content type {content_type!r} not in {sorted(self.content_types)}")
            return problems
        doc: dict[str, Any] = {}
        for key, value in form:
            schema = self.properties.get(key)
            if schema is None:
                problems.append(f"{key}: not a parameter of this operation")
                continue
            if schema.get("type") == "array":
                doc.setdefault(key, []).append(_cast(value, schema.get("items", {})))
            else:
                doc[key] = _cast(value, schema)
        for e in self.body.iter_errors(doc):
            where = ".".join(str(p) for p in e.absolute_path) or "body"
            problems.append(f"{where}: {e.message}")
        return problems


def _cast(value: str, schema: dict[str, Any]) -> Any:
    """Form values are strings; cast them as the schema's type says (as Twilio does)."""
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value  # left as a string, so the validator reports the wrong type
    if kind == "boolean":
        return {"true": True, "false": False}.get(value.lower(), value)
    return value


def copy_checker(base):
    """The OpenAPI format checker plus Twilio's own ``phone-number`` format."""
    import copy
    import re

    checker = copy.deepcopy(base)
    e164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
    channel = re.compile(r"^[a-z]+:.+$")  # whatsapp:+1..., messenger:..., etc.

    @checker.checks("phone-number")
    def _phone(value: object) -> bool:
        return not isinstance(value, str) or bool(e164.match(value) or channel.match(value)) or value.isalnum()

    return checker
