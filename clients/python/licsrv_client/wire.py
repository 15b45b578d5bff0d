"""Small pieces of the wire contract a program may need before it talks to the server: the card-key check
character (catch a typo before sending) and request signing (products that require signed requests)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CARD_LENGTH = 32
_VALUE = {char: index for index, char in enumerate(ALPHABET)}


def normalise_card_key(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch not in " -_\t")


def check_character(payload: str) -> str:
    n = len(ALPHABET)
    total = sum((i % (n - 1) + 1) * _VALUE[char] for i, char in enumerate(payload))
    weight = len(payload) % (n - 1) + 1
    return ALPHABET[(-total * pow(weight, -1, n)) % n]


def card_key_is_well_formed(code: str) -> bool:
    code = normalise_card_key(code)
    return (
        len(code) == CARD_LENGTH
        and all(ch in _VALUE for ch in code)
        and check_character(code[:-1]) == code[-1]
    )


def request_signature(api_key: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = f"{method.upper()}\n{path}\n{timestamp}\n{nonce}\n".encode() + body
    return hmac.new(api_key.encode(), message, hashlib.sha256).hexdigest()


def signed_request_headers(api_key: str, method: str, path: str, body: bytes) -> dict[str, str]:
    timestamp, nonce = str(int(time.time())), secrets.token_urlsafe(16)
    return {
        "X-Licsrv-Timestamp": timestamp,
        "X-Licsrv-Nonce": nonce,
        "X-Licsrv-Request-Signature": request_signature(api_key, method, path, timestamp, nonce, body),
    }
