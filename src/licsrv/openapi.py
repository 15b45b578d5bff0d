"""The OpenAPI 3 document, generated from the routes and the marshmallow schemas their handlers declare.

A handler is documented with `@documented(...)` next to its code; a test fails for any /api route without it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

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
        }
        return handler

    return mark


def api_routes(app: web.Application) -> Iterator[tuple[str, str, Any]]:
    """(method, full path, handler) of every route, sub-apps included (their routes carry the prefix)."""
    for resource in app.router.resources():
        sub_app = getattr(resource, "_app", None)
        if isinstance(resource, web.PrefixedSubAppResource) and sub_app is not None:
            yield from api_routes(sub_app)
            continue
        for route in resource:
            if route.method in ("HEAD", "OPTIONS"):
                continue
            yield route.method, _PARAM.sub(r"{\1}", resource.canonical), route.handler


def _security(path: str) -> list[dict]:
    if path.startswith("/api/v1/admin"):
        return [{"bearer": []}]
    if path.startswith(("/api/v1/", "/api/license/")) and path != "/api/v1/keys":
        return [{"apiKey": []}]
    return []


def _envelope(schema_name: str | None) -> dict:
    data = {"$ref": f"#/components/schemas/{schema_name}"} if schema_name else {"type": "object"}
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
                "server_time": {"type": "integer"},
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
    for method, path, handler in api_routes(app):
        meta = getattr(handler, "__openapi__", None)
        if meta is None or not path.startswith("/api/"):
            continue
        operation: dict[str, Any] = {
            "summary": meta["summary"],
            "tags": [meta["tag"]],
            "security": _security(path),
        }
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(path)
        ]
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
        if meta["content_type"] == "application/json":
            content = {"application/json": {"schema": _envelope(ref(meta["answer"]))}}
        else:
            content = {meta["content_type"]: {"schema": {"type": "string"}}}
        operation["responses"] = {str(meta["status"]): {"description": "success", "content": content}}
        for code in ("VALIDATION_ERROR", *meta["errors"]):
            response = operation["responses"].setdefault(
                str(STATUS_BY_CODE[code]),
                {
                    "description": "",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
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


def setup_openapi(app: web.Application) -> None:
    from swagger_ui import api_doc

    app[OPENAPI_DOC] = {}  # filled on the first request, once every route is registered
    app.router.add_get("/api/openapi.json", openapi_json)
    api_doc(app, config_url="/api/openapi.json", url_prefix="/api/docs", title="licsrv API")
