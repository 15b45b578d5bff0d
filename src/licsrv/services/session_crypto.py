"""Per-session MAC keys (so heartbeat answers need no Ed25519) and the sealed product content key."""

from __future__ import annotations

import hashlib

import nacl.exceptions
import nacl.hash
from nacl.encoding import RawEncoder
from nacl.public import PrivateKey, PublicKey, SealedBox

from licsrv.errors import ApiError
from licsrv.services.products import Product
from licsrv.signing import HmacSha256, b64, seal_to, secret_box

SEALED_CONTENT_TYPE = "application/x-licsrv-sealed"
ONE_TIME_KEY_LENGTH = 32


class SessionCrypto:
    """MAC keys are derived from the token under the server secret: nothing extra is stored per session.
    Whether a session has one is in its token (live.keys.MAC_MARK), hashed into its session id."""

    def __init__(self, secret_key: str) -> None:
        mac_secret = nacl.hash.blake2b(
            secret_key.encode(), digest_size=32, person=b"licsrv-sess-mac", encoder=RawEncoder
        )
        self._mac = HmacSha256(mac_secret)  # each session's key: HMAC-SHA256(mac secret, token)
        self._box = secret_box(secret_key)
        # The X25519 key clients seal request bodies to (DESIGN §4 "Secrecy without TLS"): derived from the
        # server secret, so every worker holds it and nothing is stored or rotated.
        self._sealing = PrivateKey(
            nacl.hash.blake2b(
                secret_key.encode(), digest_size=32, person=b"licsrv-sealing", encoder=RawEncoder
            )
        )
        public = bytes(self._sealing.public_key)
        self.sealing_key = {
            "id": "x25519-" + hashlib.sha256(public).hexdigest()[:16],
            "alg": "x25519",
            "public_key": b64(public),
            "active": True,
            "next": False,
        }

    def mac_key(self, token: str) -> bytes:
        return self._mac.digest(token.encode())

    def sealed_mac_key(self, token: str, client_public_key: str) -> str:
        return _seal(client_public_key, self.mac_key(token))

    def sealed_content_key(self, product: Product, client_public_key: str) -> str | None:
        if product.content_key_enc is None:
            return None
        return _seal(client_public_key, self._box.decrypt(bytes(product.content_key_enc)))

    def content_key_fingerprint(self, product: Product) -> str | None:
        """What the admin UI shows of a stored content key (never the key): its SHA-256, first 8 bytes."""
        if product.content_key_enc is None:
            return None
        try:
            digest = hashlib.sha256(self._box.decrypt(bytes(product.content_key_enc))).hexdigest()[:16]
        except nacl.exceptions.CryptoError:
            return "unreadable under this server's LICSRV_SECRET_KEY"
        return " ".join(digest[i : i + 4] for i in range(0, 16, 4))

    def encrypt_content_key(self, content_key: bytes) -> bytes:
        return bytes(self._box.encrypt(content_key))

    def open_request(self, sealed: bytes) -> tuple[bytes, bytes]:
        """(the client's one-time X25519 public key, the JSON body) of a sealed request body."""
        try:
            opened = SealedBox(self._sealing).decrypt(sealed)
        except (nacl.exceptions.CryptoError, TypeError, ValueError):
            raise ApiError("VALIDATION_ERROR", "The body is not sealed to this server's key.") from None
        if len(opened) < ONE_TIME_KEY_LENGTH:
            raise ApiError("VALIDATION_ERROR", "The sealed body holds no one-time key.")
        return opened[:ONE_TIME_KEY_LENGTH], opened[ONE_TIME_KEY_LENGTH:]


def seal_answer(one_time_key: bytes, signature_header: str, body: bytes) -> bytes:
    """A sealed request's answer: the signature header line, a newline, the body; sealed to the one-time
    key."""
    return SealedBox(PublicKey(one_time_key)).encrypt(signature_header.encode() + b"\n" + body)


def check_public_key(client_public_key: str) -> None:
    """Refuse a bad key before anything is started, so a refusal never leaves a session behind."""
    try:
        # A trial seal also refuses low-order points, whose shared secret would be all zeros.
        seal_to(client_public_key, b"probe")
    except (ValueError, TypeError, nacl.exceptions.CryptoError):
        raise ApiError(
            "VALIDATION_ERROR", "client_public_key must be base64 of a 32-byte X25519 key."
        ) from None


def _seal(client_public_key: str, secret: bytes) -> str:
    try:
        return seal_to(client_public_key, secret)
    except (ValueError, TypeError, nacl.exceptions.CryptoError):
        raise ApiError(
            "VALIDATION_ERROR", "client_public_key must be base64 of a 32-byte X25519 key."
        ) from None
