"""Cursors for every paged listing: opaque to callers, refused with VALIDATION_ERROR when tampered with."""

from __future__ import annotations

import base64
from datetime import datetime

from licsrv.errors import ApiError


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _decode(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise ApiError("VALIDATION_ERROR", "cursor is not valid.") from None


def encode_cursor(last_id: int) -> str:
    """After the row with this id, for listings ordered by id."""
    return _encode(f"id:{last_id}")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    kind, _, value = _decode(cursor).partition(":")
    if kind != "id" or not value.isdigit() or len(value) > 18:
        raise ApiError("VALIDATION_ERROR", "cursor is not valid.")
    return int(value)


def encode_time_cursor(moment: datetime, row_id: str) -> str:
    """After (moment, row id), for listings ordered newest first."""
    return _encode(f"{moment.isoformat()}|{row_id}")


def decode_time_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    moment_text, _, row_id = _decode(cursor).partition("|")
    try:
        moment = datetime.fromisoformat(moment_text)
    except ValueError:
        raise ApiError("VALIDATION_ERROR", "cursor is not valid.") from None
    if moment.tzinfo is None or not row_id or len(row_id) > 64:
        raise ApiError("VALIDATION_ERROR", "cursor is not valid.")
    return moment, row_id
