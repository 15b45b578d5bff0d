"""The heartbeat path's own HMAC-SHA256 gives the standard library's bytes, for any key and message."""

import hashlib
import hmac

import nacl.hash
from hypothesis import given
from hypothesis import strategies as st
from nacl.encoding import RawEncoder

from licsrv.live.keys import TokenCodec, public_id
from licsrv.services.session_crypto import SessionCrypto
from licsrv.signing import HmacSha256, hmac_sha256

KEYS = st.binary(min_size=0, max_size=200)  # shorter than, equal to and longer than the 64-byte block
MESSAGES = st.binary(max_size=600)


@given(KEYS, MESSAGES)
def test_hmac_sha256_is_rfc_2104(key: bytes, message: bytes) -> None:
    expected = hmac.new(key, message, hashlib.sha256).digest()
    assert hmac_sha256(key, message) == expected
    assert HmacSha256(key).digest(message) == expected


@given(st.text(min_size=8, max_size=200))
def test_session_mac_keys_are_unchanged_by_the_faster_hmac(token: str) -> None:
    # Keys handed to clients before this change must stay the same after it (live sessions survive upgrades).
    secret = "s" * 40
    crypto = SessionCrypto(secret)
    mac_secret = nacl.hash.blake2b(
        secret.encode(), digest_size=32, person=b"licsrv-sess-mac", encoder=RawEncoder
    )
    assert crypto.mac_key(token) == hmac.new(mac_secret, token.encode(), hashlib.sha256).digest()


def test_a_located_token_names_the_same_session_as_its_parse() -> None:
    codec = TokenCodec(b"k" * 32)
    for mac in (False, True):
        token, session_id = codec.new_token(42, 1_790_000_000, scope=7, mac=mac)
        license_id, stored = codec.locate(token, 7)
        assert (license_id, public_id(stored)) == (42, session_id) == codec.parse(token, 7)
        assert public_id(codec.locate(token, 8)[1]) != session_id  # another product's key names nothing
