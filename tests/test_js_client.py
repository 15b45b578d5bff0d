"""The JavaScript client (clients/js) against a real server: its Node test suite (every vector, and the calls
end to end) runs with this test's server, product, licenses, card key and admin token in its environment."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
from pathlib import Path

import pytest

from licsrv.services.audit import CLI_ACTOR
from licsrv.services.cards import generate_batch
from licsrv.state import PRODUCTS

from factories import make_license, make_product

JS = Path(__file__).resolve().parents[1] / "clients" / "js"


async def test_js_client_suite_against_a_real_server(client, conn, queries, admin_headers, owner_token):
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (the JavaScript client needs Node 18+)")
    assert (JS / "node_modules" / "libsodium-wrappers").is_dir(), "run `make js-deps` (npm ci in clients/js)"
    product = await make_product(conn, client.app, heartbeat_interval=1, session_timeout=2, max_sessions=1)
    content_key = base64.b64encode(secrets.token_bytes(32)).decode()
    answer = await client.put(
        f"/api/v1/admin/products/{product['id']}/content-key",
        json={"content_key": content_key},
        headers=admin_headers,
    )
    assert answer.status == 200, await answer.text()
    keys = [
        (await make_license(conn, queries, product, max_devices=3, features={"pro": True}))["key"]
        for _ in range(7)
    ]
    signed = await make_product(conn)
    await conn.execute("UPDATE products SET require_signed_requests = true WHERE id = $1", signed["id"])
    await client.app[PRODUCTS].reload()
    signed_key = (await make_license(conn, queries, signed, max_devices=3))["key"]
    _, cards = await generate_batch(conn, queries, product["id"], 1, 30, "js", CLI_ACTOR)
    env = {
        **os.environ,
        "LICSRV_URL": str(client.make_url("")).rstrip("/"),
        "LICSRV_API_KEY": product["api_key"],
        "LICSRV_PRODUCT": product["slug"],
        "LICSRV_PRODUCT_ID": str(product["id"]),
        "LICSRV_LICENSE_KEYS": ",".join(keys),
        "LICSRV_CARD_KEY": cards[0],
        "LICSRV_ADMIN_TOKEN": owner_token,
        "LICSRV_CONTENT_KEY": content_key,
        "LICSRV_SIGNED_API_KEY": signed["api_key"],
        "LICSRV_SIGNED_PRODUCT": signed["slug"],
        "LICSRV_SIGNED_LICENSE_KEY": signed_key,
    }
    process = await asyncio.create_subprocess_exec(
        node,
        "--test",
        "test/",
        cwd=JS,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 180)
    report = output.decode(errors="replace")
    assert process.returncode == 0, report
    assert "# fail 0" in report and "# skipped 0" in report, report
