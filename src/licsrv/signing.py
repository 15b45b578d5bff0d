"""Ed25519 response signatures and keyring, secrets encrypted at rest, sealed boxes, argon2id passwords."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
from dataclasses import dataclass

import nacl.exceptions
import nacl.hash
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils
from nacl.encoding import RawEncoder
from nacl.public import PublicKey, SealedBox


def b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")  # base64.b64encode, a frame fewer


_BLOCK = 64  # SHA-256's block size
_INNER_PAD = bytes(x ^ 0x36 for x in range(256))
_OUTER_PAD = bytes(x ^ 0x5C for x in range(256))


class HmacSha256:
    """HMAC-SHA256 (RFC 2104) under one key, its padded inner and outer hash states computed once.

    On the heartbeat path `hmac.new` costs more than the hashing itself (under OpenSSL 3 it looks its
    implementation up on every call); two copied hash states give the same bytes for about half of it.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_INNER_PAD))
        self._outer = hashlib.sha256(key.translate(_OUTER_PAD))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """The same as `hmac.digest(key, message, "sha256")`, cheaper for the short messages of the hot path."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(key.translate(_INNER_PAD))
    inner.update(message)
    return hashlib.sha256(key.translate(_OUTER_PAD) + inner.digest()).digest()


def secret_box(secret_key: str) -> nacl.secret.SecretBox:
    """The box that encrypts private material at rest, keyed by LICSRV_SECRET_KEY."""
    if not secret_key:
        raise ValueError("LICSRV_SECRET_KEY is not set")
    key = nacl.hash.blake2b(secret_key.encode(), digest_size=32, person=b"licsrv-at-rest", encoder=RawEncoder)
    return nacl.secret.SecretBox(key)


@dataclass(frozen=True)
class NewSigningKey:
    key_id: str
    public_key: bytes
    private_key_enc: bytes


def new_signing_key(secret_key: str) -> NewSigningKey:
    signing_key = nacl.signing.SigningKey.generate()
    public = bytes(signing_key.verify_key)
    return NewSigningKey(
        key_id=hashlib.sha256(public).hexdigest()[:16],
        public_key=public,
        private_key_enc=bytes(secret_box(secret_key).encrypt(bytes(signing_key))),
    )


class Keyring:
    """The active signing key plus every published public key."""

    def __init__(
        self,
        key_id: str,
        signing_key: nacl.signing.SigningKey,
        published: list[dict],
        vouching: dict[str, nacl.signing.SigningKey] | None = None,
    ) -> None:
        self.key_id = key_id
        self._signing_key = signing_key
        self.published = published
        # Every published key this server can still sign with: they all sign the keys answer, so a client
        # that trusts any of them (pinned before a rotation) learns the keys that came after.
        self._vouching = vouching or {key_id: signing_key}
        self._prefix = f"keyid={key_id}, alg=ed25519, sig="

    @classmethod
    def from_rows(cls, rows: list, secret_key: str) -> Keyring:
        active = [row for row in rows if row["active"]]
        if not active:
            raise RuntimeError("no active signing key: run `licsrv migrate`")
        box = secret_box(secret_key)
        try:
            seed = box.decrypt(bytes(active[0]["private_key_enc"]))
        except nacl.exceptions.CryptoError as exc:
            raise RuntimeError("LICSRV_SECRET_KEY does not decrypt the signing key") from exc
        vouching = {}
        for row in rows:
            with contextlib.suppress(nacl.exceptions.CryptoError):
                vouching[row["id"]] = nacl.signing.SigningKey(box.decrypt(bytes(row["private_key_enc"])))
        published = [
            {
                "id": row["id"],
                "alg": "ed25519",
                "public_key": b64(bytes(row["public_key"])),
                "active": row["active"],
                "next": not row["active"] and row["retired_at"] is None,
            }
            for row in rows
        ]
        return cls(active[0]["id"], nacl.signing.SigningKey(seed), published, vouching)

    def adopt(self, other: Keyring) -> bool:
        """Takes over another keyring's keys in place (every holder of this object sees them at once);
        True when something changed."""
        if other.key_id == self.key_id and other.published == self.published:
            return False
        self.key_id, self._signing_key, self.published = other.key_id, other._signing_key, other.published
        self._vouching = other._vouching
        self._prefix = other._prefix
        return True

    def sign(self, data: bytes) -> bytes:
        """The raw 64-byte Ed25519 signature of `data` with the active key (offline certificates)."""
        return self._signing_key.sign(data, encoder=RawEncoder).signature

    def signature_header(self, body: bytes) -> str:
        # No cache of repeated answers: every answer names its session, so none repeats byte for byte.
        return self._prefix + b64(self._signing_key.sign(body, encoder=RawEncoder).signature)

    def key_signatures_header(self, body: bytes) -> str:
        """`X-Licsrv-Key-Signatures` of the keys answer: a signature per published key held, `;` between."""
        return "; ".join(
            f"keyid={key_id}, alg=ed25519, sig=" + b64(key.sign(body, encoder=RawEncoder).signature)
            for key_id, key in self._vouching.items()
        )


def mac_signature_header(mac_key: bytes, body: bytes) -> str:
    """A session's heartbeat answers: HMAC-SHA256 under the MAC key sealed to the client at start."""
    return "keyid=session, alg=hmac-sha256, sig=" + b64(hmac_sha256(mac_key, body))


def parse_signature_header(value: str) -> dict[str, str]:
    parts = (part.strip().split("=", 1) for part in value.split(","))
    return {name: val for name, val in parts}


def verify_signature(public_key_b64: str, body: bytes, header: str) -> bool:
    fields = parse_signature_header(header)
    try:
        verify_key = nacl.signing.VerifyKey(base64.b64decode(public_key_b64))
        verify_key.verify(body, base64.b64decode(fields["sig"]))
    except (nacl.exceptions.BadSignatureError, KeyError, ValueError):
        return False
    return True


def seal_to(public_key_b64: str, secret: bytes) -> str:
    """Encrypt `secret` so that only the holder of the client's X25519 private key can read it."""
    public_key = PublicKey(base64.b64decode(public_key_b64, validate=True))
    return b64(SealedBox(public_key).encrypt(secret))


def hash_password(password: str) -> str:
    """argon2id, ~70 ms: callers run it in an executor."""
    return nacl.pwhash.argon2id.str(password.encode()).decode("ascii")


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return nacl.pwhash.argon2id.verify(password_hash.encode("ascii"), password.encode())
    except (nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError, ValueError):
        return False


def token_hash(token: str) -> bytes:
    """Management tokens are high-entropy, so a fast hash is the right way to store them."""
    return hashlib.sha256(token.encode()).digest()
