from __future__ import annotations

from licsrv.codes import (
    ALPHABET,
    CARD_LENGTH,
    card_code_is_well_formed,
    license_key_is_well_formed,
    new_card_code,
    new_license_key,
    normalise,
)


def test_card_codes_are_32_unambiguous_characters_with_a_valid_check():
    codes = {new_card_code() for _ in range(500)}
    assert len(codes) == 500
    for code in codes:
        assert len(code) == CARD_LENGTH
        assert not set(code) & set("01OIL")
        assert card_code_is_well_formed(code)


def test_check_character_catches_every_single_typo_and_neighbour_swap():
    code = new_card_code()
    for position in range(CARD_LENGTH):
        for wrong in ALPHABET:
            if wrong != code[position]:
                assert not card_code_is_well_formed(code[:position] + wrong + code[position + 1 :])
    for position in range(CARD_LENGTH - 1):
        a, b = code[position], code[position + 1]
        if a != b:
            swapped = code[:position] + b + a + code[position + 2 :]
            assert not card_code_is_well_formed(swapped)


def test_license_keys_are_five_groups_of_five():
    key = new_license_key()
    assert license_key_is_well_formed(key)
    assert [len(group) for group in key.split("-")] == [5] * 5
    assert not license_key_is_well_formed(key.replace("-", ""))
    assert normalise(" " + key.lower() + " ") == key.replace("-", "")
