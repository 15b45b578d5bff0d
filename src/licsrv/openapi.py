"""The OpenAPI 3 document, generated from the routes and the marshmallow schemas their handlers declare.

A handler is documented with `@documented(...)` next to its code; a test fails for any /api route without it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from aiohttp import web
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from licsrv import __version__
from licsrv.errors import STATUS_BY_CODE
from licsrv.webhooks.catalogue import add_event_schemas

_PARAM = re.compile(r"{(\w+)(?::[^}]*)?}")


def documented(
    summary: str,
    *,
    tag: str,
    body: type[Schema] | Schema | None = None,
    query: type[Schema] | None = None,
    answer: type[Schema] | Schema | None = None,
    status: int = 200,
    errors: tuple[str, ...] = (),
    content_type: str = "application/json",
    legacy: bool = False,
    text_body: str | None = None,
) -> Callable:
    def mark(handler: Callable) -> Callable:
        handler.__openapi__ = {  # type: ignore[attr-defined]
            "summary": summary,
            "tag": tag,
            "body": body,
            "query": query,
            "answer": answer,
            "status": status,
            "errors": errors,
            "content_type": content_type,
            "legacy": legacy,
            "text_body": text_body,
        }
        return handler

    return mark


def api_routes(app: web.Application) -> Iterator[tuple[str, str, Any]]:
    """(method, full path, handler) of every route, sub-apps included (their routes carry the prefix)."""
    for method, path, handler, _ in _routes(app):
        yield method, path, handler


def _routes(app: web.Application) -> Iterator[tuple[str, str, Any, dict[str, str]]]:
    """As api_routes, with each path parameter's pattern."""
    for resource in app.router.resources():
        sub_app = getattr(resource, "_app", None)
        if isinstance(resource, web.PrefixedSubAppResource) and sub_app is not None:
            yield from _routes(sub_app)
            continue
        pattern = resource.get_info().get("pattern")
        patterns = dict(_GROUP.findall(pattern.pattern)) if pattern is not None else {}
        for route in resource:
            if route.method in ("HEAD", "OPTIONS"):
                continue
            yield route.method, _PARAM.sub(r"{\1}", resource.canonical), route.handler, patterns


_GROUP = re.compile(r"\(\?P<(\w+)>((?:[^()\\]|\\.)*)\)")
_DIGITS = re.compile(r"^\\d\{1,(\d+)\}$")


def _path_parameters(path: str, patterns: dict[str, str]) -> list[dict]:
    """Path parameters typed from the route's pattern: ids are integers, other patterns strings that match."""
    parameters = []
    for name in _PARAM.findall(path):
        pattern = patterns.get(name, "")
        schema: dict[str, Any] = {"type": "string"}
        if digits := _DIGITS.match(pattern):
            schema = {"type": "integer", "minimum": 0, "maximum": 10 ** int(digits[1]) - 1}
        elif pattern:
            schema["pattern"] = f"^(?:{pattern})$"
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return parameters


def _refusals(path: str, handler: Any, meta: dict) -> tuple[str, ...]:
    """The refusals every route of its kind may answer besides its own: from the declared client rules
    (licsrv.api.rules), the bearer check, the body and the path parameters."""
    codes = ["VALIDATION_ERROR"]
    rules = getattr(handler, "__client_rules__", None)
    if rules is not None and not rules.public:
        codes += ["INVALID_API_KEY", "BAD_SIGNATURE", "SERVICE_UNAVAILABLE"]
        codes += ["REPLAYED_REQUEST"] if rules.signable else []
        codes += ["RATE_LIMITED"] if rules.group else []
    if path.startswith("/api/v1/admin"):
        codes += ["UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND", "SERVICE_UNAVAILABLE"]
        codes += ["UNKNOWN_REFERENCE"] if meta["body"] is not None else []
    if meta["body"] is not None or meta.get("text_body"):
        codes.append("PAYLOAD_TOO_LARGE")
    if "{" in path:
        codes.append("NOT_FOUND")
    return tuple(codes)


def _security(path: str) -> list[dict]:
    if path.startswith("/api/v1/admin"):
        return [{"bearer": []}]
    if path.startswith(("/api/v1/", "/api/license/")) and path != "/api/v1/keys":
        return [{"apiKey": []}]
    return []


def _many(schema: Any) -> bool:
    return isinstance(schema, Schema) and schema.many


def _envelope(schema_name: str | None, many: bool = False) -> dict:
    data: dict = {"$ref": f"#/components/schemas/{schema_name}"} if schema_name else {"type": "object"}
    if many:
        data = {"type": "array", "items": data}
    return {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ok"]},
            "data": data,
            "server_time": {"type": "integer"},
            "nonce": {"description": "the request's nonce, echoed"},
        },
    }


