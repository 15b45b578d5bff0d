"""The heartbeat fast path (licsrv.fastpath) answers exactly like the routed handler, and only heartbeats."""

from __future__ import annotations

import asyncio
import base64
import re
from types import SimpleNamespace

import orjson
import pytest
from hypothesis import given
from hypothesis import settings as settings_of_hypothesis
from hypothesis import strategies as st
from nacl.public import PrivateKey, SealedBox

from licsrv import fastpath, metrics
from licsrv.app import create_app
from licsrv.envelope import ok
from licsrv.live.keys import ORDERED_ALPHABET
from licsrv.signing import mac_signature_header, verify_signature
from licsrv.state import PRODUCTS, REDIS

from factories import make_license, make_product

HEARTBEAT = "/api/v1/sessions/heartbeat"


class Counting:
    """Wraps the application's handler to count what the fast path passed on."""

    def __init__(self, handler) -> None:
        self.handler = handler
        self.calls: list[str] = []

    async def __call__(self, request):
        self.calls.append(f"{request.method} {request.path}")
        return await self.handler(request)


@pytest.fixture
async def fast(aiohttp_client, settings):
    app = create_app(settings)
    client = await aiohttp_client(app)
    path = client.server.runner.server.request_handler
    assert isinstance(path, fastpath.HeartbeatFastPath)  # the `client` fixture's servers have it too
    path._app_handler = passed = Counting(path._app_handler)
    client.passed = passed
    return client


@pytest.fixture
async def routed(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings))
    client.server.runner.server.request_handler = client.app._handle  # the plain aiohttp way
    return client


@pytest.fixture
async def product(fast, routed, conn):
    row = await make_product(conn, fast.app)
    await routed.app[PRODUCTS].reload()
    return row


@pytest.fixture
async def token(fast, conn, queries, product):
    lic = await make_license(conn, queries, product)
    body = {"license_key": lic["key"], "hardware_id": "hw-fast", "client_version": "2.0.0"}
    response = await fast.post("/api/v1/sessions/start", json=body, headers={"X-API-Key": product["api_key"]})
    assert response.status == 200
    return (await response.json())["data"]["session_token"]


async def public_key(client, key_id: str) -> str:
    keys = (await (await client.get("/api/v1/keys")).json())["data"]
    return next(key["public_key"] for key in keys if key["id"] == key_id)


async def answer(client, body: bytes, api_key: str, method: str = "POST") -> tuple[int, dict, dict]:
    response = await client.request(
        method, HEARTBEAT, data=body, headers={"X-API-Key": api_key, "Content-Type": "application/json"}
    )
    raw = await response.read()
    document = orjson.loads(raw)
    signature = response.headers.get("X-Licsrv-Signature", "")
    if signature:
        key_id = dict(p.strip().split("=", 1) for p in signature.split(","))["keyid"]
        assert verify_signature(await public_key(client, key_id), raw, signature)
    document.pop("server_time")
    headers = {name: response.headers.get(name) for name in ("Content-Type", "Retry-After")}
    headers["signed"] = bool(signature)
    return response.status, document, headers


def cases(product: dict, token: str) -> list[tuple[str, bytes, str]]:
    key = product["api_key"]
    return [
        ("alive", orjson.dumps({"session_token": token}), key),
        ("nonce echoed", orjson.dumps({"session_token": token, "nonce": "n-1"}), key),
        ("unknown api key", orjson.dumps({"session_token": token}), "lk_nobody"),
        (
            "unknown api key, nonce echoed",
            orjson.dumps({"session_token": token, "nonce": "n-9"}),
            "lk_nobody",
        ),
        ("no api key", orjson.dumps({"session_token": token}), ""),
        ("not json", b"{session_token", key),
        ("not an object", b"[1, 2]", key),
        ("extra field", orjson.dumps({"session_token": token, "x": 1}), key),
        ("bad nonce", orjson.dumps({"session_token": token, "nonce": ["x"]}), key),
        ("expired token", orjson.dumps({"session_token": "1.AAAAAAAAAAAAAAAAAAAAAAAAAAAA"}), key),
        ("html token", orjson.dumps({"session_token": "<script>alert(1)</script>"}), key),
        ("too large", orjson.dumps({"session_token": "x" * 70_000}), key),
    ]


async def test_fast_and_routed_heartbeats_answer_alike(fast, routed, product, token):
    for name, body, api_key in cases(product, token):
        via_fast = await answer(fast, body, api_key)
        via_router = await answer(routed, body, api_key)
        assert via_fast == via_router, name
        assert via_fast[0] < 500, name
    # All answered by the fast path, but for bad API keys: the app's rules record those as security events.
    passed = [call for call in fast.passed.calls if HEARTBEAT in call]
    assert len(passed) == sum(1 for _, _, api_key in cases(product, token) if api_key != product["api_key"])
    alive = await answer(fast, orjson.dumps({"session_token": token, "nonce": "n-2"}), product["api_key"])
    data = alive[1]["data"]
    assert alive[:2] == (200, {"status": "ok", "data": data, "nonce": "n-2"})
    assert data == {"next_heartbeat": 1, "product": product["slug"], "session_id": data["session_id"]}
    assert len(data["session_id"]) >= 12
    assert alive[2]["signed"]
    refused = await answer(fast, orjson.dumps({"session_token": token, "nonce": "n-3"}), "lk_nobody")
    assert (refused[0], refused[1]["nonce"]) == (401, "n-3")


