"""Plans for card tests, made with direct SQL (the plans service belongs to another part of the catalogue)."""

from __future__ import annotations

FEATURES = {"pro": True, "seats": 5, "edition": "Gold 黄金"}


async def make_plan(conn, product: dict, **fields) -> dict:
    values = {"name": "Pro", "max_devices": 2, "max_sessions": 3, "duration_days": 30, "features": FEATURES}
    values.update(fields)
    row = await conn.fetchrow(
        """INSERT INTO plans (product_id, name, max_devices, max_sessions, duration_days, features,
                              archived_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *""",
        product["id"],
        values["name"],
        values["max_devices"],
        values["max_sessions"],
        values["duration_days"],
        values["features"],
        values.get("archived_at"),
    )
    return dict(row)
