"""The one error type of licsrv and its stable codes; every refusal is an ApiError."""

from __future__ import annotations

import re
from http import HTTPStatus

import asyncpg

STATUS_BY_CODE: dict[str, int] = {
    "INVALID_API_KEY": 401,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "VALIDATION_ERROR": 400,
    "LICENSE_NOT_FOUND": 404,
    "LICENSE_EXPIRED": 403,
    "LICENSE_SUSPENDED": 403,
    "LICENSE_REVOKED": 403,
    "DEVICE_LIMIT_REACHED": 409,
    "DEVICE_NOT_ACTIVATED": 403,
    "HARDWARE_MISMATCH": 403,
    "CARD_NOT_FOUND": 404,
    "CARD_VOID": 410,
    "CARD_BOUND_ELSEWHERE": 409,
    "CARD_NOT_NEW": 409,
    "PLAN_NOT_FOUND": 404,
    "PLAN_ARCHIVED": 409,
    "PLAN_OF_ANOTHER_PRODUCT": 422,
    "PRODUCT_ARCHIVED": 409,
    "SESSION_LIMIT_REACHED": 409,
    "SESSION_EXPIRED": 404,
    "SESSION_TERMINATED": 410,
    "VERSION_TOO_OLD": 426,
    "RATE_LIMITED": 429,
    "SERVICE_UNAVAILABLE": 503,
    "BAD_SIGNATURE": 401,
    "REPLAYED_REQUEST": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "CONFLICT": 409,
    "LICENSE_KEY_TAKEN": 409,
    "UNKNOWN_REFERENCE": 422,
    "TICKET_INVALID": 400,
    "EMAIL_TAKEN": 409,
    "LOGIN_FAILED": 401,
    "PORTAL_SESSION_EXPIRED": 401,
    "ACCOUNT_NOT_VERIFIED": 403,
    "ACCOUNT_DISABLED": 403,
    "CODE_INVALID": 400,
    "TOKEN_INVALID": 400,
    "FREE_LIMIT_REACHED": 429,
    "CREDENTIAL_INVALID": 401,
    "SLUG_TAKEN": 409,
    "API_KEY_TAKEN": 409,
    "PLAN_NAME_TAKEN": 409,
    "INTERNAL_ERROR": 500,
}

