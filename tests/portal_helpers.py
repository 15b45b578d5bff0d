"""Arrangements for the portal tests: a product with portal settings, tickets, a registered customer."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from licsrv.services.audit import CLI_ACTOR
from licsrv.services.cards import generate_batch

from factories import make_license

PASSWORD = "correct horse battery"


@dataclass
class Customer:
    email: str
    password: str
    token: str
    session_id: str
    license_key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def set_portal(conn, product: dict, *, double_opt_in=False, frees=3, reset_delivery="email") -> None:
    await conn.execute(
        """INSERT INTO portal_settings (product_id, double_opt_in, device_frees_per_30d, reset_delivery)
           VALUES ($1, $2, $3, $4) ON CONFLICT (product_id) DO UPDATE
           SET double_opt_in = $2, device_frees_per_30d = $3, reset_delivery = $4""",
        product["id"],
        double_opt_in,
        frees,
        reset_delivery,
    )


async def new_card(conn, queries, product: dict, days: int = 30) -> str:
    _, codes = await generate_batch(conn, queries, product["id"], 1, days, "portal test", CLI_ACTOR)
    return codes[0]


def new_email() -> str:
    return f"kunde-{secrets.token_hex(4)}@example.com"


async def call(client, method: str, path: str, headers: dict, json: Any = None, **extra_headers: str):
    response = await client.request(
        method, f"/api/v1/portal{path}", json=json, headers={**headers, **extra_headers}
    )
    return response.status, await response.json()


async def register(client, headers, ticket: str, email: str | None = None, password: str = PASSWORD, **extra):
    body = {"email": email or new_email(), "password": password, "ticket": ticket, **extra}
    return await call(client, "POST", "/register", headers, body)


async def make_customer(client, conn, queries, product: dict, headers: dict, **license_fields) -> Customer:
    lic = await make_license(conn, queries, product, **{"max_devices": 1, **license_fields})
    email = new_email()
    status, body = await register(client, headers, lic["key"], email)
    assert status == 201, body
    data = body["data"]
    return Customer(email, PASSWORD, data["session_token"], data["session_id"], lic["key"])


async def start_session(client, headers, hardware_id="pc-1", **body):
    payload = {"hardware_id": hardware_id, "client_version": "2.0.0", **body}
    response = await client.post("/api/v1/sessions/start", json=payload, headers=headers)
    return response.status, await response.json()


async def count(conn, sql: str, *args) -> int:
    return await conn.fetchval(sql, *args)
