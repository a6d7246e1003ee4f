"""Twilio's official OpenAPI description of its 2010-04-01 REST API, and
request validation against it with ``openapi-core``.

The spec comes from the npm package ``@twilio/cli-core`` (which ships Twilio's
specs). The tarball is checked against the registry's integrity hash, and the
spec is cached under ``$SAVIN_CACHE_DIR/twilio`` (default
``~/.cache/savin/twilio``) and reused by later runs.

:class:`SpecValidator` runs ``openapi-core``'s own request validator
(``V30RequestValidator``, through :class:`openapi_core.OpenAPI`) on every
request. Out of the box that validator re-reads the spec and rebuilds the
JSON-schema validators of all 26 form fields of *Create Message* on every
request (about 4 ms a request). :func:`_openapi` configures it so that this
spec-derived machinery is built once per schema and reused: compiled schema
validators, style deserializers per form field, and jsonschema-path's resolved
path cache. The values of every request are still deserialised, cast and
validated by ``openapi-core``; nothing about a request's outcome is cached.
"""

from __future__ import annotations

import copy
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema_path import SchemaPath
from openapi_core import Config, OpenAPI
from openapi_core.casting.schemas import oas30_types_caster
from openapi_core.casting.schemas.factories import SchemaCastersFactory
from openapi_core.datatypes import RequestParameters
from openapi_core.deserializing.exceptions import DeserializeError
from openapi_core.deserializing.media_types import media_type_deserializers
from openapi_core.deserializing.media_types.deserializers import MediaTypeDeserializer
from openapi_core.deserializing.media_types.factories import (
    MediaTypeDeserializersFactory,
)
from openapi_core.deserializing.styles import style_deserializers
from openapi_core.deserializing.styles.deserializers import StyleDeserializer
from openapi_core.deserializing.styles.factories import StyleDeserializersFactory
from openapi_core.schema.parameters import get_style_and_explode
from openapi_core.templating.media_types.exceptions import MediaTypeNotFound
from openapi_core.templating.paths.exceptions import OperationNotFound, PathError
from openapi_core.validation.request.exceptions import (
    MissingRequestBodyError,
    ParameterValidationError,
    RequestBodyValidationError,
    SecurityValidationError,
)
from openapi_core.validation.schemas import oas30_write_schema_validators_factory
from openapi_core.validation.schemas.exceptions import InvalidSchemaValue
from openapi_core.validation.schemas.factories import SchemaValidatorsFactory
from openapi_core.validation.schemas.validators import SchemaValidator

from savin.dev.testing.npm import cache_root, fetch_member

__all__ = [
    "SpecError", "Problem", "SpecValidator", "cache_dir", "fetch_spec", "spec_path", "load_spec",
    "trimmed_spec", "TARBALL", "INTEGRITY", "MEMBER",
]

PACKAGE = "@twilio/cli-core"
VERSION = "9.0.0"
TARBALL = f"https://registry.npmjs.org/{PACKAGE}/-/cli-core-{VERSION}.tgz"
INTEGRITY = "sha512-FPHm5gXAUwM2oATmQi3AGYPFz4Urg5G5/vDkpUu5WqNuwueQaS93HwXjdX1OM+miuq0LMimdfbXDTLEp4Nsjfg=="
MEMBER = "package/src/services/twilio-api/twilio_api_v2010.json"
FILENAME = f"twilio_api_v2010-cli-core-{VERSION}.json"

_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


class SpecError(RuntimeError):
    """Twilio's spec could not be fetched, verified or read."""


# ---- fetching and caching ---------------------------------------------------------------


def cache_dir() -> Path:
    return cache_root() / "twilio"


def fetch_spec(dest: Path, url: str = TARBALL, integrity: str = INTEGRITY, member: str = MEMBER,
               timeout: float = 60.0) -> Path:
    """``dest``, after downloading ``url``, checking it and extracting ``member`` if it is missing.

    ``integrity`` is an npm/SRI string (``sha512-<base64 digest>``); the member must be JSON.
    """
    return fetch_member(dest, url, integrity, member, what="Twilio's OpenAPI spec", check=json.loads,
                        error=SpecError, timeout=timeout)