DEFAULT_MESSAGES: dict[str, str] = {
    "INVALID_API_KEY": "The API key is missing or unknown.",
    "UNAUTHORIZED": "Authentication required.",
    "FORBIDDEN": "Your role does not allow this.",
    "NOT_FOUND": "Not found.",
    "METHOD_NOT_ALLOWED": "Method not allowed.",
    "VALIDATION_ERROR": "The request is not valid.",
    "LICENSE_NOT_FOUND": "The license was not found.",
    "LICENSE_EXPIRED": "The license has expired.",
    "LICENSE_SUSPENDED": "The license is suspended.",
    "LICENSE_REVOKED": "The license has been revoked.",
    "DEVICE_LIMIT_REACHED": "All device slots of this license are in use.",
    "DEVICE_NOT_ACTIVATED": "This device is not activated for the license.",
    "HARDWARE_MISMATCH": "The hardware does not match this license.",
    "CARD_NOT_FOUND": "The card key was not found.",
    "CARD_VOID": "The card key is void.",
    "CARD_BOUND_ELSEWHERE": "The card key is bound to another environment.",
    "CARD_NOT_NEW": "Only a new card can be voided.",
    "PLAN_NOT_FOUND": "The plan was not found.",
    "PLAN_ARCHIVED": "The plan is archived; nothing new is made from it.",
    "PLAN_OF_ANOTHER_PRODUCT": "The plan belongs to another product.",
    "PRODUCT_ARCHIVED": "The product is archived: it takes no new licenses, plans or card batches.",
    "SESSION_LIMIT_REACHED": "No further session is allowed for this license right now.",
    "SESSION_EXPIRED": "The session has expired; start a new one.",
    "SESSION_TERMINATED": "The session was ended by the server.",
    "VERSION_TOO_OLD": "This version is no longer supported; please update.",
    "RATE_LIMITED": "Too many requests; retry later.",
    "SERVICE_UNAVAILABLE": "The service is temporarily unavailable; retry shortly.",
    "BAD_SIGNATURE": "The request signature is not valid.",
    "REPLAYED_REQUEST": "This request was already received.",
    "PAYLOAD_TOO_LARGE": "The request body is too large.",
    "CONFLICT": "The request conflicts with the current state.",
    "LICENSE_KEY_TAKEN": "A license with this key exists already.",
    "UNKNOWN_REFERENCE": "An id in the request names nothing that exists.",
    "TICKET_INVALID": "The ticket is not an unused card key or an unclaimed license key of this product.",
    "EMAIL_TAKEN": "An account with this email address exists already.",
    "LOGIN_FAILED": "The email address or the password is wrong.",
    "PORTAL_SESSION_EXPIRED": "You are signed out; sign in again.",
    "ACCOUNT_NOT_VERIFIED": "Confirm your email address first.",
    "ACCOUNT_DISABLED": "This account is disabled.",
    "CODE_INVALID": "The code is wrong or has expired.",
    "TOKEN_INVALID": "The token is wrong, used or expired.",
    "FREE_LIMIT_REACHED": "This license cannot free another device this month.",
    "CREDENTIAL_INVALID": "The credential is not valid (any more).",
    "SLUG_TAKEN": "Another product has this slug.",
    "API_KEY_TAKEN": "Another product uses this API key.",
    "PLAN_NAME_TAKEN": "The product has another plan of this name.",
    "INTERNAL_ERROR": "An internal error occurred.",
}


class ApiError(Exception):
    """A refusal with a stable code; the envelope middleware renders it."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        status: int | None = None,
        *,
        details: dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if code not in STATUS_BY_CODE:
            raise ValueError(f"unknown error code {code}")
        self.code = code
        self.message = message or DEFAULT_MESSAGES[code]
        self.status = status or STATUS_BY_CODE[code]
        self.details = details
        self.headers = headers or {}
        super().__init__(f"{code}: {self.message}")

    def in_words(self) -> str:
        """The message and the per-field details in one line, as the admin UI shows a refusal."""
        details = "; ".join(
            f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in (self.details or {}).items()
        )
        return f"{self.message} {details}".strip()

    def as_dict(self) -> dict:
        error: dict = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return error


def service_unavailable(what: str, retry_after: int = 2) -> ApiError:
    return ApiError(
        "SERVICE_UNAVAILABLE",
        f"The {what} is temporarily unavailable; retry shortly.",
        headers={"Retry-After": str(retry_after)},
    )


def reason_phrase(status: int) -> str:
    return HTTPStatus(status).phrase


_KEY_COLUMNS = re.compile(r"^Key \(([\w, ]+)\)=")


def refused_by_database(exc: asyncpg.PostgresError) -> ApiError:
    """A constraint or value PostgreSQL refused. The statement failed and its transaction rolled back, so
    nothing was written: the caller's input is at fault. A 4xx naming the field, never the row's values."""
    match = _KEY_COLUMNS.match(getattr(exc, "detail", None) or "")
    field = match[1] if match else getattr(exc, "column_name", None) or getattr(exc, "constraint_name", None)
    details = {field: ["refused by the stored data."]} if field else None
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return ApiError("UNKNOWN_REFERENCE", details=details)
    if isinstance(exc, asyncpg.UniqueViolationError):
        return ApiError("CONFLICT", "Something with this value exists already.", details=details)
    if isinstance(exc, asyncpg.DataError):
        return ApiError("VALIDATION_ERROR", "A value is out of range or not valid.", details=details)
    return ApiError("VALIDATION_ERROR", "A value breaks a rule of the stored data.", details=details)
