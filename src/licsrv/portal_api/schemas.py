"""The portal API's request and answer bodies."""

from __future__ import annotations

import orjson
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

MAX_DATA_BYTES = 4096
MAX_DATA_DEPTH = 4

EMAIL = [validate.Email(error="email: not an email address"), validate.Length(max=254)]
PASSWORD = validate.Length(min=8, max=200, error="password: 8 to 200 characters")
TICKET = validate.Length(min=8, max=100)


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def check_data(value: dict) -> None:
    """Whatever the vendor collects, but bounded: a few KiB, a few levels deep."""
    if len(orjson.dumps(value)) > MAX_DATA_BYTES:
        raise ValidationError(f"data: at most {MAX_DATA_BYTES} bytes of JSON")
    if _depth(value) > MAX_DATA_DEPTH:
        raise ValidationError(f"data: at most {MAX_DATA_DEPTH} levels deep")


class Strict(Schema):
    class Meta:
        unknown = RAISE


class RegisterSchema(Strict):
    email = fields.String(required=True, validate=EMAIL)
    password = fields.String(required=True, validate=PASSWORD)
    ticket = fields.String(
        required=True,
        validate=TICKET,
        metadata={"description": "an unused card key or a license key nobody has claimed"},
    )
    data = fields.Dict(load_default=None, allow_none=True, validate=check_data)


class LoginSchema(Strict):
    email = fields.String(required=True, validate=EMAIL)
    password = fields.String(required=True, validate=validate.Length(min=1, max=200))


class SessionAnswerSchema(Schema):
    session_id = fields.String(required=True)
    session_token = fields.String(required=True, metadata={"description": "send as Authorization: Bearer"})
    email = fields.String(required=True)
    verification_required = fields.Boolean(required=True)


class VerifySchema(Strict):
    code = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$", error="code: six digits"))


class PasswordSchema(Strict):
    password = fields.String(required=True, validate=validate.Length(min=1, max=200))


class ChangePasswordSchema(Strict):
    old_password = fields.String(required=True, validate=validate.Length(min=1, max=200))
    new_password = fields.String(required=True, validate=PASSWORD)


class ResetSchema(Strict):
    email = fields.String(required=True, validate=EMAIL)


class ResetConfirmSchema(Strict):
    token = fields.String(required=True, validate=validate.Length(min=20, max=100))
    new_password = fields.String(required=True, validate=PASSWORD)


class ClaimSchema(Strict):
    license_key = fields.String(load_default=None, validate=validate.Length(min=8, max=100))
    card_key = fields.String(load_default=None, validate=validate.Length(min=8, max=100))

    @validates_schema
    def one_key(self, data: dict, **_: object) -> None:
        if not data.get("license_key") and not data.get("card_key"):
            raise ValidationError("Send license_key, card_key or both (a recharge).", "license_key")


class AccountPatchSchema(Strict):
    data = fields.Dict(required=True, validate=check_data)


class PortalDeviceSchema(Schema):
    id = fields.Integer()
    machine_name = fields.String()
    client_version = fields.String()
    first_seen_at = fields.DateTime()
    last_seen_at = fields.DateTime()


class PortalLiveSessionSchema(Schema):
    id = fields.String()
    device_id = fields.Integer(allow_none=True)
    machine_name = fields.String()
    client_version = fields.String()
    started_at = fields.DateTime()


class CustomerLicenseSchema(Schema):
    license_key = fields.String()
    status = fields.String()
    plan = fields.String(allow_none=True)
    expires_at = fields.DateTime(allow_none=True)
    duration_days = fields.Integer(allow_none=True, metadata={"description": "clock starts at activation"})
    expired = fields.Boolean()
    features = fields.Dict()
    max_devices = fields.Integer()
    frees_left = fields.Integer(
        metadata={"description": "device slots this license may still free in 30 days"}
    )
    devices = fields.List(fields.Nested(PortalDeviceSchema))
    sessions = fields.List(fields.Nested(PortalLiveSessionSchema))


class LicensesAnswerSchema(Schema):
    licenses = fields.List(fields.Nested(CustomerLicenseSchema))


class AccountSchema(Schema):
    id = fields.Integer()
    email = fields.String(allow_none=True)
    data = fields.Dict()
    verified = fields.Boolean()
    disabled = fields.Boolean()
    created_at = fields.DateTime()


class CredentialFileSchema(Schema):
    filename = fields.String()
    file = fields.String(metadata={"description": "the credential file's text"})
