"""A request head must arrive whole within `header_read_timeout` seconds of its first byte (or of the
connection's opening), else the connection is dropped: a client that trickles partial headers cannot hold a
connection and its memory for the keep-alive timeout. aiohttp has no such limit of its own, so the server's
connection handler is extended; idle keep-alive connections between requests are not affected.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.web_protocol import RequestHandler


class _HeadTimeoutHandler(RequestHandler):
    __slots__ = ("_head_timeout", "_head_timer", "_heads_when_armed")

    def __init__(self, *args, head_timeout: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._head_timeout = head_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._heads_when_armed = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        heads = self._request_count
        super().data_received(data)
        if self._request_count > heads:
            if self._head_timer is not None:
                self._disarm()
        elif self._head_timer is None and self._between_requests():
            self._arm()  # the first bytes of the next request's head

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _between_requests(self) -> bool:
        return self._current_request is None and not self._messages

    def _arm(self) -> None:
        self._heads_when_armed = self._request_count
        self._head_timer = self._loop.call_later(self._head_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._request_count == self._heads_when_armed and self._between_requests():
            self.force_close()


class _HeadTimeoutServer(web.Server):
    head_timeout: float

    def __call__(self) -> RequestHandler:
        return _HeadTimeoutHandler(self, loop=self._loop, head_timeout=self.head_timeout, **self._kwargs)


def install(server: web.Server, seconds: float) -> None:
    """Applies the head timeout to the connections `server` accepts from now on (before the site starts)."""
    if seconds <= 0:
        return
    server.__class__ = _HeadTimeoutServer  # the same object, its connections made by the subclass above
    server.head_timeout = seconds  # type: ignore[attr-defined]
