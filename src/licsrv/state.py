"""The typed application keys: every resource the app owns, created and closed in `cleanup_ctx`."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from licsrv.db import Database
from licsrv.deps import Deps
from licsrv.live.sessions import LiveSessions
from licsrv.services.products import ProductCache
from licsrv.services.rate_limits import RateLimiter
from licsrv.services.session_crypto import SessionCrypto
from licsrv.services.usage import ChartCache
from licsrv.settings import Settings
from licsrv.signing import Keyring
from licsrv.watchdog import Watchdog

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
REDIS = web.AppKey("redis", Redis)
KEYRING = web.AppKey("keyring", Keyring)
PRODUCTS = web.AppKey("products", ProductCache)
LIVE = web.AppKey("live", LiveSessions)
CRYPTO = web.AppKey("crypto", SessionCrypto)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
DEPS = web.AppKey("deps", Deps)
WATCHDOG = web.AppKey("watchdog", Watchdog)
CHART_CACHE = web.AppKey("chart_cache", ChartCache)

# Per-request values set by middlewares.
REQUEST_ID = web.RequestKey("request_id", str)
CLIENT_IP = web.RequestKey("client_ip", str)
NONCE = web.RequestKey("nonce", object)
JSON_BODY = web.RequestKey("json_body", dict)


def deps_of(request: web.Request) -> Deps:
    return request.config_dict[DEPS]
