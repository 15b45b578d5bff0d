"""Prometheus metrics of licsrv; several workers share them through prometheus_client's multiprocess mode."""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.aiohttp import make_aiohttp_handler

from licsrv.envelope import Handler

REQUESTS = Counter("licsrv_http_requests", "HTTP requests by route and status", ["route", "method", "status"])
LATENCY = Histogram(
    "licsrv_http_request_duration_seconds",
    "HTTP request latency by route",
    ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
HEARTBEATS = Counter("licsrv_heartbeats", "Session heartbeats by outcome", ["outcome"])
START_REFUSALS = Counter("licsrv_session_start_refusals", "Refused session starts by error code", ["code"])
BACKEND_ERRORS = Counter("licsrv_backend_errors", "Errors talking to PostgreSQL or Redis", ["backend"])
HEARTBEAT_OK = HEARTBEATS.labels("ok")
HEARTBEAT_EXPIRED = HEARTBEATS.labels("expired")
HEARTBEAT_TERMINATED = HEARTBEATS.labels("terminated")
LIVE_SESSIONS = Gauge(
    "licsrv_live_sessions", "Live sessions in Redis at the last count", multiprocess_mode="max"
)


def _route_name(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


_request_counters: dict[tuple[str, str, int], object] = {}
_latency_histograms: dict[str, object] = {}


def observe(route: str, method: str, status: int, seconds: float) -> None:
    # Label lookups cost more than the increments; the children are kept (a few dozen routes × statuses).
    counter = _request_counters.get((route, method, status))
    if counter is None:
        counter = _request_counters[(route, method, status)] = REQUESTS.labels(route, method, str(status))
    histogram = _latency_histograms.get(route)
    if histogram is None:
        histogram = _latency_histograms[route] = LATENCY.labels(route)
    counter.inc()
    histogram.observe(seconds)


def observe_request(request: web.Request, status: int, seconds: float) -> None:
    observe(_route_name(request), request.method, status, seconds)


class HeartbeatTally:
    """The answered heartbeats of the fast path, counted in plain numbers and added to the Prometheus metrics
    (requests, latency histogram, heartbeat outcomes) within a second and before every scrape: a Prometheus
    increment takes a lock, and a heartbeat would take five, a few per cent of its cost."""

    def __init__(self, route: str) -> None:
        self._requests = REQUESTS.labels(route, "POST", "200")
        self._latency = LATENCY.labels(route)
        # A histogram's bucket values have no public adder: the tally uses the ones prometheus_client has
        # (0.24). A release without them makes every answer observe at once instead, as the routed path does.
        self.direct = not all(hasattr(self._latency, name) for name in ("_upper_bounds", "_buckets", "_sum"))
        self._bounds = () if self.direct else tuple(self._latency._upper_bounds)  # ends with +Inf
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        self._flush_due = False

    def answered(self, seconds: float) -> None:
        if self.direct:
            self._requests.inc()
            HEARTBEAT_OK.inc()
            self._latency.observe(seconds)
            return
        self._counts[bisect_left(self._bounds, seconds)] += 1
        self._sum += seconds
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_later(TALLY_FLUSH_SECONDS, self.flush)
            _TALLIES.add(self)

    def flush(self) -> None:
        self._flush_due = False
        _TALLIES.discard(self)
        counts, self._counts = self._counts, [0] * len(self._bounds)
        total, self._sum = self._sum, 0.0
        answered = sum(counts)
        if not answered:
            return
        self._requests.inc(answered)
        HEARTBEAT_OK.inc(answered)
        # What `Histogram.observe` does per observation, once per bucket (its values have no public adder).
        for bucket, count in zip(self._latency._buckets, counts, strict=True):
            if count:
                bucket.inc(count)
        self._latency._sum.inc(total)


TALLY_FLUSH_SECONDS = 1.0
_TALLIES: set[HeartbeatTally] = set()


def flush_tallies() -> None:
    for tally in list(_TALLIES):
        tally.flush()


def metrics_handler() -> Handler:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        export = make_aiohttp_handler(registry)
    else:
        export = make_aiohttp_handler()

    async def handler(request: web.Request) -> web.StreamResponse:
        flush_tallies()  # this worker's; another worker's are at most a second behind
        return await export(request)

    return handler
