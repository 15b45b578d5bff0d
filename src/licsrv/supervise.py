"""Supervised background work: a long-lived task restarted with capped, jittered backoff after any failure."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import Counter

log = structlog.get_logger(__name__)

BACKGROUND_FAILURES = Counter(
    "licsrv_background_task_failures", "Failures of supervised background tasks, each one restarted", ["task"]
)

Work = Callable[[], Awaitable[None]]


class Backoff:
    """Exponential delays, capped, each drawn between half and all of its ceiling so that workers restarted by
    one outage do not retry in step; `reset` after a run that lasted long enough."""

    def __init__(self, first: float = 0.1, cap: float = 10.0) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.first * 2**self.failures)
        self.failures += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0


def supervise(name: str, work: Work, *, first_delay: float = 0.1, max_delay: float = 10.0) -> asyncio.Task:
    """Runs `work` in a task until the task is cancelled, restarting it whatever it raises (a lost PostgreSQL
    or Redis connection most often), so no background task dies silently. `work` returning ends the task."""
    return asyncio.get_running_loop().create_task(
        _run(name, work, Backoff(first_delay, max_delay)), name=f"licsrv:{name}"
    )


async def _run(name: str, work: Work, backoff: Backoff) -> None:
    failures = 0
    while True:
        started = time.monotonic()
        try:
            await work()
        except Exception as exc:  # anything but cancellation: the task must outlive its failures
            if asyncio.current_task().cancelling():
                # A cancellation turned into an error on its way out (asyncpg's connect timeout does that
                # when the two race): the task was asked to stop, so it stops.
                raise asyncio.CancelledError from exc
            failures += 1
            BACKGROUND_FAILURES.labels(name).inc()
            if time.monotonic() - started > backoff.cap:
                backoff.reset()  # it ran well for a while: a new incident, so start with a short delay again
            delay = backoff.next_delay()
            log.warning(
                "background_task_failed",
                task=name,
                error=f"{type(exc).__name__}: {exc}"[:300],
                failures=failures,
                retry_in=round(delay, 3),
            )
        else:
            log.info("background_task_finished", task=name)
            return
        await asyncio.sleep(delay)


async def wait_set(event: asyncio.Event, seconds: float) -> bool:
    """Waits until `event` is set (True) or `seconds` have passed (False). Background loops wait with this,
    not `asyncio.wait_for(event.wait(), ...)`: on Python 3.11 wait_for returns the event's result when a
    cancel arrives in the same loop step as the set, and the cancel is lost, so a stopping task ran on (and
    its stop gave up after 5 s). `asyncio.timeout` lets the cancel through."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def stop(task: asyncio.Task | None, within: float = 5.0) -> None:
    """Cancels a supervised task and waits (a bounded time) until it has cleaned up."""
    if task is None or task.done():
        return
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=within)
    if not done:
        log.error("background_task_did_not_stop", task=task.get_name(), within=within)
    elif not task.cancelled() and task.exception() is not None:
        log.error("background_task_failed_on_stop", task=task.get_name(), error=repr(task.exception()))
