"""liblicsrv (clients/c) end to end against a real licsrv: `make -C clients/c` builds the library and its
test binaries; the vector binary checks every file in clients/vectors; the end-to-end binary activates,
validates, redeems a card, runs a MAC session with its keep-alive thread (restarting a session Redis lost,
stopping when an admin terminates it), ends it, refuses a tampered answer and a forged key, checks an offline
certificate with the clock guard, deactivates and makes a sealed call — against this test's server."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from licsrv.live.keys import session_key, sessions_key
from licsrv.services.audit import CLI_ACTOR
from licsrv.services.cards import generate_batch
from licsrv.state import LIVE, PRODUCTS, REDIS

from factories import make_license, make_product

CLIENT = Path(__file__).resolve().parents[1] / "clients" / "c"
BUILD = CLIENT / "build"


@pytest.fixture(scope="module")
def binaries() -> Path:
    if shutil.which(os.environ.get("CC", "gcc")) is None:
        pytest.skip("gcc is missing: the C client cannot be built")
    built = subprocess.run(["make", "-C", str(CLIENT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    return BUILD


def test_every_vector(binaries):
    ran = subprocess.run(
        [str(binaries / "test_vectors"), str(CLIENT.parent / "vectors")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert " 0 failures" in ran.stdout


def test_a_missing_vector_file_fails(binaries, tmp_path):
    ran = subprocess.run(
        [str(binaries / "test_vectors"), str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert ran.returncode != 0 and "missing" in ran.stderr


@pytest.fixture
async def tamper(client):
    """A relay that hands back every answer with one byte added (the JSON stays valid, its signature not)."""
    upstream = str(client.make_url("")).rstrip("/")

    async def handle(request: web.Request) -> web.Response:
        headers = {
            name: value for name, value in request.headers.items() if name in ("X-API-Key", "Content-Type")
        }
        async with http.request(
            request.method, upstream + request.path_qs, data=await request.read(), headers=headers
        ) as answer:
            body = (await answer.read()).replace(b'"status":"ok"', b'"status": "ok"', 1)
            kept = {
                k: answer.headers[k] for k in ("Content-Type", "X-Licsrv-Signature") if k in answer.headers
            }
            return web.Response(body=body, status=answer.status, headers=kept)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with ClientSession() as http:
        yield str(server.make_url(""))
    await server.close()


async def test_c_client_end_to_end(binaries, client, conn, queries, tamper, tmp_path):
    product = await make_product(conn, client.app, heartbeat_interval=1, session_timeout=3)
    lic = await make_license(conn, queries, product, max_devices=2)
    _, cards = await generate_batch(conn, queries, product["id"], 1, 30, "c-client", CLI_ACTOR)
    signing = await make_product(conn, client.app)
    await conn.execute("UPDATE products SET require_signed_requests = true WHERE id = $1", signing["id"])
    await client.app[PRODUCTS].reload()
    signed_license = await make_license(conn, queries, signing)
    keys = (await (await client.get("/api/v1/keys")).json())["data"]
    pinned = ";".join(f"{key['id']}={key['public_key']}" for key in keys if key["alg"] == "ed25519")
    env = {
        **os.environ,
        "LICSRV_URL": str(client.make_url("")),
        "LICSRV_API_KEY": product["api_key"],
        "LICSRV_PRODUCT": product["slug"],
        "LICSRV_LICENSE_KEY": lic["key"],
        "LICSRV_CARD_KEY": cards[0],
        "LICSRV_KEYS": pinned,
        "LICSRV_TAMPER_URL": tamper,
        "LICSRV_CLOCK_FILE": str(tmp_path / "clock"),
        "LICSRV_SIGNED_API_KEY": signing["api_key"],
        "LICSRV_SIGNED_PRODUCT": signing["slug"],
        "LICSRV_SIGNED_LICENSE_KEY": signed_license["key"],
    }
    process = await asyncio.create_subprocess_exec(
        str(binaries / "test_e2e"),
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    lines: list[str] = []
    try:
        while line := (await asyncio.wait_for(process.stdout.readline(), 60)).decode():
            lines.append(line.rstrip("\n"))
            if line.startswith("SESSION "):  # Redis loses the session: the keep-alive starts a new one
                session_id = line.split()[1]
                await client.app[REDIS].delete(session_key(lic["id"], session_id), sessions_key(lic["id"]))
                process.stdin.write(b"go\n")
                await process.stdin.drain()
            elif line.startswith("TERMINATE "):  # an admin ends it: the keep-alive stops and says why
                assert await client.app[LIVE].terminate(lic["id"], line.split()[1], "forced", 3)
                process.stdin.write(b"go\n")
                await process.stdin.drain()
        code = await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = "\n".join(lines)
    assert code == 0, output
    for step in (
        "ok activate",
        "ok validate",
        "ok refusal DEVICE_NOT_ACTIVATED",
        "ok redeem ",
        "ok session start heartbeat",
        "ok SESSION_LIMIT_REACHED",
        "ok restarted",
        "ok terminated SESSION_TERMINATED",
        "ok end",
        "ok tampered answer refused",
        "ok untrusted keys and subjects refused",
        "ok offline certificate",
        "ok deactivate",
        "ok sealed",
        "ok signed requests",
        "ALL OK",
    ):
        assert step in output, output
    started = await conn.fetchval("SELECT count(*) FROM session_history WHERE license_id = $1", lic["id"])
    assert started >= 3  # the first, the one after Redis lost it, the one ended
