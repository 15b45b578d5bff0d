"""The offline activation wire format, the server's side (docs/protocol.md, "Offline activation"): request
codes read, certificates written. The client's side is in the licsrv-client package (clients/python); the
two agree through the test vectors (clients/vectors) that `licsrv vectors` writes from this module.

Request code:  `LR1.` base64url(JSON {"k": license key, "h": hardware id, "n": nonce, "t": unix seconds})
Certificate:   `LC1.` base64url(payload JSON) `.` base64url(Ed25519 signature of CERT_CONTEXT + payload)
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

REQUEST_PREFIX = "LR1."
CERT_PREFIX = "LC1."
# Signatures over certificates never verify as signatures over API answers, and the reverse.
CERT_CONTEXT = b"licsrv offline certificate v1\n"
MAX_CODE_LENGTH = 2000


class OfflineError(ValueError):
    """A request code that is malformed."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
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
        return REQUEST_PREFIX + b64url(json.dumps(document, separators=(",", ":")).encode())


def parse_request_code(code: str) -> OfflineRequest:
    code = code.strip()
    if not code.startswith(REQUEST_PREFIX) or len(code) > MAX_CODE_LENGTH:
        raise OfflineError("not a licsrv request code")
    try:
        document = json.loads(_unb64url(code[len(REQUEST_PREFIX) :]))
    except ValueError as exc:
        raise OfflineError("the request code is damaged") from exc
    if not isinstance(document, dict):
        raise OfflineError("the request code is damaged")
    key, hardware, nonce, at = (document.get(name) for name in ("k", "h", "n", "t"))
    texts = all(isinstance(value, str) and 1 <= len(value) <= 200 for value in (key, hardware, nonce))
    if not texts or not isinstance(at, int) or isinstance(at, bool) or not 0 < at < 2**40:
        raise OfflineError("the request code is damaged")
    return OfflineRequest(key, hardware, nonce, at)


def certificate_code(payload: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """`sign(bytes) -> 64-byte Ed25519 signature` with the active key; the payload names that key (`kid`)."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return CERT_PREFIX + b64url(body) + "." + b64url(sign(CERT_CONTEXT + body))
