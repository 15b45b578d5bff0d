"""Failed admin logins counted in Redis: a lock per user and address, and a larger throttle per user.

Following OWASP ASVS 4.0 V2.2.1 (anti-automation that mitigates brute force *and* account-lockout attacks,
at most 100 failed attempts per hour on one account) and V2.2.3-style risk signals:

* **user + address**: `login_max_failures` (5) failed attempts of one username from one address lock that
  pair for `login_lockout_seconds` (15 min). Someone guessing from elsewhere locks only their own address,
  never the admin's.
* **address, any user**: more than `login_address_max_failures` (50) failed attempts from one address within
  `login_address_window_seconds` (1 h), whatever the usernames, throttle that address (password spraying);
  only the failing address is affected.
* **user, any address**: more than `login_user_max_failures` (100) failed attempts within
  `login_user_window_seconds` (1 h) throttle the username from every address it has never logged in from
  (a successful login remembers its address for `login_known_address_seconds`, 30 days). A guesser spread
  over many addresses gets at most 100 guesses an hour; the admin at a known address is not locked out.

Attempts are counted *before* the password is checked (INCR first, then decide, in one Lua script), so 200
concurrent wrong passwords check at most `login_max_failures` of them. `licsrv admins unlock USER` clears
both.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from licsrv.settings import Settings

_ATTEMPT = (Path(__file__).parent / "login_attempt.lua").read_text()
_SUCCESS = (Path(__file__).parent / "login_success.lua").read_text()
_ADDRESS = (Path(__file__).parent / "login_address.lua").read_text()


class Verdict(enum.IntEnum):
    CHECK = 0
    ADDRESS_LOCKED = 1
    USER_THROTTLED = 2
    ADDRESS_THROTTLED = 3


@dataclass(frozen=True, slots=True)
class Attempt:
    verdict: Verdict
    address_count: int  # this user from this address
    user_count: int  # this user from any address
    spray_count: int  # any user from this address


def _tag(username: str) -> str:
    """The username hashed: any typed text makes a safe key; the hash tag keeps one user's keys together."""
    return hashlib.sha256(username.strip().lower().encode()).hexdigest()[:24]


def _address_key(ip: str | None) -> str:
    return f"lf:ip:{ip or '-'}"


def _keys(username: str, ip: str | None) -> list[str]:
    tag = _tag(username)
    return [f"lf:{{{tag}}}:a:{ip or '-'}", f"lf:{{{tag}}}:u", f"lf:{{{tag}}}:k:{ip or '-'}"]


class LoginLockout:
    def __init__(self, redis: Redis | RedisCluster, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings
        self._attempt = redis.register_script(_ATTEMPT)
        self._success = redis.register_script(_SUCCESS)
        self._address = redis.register_script(_ADDRESS)

    async def attempt(self, username: str, ip: str | None) -> Attempt:
        s = self._settings
        spray = int(await self._address(keys=[_address_key(ip)], args=[1, s.login_address_window_seconds]))
        if spray > s.login_address_max_failures:
            return Attempt(Verdict.ADDRESS_THROTTLED, 0, 0, spray)
        verdict, address_count, user_count = await self._attempt(
            keys=_keys(username, ip),
            args=[
                s.login_max_failures,
                s.login_lockout_seconds,
                s.login_user_max_failures,
                s.login_user_window_seconds,
            ],
        )
        return Attempt(Verdict(int(verdict)), int(address_count), int(user_count), spray)

    def newly_locked(self, attempt: Attempt) -> bool:
        """The first refused attempt of an address lock (each lock is reported once)."""
        return attempt.verdict is Verdict.ADDRESS_LOCKED and attempt.address_count == (
            self._settings.login_max_failures + 1
        )

    def newly_throttled(self, attempt: Attempt) -> bool:
        """The attempt that took the user over the throttle (reported once per window)."""
        return attempt.user_count == self._settings.login_user_max_failures + 1

    def newly_address_throttled(self, attempt: Attempt) -> bool:
        """The attempt that took the address over its throttle (reported once per window)."""
        return attempt.spray_count == self._settings.login_address_max_failures + 1

    async def succeeded(self, username: str, ip: str | None) -> None:
        await self._success(keys=_keys(username, ip), args=[self._settings.login_known_address_seconds])
        await self._address(keys=[_address_key(ip)], args=[-1, 0])


async def unlock(redis: Redis | RedisCluster, username: str) -> int:
    """Clears every lock and count of `username` (its known addresses stay known); the keys deleted."""
    tag = _tag(username)
    keys = [key async for key in redis.scan_iter(match=f"lf:{{{tag}}}:a:*", count=1000)]
    keys.append(f"lf:{{{tag}}}:u")
    deleted = 0
    for key in keys:
        deleted += await redis.delete(key)
    return deleted
