"""Test vectors for client libraries (docs/protocol.md), written by the server's own code from fixed seeds:
`licsrv vectors --out clients/vectors`. tests/test_vectors.py writes them again and fails on any difference;
every client library's tests check all of them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.signing
import orjson
from nacl.encoding import RawEncoder
from nacl.public import PrivateKey, SealedBox

from licsrv import codes
from licsrv.api.request_signing import request_signature
from licsrv.offline_codes import OfflineRequest, b64url, certificate_code
from licsrv.signing import Keyring, b64, mac_signature_header

NOW = 1_800_000_000  # the moment every vector is judged at
PRODUCT = "desk-app"
LICENSE_KEY = "ABCDE-FGHJK-MNPQR-STUVW-XYZ23"
HARDWARE_ID = "hw-7f3a9c"
API_KEY = "lk_" + "0123456789abcdef" * 3


def seed(label: str) -> bytes:
    return hashlib.blake2b(label.encode(), digest_size=32, person=b"licsrv-vectors").digest()


def signing_key(label: str) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(seed(label))


def key_id(key: nacl.signing.SigningKey) -> str:
    return hashlib.sha256(bytes(key.verify_key)).hexdigest()[:16]


def public(key: nacl.signing.SigningKey) -> str:
    return b64(bytes(key.verify_key))


def keyring(*keys: nacl.signing.SigningKey) -> Keyring:
    """The first key signs; all of them vouch for the keys answer, as on a server after a rotation."""
    published = [
        {"id": key_id(key), "alg": "ed25519", "public_key": public(key), "active": i == 0, "next": False}
        for i, key in enumerate(keys)
    ]
    return Keyring(key_id(keys[0]), keys[0], published, {key_id(key): key for key in keys})


def json_bytes(payload: dict) -> bytes:
    return orjson.dumps(payload)


def finished(payload: dict, nonce: str | None, ring: Keyring | None, mac_key: bytes | None = None) -> dict:
    """Body bytes + signature header exactly as the server writes them (server_time fixed at NOW)."""
    data = dict(payload)
    data["server_time"] = NOW
    if nonce is not None:
        data["nonce"] = nonce
    body = json_bytes(data)
    header = mac_signature_header(mac_key, body) if mac_key is not None else ring.signature_header(body)
    return {"body": body.decode(), "signature": header}


def ok(data: dict) -> dict:
    return {"status": "ok", "data": data}


def refusal(code: str, message: str, subject: dict) -> dict:
    return {"status": "error", "error": {"code": code, "message": message}, "data": subject}


def signatures() -> dict[str, Any]:
    server = signing_key("server key 1")
    other = signing_key("not the server's key")
    ring = keyring(server)
    subject = {"product": PRODUCT, "license_key": LICENSE_KEY, "hardware_id": HARDWARE_ID}
    valid = finished(ok({"valid": True, "status": "active", **subject}), "n-1", ring)
    tampered = dict(valid, body=valid["body"].replace('"valid":true', '"valid":false'))
    forged = finished(ok({"valid": True, **subject}), "n-1", keyring(other))
    forged["signature"] = forged["signature"].replace(key_id(other), key_id(server))
    return {
        "about": "Ed25519 answers: verify `signature` (X-Licsrv-Signature) over the exact `body` bytes "
        "(UTF-8) with the public key of its keyid",
        "keys": {key_id(server): public(server)},
        "cases": [
            {"name": "valid answer", **valid, "valid": True},
            {"name": "body changed after signing", **tampered, "valid": False},
            {"name": "signed by another key under the server's key id", **forged, "valid": False},
            {"name": "unknown key id", **finished(ok(subject), "n-1", keyring(other)), "valid": False},
        ],
    }


def mac_answers() -> dict[str, Any]:
    mac_key = seed("session mac key")
    subject = {"product": PRODUCT, "session_id": "Q3b9-xY0_kLmN2pR"}
    good = finished(ok({"next_heartbeat": 30, **subject}), "hb-1", None, mac_key)
    other_key = finished(ok({"next_heartbeat": 30, **subject}), "hb-1", None, seed("another session"))
    gone = finished(refusal("SESSION_TERMINATED", "The session was ended.", subject), "hb-2", None, mac_key)
    ring = keyring(signing_key("server key 1"))
    ed25519 = finished(ok({"next_heartbeat": 30, **subject}), "hb-1", ring)
    return {
        "about": "A MAC session's answers: HMAC-SHA256 under the session's MAC key over the exact body; "
        "a MAC session accepts nothing else (an Ed25519 answer is refused even if its signature is good)",
        "mac_key_hex": mac_key.hex(),
        "cases": [
            {"name": "heartbeat answer", **good, "valid": True},
            {"name": "refusal, MACed too", **gone, "valid": True},
            {"name": "MAC under another session's key", **other_key, "valid": False},
            {"name": "Ed25519-signed answer to a MAC session", **ed25519, "valid": False},
        ],
    }


def seal(recipient: bytes, message: bytes, label: str) -> bytes:
    """crypto_box_seal with a fixed ephemeral key (libsodium picks a random one: same format)."""
    ephemeral = PrivateKey(seed(label))
    ephemeral_public = bytes(ephemeral.public_key)
    nonce = hashlib.blake2b(ephemeral_public + recipient, digest_size=24).digest()
    return ephemeral_public + nacl.bindings.crypto_box(message, nonce, recipient, bytes(ephemeral))


def sealed_boxes() -> dict[str, Any]:
    client = PrivateKey(seed("client one-time key"))
    recipient = bytes(client.public_key)
    cases = []
    for name, secret in (
        ("mac_key", seed("session mac key")),
        ("content_key", seed("product content key")),
    ):
        box = seal(recipient, secret, name)
        assert SealedBox(client).decrypt(box) == secret
        cases.append({"name": name, "sealed": b64(box), "plaintext_hex": secret.hex()})
    server = PrivateKey(seed("server sealing key"))
    one_time = PrivateKey(seed("request one-time key"))
    request_json = json_bytes({"license_key": LICENSE_KEY, "hardware_id": HARDWARE_ID, "nonce": "s-1"})
    sealed_request = seal(bytes(server.public_key), bytes(one_time.public_key) + request_json, "request")
    subject = {"product": PRODUCT, "license_key": LICENSE_KEY, "hardware_id": HARDWARE_ID}
    signed = finished(ok({"valid": True, **subject}), "s-1", keyring(signing_key("server key 1")))
    inner = signed["signature"].encode() + b"\n" + signed["body"].encode()
    return {
        "about": "NaCl sealed boxes (X25519, XSalsa20-Poly1305): `sealed` is base64 of ephemeral public key "
        "(32) + box; open with the client's one-time secret key. The client sends client_public_key.",
        "client_secret_key_hex": bytes(client).hex(),
        "client_public_key": b64(recipient),
        "cases": cases,
        "sealed_request": {
            "about": "Content-Type application/x-licsrv-sealed: the body is seal(server x25519 key, one-time "
            "public key (32) + JSON); the answer is seal(one-time key, signature header + '\\n' + body)",
            "server_secret_key_hex": bytes(server).hex(),
            "server_public_key": b64(bytes(server.public_key)),
            "one_time_secret_key_hex": bytes(one_time).hex(),
            "json": request_json.decode(),
            "sealed_body": b64(sealed_request),
            "sealed_answer": b64(seal(bytes(one_time.public_key), inner, "answer")),
            "answer_signature": signed["signature"],
            "answer_body": signed["body"],
            "keys": {key_id(signing_key("server key 1")): public(signing_key("server key 1"))},
        },
    }


def request_codes() -> dict[str, Any]:
    request = OfflineRequest(LICENSE_KEY, HARDWARE_ID, "q8Fz3kP1", NOW)
    return {
        "about": "Offline request codes: `LR1.` + base64url (no padding) of compact JSON {k, h, n, t} in "
        "that order",
        "valid": [
            {
                "license_key": request.license_key,
                "hardware_id": request.hardware_id,
                "nonce": request.nonce,
                "requested_at": request.requested_at,
                "code": request.code(),
            }
        ],
        "invalid": [
            "LR2." + request.code()[4:],
            "LR1.not-json",
            "LR1." + b64url(b'{"k":"A","h":"B","n":"C"}'),
            "LR1." + b64url(b'{"k":"A","h":"B","n":"C","t":true}'),
            "LR1." + b64url(b'{"k":"","h":"B","n":"C","t":5}'),
            "LR1." + b64url(b"[1,2]"),
        ],
    }


def certificates() -> dict[str, Any]:
    server = signing_key("server key 1")
    ring = keyring(server)
    request = OfflineRequest(LICENSE_KEY, HARDWARE_ID, "q8Fz3kP1", NOW - 60)
    base = {
        "v": 1,
        "kid": key_id(server),
        "product": PRODUCT,
        "license_key": LICENSE_KEY,
        "hardware_id": HARDWARE_ID,
        "nonce": request.nonce,
        "status": "active",
        "features": {"pro": True},
        "expires_at": None,
        "issued_at": NOW - 30,
        "valid_until": NOW + 90 * 86400,
    }

    def cert(**changes: Any) -> str:
        return certificate_code({**base, **changes}, ring.sign)

    forged = certificate_code(
        base, lambda data: signing_key("forger").sign(data, encoder=RawEncoder).signature
    )
    return {
        "about": "Offline certificates: `LC1.` base64url(payload) `.` base64url(Ed25519 signature over "
        "'licsrv offline certificate v1\\n' + payload bytes), checked at `now` against `request`",
        "keys": {key_id(server): public(server)},
        "now": NOW,
        "request": {"license_key": LICENSE_KEY, "hardware_id": HARDWARE_ID, "nonce": request.nonce},
        "cases": [
            {"name": "valid, perpetual", "certificate": cert(), "result": "ok"},
            {
                "name": "valid, license expires later",
                "certificate": cert(expires_at=NOW + 86400, valid_until=NOW + 86400),
                "result": "ok",
            },
            {"name": "past valid_until", "certificate": cert(valid_until=NOW - 1), "result": "expired"},
            {
                "name": "license expired",
                "certificate": cert(expires_at=NOW - 1, valid_until=NOW - 1),
                "result": "expired",
            },
            {
                "name": "another machine",
                "certificate": cert(hardware_id="hw-other"),
                "result": "wrong_machine",
            },
            {"name": "another request", "certificate": cert(nonce="other-nonce"), "result": "wrong_request"},
            {"name": "forged signature", "certificate": forged, "result": "bad_signature"},
            {
                "name": "issued in the future",
                "certificate": cert(issued_at=NOW + 3600),
                "result": "clock_behind",
            },
        ],
    }


def card_keys() -> dict[str, Any]:
    payload = "".join(codes.ALPHABET[(i * 7 + 3) % len(codes.ALPHABET)] for i in range(codes.CARD_LENGTH - 1))
    good = payload + codes.check_character(payload)
    typo = good[:5] + codes.ALPHABET[(codes.ALPHABET.index(good[5]) + 1) % len(codes.ALPHABET)] + good[6:]
    swapped = good[:3] + good[4] + good[3] + good[5:]
    return {
        "about": "Card keys: 32 symbols of ALPHABET, the last a check character: sum of weight(i)·value(c_i) "
        "over all 32 ≡ 0 mod 31 with weight(i) = i mod 30 + 1; customers may type lower case, spaces, -, _",
        "alphabet": codes.ALPHABET,
        "check_characters": [
            {"payload": p, "check": codes.check_character(p)} for p in (payload, payload[::-1], "2" * 31)
        ],
        "cases": [
            {"code": code, "well_formed": codes.card_code_is_well_formed(codes.normalise(code))}
            for code in (
                good,
                "-".join(good[i : i + 8] for i in range(0, 32, 8)).lower(),
                typo,
                swapped,
                good[:-1],
                good[:-1] + "0",
            )
        ],
    }


def request_signing() -> dict[str, Any]:
    body = b'{"session_token":"42.AbCdEf0123456789abcdefghijkl","nonce":"n-1"}'
    cases = []
    for method, path, timestamp, nonce in (
        ("POST", "/api/v1/sessions/heartbeat", str(NOW), "nonce-0001"),
        ("POST", "/api/v1/licenses/validate", str(NOW + 1), "nonce-0002"),
    ):
        cases.append(
            {
                "method": method,
                "path": path,
                "timestamp": timestamp,
                "nonce": nonce,
                "body": body.decode(),
                "signature": request_signature(API_KEY, method, path, timestamp, nonce, body),
            }
        )
    return {
        "about": "Request signing (products that require it): X-Licsrv-Request-Signature = hex HMAC-SHA256 "
        "under the API key of METHOD\\npath\\ntimestamp\\nnonce\\n + body bytes",
        "api_key": API_KEY,
        "cases": cases,
    }


def subjects() -> dict[str, Any]:
    """Whether an answer (already verified) is about the request: nonce echoed and subject named."""
    request = {
        "nonce": "n-7",
        "product": PRODUCT,
        "subject": {"license_key": LICENSE_KEY, "hardware_id": HARDWARE_ID},
    }
    subject = {"product": PRODUCT, "license_key": LICENSE_KEY, "hardware_id": HARDWARE_ID}

    def case(name: str, document: dict, accept: bool) -> dict:
        return {"name": name, "answer": document, "accept": accept}

    return {
        "about": "After the signature or MAC: the answer must echo the request's nonce; a success must name "
        "every subject field (product + the request's) with the same value; a refusal every field it names",
        "request": request,
        "cases": [
            case("success about this request", {**ok({"valid": True, **subject}), "nonce": "n-7"}, True),
            case("nonce of another request", {**ok({"valid": True, **subject}), "nonce": "n-6"}, False),
            case("no nonce", ok({"valid": True, **subject}), False),
            case("another device", {**ok({**subject, "hardware_id": "hw-other"}), "nonce": "n-7"}, False),
            case("another license", {**ok({**subject, "license_key": "ZZZZZ-..."}), "nonce": "n-7"}, False),
            case("another product", {**ok({**subject, "product": "other-app"}), "nonce": "n-7"}, False),
            case("success without the subject", {**ok({"valid": True}), "nonce": "n-7"}, False),
            case(
                "refusal naming this request",
                {**refusal("LICENSE_REVOKED", "The license was revoked.", subject), "nonce": "n-7"},
                True,
            ),
            case(
                "refusal before the subject was read",
                {**refusal("INVALID_API_KEY", "Unknown API key.", {}), "nonce": "n-7"},
                True,
            ),
            case(
                "refusal about another device",
                {
                    **refusal("HARDWARE_MISMATCH", "Another device.", {**subject, "hardware_id": "hw-x"}),
                    "nonce": "n-7",
                },
                False,
            ),
        ],
    }


def keys_answers() -> dict[str, Any]:
    old, new = signing_key("server key 1"), signing_key("server key 2")
    ring = keyring(new, old)
    body = json_bytes({"status": "ok", "data": ring.published, "server_time": NOW, "nonce": "k-1"})
    unknown = keyring(signing_key("impostor"))
    return {
        "about": "GET /keys?nonce=: learn keys from an answer whose X-Licsrv-Signature or one of its "
        "X-Licsrv-Key-Signatures (`;`-separated) verifies with a key already trusted",
        "trusted": {key_id(old): public(old)},
        "cases": [
            {
                "name": "after a rotation: signed by the new key and vouched for by the old one",
                "body": body.decode(),
                "signature": ring.signature_header(body),
                "key_signatures": ring.key_signatures_header(body),
                "learn": True,
            },
            {
                "name": "signed by an unknown key only",
                "body": body.decode(),
                "signature": unknown.signature_header(body),
                "key_signatures": unknown.key_signatures_header(body),
                "learn": False,
            },
        ],
    }


VECTORS: dict[str, Callable[[], dict[str, Any]]] = {
    "signatures": signatures,
    "mac_answers": mac_answers,
    "sealed_boxes": sealed_boxes,
    "subjects": subjects,
    "keys_answers": keys_answers,
    "request_codes": request_codes,
    "certificates": certificates,
    "card_keys": card_keys,
    "request_signing": request_signing,
}


def render() -> dict[str, str]:
    """File name → exact text."""
    return {
        f"{name}.json": json.dumps(make(), indent=2, ensure_ascii=False) + "\n"
        for name, make in VECTORS.items()
    }


def write(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
