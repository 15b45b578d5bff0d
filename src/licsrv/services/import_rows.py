"""The CSV of a license import (docs/api.md, "Importing licenses"): its columns, and each line read into the
values it asks for, or a refusal naming the line. Nothing here touches the database: the products and plans
are read once beforehand (`Catalogue`)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from marshmallow import ValidationError

from licsrv.bounded import check_features
from licsrv.domain import LICENSE_STATUSES, MAX_DEVICES, MAX_DURATION_DAYS, MAX_SESSIONS
from licsrv.errors import ApiError
from licsrv.services.license_keys import IMPORTED_KEY, IMPORTED_KEY_RULE

COLUMNS = (
    "key",
    "product",
    "plan",
    "customer",
    "email",
    "max_devices",
    "max_sessions",
    "expires_at",
    "duration_days",
    "status",
    "features",
    "hardware_ids",
    "notes",
)
MAX_HARDWARE_ID = 200
MAX_NAME = 200
MAX_NOTES = 5000
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
_DIGITS = re.compile(r"^[0-9]{1,9}$")
_NUMBER = re.compile(r"^-?[0-9]{1,16}(\.[0-9]{1,16})?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HARDWARE_SEPARATORS = re.compile(r"[;|]")
# A new license's values where neither the line nor its plan gives one.
DEFAULTS: dict[str, Any] = {
    "plan_id": None,
    "customer_name": "",
    "customer_email": "",
    "max_devices": 1,
    "max_sessions": None,
    "features": {},
    "notes": "",
    "status": "active",
}


@dataclass(frozen=True, slots=True)
class Refusal:
    line: int
    key: str
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "key": self.key, "code": self.code, "message": self.message}


class RowRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class ImportRow:
    """One line: `values` holds the columns it sets (an absent column leaves a stored license's value as it
    is); `expiry` is ("at", moment), ("days", n), ("never",) or None (not given)."""

    line: int
    key: str
    product_id: int
    values: dict[str, Any]
    expiry: tuple | None
    hardware_ids: list[str]
    plan_archived: bool = False
    product_archived: bool = False

    def new_license(self) -> dict[str, Any]:
        return {**DEFAULTS, **self.values}


@dataclass
class Catalogue:
    """Products (by slug and id) and their plans (by id and by lower-cased name), read once per import."""

    products: dict[int, Mapping[str, Any]] = field(default_factory=dict)
    slugs: dict[str, int] = field(default_factory=dict)
    plans: dict[int, Mapping[str, Any]] = field(default_factory=dict)
    plan_names: dict[tuple[int, str], int] = field(default_factory=dict)

    @classmethod
    def of(cls, products: list[Mapping[str, Any]], plans: list[Mapping[str, Any]]) -> Catalogue:
        catalogue = cls()
        for product in products:
            catalogue.products[product["id"]] = product
            catalogue.slugs[product["slug"]] = product["id"]
        for plan in plans:
            catalogue.plans[plan["id"]] = plan
            name = (plan["product_id"], plan["name"].lower())
            current = catalogue.plans.get(catalogue.plan_names.get(name, 0))
            if current is None or current["archived_at"] is not None:  # a live plan wins its name
                catalogue.plan_names[name] = plan["id"]
        return catalogue

    def product_id(self, slug: str, default_id: int) -> int:
        if not slug:
            return default_id
        if slug not in self.slugs:
            raise RowRefused("UNKNOWN_REFERENCE", f"No product has the slug {slug!r}.")
        return self.slugs[slug]

    def plan(self, product_id: int, name_or_id: str) -> Mapping[str, Any]:
        plan_id = self.plan_names.get((product_id, name_or_id.lower()))
        if plan_id is None and _DIGITS.match(name_or_id):
            plan_id = int(name_or_id)
        plan = self.plans.get(plan_id or 0)
        if plan is None or plan["product_id"] != product_id:
            raise RowRefused("UNKNOWN_REFERENCE", f"The product has no plan {name_or_id!r}.")
        return plan


def check_csv(text: str) -> None:
    """The whole file parses as CSV (fast: no values are read); else 400 naming the first bad line."""
    _, lines = read_csv(text)
    for _ in lines:
        pass


def read_csv(text: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header (lower-cased, checked) and the data lines with their line numbers as in the file."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip().lower() for name in next(reader, [])]
    except csv.Error as exc:
        raise ApiError("VALIDATION_ERROR", f"Line 1 is not CSV: {exc}.") from None
    unknown = [name for name in header if name not in COLUMNS]
    if unknown or "key" not in header or len(set(header)) != len(header):
        raise ApiError(
            "VALIDATION_ERROR",
            "The first line names the columns, each once, `key` among them; known columns: "
            + ", ".join(COLUMNS)
            + ".",
            details={"columns": [f"unknown: {name}" for name in unknown[:20]]} if unknown else None,
        )

    def lines() -> Iterator[tuple[int, list[str]]]:
        last = reader.line_num
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ApiError("VALIDATION_ERROR", f"Line {last + 1} is not CSV: {exc}.") from None
            line, last = last + 1, reader.line_num
            if cells and any(cell.strip() for cell in cells):
                yield line, cells

    return header, lines()


def read_row(
    line: int, header: list[str], cells: list[str], catalogue: Catalogue, default_product_id: int
) -> ImportRow:
    """The line's values, or RowRefused saying why not."""
    if len(cells) != len(header):
        raise RowRefused("VALIDATION_ERROR", f"{len(cells)} fields; the header names {len(header)}.")
    given = {name: cell.strip() for name, cell in zip(header, cells, strict=True)}
    key = given["key"]
    if not IMPORTED_KEY.match(key):
        raise RowRefused("VALIDATION_ERROR", f"key: {IMPORTED_KEY_RULE}.")
    product_id = catalogue.product_id(given.get("product", ""), default_product_id)
    plan = catalogue.plan(product_id, given["plan"]) if given.get("plan") else None
    values: dict[str, Any] = {}
    if "plan" in given:
        values["plan_id"] = plan["id"] if plan else None
    for column, name, limit in (
        ("customer", "customer_name", MAX_NAME),
        ("email", "customer_email", MAX_NAME),
    ):
        if column in given:
            values[name] = _text(given[column], column, limit)
    if values.get("customer_email") and not _EMAIL.match(values["customer_email"]):
        raise RowRefused("VALIDATION_ERROR", "email: an email address like name@example.com, or empty.")
    if "notes" in given:
        values["notes"] = _text(given["notes"], "notes", MAX_NOTES)
    if "status" in given:
        values["status"] = _status(given["status"])
    for name, parse in (
        ("max_devices", _max_devices),
        ("max_sessions", _max_sessions),
        ("features", _features),
    ):
        if given.get(name):
            values[name] = parse(given[name])
        elif plan is not None:
            values[name] = plan[name]
        elif name in given:
            values[name] = DEFAULTS[name]
    return ImportRow(
        line=line,
        key=key,
        product_id=product_id,
        values=values,
        expiry=_expiry(given, plan),
        hardware_ids=_hardware_ids(given.get("hardware_ids", "")),
        plan_archived=plan is not None and plan["archived_at"] is not None,
        product_archived=catalogue.products[product_id]["archived_at"] is not None,
    )


