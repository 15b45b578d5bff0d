"""Key names and session tokens. Every key of a license carries the hash tag `{<license id>}`, so each
script touches one cluster slot; names are short because there may be a million of them.

A public session id is a 96-bit keyed hash of its token, written as 16 text characters; inside Redis the
same id is the hash's 12 bytes, so a live session costs no more than the 12-character ids of 36 bits and a
start time did: ~290 bytes (tests/test_live_store). The member index is ordered by expiry, which is all the
scripts need (the `replace` policy ends the sessions that heartbeated least recently).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

MAC_MARK = "~m"
HASH_BYTES = 12  # 96 bits
_TOKEN = re.compile(r"^([1-9][0-9]{0,18})\.([A-Za-z0-9_-]{6})([A-Za-z0-9_-]{22}(?:~m)?)$")
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{16}$")


class BadToken(ValueError):
    """A token that cannot belong to any session; treated like an expired one."""


def sessions_key(license_id: int) -> str:
    """ZSET of the license's session members, scored by expiry in ms (a heartbeat moves the score)."""
    return f"{{{license_id}}}z"


def session_key(license_id: int, session_id: str | bytes) -> bytes:
    """STRING `1` (a shared object: no memory of its own); its TTL is the session's liveness. Named by the
    tag and the 12-byte member, nothing else: its length tells it apart from the license's other keys."""
    return session_prefix(license_id) + _as_member(session_id)


def tombstone_key(license_id: int, session_id: str | bytes) -> bytes:
    """Why a session was ended by the server; lives one session timeout."""
    return tombstone_prefix(license_id) + _as_member(session_id)


def block_key(license_id: int) -> bytes:
    """Why the license is blocked (`suspended`, `revoked`); no TTL: `resume` removes it."""
    return b"{%d}b" % license_id


def session_prefix(license_id: int) -> bytes:
    return b"{%d}" % license_id


def tombstone_prefix(license_id: int) -> bytes:
    return b"{%d}t" % license_id


# 64 symbols in ASCII order: fixed-width numbers written with them sort as text in numeric order.
ORDERED_ALPHABET = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


_STANDARD_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_TO_ORDERED = bytes.maketrans(_STANDARD_ALPHABET, ORDERED_ALPHABET.encode())
_FROM_ORDERED = bytes.maketrans(ORDERED_ALPHABET.encode(), _STANDARD_ALPHABET)


def _ordered(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 64)
        chars.append(ORDERED_ALPHABET[digit])
    return "".join(reversed(chars))


def member(session_id: str) -> bytes:
    """The 12 bytes that stand for a public session id inside Redis."""
    if not valid_session_id(session_id):
        raise BadToken("not a session id")
    return base64.b64decode(session_id.encode().translate(_FROM_ORDERED))


def public_id(stored: bytes) -> str:
    """The public session id of a Redis member."""
    return base64.b64encode(stored).translate(_TO_ORDERED).decode()


_SESSION_KEY = re.compile(rb"^\{([1-9][0-9]{0,18})\}(.{12})$", re.DOTALL)


def parse_session_key(key: bytes) -> tuple[int, str] | None:
    """(license id, public session id) of a session key (e.g. from an expiry notice); None for other keys."""
    match = _SESSION_KEY.match(key)
    return (int(match[1]), public_id(match[2])) if match else None


def _as_member(session_id: str | bytes) -> bytes:
    return session_id if isinstance(session_id, bytes) else member(session_id)


class TokenCodec:
    """Tokens are `<license id>.<start><128 random bits>[~m]`. The public session id is a 96-bit keyed hash
    of the start, the rest and the session's scope (its product): Redis stores no secret, an admin listing
    can never reveal a token, and a token sent with another product's API key names no session at all. The
    `~m` mark (the session answers with its MAC key only) is part of the hashed rest: a token whose mark was
    stripped names no session either."""

    def __init__(self, id_key: bytes) -> None:
        self._id_key = hashlib.blake2b(id_key, digest_size=32, person=b"licsrv-sid").digest()

    def session_id(self, started: str, secret: str, scope: int = 0) -> str:
        return public_id(self._stored(started, secret, scope))

    def _stored(self, started: str, secret: str, scope: int) -> bytes:
        material = f"{scope}:{started}{secret}".encode()
        return hashlib.blake2b(material, key=self._id_key, digest_size=HASH_BYTES).digest()

    def new_token(self, license_id: int, now_s: int, scope: int = 0, mac: bool = False) -> tuple[str, str]:
        """(token, session id); `mac` marks a session whose answers carry its MAC only."""
        started = _ordered(now_s, 6)
        secret = secrets.token_urlsafe(16) + (MAC_MARK if mac else "")
        return f"{license_id}.{started}{secret}", self.session_id(started, secret, scope)

    def parse(self, token: str, scope: int = 0) -> tuple[int, str]:
        """(license id, session id) without touching Redis."""
        match = _TOKEN.match(token)
        if match is None:
            raise BadToken("malformed session token")
        return int(match[1]), self.session_id(match[2], match[3], scope)

    def locate(self, token: str, scope: int = 0) -> tuple[int, bytes]:
        """(license id, the session's 12-byte Redis member): what the hot path needs, with no text id."""
        match = _TOKEN.match(token)
        if match is None:
            raise BadToken("malformed session token")
        return int(match[1]), self._stored(match[2], match[3], scope)


def has_mac(token: str) -> bool:
    return token.endswith(MAC_MARK)


def valid_session_id(session_id: str) -> bool:
    return bool(_SESSION_ID.match(session_id))
