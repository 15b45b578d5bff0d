"""Admin forms loaded through the management API's schemas, so the UI refuses exactly what the API refuses,
in the same words (a ValidationError becomes a 4xx page in licsrv.web.session's middleware)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from marshmallow import Schema, fields
from multidict import MultiMapping

from licsrv.bounded import MAX_NAME_LENGTH, MAX_TEXT_LENGTH, typed_value
from licsrv.errors import ApiError


def load_form(schema: Schema, data: dict[str, str], names: Iterable[str]) -> dict[str, Any]:
    """The named fields through `schema`. An empty text field is the empty string; an empty number or date
    is null where the schema allows null, else left out (the schema's default applies)."""
    values: dict[str, Any] = {}
    for name in names:
        value = data.get(name, "")
        field = schema.fields[name]
        if value == "" and not isinstance(field, fields.String):
            if field.allow_none:
                values[name] = None
            continue
        values[name] = value
    return schema.load(values)


# The key/value editor (templates/admin/_kv.html): rows of `<prefix>.name` and `<prefix>.value` inputs, read
# here into a flat object. Empty rows are the editor's spare rows and are skipped.

MAX_ROWS = 100


def kv_rows(data: MultiMapping[str], prefix: str) -> list[tuple[str, str]]:
    """The editor's rows as typed (spare empty rows left out), to parse or to show again."""
    names, values = data.getall(f"{prefix}.name", []), data.getall(f"{prefix}.value", [])
    rows = [(str(n).strip(), str(v).strip()) for n, v in zip(names, values, strict=False)]
    return [(name, value) for name, value in rows if name or value]


def parse_kv(
    rows: list[tuple[str, str]], label: str, *, typed: bool = True, names: Collection[str] | None = None
) -> dict[str, Any]:
    """A flat object from the editor's rows: values `true`/`false` become booleans and numbers numbers when
    `typed`, else they stay text. Refusals in words, naming the row."""
    if len(rows) > MAX_ROWS:
        raise ApiError("VALIDATION_ERROR", f"{label}: at most {MAX_ROWS} rows.")
    found: dict[str, Any] = {}
    for name, text in rows:
        if not name:
            raise ApiError("VALIDATION_ERROR", f"{label}: the value {text[:40]!r} has no name.")
        if len(name) > MAX_NAME_LENGTH or not name.isprintable():
            raise ApiError(
                "VALIDATION_ERROR",
                f"{label}: a name is 1 to {MAX_NAME_LENGTH} printable characters ({name[:40]!r}).",
            )
        if names is not None and name not in names:
            raise ApiError("VALIDATION_ERROR", f"{label}: {name!r} is not one of {', '.join(sorted(names))}.")
        if name in found:
            raise ApiError("VALIDATION_ERROR", f"{label}: {name!r} is named twice; keep one row for it.")
        if not text:
            raise ApiError("VALIDATION_ERROR", f"{label}: {name!r} needs a value.")
        if len(text) > MAX_TEXT_LENGTH or not text.isprintable():
            raise ApiError(
                "VALIDATION_ERROR",
                f"{label}: the value of {name!r} is at most {MAX_TEXT_LENGTH} printable characters.",
            )
        found[name] = typed_value(text) if typed else text
    return found