def _text(value: str, column: str, limit: int) -> str:
    if len(value) > limit:
        raise RowRefused("VALIDATION_ERROR", f"{column}: at most {limit} characters.")
    if "\x00" in value:
        raise RowRefused("VALIDATION_ERROR", f"{column}: no NUL characters.")
    return value


def _status(value: str) -> str:
    status = value.lower() or "active"
    if status not in LICENSE_STATUSES:
        raise RowRefused("VALIDATION_ERROR", f"status: one of {', '.join(LICENSE_STATUSES)} (or empty).")
    return status


def _whole(value: str, column: str, low: int, high: int) -> int:
    if not _DIGITS.match(value) or not low <= int(value) <= high:
        raise RowRefused("VALIDATION_ERROR", f"{column}: a whole number from {low} to {high}.")
    return int(value)


def _max_devices(value: str) -> int:
    return _whole(value, "max_devices", 0, MAX_DEVICES)


def _max_sessions(value: str) -> int:
    return _whole(value, "max_sessions", 1, MAX_SESSIONS)


def _features(value: str) -> dict[str, Any]:
    """A JSON object, or `name=value;name=value` (true/false and numbers are typed, the rest is text)."""
    if value.startswith("{"):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise RowRefused("VALIDATION_ERROR", "features: not valid JSON.") from None
    else:
        parsed = {}
        for pair in value.split(";"):
            if not pair.strip():
                continue
            name, equals, text = pair.partition("=")
            if not equals or not name.strip():
                raise RowRefused("VALIDATION_ERROR", "features: a JSON object or name=value;name=value.")
            parsed[name.strip()] = _feature_value(text.strip())
    try:
        features = check_features(parsed)
    except ValidationError as exc:
        raise RowRefused("VALIDATION_ERROR", " ".join(map(str, exc.messages))) from None
    if any("\x00" in text for item in features.items() for text in item if isinstance(text, str)):
        raise RowRefused("VALIDATION_ERROR", "features: no NUL characters.")
    return features


def _feature_value(text: str) -> bool | int | float | str:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _NUMBER.match(text):
        return float(text) if "." in text else int(text)
    return text


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RowRefused(
            "VALIDATION_ERROR", "expires_at: an ISO-8601 time, e.g. 2027-01-31T00:00:00Z."
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if not EARLIEST <= moment < LATEST:
        raise RowRefused("VALIDATION_ERROR", "expires_at: a time between 1970 and 3000.")
    return moment


def _expiry(given: Mapping[str, str], plan: Mapping[str, Any] | None) -> tuple | None:
    at, days = given.get("expires_at", ""), given.get("duration_days", "")
    if at and days:
        raise RowRefused("VALIDATION_ERROR", "Give expires_at or duration_days, not both.")
    if at:
        return ("at", _moment(at))
    if days:
        return ("days", _whole(days, "duration_days", 1, MAX_DURATION_DAYS))
    if plan is not None:
        return ("days", plan["duration_days"]) if plan["duration_days"] else ("never",)
    if "expires_at" in given or "duration_days" in given:
        return ("never",)
    return None


def _hardware_ids(value: str) -> list[str]:
    found = [part.strip() for part in _HARDWARE_SEPARATORS.split(value)]
    unique = list(dict.fromkeys(part for part in found if part))
    for hardware_id in unique:
        if len(hardware_id) > MAX_HARDWARE_ID or "\x00" in hardware_id:
            raise RowRefused("VALIDATION_ERROR", f"hardware_ids: each at most {MAX_HARDWARE_ID} characters.")
    if len(unique) > MAX_DEVICES:
        raise RowRefused("DEVICE_LIMIT_REACHED", "More hardware ids than any license has slots.")
    return unique
