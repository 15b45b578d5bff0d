"""Every vector in clients/vectors, checked with licsrv_client alone (no server, no server package)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from nacl.public import PrivateKey, SealedBox

from licsrv_client.offline import OfflineError, OfflineRequest, check_certificate, parse_request_code
from licsrv_client.sdk import (
    UntrustedAnswer,
    check_answer,
    keys_to_learn,
    open_sealed,
    open_sealed_answer,
    seal_request,
    verify_ed25519,
    verify_mac,
)
from licsrv_client.wire import card_key_is_well_formed, check_character, request_signature

VECTORS = Path(__file__).resolve().parents[2] / "vectors"


def load(name: str) -> dict:
    return json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))


def verdict(check, *args) -> bool:
    try:
        check(*args)
    except UntrustedAnswer:
        return False
    return True


def test_signatures():
    vectors = load("signatures")
    for case in vectors["cases"]:
        ok = verdict(verify_ed25519, case["body"].encode(), case["signature"], vectors["keys"])
        assert ok is case["valid"], case["name"]


def test_mac_answers():
    vectors = load("mac_answers")
    key = bytes.fromhex(vectors["mac_key_hex"])
    for case in vectors["cases"]:
        assert verdict(verify_mac, case["body"].encode(), case["signature"], key) is case["valid"], case[
            "name"
        ]


def test_sealed_boxes():
    vectors = load("sealed_boxes")
    private = PrivateKey(bytes.fromhex(vectors["client_secret_key_hex"]))
    assert vectors["client_public_key"] == base64.b64encode(bytes(private.public_key)).decode()
    for case in vectors["cases"]:
        assert open_sealed(private, case["sealed"]).hex() == case["plaintext_hex"], case["name"]
    with pytest.raises(UntrustedAnswer):
        open_sealed(PrivateKey.generate(), vectors["cases"][0]["sealed"])


def test_subjects():
    vectors = load("subjects")
    request = vectors["request"]
    subject = {"product": request["product"], **request["subject"]}
    for case in vectors["cases"]:
        assert verdict(check_answer, case["answer"], request["nonce"], subject) is case["accept"], case[
            "name"
        ]


def test_keys_answers():
    vectors = load("keys_answers")
    for case in vectors["cases"]:
        raw = case["body"].encode()
        learned = verdict(keys_to_learn, raw, case["signature"], case["key_signatures"], vectors["trusted"])
        assert learned is case["learn"], case["name"]


def test_request_codes():
    vectors = load("request_codes")
    for case in vectors["valid"]:
        request = OfflineRequest(
            case["license_key"], case["hardware_id"], case["nonce"], case["requested_at"]
        )
        assert request.code() == case["code"]
        assert parse_request_code(case["code"]) == request
    for code in vectors["invalid"]:
        with pytest.raises(OfflineError):
            parse_request_code(code)


def test_certificates():
    vectors = load("certificates")
    wanted = vectors["request"]
    request = OfflineRequest(wanted["license_key"], wanted["hardware_id"], wanted["nonce"], vectors["now"])
    for case in vectors["cases"]:
        try:
            check_certificate(case["certificate"], request, vectors["keys"], now=vectors["now"])
            result = "ok"
        except OfflineError as exc:
            result = exc.reason
        assert result == case["result"], case["name"]


def test_card_keys():
    vectors = load("card_keys")
    for case in vectors["check_characters"]:
        assert check_character(case["payload"]) == case["check"]
    for case in vectors["cases"]:
        assert card_key_is_well_formed(case["code"]) is case["well_formed"], case["code"]


def test_request_signing():
    vectors = load("request_signing")
    for case in vectors["cases"]:
        signature = request_signature(
            vectors["api_key"],
            case["method"],
            case["path"],
            case["timestamp"],
            case["nonce"],
            case["body"].encode(),
        )
        assert signature == case["signature"]


def test_sealed_requests_and_answers():
    vector = load("sealed_boxes")["sealed_request"]
    server = PrivateKey(bytes.fromhex(vector["server_secret_key_hex"]))
    one_time = PrivateKey(bytes.fromhex(vector["one_time_secret_key_hex"]))
    opened = SealedBox(server).decrypt(base64.b64decode(vector["sealed_body"]))
    assert opened[:32] == bytes(one_time.public_key) and opened[32:].decode() == vector["json"]
    mine = seal_request(vector["server_public_key"], one_time, vector["json"].encode())
    assert SealedBox(server).decrypt(mine) == opened  # what this client seals, the server opens alike
    header, body = open_sealed_answer(one_time, base64.b64decode(vector["sealed_answer"]))
    assert (header, body.decode()) == (vector["answer_signature"], vector["answer_body"])
    verify_ed25519(body, header, vector["keys"])
