"""marshmallow schemas of the management API's answers and request bodies."""

from __future__ import annotations

import base64
import binascii

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from licsrv.bounded import HTTP_URL_DOC, Features, http_url
from licsrv.domain import VERSION_PATTERN, VERSION_RULE


class ProductSchema(Schema):
    id = fields.Integer()
    slug = fields.String()
    name = fields.String()
    api_key = fields.String()
    previous_api_key = fields.String(
        allow_none=True, metadata={"description": "the replaced key, still accepted until the time below"}
    )
    previous_api_key_expires_at = fields.DateTime(allow_none=True)
    heartbeat_interval = fields.Integer()
    session_timeout = fields.Integer()
    current_version = fields.String()
    minimum_version = fields.String()
    download_url = fields.String()
    whats_new = fields.String()
    session_policy = fields.String()
    max_sessions = fields.Integer()
    features = fields.Dict()
    rate_limits = fields.Dict()
    require_signed_requests = fields.Boolean()
    offline_renewal_days = fields.Integer()
    has_content_key = fields.Boolean()
    archived_at = fields.DateTime(
        allow_none=True, metadata={"description": "set: the product takes no new licenses, plans or cards"}
    )
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


VERSION = validate.Regexp(VERSION_PATTERN, error=f"a version: {VERSION_RULE}")


class ProductUpdateSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(validate=validate.Length(min=1, max=200))
    current_version = fields.String(validate=VERSION)
    minimum_version = fields.String(validate=VERSION)
    download_url = fields.String(validate=http_url, metadata=HTTP_URL_DOC)
    whats_new = fields.String(validate=validate.Length(max=20000))
    session_policy = fields.String(validate=validate.OneOf(["reject", "replace"]))
    max_sessions = fields.Integer(validate=validate.Range(min=1, max=10000))
    heartbeat_interval = fields.Integer(validate=validate.Range(min=1, max=3600))
    session_timeout = fields.Integer(validate=validate.Range(min=2, max=7200))
    features = Features()
    rate_limits = fields.Dict(
        keys=fields.String(validate=validate.Length(max=64)),
        values=fields.String(validate=validate.Length(max=200)),
        validate=validate.Length(max=20),
    )
    require_signed_requests = fields.Boolean()
    offline_renewal_days = fields.Integer(validate=validate.Range(min=1, max=3650))


class ProductCreateSchema(ProductUpdateSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    slug = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[a-z0-9][a-z0-9-]{0,62}$",
            error="1 to 63 lower-case letters, digits and dashes, not a dash first.",
        ),
    )
    api_key = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(r"^[!-~]{8,200}$", error="8 to 200 printable ASCII characters, no spaces."),
        metadata={"description": "import the key the vendor's program already has; generated when absent"},
    )


def _base64_key(value: str | None) -> None:
    if value is None:
        return
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("content_key must be base64.") from None
    if not 16 <= len(raw) <= 1024:
        raise ValidationError("content_key must be 16 to 1024 bytes.")


class ContentKeySchema(Schema):
    class Meta:
        unknown = RAISE

    content_key = fields.String(required=True, allow_none=True, validate=_base64_key)


class RotateKeySchema(Schema):
    class Meta:
        unknown = RAISE

    grace_days = fields.Integer(
        load_default=30,
        validate=validate.Range(min=0, max=365),
        metadata={"description": "days the replaced key stays valid; 0 refuses it at once"},
    )
