"""Where a webhook may be sent: http(s) only, and (unless LICSRV_WEBHOOK_ALLOW_PRIVATE) never to a private,
loopback or otherwise internal address, so a vendor's endpoint cannot become a way into the server's network.
The check runs on the URL when it is saved and again on every address a connection resolves to."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

from licsrv.errors import ApiError


class TargetRefused(Exception):
    """The URL or the address it resolves to is not allowed."""


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, allow_private: bool) -> str:
    """The URL as it will be used, or VALIDATION_ERROR saying why it cannot be."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ApiError("VALIDATION_ERROR", "The URL is not valid.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError("VALIDATION_ERROR", "Only http:// and https:// URLs with a host are allowed.")
    if parts.username or parts.password:
        raise ApiError("VALIDATION_ERROR", "Put no credentials in the URL; verify the signature instead.")
    if port == 0:
        raise ApiError("VALIDATION_ERROR", "The URL's port is not valid.")
    if not allow_private:
        host = parts.hostname
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
            raise ApiError("VALIDATION_ERROR", "Private and loopback targets are not allowed.")
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None and not is_public(host):
            raise ApiError("VALIDATION_ERROR", "Private and loopback targets are not allowed.")
    return url.strip()


class PublicOnlyResolver(AbstractResolver):
    """aiohttp's resolver, keeping only public addresses (a name may point inside after it was saved)."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[Any]:
        found = await self._inner.resolve(host, port, family)
        public = [entry for entry in found if is_public(entry["host"])]
        if not public:
            raise TargetRefused(f"{host} resolves to no public address")
        return public

    async def close(self) -> None:
        await self._inner.close()
