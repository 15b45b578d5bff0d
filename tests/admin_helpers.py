"""Logging in to the admin UI from tests, the way a browser does: the form's CSRF token, then the cookie."""

from __future__ import annotations

import re
import secrets

from licsrv.services.admins import create_admin
from licsrv.services.audit import CLI_ACTOR

PASSWORD = "correct horse battery"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match[1]


async def make_admin(conn, queries, role: str = "owner") -> str:
    username = f"{role}-{secrets.token_hex(3)}"
    await create_admin(conn, queries, username, PASSWORD, role, CLI_ACTOR)
    return username


async def login(client, username: str, password: str = PASSWORD):
    form_page = await client.get("/admin/login")
    token = csrf_of(await form_page.text())
    return await client.post(
        "/admin/login",
        data={"username": username, "password": password, "csrf": token, "next": "/admin/"},
        allow_redirects=False,
    )


async def page_csrf(client, path: str = "/admin/") -> str:
    return csrf_of(await (await client.get(path)).text())
