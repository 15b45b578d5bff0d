"""A client for the licsrv client API, for the vendor's program (aiohttp + PyNaCl).

Every answer is checked before it is believed (docs/protocol.md, "Verifying an answer"):
- its signature: Ed25519 with a trusted key (pinned, or first fetched), or for a session started with a
  client key its HMAC-SHA256 under the session's MAC key, and then nothing else (no Ed25519 fallback);
- that it echoes the nonce this request carried (no answer to an earlier or another request);
- that its `data` names this request's subject: the product (slug) of this client, and the license key,
  hardware id, card key or session id the request was about. A refusal is checked on the subject fields it
  carries.
So an answer the server gave to another request — another session, license, device or product — is refused
with UntrustedAnswer.

    async with LicenseClient("https://licenses.example.com", api_key, product="my-app") as client:
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
from nacl.public import PrivateKey, PublicKey, SealedBox

from licsrv_client.offline import OfflineError, check_certificate, make_request, parse_request_code

SEALED_CONTENT_TYPE = "application/x-licsrv-sealed"


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


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise UntrustedAnswer("the answer carries bad base64") from exc


def verify_ed25519(raw: bytes, header: str, keys: dict[str, str]) -> None:
    """The X-Licsrv-Signature `header` verifies over `raw` with one of `keys` (key id → base64 key)."""
    fields = _signature_fields(header)
    if fields.get("alg") != "ed25519" or fields.get("keyid") not in keys:
        raise UntrustedAnswer("the answer is not signed with a trusted key")
    try:
        verify_key = nacl.signing.VerifyKey(base64.b64decode(keys[fields["keyid"]]))
        verify_key.verify(raw, base64.b64decode(fields.get("sig", "")))
    except (nacl.exceptions.BadSignatureError, ValueError) as exc:
        raise UntrustedAnswer("the answer's signature does not verify") from exc


def verify_mac(raw: bytes, header: str, mac_key: bytes) -> None:
    """A MAC session's answer: `alg=hmac-sha256` and the HMAC of `raw` under its key; nothing else."""
    fields = _signature_fields(header)
    if fields.get("alg") != "hmac-sha256":
        raise UntrustedAnswer("a MAC session's answer is not MACed")
    expected = hmac.new(mac_key, raw, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _b64decode(fields.get("sig", ""))):
        raise UntrustedAnswer("the answer's MAC does not verify")


def keys_to_learn(raw: bytes, header: str, key_signatures: str, trusted: dict[str, str]) -> dict[str, str]:
    """The keys a GET /keys answer lists, if its signature or one of its key signatures verifies with a
    trusted key (with none trusted yet: with one of the keys it lists)."""
    try:
        listed = json.loads(raw)["data"]
        keys = {key["id"]: key["public_key"] for key in listed if key.get("alg", "ed25519") == "ed25519"}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UntrustedAnswer("the keys answer is damaged") from exc
    for signature in (header, *key_signatures.split(";")):
        try:
            verify_ed25519(raw, signature.strip(), trusted or keys)
        except UntrustedAnswer:
            continue
        return keys
    raise UntrustedAnswer("the keys answer is not signed with a trusted key")


def sealing_key_of(raw: bytes) -> str | None:
    """The server's X25519 key for sealed requests, from a keys answer already checked (keys_to_learn)."""
    listed = json.loads(raw)["data"]
    return next((key["public_key"] for key in listed if key.get("alg") == "x25519"), None)


def seal_request(server_key: str, one_time: PrivateKey, payload: bytes) -> bytes:
    """A sealed request body: the one-time public key and the JSON, sealed to the server's X25519 key."""
    return SealedBox(PublicKey(base64.b64decode(server_key))).encrypt(bytes(one_time.public_key) + payload)


def open_sealed_answer(one_time: PrivateKey, raw: bytes) -> tuple[str, bytes]:
    """(signature header, body) of a sealed answer."""
    try:
        opened = SealedBox(one_time).decrypt(raw)
    except (TypeError, nacl.exceptions.CryptoError) as exc:
        raise UntrustedAnswer("the sealed answer does not open with this request's key") from exc
    header, _, body = opened.partition(b"\n")
    return header.decode("ascii", "replace"), body


