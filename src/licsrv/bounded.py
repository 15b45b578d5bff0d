"""Bounded free-form input: the one marshmallow field for `features` (DESIGN §2: a flat object of names to
booleans, numbers or short strings), and the JSON-object parsing of the admin forms that reuse it.

Every schema that takes features (management API, admin UI forms) uses `Features()`, so a value refused by
the API is refused in the same words everywhere, and nothing nested or oversized is ever stored.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web
from marshmallow import ValidationError, fields, validate

from licsrv.errors import ApiError

MAX_FEATURES = 100
MAX_NAME_LENGTH = 64
MAX_TEXT_LENGTH = 200
MAX_FORM_JSON_BYTES = 64 * 1024


# Moments a license may name: PostgreSQL keeps years 4713 BC to 294276 AD, Python and JSON clients do not;
# anything outside these years is a typo or a probe.
MOMENT = validate.Range(
    min=datetime(1970, 1, 1, tzinfo=UTC),
    max=datetime(3000, 1, 1, tzinfo=UTC),
    error="a time between 1970 and 3000.",
)


def check_features(value: Any) -> dict[str, bool | int | float | str]:
    """The features as given when they are flat and small; ValidationError naming what is not."""
    if not isinstance(value, dict):
        raise ValidationError("features must be an object of names to booleans, numbers or short strings.")
    if len(value) > MAX_FEATURES:
        raise ValidationError(f"features: at most {MAX_FEATURES} names.")
    for name, flag in value.items():
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_LENGTH:
            raise ValidationError(f"features: names are 1-{MAX_NAME_LENGTH} characters.")
        if isinstance(flag, bool):
            continue
        if isinstance(flag, int | float):
            if (isinstance(flag, float) and not math.isfinite(flag)) or abs(flag) > 2**53:
                raise ValidationError(f"features.{name}: a number within ±2^53.")
            continue
        if isinstance(flag, str):
            if len(flag) > MAX_TEXT_LENGTH:
                raise ValidationError(f"features.{name}: at most {MAX_TEXT_LENGTH} characters.")
            continue
        raise ValidationError(f"features.{name}: a boolean, a number or a string (nothing nested, no null).")
    return dict(value)


_INTEGER = re.compile(r"^-?(0|[1-9][0-9]{0,15})$")
_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]{0,15})\.[0-9]{1,15}$")


def typed_value(text: str) -> bool | int | float | str:
    """A feature's value as typed in a form or on the command line: true/false, a number, else the text."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _INTEGER.match(text):
        return int(text)
    if _DECIMAL.match(text):
        return float(text)
    return text


class Features(fields.Field):
    """`features`: flat, at most 100 names, values bool / number / string of at most 200 characters."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {
            "type": "object",
            "maxProperties": MAX_FEATURES,
            "additionalProperties": {
                "oneOf": [
                    {"type": "boolean"},
                    {"type": "number", "minimum": -(2**53), "maximum": 2**53},
                    {"type": "string", "maxLength": MAX_TEXT_LENGTH},
                ]
            },
            "description": "entitlements: a flat object of names to booleans, numbers or short strings",
        }
        super().__init__(metadata={**metadata, **kwargs.pop("metadata", {})}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict:
        return check_features(value)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


_URL_TEXT = re.compile(r"^[!-~]{1,2000}$")  # printable ASCII, no spaces: what a browser link needs


def http_url(value: str) -> None:
    """Empty (no link), or an absolute http(s) URL: never `javascript:`, `data:` or a relative path."""
    if value == "":
        return
    try:
        parts = urlsplit(value) if _URL_TEXT.match(value) else None
        host = parts.hostname if parts else None
    except ValueError:  # e.g. an unclosed [IPv6 address
        parts, host = None, None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise ValidationError("an http:// or https:// URL (or empty).")


HTTP_URL_DOC = {
    "pattern": r"^(https?://[A-Za-z0-9.\[\]:-]+([/?#][!-~]*)?)?$",
    "maxLength": 2000,
    "description": "empty, or an absolute http:// or https:// URL",
}


def form_json_object(text: str, name: str) -> dict:
    """A JSON object typed into an admin form's textarea; ValidationError when it is not one."""
    if len(text.encode()) > MAX_FORM_JSON_BYTES:
        raise ValidationError({name: ["too long."]})
    try:
        value = orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        raise ValidationError({name: ["must be a JSON object."]}) from None
    if not isinstance(value, dict):
        raise ValidationError({name: ["must be a JSON object."]})
    return value


_EMAIL = validate.Email(error="Not a valid email address.")


def email_or_empty(value: str) -> None:
    """An email address, or nothing (a license may have no customer email)."""
    if value.strip():
        _EMAIL(value.strip())


CUSTOMER_EMAIL = [validate.Length(max=200), email_or_empty]


TEXT_BODY_TYPES = ("text/csv", "text/plain")


async def read_text_body(request: web.Request, limit: int) -> str:
    """A text upload (e.g. an import's CSV) larger than the JSON bodies' limit, read up to `limit` bytes
    (413 PAYLOAD_TOO_LARGE beyond), as UTF-8 (a byte-order mark is dropped)."""
    if request.content_type not in TEXT_BODY_TYPES:
        raise ApiError("VALIDATION_ERROR", "Send the file as text/csv (UTF-8).")
    if (request.content_length or 0) > limit:
        raise ApiError("PAYLOAD_TOO_LARGE", f"The file is larger than {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > limit:
            raise ApiError("PAYLOAD_TOO_LARGE", f"The file is larger than {limit} bytes.")
        chunks.append(chunk)
    try:
        return b"".join(chunks).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError("VALIDATION_ERROR", "The file is not UTF-8 text.") from None