async def test_other_methods_and_paths_go_through_the_application(fast, product):
    status, document, _ = await answer(fast, b"", product["api_key"], method="GET")
    assert (status, document["error"]["code"]) == (404, "NOT_FOUND")  # the router's answer
    assert (await fast.get("/health")).status == 200
    assert f"GET {HEARTBEAT}" in fast.passed.calls
    assert "GET /health" in fast.passed.calls


async def test_products_that_require_signed_requests_take_the_routed_path(fast, conn, token, product):
    await conn.execute("UPDATE products SET require_signed_requests = true WHERE id = $1", product["id"])
    await fast.app[PRODUCTS].reload()
    status, document, _ = await answer(fast, orjson.dumps({"session_token": token}), product["api_key"])
    assert (status, document["error"]["code"]) == (401, "BAD_SIGNATURE")
    assert [call for call in fast.passed.calls if HEARTBEAT in call] == [f"POST {HEARTBEAT}"]


async def test_fast_heartbeats_are_counted_in_the_metrics(fast, product, token):
    before = await (await fast.get("/metrics")).text()
    await answer(fast, orjson.dumps({"session_token": token}), product["api_key"])
    after = await (await fast.get("/metrics")).text()

    def count(text: str) -> float:
        for line in text.splitlines():
            ours = line.startswith("licsrv_http_requests_total{") and f'route="{HEARTBEAT}"' in line
            if ours and 'status="200"' in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    assert count(after) == count(before) + 1


async def test_sealed_heartbeats_are_answered_sealed_by_the_application(fast, product, token):
    import base64

    from nacl.public import PrivateKey, PublicKey, SealedBox

    keys = (await (await fast.get("/api/v1/keys")).json())["data"]
    server_key = next(key["public_key"] for key in keys if key["alg"] == "x25519")
    one_time = PrivateKey.generate()
    body = orjson.dumps({"session_token": token, "nonce": "sealed-1"})
    sealed = SealedBox(PublicKey(base64.b64decode(server_key))).encrypt(bytes(one_time.public_key) + body)
    headers = {"X-API-Key": product["api_key"], "Content-Type": "application/x-licsrv-sealed"}
    response = await fast.post(HEARTBEAT, data=sealed, headers=headers)
    assert fast.passed.calls[-1] == f"POST {HEARTBEAT}"  # the fast path passed it on
    assert response.status == 200 and "X-Licsrv-Signature" not in response.headers
    header, _, answer = SealedBox(one_time).decrypt(await response.read()).partition(b"\n")
    key_id = dict(p.strip().split("=", 1) for p in header.decode().split(","))["keyid"]
    assert verify_signature(await public_key(fast, key_id), answer, header.decode())
    assert orjson.loads(answer)["nonce"] == "sealed-1"


