"""Key names and session tokens. Every key of a license carries the hash tag `{<license id>}`, so each
script touches one cluster slot; names are short because there may be a million of them.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

_TOKEN = re.compile(r"^([1-9][0-9]{0,18})\.([A-Za-z0-9_-]{22})$")
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{16}$")


class BadToken(ValueError):
    """A token that cannot belong to any session; treated like an expired one."""


def sessions_key(license_id: int) -> str:
    """ZSET of the license's session ids, scored by expiry in ms (a heartbeat moves the score)."""
    return f"{{{license_id}}}z"


def session_key(license_id: int, session_id: str) -> str:
    """STRING holding the session's start in ms; its TTL is the session's liveness."""
    return f"{{{license_id}}}s{session_id}"


def tombstone_key(license_id: int, session_id: str) -> str:
    """Why a session was ended by the server; lives one session timeout."""
    return f"{{{license_id}}}t{session_id}"


def session_prefix(license_id: int) -> str:
    return f"{{{license_id}}}s"


def tombstone_prefix(license_id: int) -> str:
    return f"{{{license_id}}}t"


class TokenCodec:
    """Tokens are `<license id>.<128 random bits>`; the public session id is a keyed hash of the secret part,
    so Redis stores no secret and an admin listing can never reveal a token."""

    def __init__(self, id_key: bytes) -> None:
        self._id_key = hashlib.blake2b(id_key, digest_size=32, person=b"licsrv-sid").digest()

    def session_id(self, secret: str) -> str:
        digest = hashlib.blake2b(secret.encode(), key=self._id_key, digest_size=12).digest()
        return base64.urlsafe_b64encode(digest).decode()

    def new_token(self, license_id: int) -> tuple[str, str]:
        """(token, session id)."""
        secret = secrets.token_urlsafe(16)
        return f"{license_id}.{secret}", self.session_id(secret)

    def parse(self, token: str) -> tuple[int, str]:
        """(license id, session id) without touching Redis."""
        match = _TOKEN.match(token)
        if match is None:
            raise BadToken("malformed session token")
        return int(match[1]), self.session_id(match[2])


def valid_session_id(session_id: str) -> bool:
    return bool(_SESSION_ID.match(session_id))
