"""The live store on its own: memory per session, pipelining, token handling."""

from __future__ import annotations

import asyncio
import time

import pytest

from licsrv.devstack.redis import RedisServer
from licsrv.live.batcher import Batcher
from licsrv.live.client import make_redis
from licsrv.live.keys import BadToken, TokenCodec, member, public_id, sessions_key
from licsrv.live.sessions import LiveSessions, SessionExpired
from licsrv.live.wire import FLUSH_AT, DirectBatcher


@pytest.fixture(params=["redis-py pipeline", "direct connection"])
async def live(request, redis_url):
    redis = make_redis(redis_url)
    await redis.flushdb()  # both variants use the same license ids
    batcher = Batcher(redis) if request.param == "redis-py pipeline" else DirectBatcher(redis_url)
    yield LiveSessions(redis, batcher, id_key=b"test"), redis, batcher
    if isinstance(batcher, DirectBatcher):
        await batcher.close()
    await redis.aclose()


async def used_memory(redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


async def create_sessions(live: LiveSessions, count: int, first_license: int) -> None:
    now = int(time.time() * 1000)
    for offset in range(0, count, 500):
        await asyncio.gather(
            *(
                live.start(first_license + i, 1, "reject", 60, now)
                for i in range(offset, min(offset + 500, count))
            )
        )


async def bytes_per_session(live, redis, count: int, first_license: int) -> float:
    await create_sessions(live, 100, first_license + count)  # warm up: scripts loaded, buffers sized
    before = await used_memory(redis)
    await create_sessions(live, count, first_license)
    return (await used_memory(redis) - before) / count


@pytest.mark.parametrize("direct", [False, True], ids=["redis-py pipeline", "direct connection"])
async def test_a_live_session_costs_at_most_300_bytes_of_redis_memory(direct, tmp_path):
    # A Redis of its own: nothing else's keys, buffers or rehashing in the before/after difference.
    server = RedisServer(tmp_path / "redis").start()
    redis = make_redis(server.url)
    batcher = DirectBatcher(server.url) if direct else Batcher(redis)
    try:
        sessions = LiveSessions(redis, batcher, id_key=b"test")
        per_session = await bytes_per_session(sessions, redis, 20_000, first_license=10_000_000)
    finally:
        if direct:
            await batcher.close()
        await redis.aclose()
        server.stop()
    print(f"{per_session:.1f} bytes per live session")
    assert 0 < per_session <= 300, per_session


@pytest.mark.slow
async def test_memory_per_session_at_100_000(live):
    sessions, redis, _ = live
    per_session = await bytes_per_session(sessions, redis, 100_000, first_license=20_000_000)
    assert per_session <= 300, per_session


async def test_concurrent_heartbeats_share_round_trips(live):
    sessions, _, batcher = live
    now = int(time.time() * 1000)
    started = await asyncio.gather(
        *(sessions.start(30_000_000 + i, 1, "reject", 60, now) for i in range(200))
    )
    before = batcher.round_trips
    await asyncio.gather(*(sessions.heartbeat(s.token, 60, now) for s in started))
    assert batcher.round_trips - before <= 200 // FLUSH_AT + 2  # not 200: a few batched writes


async def test_one_failing_call_does_not_fail_its_batch_neighbours(live):
    sessions, _, _ = live
    now = int(time.time() * 1000)
    good = await sessions.start(40_000_001, 1, "reject", 60, now)
    results = await asyncio.gather(
        sessions.heartbeat(good.token, 60, now),
        sessions.heartbeat("40000002." + "A" * 28, 60, now),
        return_exceptions=True,
    )
    assert results[0] is None
    assert isinstance(results[1], SessionExpired)


def test_tokens_are_parsed_strictly_without_redis():
    codec = TokenCodec(b"k")
    token, session_id = codec.new_token(42, 1_800_000_000)
    assert codec.parse(token) == (42, session_id)
    assert len(session_id) == 16 and len(member(session_id)) == 12  # 96 bits, 12 bytes inside Redis
    assert public_id(member(session_id)) == session_id
    mac_token, mac_id = codec.new_token(42, 1_800_000_000, mac=True)
    assert codec.parse(mac_token) == (42, mac_id)
    assert codec.parse(mac_token.removesuffix("~m"))[1] != mac_id  # a stripped mark names another session
    body = token.split(".")[1]
    for bad in ("", "42", "42.", "0." + body, "x." + body, token + "x", "42." + body[:10] + "*" + body[11:]):
        with pytest.raises(BadToken):
            codec.parse(bad)
    assert TokenCodec(b"other").parse(token)[1] != session_id


async def test_heartbeats_survive_redis_forgetting_its_scripts(live):
    sessions, redis, _ = live
    now = int(time.time() * 1000)
    started = await sessions.start(31_000_001, 1, "reject", 60, now)
    await sessions.heartbeat(started.token, 60, now)  # the scripts are loaded and the connection is open
    await redis.script_flush()  # as after a restart or failover
    await sessions.heartbeat(started.token, 60, now + 1000)
    assert await redis.zscore(sessions_key(31_000_001), member(started.session_id)) == now + 1000 + 60_000
    with pytest.raises(SessionExpired):
        await sessions.heartbeat("31000001.AAAAAAAAAAAAAAAAAAAAAAAAAAAA", 60, now)
