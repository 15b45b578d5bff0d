"""The credential file: an account credential encrypted under a key derived from the customer's password
(argon2id → secretbox). The credential itself is an HMAC under the server secret of the account and its
credential generation, so a password change (which bumps the generation) makes every earlier file useless."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import nacl.pwhash
import nacl.secret

FORMAT = "licsrv-credential/1"
PREFIX = "pc1"
OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _mac(secret_key: str, product_id: int, account_id: int, generation: int) -> str:
    message = f"portal-credential|{product_id}|{account_id}|{generation}".encode()
    return _b64(hmac.new(secret_key.encode(), message, hashlib.sha256).digest())


def account_credential(secret_key: str, product_id: int, account_id: int, generation: int) -> str:
    return f"{PREFIX}.{account_id}.{generation}.{_mac(secret_key, product_id, account_id, generation)}"


def parse_credential(credential: str) -> tuple[int, int, str] | None:
    parts = credential.split(".")
    if len(parts) != 4 or parts[0] != PREFIX or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return int(parts[1]), int(parts[2]), parts[3]


def credential_matches(secret_key: str, product_id: int, account_id: int, generation: int, mac: str) -> bool:
    return hmac.compare_digest(_mac(secret_key, product_id, account_id, generation), mac)


def seal_file(credential: str, password: str, *, product: str, email: str) -> str:
    """argon2id (~70 ms): callers run it in an executor."""
    salt = secrets.token_bytes(nacl.pwhash.argon2id.SALTBYTES)
    key = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, password.encode(), salt, opslimit=OPSLIMIT, memlimit=MEMLIMIT
    )
    box = nacl.secret.SecretBox(key).encrypt(credential.encode())
    lines = [
        f"# {product}: sign-in file for {email}. Import it in the program with your password.",
        f"format: {FORMAT}",
        f"product: {product}",
        "kdf: argon2id",
        f"opslimit: {OPSLIMIT}",
        f"memlimit: {MEMLIMIT}",
        f"salt: {base64.b64encode(salt).decode()}",
        f"box: {base64.b64encode(bytes(box)).decode()}",
    ]
    return "\n".join(lines) + "\n"
