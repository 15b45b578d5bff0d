"""Reading the audit log and the security events, newest first, a page at a time (admin UI and API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from licsrv.paging import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from licsrv.deps import Deps


def _page(rows: list, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    page = [dict(row) for row in rows[:limit]]
    return page, encode_cursor(page[-1]["id"]) if len(rows) > limit else None


async def audit_page(deps: Deps, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    async with deps.db.connection() as conn:
        rows = await deps.q.list_audit(conn, after_id=decode_cursor(cursor), row_limit=limit + 1)
    return _page(rows, limit)


async def security_page(
    deps: Deps, kind: str | None, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    async with deps.db.connection() as conn:
        rows = await deps.q.list_security_events(
            conn, kind=kind, after_id=decode_cursor(cursor), row_limit=limit + 1
        )
    return _page(rows, limit)
