"""Admin forms loaded through the management API's schemas, so the UI refuses exactly what the API refuses,
in the same words (a ValidationError becomes a 4xx page in licsrv.web.session's middleware)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from marshmallow import Schema, fields


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
