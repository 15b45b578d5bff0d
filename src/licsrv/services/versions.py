"""Client version comparison: dotted numbers compare as numbers ("1.10.0" > "1.9.2")."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+)|([^\d.]+)")


def version_key(version: str) -> tuple:
    parts: list[tuple[int, int | str]] = []
    for number, text in _PART.findall(version.strip().lstrip("vV")):
        parts.append((1, int(number)) if number else (0, text))
    while parts and parts[-1] == (1, 0):
        parts.pop()
    return tuple(parts)


def is_older(version: str, than: str) -> bool:
    return version_key(version) < version_key(than)