def spec_path() -> Path:
    """The cached spec file, downloaded first if needed."""
    return fetch_spec(cache_dir() / FILENAME)


@lru_cache(maxsize=1)
def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SpecError(f"could not read Twilio's OpenAPI spec at {path}: {e}; delete it to fetch it again") from e


def load_spec() -> dict[str, Any]:
    """Twilio's whole 2010-04-01 spec (shared; do not modify it)."""
    return _load(spec_path())


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


def trimmed_spec(operations: Mapping[str, list[str]]) -> dict[str, Any]:
    """The spec restricted to ``{path: [methods]}`` and the components they reference.

    A valid OpenAPI document on its own (servers, security and security schemes
    kept); every kept object is a copy of the published one, unchanged.
    """
    spec = load_spec()
    paths: dict[str, Any] = {}
    for path, methods in operations.items():
        try:
            item = spec["paths"][path]
        except KeyError:
            raise SpecError(f"{path} is not in Twilio's spec") from None
        paths[path] = {k: v for k, v in item.items() if k not in _METHODS}
        for method in methods:
            if method not in item:
                raise SpecError(f"{method.upper()} {path} is not in Twilio's spec")
            paths[path][method] = item[method]
    components: dict[str, dict[str, Any]] = {}
    if "securitySchemes" in spec.get("components", {}):
        components["securitySchemes"] = spec["components"]["securitySchemes"]
    pending = _refs(paths)
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        if not ref.startswith("#/components/"):
            raise SpecError(f"unsupported reference {ref!r} in Twilio's spec")
        _, _, kind, name = ref.split("/", 3)
        target = spec["components"][kind][name]
        components.setdefault(kind, {})[name] = target
        pending |= _refs(target)
    trimmed = {
        "openapi": spec["openapi"],
        "info": spec["info"],
        "servers": spec.get("servers", []),
        "paths": paths,
        "components": components,
    }
    if "security" in spec:
        trimmed["security"] = spec["security"]
    return copy.deepcopy(trimmed)


# ---- openapi-core, configured to build spec-derived machinery once ---------------------------


class _CompiledSchemaValidators(SchemaValidatorsFactory):
    """openapi-core's schema validator factory, building each schema's validator once.

    The stock factory deep-copies its format checker and re-resolves the schema
    on every call. Validators are cached per schema location in this spec only
    (ad-hoc schemas openapi-core makes on the fly are built as usual).
    """

    def __init__(self, base: SchemaValidatorsFactory):
        super().__init__(base.schema_validator_cls, base.format_checker)
        self._built: dict[tuple, SchemaValidator] = {}

    def create(self, spec: SchemaPath, schema: SchemaPath, format_validators=None, extra_format_validators=None,
               forbid_unspecified_additional_properties: bool = False,
               enforce_properties_required: bool = False) -> SchemaValidator:
        if schema.accessor is not spec.accessor or format_validators or extra_format_validators:
            return super().create(spec, schema, format_validators, extra_format_validators,
                                  forbid_unspecified_additional_properties, enforce_properties_required)
        key = (schema.parts, forbid_unspecified_additional_properties, enforce_properties_required)
        validator = self._built.get(key)
        if validator is None:
            validator = self._built[key] = super().create(
                spec, schema, None, None, forbid_unspecified_additional_properties, enforce_properties_required)
        return validator


class _CompiledStyleDeserializers(StyleDeserializersFactory):
    """openapi-core's style deserializer factory, building one per parameter of this spec once."""

    def __init__(self, casters: SchemaCastersFactory):
        super().__init__(casters, style_deserializers=style_deserializers)
        self._built: dict[tuple, StyleDeserializer] = {}

    def create(self, spec: SchemaPath, schema: SchemaPath, style: str, explode: bool, name: str) -> StyleDeserializer:
        if schema.accessor is not spec.accessor:
            return super().create(spec, schema, style, explode, name)
        key = (schema.parts, style, explode, name)
        deserializer = self._built.get(key)
        if deserializer is None:
            deserializer = self._built[key] = super().create(spec, schema, style, explode, name)
        return deserializer


