"""marshmallow schemas of the management API's answers and request bodies."""

from __future__ import annotations

from marshmallow import Schema, fields


class ProductSchema(Schema):
    id = fields.Integer()
    slug = fields.String()
    name = fields.String()
    api_key = fields.String()
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
    has_content_key = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
