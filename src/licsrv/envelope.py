"""The JSON envelope of every API answer, signed on the client API, and the error middleware behind it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
import structlog
from aiohttp import web
from marshmallow import Schema, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError as RedisResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from licsrv.errors import ApiError, refused_by_database, service_unavailable
from licsrv.live.errors import LiveUnavailable
from licsrv.services.session_crypto import SEALED_CONTENT_TYPE, seal_answer
from licsrv.signing import Keyring, mac_signature_header
from licsrv.state import CRYPTO, DB, JSON_BODY, KEYRING, NONCE

log = structlog.get_logger(__name__)

CLIENT_API_PREFIX = "/api/v1/"
UNSIGNED_PREFIXES = ("/api/v1/admin/", "/api/v1/admin")
MAX_NONCE_LENGTH = 128
REDIS_NOT_NOW = ("OOM", "READONLY", "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")
# What a client call is about (product, license key, hardware id, session id), named in its signed answer.
SUBJECT = web.RequestKey("subject", dict)
# A MAC session's key: its answers, refusals included, carry this HMAC and no Ed25519 signature.
ANSWER_MAC_KEY = web.RequestKey("answer_mac_key", bytes)
# The one-time X25519 key of a sealed request: its answer is sealed to it.
SEALED_TO = web.RequestKey("sealed_to", bytes)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Envelope(web.Response):
    """A success or error answer whose body is written once the nonce and signer are known."""

    def __init__(self, payload: dict[str, Any], status: int = 200, headers: dict | None = None) -> None:
        super().__init__(status=status, headers=headers, content_type="application/json")
        self.payload = payload

    def finish(
        self,
        nonce: Any,
        keyring: Keyring | None,
        subject: dict | None = None,
        mac_key: bytes | None = None,
        sealed_to: bytes | None = None,
    ) -> None:
        """Writes the body: the subject into `data` (an error answer gets a `data` of the subject alone),
        the time, the echoed nonce; then the signature over exactly those bytes."""
        if subject:
            data = self.payload.get("data")
            if isinstance(data, dict):
                data.update(subject)
            elif data is None:
                self.payload["data"] = dict(subject)
        self.payload["server_time"] = int(time.time())
        if nonce is not None:
            self.payload["nonce"] = nonce
        body = orjson.dumps(self.payload)
        self.body = body
        if mac_key is not None:
            self.headers["X-Licsrv-Signature"] = mac_signature_header(mac_key, body)
        elif keyring is not None:
            self.headers["X-Licsrv-Signature"] = keyring.signature_header(body)
        if sealed_to is not None:  # the signature travels inside, with the body it signs
            signature = self.headers.pop("X-Licsrv-Signature", "")
            self.body = seal_answer(sealed_to, signature, body)
            self.content_type = SEALED_CONTENT_TYPE


def ok(data: Any, status: int = 200, headers: dict | None = None) -> Envelope:
    return Envelope({"status": "ok", "data": data}, status=status, headers=headers)


def ok_page(data: list, next_cursor: str | None) -> Envelope:
    return Envelope({"status": "ok", "data": data, "next_cursor": next_cursor})


def error_envelope(error: ApiError) -> Envelope:
    return Envelope({"status": "error", "error": error.as_dict()}, status=error.status, headers=error.headers)


def bind_subject(request: web.BaseRequest, **fields: str) -> None:
    """Names what this client call is about; its answer (success or refusal) will carry these fields."""
    subject = request.get(SUBJECT)
    if subject is None:
        request[SUBJECT] = fields
    else:
        subject.update(fields)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; remembers its `nonce` so the answer can echo it."""
    if JSON_BODY in request:
        return request[JSON_BODY]
    raw = await request.read()
    sealed = request.headers.get("Content-Type") == SEALED_CONTENT_TYPE
    if sealed and request.path.startswith(CLIENT_API_PREFIX):
        request[SEALED_TO], raw = request.config_dict[CRYPTO].open_request(raw)
    body, nonce = parse_body(raw)
    if nonce is not None:
        request[NONCE] = nonce
    request[JSON_BODY] = body
    return body


