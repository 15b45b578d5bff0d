"""The supervisor of background tasks: restarts after any error, with capped backoff, until cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import sys

import asyncpg
from redis.exceptions import ConnectionError as RedisConnectionError

from licsrv.supervise import BACKGROUND_FAILURES, Backoff, stop, supervise, wait_set

ERRORS = [
    asyncpg.InterfaceError("pool is closing"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    RedisConnectionError("Connection refused"),
    KeyError("anything else"),
]


async def test_a_task_is_restarted_after_any_error_until_it_finishes():
    runs = []

    async def work() -> None:
        runs.append(len(runs))
        if len(runs) <= len(ERRORS):
            raise ERRORS[len(runs) - 1]

    failures = BACKGROUND_FAILURES.labels("flaky")._value.get()
    task = supervise("flaky", work, first_delay=0.001, max_delay=0.01)
    await asyncio.wait_for(task, 5)
    assert runs == [0, 1, 2, 3, 4]
    assert BACKGROUND_FAILURES.labels("flaky")._value.get() == failures + len(ERRORS)


async def test_cancelling_stops_a_task_that_keeps_failing():
    attempts = 0
    five = asyncio.Event()

    async def work() -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 5:
            five.set()
        raise asyncpg.InterfaceError("connection is closed")

    task = supervise("always-failing", work, first_delay=0.001, max_delay=0.005)
    await asyncio.wait_for(five.wait(), 5)
    await stop(task)
    assert task.cancelled()
    after = attempts
    await asyncio.sleep(0.05)
    assert attempts == after


def test_backoff_grows_is_capped_and_jittered():
    backoff = Backoff(first=0.1, cap=2.0)
    delays = [backoff.next_delay() for _ in range(12)]
    assert 0.05 <= delays[0] <= 0.1
    assert all(1.0 <= d <= 2.0 for d in delays[6:])
    assert len({round(d, 6) for d in delays[6:]}) > 1
    backoff.reset()
    assert backoff.next_delay() <= 0.1


async def test_work_that_is_cancelled_while_waiting_is_not_restarted():
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.Event().wait()

    task = supervise("waiting", work, first_delay=0.01, max_delay=0.01)
    await asyncio.wait_for(started.wait(), 5)
    await stop(task)
    assert task.cancelled()


async def test_a_cancellation_turned_into_an_error_still_stops_the_task():
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise TimeoutError("a timeout racing the cancellation won") from None

    task = supervise("swallowing", work, first_delay=0.001, max_delay=0.001)
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(stop(task), 5)
    assert task.cancelled()


async def _cancel_as_the_event_is_set(wait) -> asyncio.Task:
    """A loop waiting on an event, cancelled in the same loop step as the event is set (as a stop racing a
    wake-up does): it must stop."""
    event = asyncio.Event()

    async def loop() -> None:
        while True:
            await wait(event, 30)
            event.clear()

    task = asyncio.get_running_loop().create_task(loop())
    await asyncio.sleep(0)  # the loop waits now
    event.set()
    task.cancel()
    await asyncio.wait({task}, timeout=1)
    return task


async def test_a_cancel_that_races_a_wake_up_is_not_lost():
    task = await _cancel_as_the_event_is_set(wait_set)
    assert task.cancelled()


async def test_the_race_loses_the_cancel_with_wait_for_on_this_python():
    """Why `wait_set` exists: the same race with `asyncio.wait_for` loses the cancel on Python 3.11 (3.12
    rebuilt wait_for on asyncio.timeout)."""

    async def wait_for(event: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    task = await _cancel_as_the_event_is_set(wait_for)
    try:
        assert task.cancelled() == (sys.version_info >= (3, 12))
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=1)
