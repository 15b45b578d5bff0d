"""A client for the licsrv client API, for the vendor's program (aiohttp + PyNaCl).

Every answer is checked before it is believed: its signature (Ed25519 with a pinned or first-fetched public
key, or the session's HMAC key), and that it echoes the nonce this request carried, so an answer can neither
be forged nor replayed. Sessions are started with a fresh X25519 key pair, so their heartbeat answers are
MACed (cheap on the server) instead of Ed25519-signed.

    async with LicenseClient("https://licenses.example.com", api_key) as client:
        session = await client.start_session(license_key, hardware_id, "2.1.0")
        task = asyncio.create_task(session.keep_alive())   # heartbeats until cancelled or refused
        ...
        task.cancel()
        await session.end()
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import nacl.exceptions
import nacl.signing
from nacl.public import PrivateKey, SealedBox


class LicsrvError(Exception):
    """A refusal from the server (`code` is one of the stable error codes), or an answer not to be trusted."""

    def __init__(self, code: str, message: str, status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after


class UntrustedAnswer(LicsrvError):
    def __init__(self, message: str) -> None:
        super().__init__("UNTRUSTED_ANSWER", message)


def _signature_fields(header: str) -> dict[str, str]:
    return dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)


@dataclass
class Session:
    client: LicenseClient
    token: str
    session_id: str
    heartbeat_interval: int
    session_timeout: int
    update: dict | None
    mac_key: bytes | None = None
    content_key: bytes | None = None
    start_args: dict[str, Any] = field(default_factory=dict)  # to start again after SESSION_EXPIRED
    restarts: int = field(default=0, init=False)
    ended: bool = field(default=False, init=False)

    async def heartbeat(self) -> int:
        """Seconds until the next heartbeat is due."""
        data = await self.client.call(
            "/api/v1/sessions/heartbeat", {"session_token": self.token}, self.mac_key
        )
        return int(data["next_heartbeat"])

    async def restart(self) -> None:
        """A new session with the same arguments, taken over by this object (new token, id and keys)."""
        fresh = await self.client.start_session(**self.start_args)
        self.token, self.session_id, self.mac_key = fresh.token, fresh.session_id, fresh.mac_key
        self.heartbeat_interval, self.session_timeout = fresh.heartbeat_interval, fresh.session_timeout
        self.update, self.content_key = fresh.update, fresh.content_key
        self.restarts += 1

    async def keep_alive(self, interval: float | None = None) -> None:
        """Heartbeats every interval (the server's, unless given) until cancelled. When the session is gone
        without anyone ending it (SESSION_EXPIRED: it timed out, or Redis lost it) a new one is started at
        once; any other refusal (terminated, suspended, …) ends the loop by raising it. Network failures and
        SERVICE_UNAVAILABLE are retried until the session would have timed out."""
        wait = self.heartbeat_interval if interval is None else interval
        while True:
            await asyncio.sleep(wait)
            next_in = await self._beat_or_recover()
            wait = next_in if interval is None else interval

    async def _beat_or_recover(self) -> int:
        loop = asyncio.get_running_loop()
        failing_since = loop.time()
        while True:
            try:
                return await self.heartbeat()
            except LicsrvError as exc:
                if exc.code == "SESSION_EXPIRED":
                    await self.restart()
                    return self.heartbeat_interval
                if exc.code != "SERVICE_UNAVAILABLE":
                    raise
                error: Exception = exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = exc
            if loop.time() - failing_since > self.session_timeout:
                raise error
            await asyncio.sleep(min(5.0, max(self.heartbeat_interval / 4, 0.05)))

    async def end(self) -> None:
        if not self.ended:
            await self.client.call("/api/v1/sessions/end", {"session_token": self.token})
            self.ended = True


class LicenseClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        public_keys: dict[str, str] | None = None,
        http: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
    ) -> None:
        """`public_keys` (key id → base64 Ed25519 key) pins the server's keys; without them the keys are
        fetched once from `GET /api/v1/keys` (pin them in production, e.g. shipped with the program)."""
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.public_keys = dict(public_keys or {})
        self._pinned = bool(public_keys)
        self._http = http
        self._own_http = http is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.server_time: int | None = None  # from the last trusted answer

    async def __aenter__(self) -> LicenseClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        return self._http

    async def fetch_keys(self) -> dict[str, str]:
        async with self._session().get(f"{self.base_url}/api/v1/keys") as response:
            raw = await response.read()
            header = response.headers.get("X-Licsrv-Signature", "")
        keys = {key["id"]: key["public_key"] for key in json.loads(raw)["data"]}
        # The list must be signed by one of the keys it lists (it vouches for itself; pinning is stronger).
        self._verify_ed25519(raw, header, keys)
        self.public_keys.update(keys)
        return keys

    def _verify_ed25519(self, raw: bytes, header: str, keys: dict[str, str]) -> None:
        fields = _signature_fields(header)
        if fields.get("alg") != "ed25519" or fields.get("keyid") not in keys:
            raise UntrustedAnswer("the answer is not signed with a known key")
        try:
            verify_key = nacl.signing.VerifyKey(base64.b64decode(keys[fields["keyid"]]))
            verify_key.verify(raw, base64.b64decode(fields.get("sig", "")))
        except (nacl.exceptions.BadSignatureError, ValueError) as exc:
            raise UntrustedAnswer("the answer's signature does not verify") from exc

    async def _verify(self, raw: bytes, header: str, mac_key: bytes | None) -> None:
        fields = _signature_fields(header)
        if mac_key is not None and fields.get("alg") == "hmac-sha256":
            expected = hmac.new(mac_key, raw, hashlib.sha256).digest()
            if not hmac.compare_digest(expected, base64.b64decode(fields.get("sig", ""))):
                raise UntrustedAnswer("the answer's MAC does not verify")
            return
        if not self._pinned and fields.get("keyid") not in self.public_keys:
            await self.fetch_keys()  # first use, or the server rotated to a key published since
        self._verify_ed25519(raw, header, self.public_keys)

    async def call(self, path: str, body: dict[str, Any], mac_key: bytes | None = None) -> dict[str, Any]:
        """POSTs `body` with a fresh nonce; returns `data` of a trusted answer or raises LicsrvError."""
        nonce = secrets.token_urlsafe(12)
        headers = {"X-API-Key": self.api_key, "Content-Type": "application/json"}
        payload = json.dumps({**body, "nonce": nonce}).encode()
        async with self._session().post(f"{self.base_url}{path}", data=payload, headers=headers) as response:
            raw = await response.read()
            header = response.headers.get("X-Licsrv-Signature", "")
            retry_after = response.headers.get("Retry-After")
            status = response.status
        await self._verify(raw, header, mac_key)
        answer = json.loads(raw)
        if answer.get("nonce") != nonce:
            raise UntrustedAnswer("the answer does not echo this request's nonce")
        self.server_time = answer.get("server_time")
        if answer.get("status") != "ok":
            error = answer.get("error") or {}
            raise LicsrvError(
                error.get("code", "UNKNOWN"),
                error.get("message", ""),
                status,
                float(retry_after) if retry_after else None,
            )
        return answer["data"]

    async def activate(
        self, license_key: str, hardware_id: str, machine_name: str = "", client_version: str = ""
    ) -> dict[str, Any]:
        body = {"license_key": license_key, "hardware_id": hardware_id}
        if machine_name:
            body["machine_name"] = machine_name
        if client_version:
            body["client_version"] = client_version
        return await self.call("/api/v1/licenses/activate", body)

    async def validate(self, license_key: str, hardware_id: str) -> dict[str, Any]:
        return await self.call(
            "/api/v1/licenses/validate", {"license_key": license_key, "hardware_id": hardware_id}
        )

    async def deactivate(self, license_key: str, hardware_id: str) -> dict[str, Any]:
        body = {"license_key": license_key, "hardware_id": hardware_id}
        return await self.call("/api/v1/licenses/deactivate", body)

    async def redeem(self, card_key: str, hardware_id: str, license_key: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"card_key": card_key, "hardware_id": hardware_id}
        if license_key:
            body["license_key"] = license_key
        return await self.call("/api/v1/cards/redeem", body)

    async def offline_activate(self, request_code: str) -> dict[str, Any]:
        return await self.call("/api/v1/offline/activate", {"request_code": request_code})

    async def start_session(
        self,
        license_key: str | None,
        hardware_id: str,
        client_version: str,
        *,
        machine_name: str = "",
        open_program: bool = False,
        credential: str | None = None,
    ) -> Session:
        """A run session; `open_program` also asks for the product's content key (DESIGN §5); `credential`
        (from `licsrv.client.credential.open_credential_file`) stands in for the license key."""
        private = PrivateKey.generate()
        body: dict[str, Any] = {
            "hardware_id": hardware_id,
            "client_version": client_version,
            "client_public_key": base64.b64encode(bytes(private.public_key)).decode(),
        }
        if license_key is not None:
            body["license_key"] = license_key
        if credential is not None:
            body["credential"] = credential
        if machine_name:
            body["machine_name"] = machine_name
        if open_program:
            body["function"] = "open"
        data = await self.call("/api/v1/sessions/start", body)
        box = SealedBox(private)
        content_key = data.get("content_key")
        start_args = {
            "license_key": license_key,
            "hardware_id": hardware_id,
            "client_version": client_version,
            "machine_name": machine_name,
            "open_program": open_program,
            "credential": credential,
        }
        return Session(
            client=self,
            token=data["session_token"],
            session_id=data["session_id"],
            heartbeat_interval=int(data["heartbeat_interval"]),
            session_timeout=int(data["session_timeout"]),
            update=data.get("update"),
            mac_key=box.decrypt(base64.b64decode(data["mac_key"])),
            content_key=box.decrypt(base64.b64decode(content_key)) if content_key else None,
            start_args=start_args,
        )
