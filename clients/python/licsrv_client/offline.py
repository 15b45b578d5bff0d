"""Offline activation, the client's side (docs/protocol.md, "Offline activation").

The machine without internet makes a request code and shows it as text and as a QR code pointing to
`<server>/offline?r=<code>`. The user opens that page on a phone; the server binds the device and answers
with a certificate, signed with the server's Ed25519 key, which the user carries back (typed, pasted or
scanned). The client checks it with the public key it got from `GET /api/v1/keys` beforehand and keeps the
latest time it has seen, refusing a clock that moved backwards.

Request code:  `LR1.` base64url(JSON {"k": license key, "h": hardware id, "n": nonce, "t": unix seconds})
Certificate:   `LC1.` base64url(payload JSON) `.` base64url(Ed25519 signature of CERT_CONTEXT + payload)

Only the standard library and PyNaCl: a vendor can copy this file into their client.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing

REQUEST_PREFIX = "LR1."
CERT_PREFIX = "LC1."
# Signatures over certificates never verify as signatures over API answers, and the reverse.
CERT_CONTEXT = b"licsrv offline certificate v1\n"
MAX_CODE_LENGTH = 2000
CLOCK_TOLERANCE_S = 300


class OfflineError(ValueError):
    """A request code or certificate that is malformed, forged, for another machine, or out of date;
    `reason` is one of damaged, bad_signature, wrong_machine, wrong_request, clock_behind, expired."""

    def __init__(self, message: str, reason: str = "damaged") -> None:
        super().__init__(message)
        self.reason = reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise OfflineError("not base64url") from exc


@dataclass(frozen=True)
class OfflineRequest:
    license_key: str
    hardware_id: str
    nonce: str
    requested_at: int  # unix seconds by the offline machine's clock

    def code(self) -> str:
        document = {"k": self.license_key, "h": self.hardware_id, "n": self.nonce, "t": self.requested_at}
        return REQUEST_PREFIX + _b64(json.dumps(document, separators=(",", ":")).encode())


def make_request(license_key: str, hardware_id: str, now: float | None = None) -> OfflineRequest:
    """A new request (keep it until the certificate comes back: its nonce must match)."""
    return OfflineRequest(license_key, hardware_id, secrets.token_urlsafe(9), int(now or time.time()))


def parse_request_code(code: str) -> OfflineRequest:
    code = code.strip()
    if not code.startswith(REQUEST_PREFIX) or len(code) > MAX_CODE_LENGTH:
        raise OfflineError("not a licsrv request code")
    try:
        document = json.loads(_unb64(code[len(REQUEST_PREFIX) :]))
    except ValueError as exc:
        raise OfflineError("the request code is damaged") from exc
    if not isinstance(document, dict):
        raise OfflineError("the request code is damaged")
    key, hardware, nonce, at = (document.get(name) for name in ("k", "h", "n", "t"))
    texts = all(isinstance(value, str) and 1 <= len(value) <= 200 for value in (key, hardware, nonce))
    if not texts or not isinstance(at, int) or isinstance(at, bool) or not 0 < at < 2**40:
        raise OfflineError("the request code is damaged")
    return OfflineRequest(key, hardware, nonce, at)


def read_certificate(code: str, public_keys: dict[str, str]) -> dict[str, Any]:
    """The signed payload, once its signature verifies with one of `public_keys` (key id → base64 key)."""
    code = "".join(code.split())  # typed or pasted with line breaks
    if not code.startswith(CERT_PREFIX) or len(code) > MAX_CODE_LENGTH or code.count(".") != 2:
        raise OfflineError("not a licsrv certificate")
    body_text, signature_text = code[len(CERT_PREFIX) :].split(".")
    body, signature = _unb64(body_text), _unb64(signature_text)
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise OfflineError("the certificate is damaged") from exc
    if not isinstance(payload, dict) or payload.get("kid") not in public_keys:
        raise OfflineError("the certificate is signed with an unknown key", "bad_signature")
    try:
        verify_key = nacl.signing.VerifyKey(base64.b64decode(public_keys[payload["kid"]]))
        verify_key.verify(CERT_CONTEXT + body, signature)
    except (nacl.exceptions.BadSignatureError, ValueError) as exc:
        raise OfflineError("the certificate's signature does not verify", "bad_signature") from exc
    return payload


def check_certificate(
    code: str, request: OfflineRequest, public_keys: dict[str, str], now: float | None = None
) -> dict[str, Any]:
    """A certificate that answers `request` on this machine and is valid now; else OfflineError."""
    payload = read_certificate(code, public_keys)
    now = time.time() if now is None else now
    if payload.get("hardware_id") != request.hardware_id:
        raise OfflineError("the certificate is for another machine", "wrong_machine")
    if payload.get("nonce") != request.nonce or payload.get("license_key") != request.license_key:
        raise OfflineError("the certificate answers another request", "wrong_request")
    if payload.get("issued_at", 0) > now + CLOCK_TOLERANCE_S:
        raise OfflineError("this machine's clock is behind the certificate's issue time", "clock_behind")
    expires_at = payload.get("expires_at")
    if expires_at is not None and expires_at <= now:
        raise OfflineError("the license has expired", "expired")
    valid_until = payload.get("valid_until")
    if not isinstance(valid_until, int) or valid_until <= now:
        raise CertificateExpired("the certificate has expired: renew it online", "expired")
    return payload


class CertificateExpired(OfflineError):
    """Past its `valid_until`: ask the server for a new one (LicenseClient.renew_certificate)."""


class ClockMovedBackwards(OfflineError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "clock_moved_backwards")


class ClockGuard:
    """Remembers the latest time this client has seen (in a file) and refuses a clock set back behind it,
    so an expired offline certificate cannot be revived by turning the clock back."""

    def __init__(self, path: Path, tolerance_s: float = CLOCK_TOLERANCE_S) -> None:
        self.path = Path(path)
        self.tolerance_s = tolerance_s

    def last_seen(self) -> float:
        try:
            return float(self.path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0.0

    def check(self, now: float | None = None) -> float:
        """Returns the time to trust (now), after recording it; raises if the clock went back."""
        now = time.time() if now is None else now
        last = self.last_seen()
        if now + self.tolerance_s < last:
            raise ClockMovedBackwards(
                f"the clock is {last - now:.0f} s behind a time this machine has already seen"
            )
        if now > last:
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(f"{now:.0f}\n")
            os.replace(temporary, self.path)
        return now
