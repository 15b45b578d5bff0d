"""License keys and card codes: an unambiguous alphabet, and a check character that catches typos."""

from __future__ import annotations

import secrets

# No 0/O, 1/I/L: nothing a customer can misread. 31 symbols, a prime, so Luhn mod N catches every single
# wrong character and every swap of two neighbours.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_VALUE = {char: index for index, char in enumerate(ALPHABET)}
CARD_LENGTH = 32
LICENSE_GROUPS = 5
LICENSE_GROUP_LENGTH = 5


def _random(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def check_character(payload: str) -> str:
    """Luhn mod N over ALPHABET."""
    n = len(ALPHABET)
    factor = 2
    total = 0
    for char in reversed(payload):
        addend = factor * _VALUE[char]
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return ALPHABET[(n - total % n) % n]


def normalise(code: str) -> str:
    """Upper case, separators and spaces dropped; what a customer types becomes what we store."""
    return "".join(ch for ch in code.upper() if ch not in " -_\t")


def new_card_code() -> str:
    payload = _random(CARD_LENGTH - 1)
    return payload + check_character(payload)


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