def build_spec(app: web.Application) -> dict:
    spec = APISpec(
        title="licsrv API",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": (
                "Client API (`X-API-Key`), legacy API of the older server, and management API (bearer "
                "tokens). Answers under /api/v1 (not /api/v1/admin) carry `X-Licsrv-Signature: keyid=<id>, "
                "alg=ed25519, sig=<base64>` over the exact body; public keys at GET /api/v1/keys."
            )
        },
    )
    spec.components.security_scheme("apiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema(
        "Error",
        {
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["error"]},
                "error": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string", "enum": sorted(STATUS_BY_CODE)},
                        "message": {"type": "string"},
                    },
                },
                "data": {
                    "type": "object",
                    "description": "client API: the call's subject as far as known when refusing "
                    "(product, license_key, hardware_id, card_key, session_id)",
                },
                "server_time": {"type": "integer"},
            },
        },
    )
    spec.components.schema(
        "LegacySuccess",
        {
            "type": "object",
            "required": ["success"],
            "properties": {"success": {"type": "boolean", "enum": [True]}},
        },
    )
    spec.components.schema(
        "LegacyError",
        {
            "type": "object",
            "required": ["success", "error", "code"],
            "properties": {
                "success": {"type": "boolean", "enum": [False]},
                "error": {"type": "string"},
                "code": {"type": "string", "enum": sorted(STATUS_BY_CODE)},
            },
        },
    )
    seen: set[str] = set()

    def ref(schema: Any) -> str | None:
        if schema is None:
            return None
        cls = schema if isinstance(schema, type) else type(schema)
        name = cls.__name__.removesuffix("Schema")
        if name not in seen:
            spec.components.schema(name, schema=schema)
            seen.add(name)
        return name

    paths: dict[str, dict] = {}
    for method, path, handler, patterns in _routes(app):
        meta = getattr(handler, "__openapi__", None)
        if meta is None or not path.startswith("/api/"):
            continue
        operation: dict[str, Any] = {
            "summary": meta["summary"],
            "tags": [meta["tag"]],
            "security": _security(path),
        }
        parameters = _path_parameters(path, patterns)
        if meta["query"] is not None:
            parameters.append({"in": "query", "schema": meta["query"]})
        if parameters:
            operation["parameters"] = parameters
        if meta["body"] is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{ref(meta['body'])}"}}
                },
            }
        elif meta.get("text_body"):  # a file upload, e.g. an import's CSV
            operation["requestBody"] = {
                "required": True,
                "content": {meta["text_body"]: {"schema": {"type": "string"}}},
            }
        error = "#/components/schemas/LegacyError" if meta["legacy"] else "#/components/schemas/Error"
        if meta["legacy"]:
            content = {"application/json": {"schema": {"$ref": "#/components/schemas/LegacySuccess"}}}
        elif meta["content_type"] == "application/json":
            content = {"application/json": {"schema": _envelope(ref(meta["answer"]), _many(meta["answer"]))}}
        else:
            content = {meta["content_type"]: {"schema": {"type": "string"}}}
        operation["responses"] = {str(meta["status"]): {"description": "success", "content": content}}
        for code in dict.fromkeys((*_refusals(path, handler, meta), *meta["errors"])):
            response = operation["responses"].setdefault(
                str(STATUS_BY_CODE[code]),
                {"description": "", "content": {"application/json": {"schema": {"$ref": error}}}},
            )
            response["description"] = " ".join(filter(None, (response["description"], code)))
        paths.setdefault(path, {})[method.lower()] = operation
    for path, operations in sorted(paths.items()):
        spec.path(path=path, operations=operations)
    add_event_schemas(spec)
    return spec.to_dict()


OPENAPI_DOC = web.AppKey("openapi_doc", dict)


@documented("This document", tag="ops")
async def openapi_json(request: web.Request) -> web.Response:
    cache = request.app[OPENAPI_DOC]
    if not cache:
        cache.update(build_spec(request.app))
    return web.json_response(cache)


OPENAPI_PATH = "/api/openapi.json"
DOCS_PATH = "/api/docs"


def setup_openapi(app: web.Application) -> None:
    app[OPENAPI_DOC] = {}  # filled on the first request, once every route is registered
    app.router.add_get(OPENAPI_PATH, openapi_json)
    _setup_docs_page(app)


def _setup_docs_page(app: web.Application) -> None:
    """Swagger UI from swagger-ui-py's bundled assets; the browser loads the document from OPENAPI_PATH
    (the same in-memory document), so the server never fetches anything from itself."""
    from swagger_ui.core import ApplicationDocument

    doc = ApplicationDocument(app, config_rel_url=OPENAPI_PATH, url_prefix=DOCS_PATH, title="licsrv API")
    doc.parameters["url"] = orjson.dumps(OPENAPI_PATH).decode()
    html = doc.doc_html

    async def docs_page(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app.router.add_get(DOCS_PATH, docs_page)
    app.router.add_get(DOCS_PATH + "/", docs_page)
    app.router.add_static(DOCS_PATH + "/static", doc.static_dir)
