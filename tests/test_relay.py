"""A relay between the SDK and the server (a real aiohttp proxy on 127.0.0.1) that rewrites the SDK's request
so the server answers another request with the SDK's nonce, then hands that genuine, signed answer back.
Every substitution — donor session, other product, other license, other device, stripped MAC mark, a start
for another key pair — is refused by the SDK."""

from __future__ import annotations

import base64
from collections.abc import Callable

import orjson
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from nacl.public import PrivateKey

from licsrv.live.keys import MAC_MARK
from licsrv_client.sdk import LicenseClient, LicsrvError, Session, UntrustedAnswer

from factories import make_license, make_product

Rewrite = Callable[[str, dict, dict], tuple[dict, dict]]
FORWARDED = ("Content-Type", "X-Licsrv-Signature", "Retry-After")


class Relay:
    """Forwards every request upstream; `rewrite(path, headers, body)` may change the headers and body."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.rewrite: Rewrite | None = None
        self.relayed = 0
        self.http: ClientSession | None = None

    async def handle(self, request: web.Request) -> web.Response:
        headers = {name: value for name, value in request.headers.items() if name in ("X-API-Key",)}
        raw = await request.read()
        if self.rewrite is not None and request.method == "POST":
            headers, body = self.rewrite(request.path, headers, orjson.loads(raw))
            raw = orjson.dumps(body)
            self.relayed += 1
        headers["Content-Type"] = "application/json"
        url = self.upstream + request.path_qs
        async with self.http.request(request.method, url, data=raw, headers=headers) as answer:
            body = await answer.read()
            kept = {name: answer.headers[name] for name in FORWARDED if name in answer.headers}
            return web.Response(body=body, status=answer.status, headers=kept)


@pytest.fixture
async def relay(client):
    relay = Relay(str(client.make_url("")))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", relay.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with ClientSession() as http:
        relay.http = http
        relay.url = str(server.make_url(""))
        yield relay
    await server.close()


@pytest.fixture
async def products(client, conn):
    mine = await make_product(conn, client.app, max_sessions=1)
    other = await make_product(conn, client.app, max_sessions=5)
    return mine, other


@pytest.fixture
async def sdk(relay, products):
    mine, _ = products
    async with LicenseClient(relay.url, mine["api_key"], product=mine["slug"]) as licsrv_client:
        yield licsrv_client


def replace(**fields: str) -> Rewrite:
    def rewrite(path: str, headers: dict, body: dict) -> tuple[dict, dict]:
        return headers, {**body, **fields}

    return rewrite


def to_product(api_key: str, **fields: str) -> Rewrite:
    def rewrite(path: str, headers: dict, body: dict) -> tuple[dict, dict]:
        return {**headers, "X-API-Key": api_key}, {**body, **fields}

    return rewrite


async def refused(relay: Relay, call) -> UntrustedAnswer:
    before = relay.relayed
    with pytest.raises(UntrustedAnswer) as caught:
        await call()
    assert relay.relayed == before + 1  # the substituted request did reach the server
    return caught.value


async def test_heartbeats_of_a_donor_session_are_refused(sdk, relay, client, conn, queries, products):
    mine, other = products
    lic = await make_license(conn, queries, mine)
    donor_license = await make_license(conn, queries, mine)
    other_license = await make_license(conn, queries, other)
    session = await sdk.start_session(lic["key"], "hw-1", "2.0.0")
    async with LicenseClient(relay.url, mine["api_key"], product=mine["slug"]) as donor_sdk:
        donor = await donor_sdk.start_session(donor_license["key"], "hw-d", "2.0.0")
    async with LicenseClient(relay.url, other["api_key"], product=other["slug"]) as other_sdk:
        other_donor = await other_sdk.start_session(other_license["key"], "hw-o", "2.0.0")
    await session.end()  # the session the program runs on is gone; a relay wants it to go on
    relay.rewrite = replace(session_token=donor.token)
    await refused(relay, session.heartbeat)
    relay.rewrite = to_product(other["api_key"], session_token=other_donor.token)
    await refused(relay, session.heartbeat)
    relay.rewrite = None
    with pytest.raises(LicsrvError) as gone:
        await session.heartbeat()
    assert gone.value.code == "SESSION_EXPIRED"  # the genuine answer, MACed for this session


async def test_a_stripped_mac_mark_names_no_session(sdk, relay, client, conn, queries, products):
    mine, _ = products
    lic = await make_license(conn, queries, mine)
    session = await sdk.start_session(lic["key"], "hw-1", "2.0.0")
    assert session.token.endswith(MAC_MARK)
    stripped = session.token.removesuffix(MAC_MARK)
    relay.rewrite = replace(session_token=stripped)
    await refused(relay, session.heartbeat)
    # What the server answered the relay: no session, and no MAC (the SDK accepts MAC only, so Ed25519 fails).
    answer = await client.post(
        "/api/v1/sessions/heartbeat", json={"session_token": stripped}, headers={"X-API-Key": mine["api_key"]}
    )
    assert answer.status == 404 and (await answer.json())["error"]["code"] == "SESSION_EXPIRED"
    assert "alg=ed25519" in answer.headers["X-Licsrv-Signature"]
    relay.rewrite = None
    assert await session.heartbeat() == mine["heartbeat_interval"]  # the real session is untouched


async def test_license_answers_for_another_license_device_or_product_are_refused(
    sdk, relay, conn, queries, products
):
    mine, other = products
    paid = await make_license(conn, queries, mine, max_devices=1)
    donor = await make_license(conn, queries, mine, max_devices=5)
    foreign = await make_license(conn, queries, other, max_devices=5)
    await sdk.activate(paid["key"], "hw-paid")
    async with LicenseClient(relay.url, mine["api_key"], product=mine["slug"]) as helper:
        await helper.activate(donor["key"], "hw-2")
    async with LicenseClient(relay.url, other["api_key"], product=other["slug"]) as helper:
        await helper.activate(foreign["key"], "hw-2")
    relay.rewrite = replace(hardware_id="hw-paid")  # one paid machine's answer for a second machine
    exc = await refused(relay, lambda: sdk.validate(paid["key"], "hw-2"))
    assert "hardware id" in exc.message
    relay.rewrite = replace(license_key=donor["key"])
    exc = await refused(relay, lambda: sdk.validate(paid["key"], "hw-2"))
    assert "license key" in exc.message
    relay.rewrite = to_product(other["api_key"], license_key=foreign["key"])
    exc = await refused(relay, lambda: sdk.validate(paid["key"], "hw-2"))
    assert "product" in exc.message
    relay.rewrite = replace(license_key=donor["key"])
    await refused(relay, lambda: sdk.activate(paid["key"], "hw-2"))
    relay.rewrite = replace(license_key=donor["key"])
    await refused(relay, lambda: sdk.start_session(paid["key"], "hw-2", "2.0.0"))
    relay.rewrite = None
    with pytest.raises(LicsrvError) as full:
        await sdk.activate(paid["key"], "hw-2")
    assert full.value.code == "DEVICE_LIMIT_REACHED"  # the truth, once nobody rewrites


async def test_a_start_answered_for_another_key_pair_cannot_be_opened(sdk, relay, conn, queries, products):
    mine, _ = products
    lic = await make_license(conn, queries, mine, max_devices=2)
    async with LicenseClient(relay.url, mine["api_key"], product=mine["slug"]) as helper:
        other_session = await helper.start_session(lic["key"], "hw-1", "2.0.0")
        await other_session.end()
    relay_key = PrivateKey.generate().public_key
    relay.rewrite = replace(client_public_key=base64.b64encode(bytes(relay_key)).decode())
    exc = await refused(relay, lambda: sdk.start_session(lic["key"], "hw-1", "2.0.0"))
    assert "sealed" in exc.message


async def test_ed25519_heartbeats_are_bound_to_their_session_id(sdk, relay, client, conn, queries, products):
    """A client without a MAC key (e.g. one that sends no client_public_key) relies on the subject alone."""
    mine, _ = products
    headers = {"X-API-Key": mine["api_key"]}
    started = []
    for hardware_id in ("hw-1", "hw-donor"):
        lic = await make_license(conn, queries, mine)
        body = {"license_key": lic["key"], "hardware_id": hardware_id, "client_version": "2.0.0"}
        answer = await client.post("/api/v1/sessions/start", json=body, headers=headers)
        started.append((await answer.json())["data"])
    mine_data, donor_data = started
    session = Session(sdk, mine_data["session_token"], mine_data["session_id"], 1, 2, None)
    assert await session.heartbeat() == 1  # Ed25519-signed, checked with the published key
    relay.rewrite = replace(session_token=donor_data["session_token"])
    exc = await refused(relay, session.heartbeat)
    assert "session id" in exc.message


async def test_answers_and_refusals_name_their_subject(client, conn, queries, products):
    mine, _ = products
    headers = {"X-API-Key": mine["api_key"]}
    lic = await make_license(conn, queries, mine, max_devices=1)
    sent = {"license_key": lic["key"].lower(), "hardware_id": "hw-a"}  # echoed as sent, not normalised
    activated = await (await client.post("/api/v1/licenses/activate", json=sent, headers=headers)).json()
    assert {k: activated["data"][k] for k in ("product", *sent)} == {"product": mine["slug"], **sent}
    other = {"license_key": lic["key"], "hardware_id": "hw-b", "nonce": "r-1"}
    refused = await client.post("/api/v1/licenses/activate", json=other, headers=headers)
    body = await refused.json()
    assert body["error"]["code"] == "DEVICE_LIMIT_REACHED" and body["nonce"] == "r-1"
    assert body["data"] == {"product": mine["slug"], "license_key": lic["key"], "hardware_id": "hw-b"}
    unknown = await client.post("/api/v1/licenses/validate", json=other, headers={"X-API-Key": "lk_nobody"})
    assert (await unknown.json()).get("data") is None  # refused before any subject was known