def parse_body(raw: bytes) -> tuple[dict[str, Any], Any]:
    """(the JSON object without its `nonce`, the nonce or None) of a request body."""
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise ApiError("VALIDATION_ERROR", "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError("VALIDATION_ERROR", "The body must be a JSON object.")
    nonce = body.pop("nonce", None)
    if nonce is not None and (
        not isinstance(nonce, str | int) or isinstance(nonce, bool) or len(str(nonce)) > MAX_NONCE_LENGTH
    ):
        raise ApiError("VALIDATION_ERROR", "nonce must be a string of at most 128 characters.")
    return body, nonce


async def nonce_of_refused(request: web.BaseRequest) -> Any:
    """The nonce of a request refused before its body was read (bad API key, rate limit, signature), so the
    refusal echoes it too; None when there is none or the body is not a readable JSON object."""
    if NONCE not in request and JSON_BODY not in request and request.can_read_body:
        with contextlib.suppress(Exception):
            await read_json(request)
    return request.get(NONCE)


async def load_body(request: web.Request, schema: Schema) -> dict[str, Any]:
    return schema.load(await read_json(request))


def load_query(request: web.Request, schema: Schema) -> dict[str, Any]:
    return schema.load(dict(request.query))


def _http_error(exc: web.HTTPException) -> ApiError:
    if exc.status == 413:
        return ApiError("PAYLOAD_TOO_LARGE")
    if exc.status == 404:
        return ApiError("NOT_FOUND")
    if exc.status == 405:
        return ApiError("METHOD_NOT_ALLOWED")
    if exc.status in (401, 403):
        return ApiError("UNAUTHORIZED" if exc.status == 401 else "FORBIDDEN")
    return ApiError("VALIDATION_ERROR", exc.reason or "Bad request.", status=exc.status)


def as_api_error(exc: BaseException, request: web.Request) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ValidationError):
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        return ApiError("VALIDATION_ERROR", details=_text_keys(messages))
    if isinstance(exc, web.HTTPException):
        return _http_error(exc)
    if isinstance(exc, LiveUnavailable | RedisConnectionError | RedisTimeoutError):
        return service_unavailable("session store")
    if isinstance(exc, RedisResponseError) and str(exc).startswith(REDIS_NOT_NOW):
        # Out of memory, a read-only replica after a failover, loading: Redis will take writes again soon.
        log.warning("session_store_refused", path=request.path, error=str(exc)[:200])
        return service_unavailable("session store", retry_after=1)
    if isinstance(exc, asyncpg.LockNotAvailableError | asyncpg.ConnectionDoesNotExistError):
        # lock_timeout cut a wait on a row lock, or the server ended an idle transaction: nothing written.
        return service_unavailable("database", retry_after=1)
    if isinstance(exc, asyncpg.PostgresConnectionError | OSError | asyncio.TimeoutError):
        return service_unavailable("database")
    if isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError) and _pool_closing(request):
        return service_unavailable("database")  # the worker is shutting down: the client retries elsewhere
    if isinstance(exc, asyncpg.TransactionRollbackError):
        # A deadlock or serialization failure rolled the whole transaction back: nothing was written.
        log.warning("transaction_rolled_back", path=request.path, error=str(exc).splitlines()[0])
        return service_unavailable("database", retry_after=1)
    if isinstance(exc, OverflowError):  # e.g. a date extended past year 9999
        return ApiError("VALIDATION_ERROR", "A value is out of range.")
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError | asyncpg.DataError):
        log.warning(
            "refused_by_database", path=request.path, error=str(exc).splitlines()[0], detail=exc.detail
        )
        return refused_by_database(exc)
    log.exception("unhandled_error", path=request.path)
    return ApiError("INTERNAL_ERROR")


def _pool_closing(request: web.Request) -> bool:
    db = request.config_dict.get(DB)
    return db is not None and db.pool.is_closing()


def _text_keys(messages: Any) -> Any:
    """marshmallow keys a list item's errors by its index; JSON objects need text keys."""
    if isinstance(messages, dict):
        return {str(key): _text_keys(value) for key, value in messages.items()}
    return messages


def signs_responses(path: str) -> bool:
    return path.startswith(CLIENT_API_PREFIX) and not path.startswith(UNSIGNED_PREFIXES)


@web.middleware
async def envelope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every /api/ answer and refusal in the one envelope; client API answers signed over the exact body."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPRedirection:
        raise
    except Exception as exc:
        response = error_envelope(as_api_error(exc, request))
        await nonce_of_refused(request)
    if isinstance(response, Envelope):
        if signs_responses(request.path):
            # Root routes (the heartbeat) find the keyring on request.app without building config_dict.
            keyring = request.app.get(KEYRING) or request.config_dict[KEYRING]
            response.finish(
                request.get(NONCE),
                keyring,
                request.get(SUBJECT),
                request.get(ANSWER_MAC_KEY),
                request.get(SEALED_TO),
            )
        else:
            response.finish(request.get(NONCE), None)
    return response
