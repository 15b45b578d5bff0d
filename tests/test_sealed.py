"""Secrecy without TLS (DESIGN §4): sealed request bodies, answers sealed to the request's one-time key. A
recording relay on 127.0.0.1 captures every byte between the client and the server."""

from __future__ import annotations

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from licsrv.services.audit import CLI_ACTOR
from licsrv.services.cards import generate_batch
from licsrv_client.sdk import LicenseClient

from factories import make_license, make_product


class Recorder:
    """A transparent proxy that keeps the bytes of every request and answer, headers included."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.captured: list[bytes] = []
        self.http: ClientSession | None = None

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        headers = {k: v for k, v in request.headers.items() if k in ("X-API-Key", "Content-Type")}
        self.captured.append(request.path_qs.encode() + repr(headers).encode() + raw)
        async with self.http.request(
            request.method, self.upstream + request.path_qs, data=raw, headers=headers
        ) as answer:
            body = await answer.read()
            kept = {
                k: v for k, v in answer.headers.items() if k.startswith("X-Licsrv") or k == "Content-Type"
            }
            self.captured.append(repr(kept).encode() + body)
            return web.Response(body=body, status=answer.status, headers=kept)

    def wire(self) -> bytes:
        return b"\n".join(self.captured)


@pytest.fixture
async def recorder(client):
    recorder = Recorder(str(client.make_url("")))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with ClientSession() as http:
        recorder.http = http
        recorder.url = str(server.make_url(""))
        yield recorder
    await server.close()


async def exchange(recorder, conn, queries, product, sealed: bool) -> tuple[str, ...]:
    lic = await make_license(conn, queries, product, max_devices=3)
    _, (card,) = await generate_batch(conn, queries, product["id"], 1, 30, "sealed", CLI_ACTOR)
    hardware_id = "hw-secret-" + lic["key"][:5]
    url = recorder.url
    async with LicenseClient(url, product["api_key"], product=product["slug"], sealed=sealed) as sdk:
        await sdk.activate(lic["key"], hardware_id)
        assert (await sdk.validate(lic["key"], hardware_id))["valid"] is True
        redeemed = await sdk.redeem(card, hardware_id)
        session = await sdk.start_session(lic["key"], hardware_id, "2.0.0")
        assert await session.heartbeat() == product["heartbeat_interval"]
        await session.end()
        await sdk.deactivate(lic["key"], hardware_id)
    return lic["key"], card, hardware_id, redeemed["license_key"]


async def test_a_sealed_exchange_shows_no_license_key_card_key_or_hardware_id(
    recorder, client, conn, queries
):
    product = await make_product(conn, client.app, max_sessions=2)
    secrets = await exchange(recorder, conn, queries, product, sealed=True)
    wire = recorder.wire()
    assert len(recorder.captured) >= 14  # every call went through the relay, answers included
    for secret in secrets:
        assert secret.encode() not in wire and secret.lower().encode() not in wire, secret
    assert b"application/x-licsrv-sealed" in wire


async def test_the_same_exchange_unsealed_shows_them(recorder, client, conn, queries):
    product = await make_product(conn, client.app, max_sessions=2)
    secrets = await exchange(recorder, conn, queries, product, sealed=False)
    wire = recorder.wire()
    assert all(secret.encode() in wire for secret in secrets)  # so the test above can fail


async def test_a_body_not_sealed_to_the_server_is_a_validation_error(client, conn):
    product = await make_product(conn, client.app)
    response = await client.post(
        "/api/v1/licenses/validate",
        data=b"\x00" * 80,
        headers={"X-API-Key": product["api_key"], "Content-Type": "application/x-licsrv-sealed"},
    )
    assert response.status == 400 and (await response.json())["error"]["code"] == "VALIDATION_ERROR"
