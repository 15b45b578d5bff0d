"""An audit entry as readable text: one "field: before → after" line per changed field, German and Chinese
as characters (the JSON columns hold them as entered)."""

from __future__ import annotations

import json
from typing import Any

MAX_VALUE = 200


def shown(value: Any) -> str:
    if value is None:
        return "(none)"
    if value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def change_lines(before: Any, after: Any) -> list[str]:
    """The changed fields in order (before's first, then those only after has), unchanged ones left out."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        if before is None and after is None:
            return []
        if isinstance(after, dict) and before is None:
            return [f"{key}: {shown(value)}" for key, value in after.items()]
        if isinstance(before, dict) and after is None:
            return [f"{key}: {shown(value)} → (removed)" for key, value in before.items()]
        return [f"{shown(before)} → {shown(after)}"]
    lines = []
    for key in [*before, *(k for k in after if k not in before)]:
        old, new = before.get(key), after.get(key)
        if key not in after:
            lines.append(f"{key}: {shown(old)} → (removed)")
        elif key not in before:
            lines.append(f"{key}: {shown(new)}")
        elif old != new:
            lines.append(f"{key}: {shown(old)} → {shown(new)}")
    return lines