@settings_of_hypothesis(max_examples=300, deadline=None)
@given(
    slug=st.text(min_size=1, max_size=40),
    interval=st.integers(min_value=1, max_value=86_400),
    session_id=st.text(alphabet=ORDERED_ALPHABET, min_size=16, max_size=16),
    nonce=st.none() | st.text(max_size=128) | st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
def test_answer_templates_write_the_envelopes_bytes(slug, interval, session_id, nonce):
    """The fast path's answer body, written from a template, is the routed envelope's byte for byte."""
    product = SimpleNamespace(slug=slug, heartbeat_interval=interval)
    subject = {"product": slug, "session_id": session_id}
    envelope = ok({"next_heartbeat": interval, **subject})
    envelope.finish(nonce, None, subject)
    templated = fastpath.AnswerTemplates().body(product, session_id, nonce)
    same_second = re.compile(rb'"server_time":\d+')
    assert same_second.sub(b"T", templated) == same_second.sub(b"T", envelope.body)


@pytest.fixture
async def mac_session(fast, conn, queries, product):
    lic = await make_license(conn, queries, product)
    client_key = PrivateKey.generate()
    body = {
        "license_key": lic["key"],
        "hardware_id": "hw-mac",
        "client_version": "2.0.0",
        "client_public_key": base64.b64encode(bytes(client_key.public_key)).decode(),
    }
    response = await fast.post("/api/v1/sessions/start", json=body, headers={"X-API-Key": product["api_key"]})
    data = (await response.json())["data"]
    return data["session_token"], SealedBox(client_key).decrypt(base64.b64decode(data["mac_key"]))


async def mac_answer(client, token: str, api_key: str, mac_key: bytes, nonce: str) -> tuple[int, dict]:
    body = orjson.dumps({"session_token": token, "nonce": nonce})
    response = await client.post(HEARTBEAT, data=body, headers={"X-API-Key": api_key})
    raw = await response.read()
    assert response.headers["X-Licsrv-Signature"] == mac_signature_header(mac_key, raw)
    document = orjson.loads(raw)
    document.pop("server_time")
    return response.status, document


async def test_mac_sessions_are_answered_alike_with_their_mac_only(fast, routed, product, mac_session):
    token, mac_key = mac_session
    via_fast = await mac_answer(fast, token, product["api_key"], mac_key, "m-1")
    via_router = await mac_answer(routed, token, product["api_key"], mac_key, "m-1")
    assert via_fast == via_router
    assert via_fast[0] == 200 and via_fast[1]["nonce"] == "m-1"
    await fast.post(
        "/api/v1/sessions/end", json={"session_token": token}, headers={"X-API-Key": product["api_key"]}
    )
    # A refusal of a session that named itself is MACed too, by both.
    gone_fast = await mac_answer(fast, token, product["api_key"], mac_key, "m-2")
    gone_routed = await mac_answer(routed, token, product["api_key"], mac_key, "m-2")
    assert gone_fast == gone_routed
    assert (gone_fast[0], gone_fast[1]["error"]["code"]) == (404, "SESSION_EXPIRED")
    assert gone_fast[1]["data"]["session_id"] == via_fast[1]["data"]["session_id"]


async def test_a_lost_script_is_loaded_again_on_the_fast_path(fast, product, token):
    await answer(fast, orjson.dumps({"session_token": token}), product["api_key"])
    await fast.app[REDIS].script_flush()  # as after a Redis restart or failover
    status, document, _ = await answer(fast, orjson.dumps({"session_token": token}), product["api_key"])
    assert (status, document["status"]) == (200, "ok")


def exported(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        metric, _, value = line.rpartition(" ")
        if metric.startswith(name + "{") and all(f'{k}="{v}"' in metric for k, v in labels.items()):
            return float(value)
    return 0.0


async def test_the_tally_adds_latencies_and_outcomes_to_the_metrics(fast, product, token, monkeypatch):
    before = await (await fast.get("/metrics")).text()
    for _ in range(5):
        await answer(fast, orjson.dumps({"session_token": token}), product["api_key"])
    await answer(fast, orjson.dumps({"session_token": "1.AAAAAAAAAAAAAAAAAAAAAAAAAAAA"}), product["api_key"])
    after = await (await fast.get("/metrics")).text()

    def grew(name: str, **labels: str) -> float:
        return exported(after, name, **labels) - exported(before, name, **labels)

    assert grew("licsrv_http_requests_total", route=HEARTBEAT, status="200") == 5
    assert grew("licsrv_http_requests_total", route=HEARTBEAT, status="404") == 1
    assert grew("licsrv_heartbeats_total", outcome="ok") == 5
    assert grew("licsrv_heartbeats_total", outcome="expired") == 1
    assert grew("licsrv_http_request_duration_seconds_count", route=HEARTBEAT) == 6
    assert grew("licsrv_http_request_duration_seconds_bucket", route=HEARTBEAT, le="+Inf") == 6
    assert grew("licsrv_http_request_duration_seconds_bucket", route=HEARTBEAT, le="2.5") == 6
    assert grew("licsrv_http_request_duration_seconds_sum", route=HEARTBEAT) > 0


async def test_the_tally_is_flushed_without_a_scrape(fast, product, token, monkeypatch):
    monkeypatch.setattr(metrics, "TALLY_FLUSH_SECONDS", 0.01)
    tally = fast.server.runner.server.request_handler._tally
    flushed = asyncio.Event()

    def flush() -> None:
        metrics.HeartbeatTally.flush(tally)
        flushed.set()

    monkeypatch.setattr(tally, "flush", flush)
    counted = metrics.REQUESTS.labels(HEARTBEAT, "POST", "200")
    before = counted._value.get()
    await answer(fast, orjson.dumps({"session_token": token}), product["api_key"])
    await answer(fast, orjson.dumps({"session_token": token}), product["api_key"])
    for _ in range(2):  # the timers the answers set (one or two flushes), never a scrape
        if counted._value.get() < before + 2:
            await asyncio.wait_for(flushed.wait(), 5)
            flushed.clear()
    assert counted._value.get() == before + 2


async def test_without_the_histogram_internals_every_answer_is_observed_at_once(fast, product, token):
    """A prometheus_client without the bucket values the tally adds to (private in 0.24): each answer is
    counted at once instead, and nothing waits for a flush."""
    tally = fast.server.runner.server.request_handler._tally
    metrics.flush_tallies()
    tally.direct = True
    counted = metrics.REQUESTS.labels(HEARTBEAT, "POST", "200")
    histogram = metrics.LATENCY.labels(HEARTBEAT)
    before = counted._value.get(), histogram._sum.get()
    await answer(fast, orjson.dumps({"session_token": token}), product["api_key"])
    assert counted._value.get() == before[0] + 1 and histogram._sum.get() > before[1]
    assert tally not in metrics._TALLIES  # no flush was set up