def open_sealed(private_key: PrivateKey, sealed: str) -> bytes:
    """A secret sealed to this client's one-time key (mac_key, content_key)."""
    try:
        return SealedBox(private_key).decrypt(_b64decode(sealed))
    except (TypeError, nacl.exceptions.CryptoError) as exc:
        raise UntrustedAnswer("the session keys are not sealed to this start") from exc


def check_answer(answer: Any, nonce: str, subject: dict[str, str]) -> None:
    """A verified answer is about this request: it echoes `nonce` and names `subject` (check_subject)."""
    if not isinstance(answer, dict) or answer.get("nonce") != nonce:
        raise UntrustedAnswer("the answer does not echo this request's nonce")
    check_subject(answer, subject)


def check_subject(answer: dict[str, Any], subject: dict[str, str]) -> None:
    """A success must name every field of `subject` with the same value; a refusal every field it names."""
    data = answer.get("data")
    named = data if isinstance(data, dict) else {}
    success = answer.get("status") == "ok"
    for name, expected in subject.items():
        if name not in named and not success:
            continue
        if named.get(name) != expected:
            raise UntrustedAnswer(f"the answer is about another {name.replace('_', ' ')}")


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
            "/api/v1/sessions/heartbeat",
            {"session_token": self.token},
            {"session_id": self.session_id},
            self.mac_key,
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
            subject = {"session_id": self.session_id}
            await self.client.call(
                "/api/v1/sessions/end", {"session_token": self.token}, subject, self.mac_key
            )
            self.ended = True


class LicenseClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        product: str,
        public_keys: dict[str, str] | None = None,
        http: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
        sealed: bool = False,
    ) -> None:
        """`product` is the product's slug: every answer must name it. `public_keys` (key id → base64 Ed25519
        key) pins the server's keys; without them the keys are fetched once from `GET /api/v1/keys` (pin them
        in production, shipped with the program). Keys the server publishes later are learned from a keys
        answer signed by a key already trusted, so a pinned program survives a rotation. `sealed` seals every
        call's body to the server's published X25519 key and gets the answer sealed back (no license key,
        card key or hardware id on the wire, even without TLS)."""
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.product = product
        self.public_keys = dict(public_keys or {})
        self._http = http
        self._own_http = http is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.server_time: int | None = None  # from the last trusted answer
        self.sealed = sealed
        self.sealing_key: str | None = None  # learned with the keys, from a trusted keys answer

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
        """Learns the published keys from a keys answer signed by a key this client trusts; with no key
        trusted yet (nothing pinned), the list must be signed by one of the keys it lists."""
        nonce = secrets.token_urlsafe(12)
        url = f"{self.base_url}/api/v1/keys"
        async with self._session().get(url, params={"nonce": nonce}) as response:
            raw = await response.read()
            header = response.headers.get("X-Licsrv-Signature", "")
            vouching = response.headers.get("X-Licsrv-Key-Signatures", "")
        keys = keys_to_learn(raw, header, vouching, self.public_keys)
        if json.loads(raw).get("nonce") != nonce:
            raise UntrustedAnswer("the keys answer does not echo this request's nonce")
        self.sealing_key = sealing_key_of(raw)
        self.public_keys.update(keys)
        return keys

    async def _verify(self, raw: bytes, header: str, mac_key: bytes | None) -> None:
        if mac_key is not None:  # a MAC session: its MAC or nothing
            verify_mac(raw, header, mac_key)
            return
        if _signature_fields(header).get("keyid") not in self.public_keys:
            await self.fetch_keys()  # first use, or the server activated a key published since
        verify_ed25519(raw, header, self.public_keys)

    async def call(
        self,
        path: str,
        body: dict[str, Any],
        subject: dict[str, str] | None = None,
        mac_key: bytes | None = None,
    ) -> dict[str, Any]:
        """POSTs `body` with a fresh nonce; returns `data` of a trusted answer about `subject` (plus this
        client's product), or raises LicsrvError (UntrustedAnswer for an answer not to be believed)."""
        nonce = secrets.token_urlsafe(12)
        headers = {"X-API-Key": self.api_key, "Content-Type": "application/json"}
        payload = json.dumps({**body, "nonce": nonce}).encode()
        one_time = None
        if self.sealed:
            if self.sealing_key is None:
                await self.fetch_keys()
            if self.sealing_key is None:
                raise UntrustedAnswer("the server publishes no key to seal requests to")
            one_time = PrivateKey.generate()
            payload = seal_request(self.sealing_key, one_time, payload)
            headers["Content-Type"] = SEALED_CONTENT_TYPE
        async with self._session().post(f"{self.base_url}{path}", data=payload, headers=headers) as response:
            raw = await response.read()
            header = response.headers.get("X-Licsrv-Signature", "")
            retry_after = response.headers.get("Retry-After")
            status = response.status
            sealed_answer = response.headers.get("Content-Type", "").startswith(SEALED_CONTENT_TYPE)
        if one_time is not None and sealed_answer:
            header, raw = open_sealed_answer(one_time, raw)
        await self._verify(raw, header, mac_key)
        try:
            answer = json.loads(raw)
        except ValueError as exc:
            raise UntrustedAnswer("the answer is not JSON") from exc
        check_answer(answer, nonce, {"product": self.product, **(subject or {})})
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
        subject = dict(body)
        if machine_name:
            body["machine_name"] = machine_name
        if client_version:
            body["client_version"] = client_version
        return await self.call("/api/v1/licenses/activate", body, subject)

    async def validate(self, license_key: str, hardware_id: str) -> dict[str, Any]:
        body = {"license_key": license_key, "hardware_id": hardware_id}
        return await self.call("/api/v1/licenses/validate", body, body)

    async def deactivate(self, license_key: str, hardware_id: str) -> dict[str, Any]:
        body = {"license_key": license_key, "hardware_id": hardware_id}
        return await self.call("/api/v1/licenses/deactivate", body, body)

    async def redeem(self, card_key: str, hardware_id: str, license_key: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"card_key": card_key, "hardware_id": hardware_id}
        if license_key:
            body["license_key"] = license_key
        return await self.call("/api/v1/cards/redeem", body, body)

    async def offline_activate(self, request_code: str) -> dict[str, Any]:
        """The certificate answer for a request code made by `licsrv_client.offline.make_request`."""
        request = parse_request_code(request_code)
        subject = {"license_key": request.license_key, "hardware_id": request.hardware_id}
        return await self.call("/api/v1/offline/activate", {"request_code": request_code}, subject)

    async def renew_certificate(self, license_key: str, hardware_id: str) -> tuple[str, dict[str, Any]]:
        """An offline certificate fetched online (a new one when the stored one passed its `valid_until`):
        (certificate code, checked payload). A revoked or suspended license gets none (LicsrvError)."""
        request = make_request(license_key, hardware_id)
        certificate = (await self.offline_activate(request.code()))["certificate"]
        try:
            return certificate, check_certificate(certificate, request, self.public_keys)
        except OfflineError:
            await self.fetch_keys()  # signed with a key published since this client last looked
        try:
            return certificate, check_certificate(certificate, request, self.public_keys)
        except OfflineError as exc:
            raise UntrustedAnswer(f"the certificate does not check: {exc}") from exc

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
        (from `licsrv_client.credential.open_credential_file`) stands in for the license key."""
        private = PrivateKey.generate()
        body: dict[str, Any] = {
            "hardware_id": hardware_id,
            "client_version": client_version,
            "client_public_key": base64.b64encode(bytes(private.public_key)).decode(),
        }
        subject = {"hardware_id": hardware_id}
        if license_key is not None:
            body["license_key"] = subject["license_key"] = license_key
        if credential is not None:
            body["credential"] = subject["credential"] = credential
        if machine_name:
            body["machine_name"] = machine_name
        if open_program:
            body["function"] = "open"
        data = await self.call("/api/v1/sessions/start", body, subject)
        # Sealed to this start's one-time key: the keys of an answer to another start cannot be opened.
        mac_key = open_sealed(private, data.get("mac_key") or "")
        content = data.get("content_key")
        content_key = open_sealed(private, content) if content else None
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
            mac_key=mac_key,
            content_key=content_key,
            start_args=start_args,
        )
