"""Per-session MAC keys (so heartbeat answers need no Ed25519) and the sealed product content key."""

from __future__ import annotations

import base64
import hashlib
import hmac

import nacl.exceptions
import nacl.hash
from nacl.encoding import RawEncoder
from nacl.public import PublicKey

from licsrv.errors import ApiError
from licsrv.services.products import Product
from licsrv.signing import seal_to, secret_box


class SessionCrypto:
    """MAC keys are derived from the token under the server secret: nothing extra is stored per session.
    Whether a session has one is in its token (live.keys.MAC_MARK), hashed into its session id."""

    def __init__(self, secret_key: str) -> None:
        self._mac_secret = nacl.hash.blake2b(
            secret_key.encode(), digest_size=32, person=b"licsrv-sess-mac", encoder=RawEncoder
        )
        self._box = secret_box(secret_key)

    def mac_key(self, token: str) -> bytes:
        return hmac.new(self._mac_secret, token.encode(), hashlib.sha256).digest()

    def sealed_mac_key(self, token: str, client_public_key: str) -> str:
        return _seal(client_public_key, self.mac_key(token))

    def sealed_content_key(self, product: Product, client_public_key: str) -> str | None:
        if product.content_key_enc is None:
            return None
        return _seal(client_public_key, self._box.decrypt(bytes(product.content_key_enc)))

    def encrypt_content_key(self, content_key: bytes) -> bytes:
        return bytes(self._box.encrypt(content_key))


def check_public_key(client_public_key: str) -> None:
    """Refuse a bad key before anything is started, so a refusal never leaves a session behind."""
    try:
        PublicKey(base64.b64decode(client_public_key, validate=True))
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