#: openapi-core's encoding for a form field the spec gives no ``encoding`` for.
_FORM_DEFAULT = get_style_and_explode(SchemaPath.from_dict({"style": "form"}), default_location="query")


class _FormDeserializer(MediaTypeDeserializer):
    """openapi-core's media type deserializer; for form fields without an explicit
    ``encoding`` (all of Twilio's) the field's style deserializer is looked up
    once instead of on every request. A field's deserialise or cast error is
    labelled with the field's name (``savin_field``) for error messages."""

    def __init__(self, *args: Any, styles: dict[tuple, StyleDeserializer] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._styles = styles if styles is not None else {}

    def decode_property(self, prop_name: str, prop_schema: SchemaPath, location: Mapping[str, Any]) -> Any:
        try:
            if (self.mimetype != "application/x-www-form-urlencoded"
                    or (self.encoding is not None and prop_name in self.encoding)
                    or prop_schema.accessor is not self.spec.accessor):
                return super().decode_property(prop_name, prop_schema, location)
            key = (prop_schema.parts, prop_name)
            deserializer = self._styles.get(key)
            if deserializer is None:
                style, explode = _FORM_DEFAULT
                deserializer = self._styles[key] = self.style_deserializers_factory.create(
                    self.spec, prop_schema, style, explode, name=prop_name)
            return deserializer.deserialize(location)
        except DeserializeError as e:
            e.savin_field = prop_name  # type: ignore[attr-defined]
            raise


class _FormDeserializers(MediaTypeDeserializersFactory):
    def __init__(self, styles: StyleDeserializersFactory):
        super().__init__(styles, media_type_deserializers=media_type_deserializers)
        self._styles: dict[tuple, StyleDeserializer] = {}

    def create(self, spec: SchemaPath, mimetype: str, *args: Any, **kwargs: Any) -> MediaTypeDeserializer:
        d = super().create(spec, mimetype, *args, **kwargs)
        return _FormDeserializer(
            d.spec, d.style_deserializers_factory, d.media_types_deserializer, d.mimetype,
            schema=d.schema, schema_validator=d.schema_validator, schema_caster=d.schema_caster,
            encoding=d.encoding, styles=self._styles, **d.parameters,
        )


def _openapi(spec: dict[str, Any]) -> OpenAPI:
    validators = _CompiledSchemaValidators(oas30_write_schema_validators_factory)
    casters = SchemaCastersFactory(validators, oas30_types_caster)
    styles = _CompiledStyleDeserializers(casters)
    config = Config(
        schema_validators_factory=validators,
        schema_casters_factory=casters,
        style_deserializers_factory=styles,
        media_type_deserializers_factory=_FormDeserializers(styles),
    )
    # The resolved-path cache spares re-walking the spec for every lookup.
    return OpenAPI(SchemaPath.from_dict(spec, resolved_cache_maxsize=4096), config=config)


# ---- validating requests ----------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One way a request breaks the spec. ``reason`` names the field, never its value."""

    kind: str  # "path", "method", "security", "parameter" or "body"
    field: str | None
    reason: str


class _Request:
    """The minimal request ``openapi-core`` validates (its ``Request`` protocol)."""

    __slots__ = ("host_url", "path", "method", "body", "content_type", "parameters")

    def __init__(self, host_url: str, path: str, method: str, headers: Mapping[str, str],
                 query: Mapping[str, str], content_type: str, body: bytes | None):
        self.host_url = host_url
        self.path = path
        self.method = method.lower()
        self.body = body
        self.content_type = content_type
        self.parameters = RequestParameters(query=query, header=headers, cookie={})


class _FastAccept:
    """A quick yes for a well-formed request to one operation.

    The operation's path parameters and form schema, taken from the same spec
    with their ``$ref``s inlined, are compiled once with
    ``openapi-schema-validator`` (the engine under ``openapi-core``): tens of
    microseconds a request, against about a millisecond for ``openapi-core``'s
    full request validator. It only ever says "valid"; anything it does not
    accept (an unknown field, a wrong type, a missing credential) goes to
    ``openapi-core``, whose verdict and wording stand. On a 2-core machine that
    millisecond is CPU the fake would take from the worker under benchmark.
    ``tests/test_fake_twilio.py`` checks it never accepts what ``openapi-core``
    refuses.
    """

    def __init__(self, spec: dict[str, Any], path: str, method: str):
        import re

        from openapi_schema_validator import OAS30Validator, oas30_format_checker

        op = _inline(spec["paths"][path][method], spec)
        self.method = method.upper()
        parts = re.split(r"{(\w+)}", path)  # literal, name, literal, ...
        names = parts[1::2]
        self.path = re.compile("^" + "".join(re.escape(p) if i % 2 == 0 else "([^/]+)"
                                             for i, p in enumerate(parts)) + "$")
        checker = _with_phone_numbers(oas30_format_checker)
        params = {p["name"]: p["schema"] for p in op.get("parameters", []) if p["in"] == "path"}
        self.path_params = [OAS30Validator(params.get(n, {}), format_checker=checker) for n in names]
        body = op.get("requestBody", {}).get("content", {})
        self.content_types = frozenset(body)
        form = body.get("application/x-www-form-urlencoded", {}).get("schema", {"type": "object"})
        self.properties: dict[str, Any] = form.get("properties", {})
        self.body = OAS30Validator(form, format_checker=checker)

    def accepts(self, method: str, path: str, headers: Mapping[str, str], content_type: str,
                body: bytes | None) -> bool:
        if method.upper() != self.method or content_type not in self.content_types:
            return False
        if not headers.get("Authorization", "").startswith("Basic "):
            return False
        m = self.path.match(path)
        if m is None or any(not v.is_valid(value) for v, value in zip(self.path_params, m.groups())):
            return False
        doc: dict[str, Any] = {}
        for key, value in urllib.parse.parse_qsl((body or b"").decode("utf-8", "replace"), keep_blank_values=True):
            schema = self.properties.get(key)
            if schema is None:
                return False
            if schema.get("type") == "array":
                doc.setdefault(key, []).append(_cast(value, schema.get("items", {})))
            else:
                doc[key] = _cast(value, schema)
        return self.body.is_valid(doc)


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


def _with_phone_numbers(base):
    """The OpenAPI format checker plus Twilio's own ``phone-number`` format."""
    import re

    checker = copy.deepcopy(base)
    e164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
    channel = re.compile(r"^[a-z]+:.+$")  # whatsapp:+1..., messenger:..., etc.

    @checker.checks("phone-number")
    def _phone(value: object) -> bool:
        return not isinstance(value, str) or bool(e164.match(value) or channel.match(value)) or value.isalnum()

    return checker


class SpecValidator:
    """Validates requests for the given operations of Twilio's API with openapi-core.

    Built once (a trimmed spec, one ``OpenAPI`` object); :meth:`problems` then
    validates each request in full: path and operation, security, path
    parameters, content type, and every form field (deserialised, cast and
    checked against its schema).
    """

    def __init__(self, operations: Mapping[str, list[str]]):
        self.spec = trimmed_spec(operations)
        servers = self.spec.get("servers") or [{"url": "https://api.twilio.com"}]
        self.host_url = servers[0]["url"].rstrip("/")
        self._openapi = _openapi(self.spec)
        self._validator = self._openapi.request_validator
        self._fast = [_FastAccept(self.spec, path, method) for path, methods in operations.items()
                      for method in methods if method == "post"]
        self.form_fields: dict[tuple[str, str], frozenset[str]] = {}
        for path, methods in operations.items():
            for method in methods:
                content = self.spec["paths"][path][method].get("requestBody", {}).get("content", {})
                form = content.get("application/x-www-form-urlencoded", {}).get("schema", {})
                self.form_fields[(path, method)] = frozenset(form.get("properties", {}))

    def problems(self, method: str, path: str, headers: Mapping[str, str], content_type: str,
                 body: bytes | None, query: Mapping[str, str] | None = None) -> list[Problem]:
        """Everything wrong with the request; empty when it is valid."""
        if not query and any(f.accepts(method, path, headers, content_type, body) for f in self._fast):
            return []
        request = _Request(self.host_url, path, method, headers, query or {}, content_type, body)
        found: list[Problem] = []
        for error in self._validator.iter_errors(request):
            found.extend(_describe(error))
        return found


def _describe(error: Exception) -> list[Problem]:
    if isinstance(error, OperationNotFound):
        return [Problem("method", None, f"method {error.method.upper()} not allowed on this resource")]
    if isinstance(error, PathError):
        return [Problem("path", None, "no such resource in Twilio's spec")]
    if isinstance(error, SecurityValidationError):
        return [Problem("security", "Authorization", "HTTP basic authentication required")]
    if isinstance(error, ParameterValidationError):
        cause = error.__cause__
        if isinstance(cause, InvalidSchemaValue):
            return [Problem("parameter", error.name, _schema_error(e, error.name)) for e in cause.schema_errors]
        return [Problem("parameter", error.name, f"{error.name}: {error}")]
    if isinstance(error, MissingRequestBodyError):
        return [Problem("body", None, "request body required")]
    if isinstance(error, RequestBodyValidationError):
        cause = error.__cause__
        if isinstance(cause, InvalidSchemaValue):
            return [Problem("body", _schema_field(e), _schema_error(e)) for e in cause.schema_errors]
        if isinstance(cause, MediaTypeNotFound):
            return [Problem("body", "Content-Type",
                            f"Content-Type: {cause.mimetype!r} not accepted, use one of {cause.availableMimetypes}")]
        if isinstance(cause, DeserializeError):
            field = getattr(cause, "savin_field", None)
            kind = getattr(cause, "type", None)
            what = f"not a valid {kind}" if kind else "could not be decoded"
            return [Problem("body", field, f"{field or 'body'}: {what}")]
        return [Problem("body", None, f"body: {type(cause or error).__name__}")]
    return [Problem("body", None, type(error).__name__)]


def _schema_field(error: Any) -> str | None:
    path = list(getattr(error, "absolute_path", []) or [])
    if path:
        return str(path[0])
    if getattr(error, "validator", None) == "required":
        # jsonschema makes one error per missing property and names it only in the message.
        instance = error.instance if isinstance(error.instance, Mapping) else {}
        missing = [name for name in error.validator_value if name not in instance]
        named = [name for name in missing if str(getattr(error, "message", "")).startswith(f"{name!r} ")]
        return (named or missing or [None])[0]
    return None


def _schema_error(error: Any, field: str | None = None) -> str:
    """A jsonschema error as ``field: what is wrong``, without the offending value."""
    field = field or _schema_field(error) or "body"
    rule, expected = getattr(error, "validator", None), getattr(error, "validator_value", None)
    what = {
        "required": "is required",
        "type": f"must be of type {expected}",
        "pattern": f"must match {expected}",
        "minLength": f"must be at least {expected} characters",
        "maxLength": f"must be at most {expected} characters",
        "enum": f"must be one of {expected}",
        "format": f"must be a valid {expected}",
        "minimum": f"must be at least {expected}",
        "maximum": f"must be at most {expected}",
        "minItems": f"needs at least {expected} items",
        "maxItems": f"takes at most {expected} items",
    }.get(rule, f"fails {rule} {expected}")
    return f"{field}: {what}"
