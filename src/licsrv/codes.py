"""License keys and card codes: an unambiguous alphabet, and a check character that catches typos."""

from __future__ import annotations

import secrets

# No 0/O, 1/I/L: nothing a customer can misread. 31 symbols, a prime, so a weighted sum mod 31 with weights
# that are never 0 mod 31 catches every single wrong character and every swap of two neighbours.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_VALUE = {char: index for index, char in enumerate(ALPHABET)}
CARD_LENGTH = 32
CARD_GROUP_LENGTH = 4
LICENSE_GROUPS = 5
LICENSE_GROUP_LENGTH = 5


def _random(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def _weight(position: int) -> int:
    return position % (len(ALPHABET) - 1) + 1


def check_character(payload: str) -> str:
    """The character that makes the weighted sum of the whole code 0 mod 31."""
    n = len(ALPHABET)
    total = sum(_weight(i) * _VALUE[char] for i, char in enumerate(payload))
    weight = _weight(len(payload))
    return ALPHABET[(-total * pow(weight, -1, n)) % n]


def normalise(code: str) -> str:
    """Upper case, separators and spaces dropped; what a customer types becomes what we store."""
    return "".join(ch for ch in code.upper() if ch not in " -_\t")


def format_card_code(code: str) -> str:
    """A card code as people read and print it: eight groups of four joined by dashes."""
    if len(code) == CARD_LENGTH and code.isalnum() and code.isupper():  # a stored code: exports do 100 000
        c = code
        return f"{c[:4]}-{c[4:8]}-{c[8:12]}-{c[12:16]}-{c[16:20]}-{c[20:24]}-{c[24:28]}-{c[28:]}"
    code = normalise(code)
    return "-".join(code[i : i + CARD_GROUP_LENGTH] for i in range(0, len(code), CARD_GROUP_LENGTH))


def new_card_code() -> str:
    payload = _random(CARD_LENGTH - 1)
    return payload + check_character(payload)


def new_card_codes(count: int) -> list[str]:
    """Many codes at once, from bulk random bytes (rejection sampling keeps every symbol equally likely)."""
    n = len(ALPHABET)
    limit = 256 - 256 % n
    needed = count * (CARD_LENGTH - 1)
    symbols: list[str] = []
    while len(symbols) < needed:
        symbols.extend(ALPHABET[b % n] for b in secrets.token_bytes(needed - len(symbols) + 64) if b < limit)
    codes = []
    for i in range(count):
        payload = "".join(symbols[i * (CARD_LENGTH - 1) : (i + 1) * (CARD_LENGTH - 1)])
        codes.append(payload + check_character(payload))
    return codes


def card_code_is_well_formed(code: str) -> bool:
    return (
        len(code) == CARD_LENGTH
        and all(ch in _VALUE for ch in code)
        and check_character(code[:-1]) == code[-1]
    )


def new_license_key() -> str:
    raw = _random(LICENSE_GROUPS * LICENSE_GROUP_LENGTH)
    return "-".join(raw[i : i + LICENSE_GROUP_LENGTH] for i in range(0, len(raw), LICENSE_GROUP_LENGTH))


def license_key_is_well_formed(key: str) -> bool:
    groups = key.split("-")
    return (
        len(groups) == LICENSE_GROUPS
        and all(len(group) == LICENSE_GROUP_LENGTH for group in groups)
        and all(ch in _VALUE for group in groups for ch in group)
    )
