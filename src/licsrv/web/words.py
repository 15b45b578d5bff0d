"""What the admin UI says: a refusal in words ("Customer email is not a valid address.", not
"customer_email: Not a valid email.") and the page's title, named after the page."""

from __future__ import annotations

import re

from licsrv.errors import ApiError

LABELS = {
    "product_id": "Product",
    "plan_id": "Plan",
    "customer_name": "Customer name",
    "customer_email": "Customer email",
    "max_devices": "Device slots",
    "max_sessions": "Concurrent sessions",
    "duration_days": "Duration in days",
    "expires_at": "Expiry date",
    "days": "Days",
    "count": "Number of cards",
    "note": "Note",
    "notes": "Notes",
    "download_url": "Download URL",
    "current_version": "Current version",
    "minimum_version": "Minimum version",
    "whats_new": "What's new",
    "heartbeat_interval": "Heartbeat interval",
    "session_timeout": "Session timeout",
    "session_policy": "Session policy",
    "features": "Feature flags",
    "rate_limits": "Rate limits",
    "content_key": "Content key",
    "grace_days": "Grace period",
    "username": "Username",
    "password": "Password",
    "new_password": "New password",
    "role": "Role",
    "name": "Name",
    "url": "URL",
    "_schema": "The form",
}

_PHRASES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Not a valid email( address)?\.?$"), "is not a valid address."),
    (re.compile(r"^Not a valid integer\.?$"), "must be a whole number."),
    (re.compile(r"^Not a valid number\.?$"), "must be a number."),
    (re.compile(r"^Not a valid (date)?time\.?$|^Not a valid date\.?$"), "is not a valid date and time."),
    (re.compile(r"^Missing data for required field\.?$"), "is required."),
    (re.compile(r"^Field may not be null\.?$"), "is required."),
    (re.compile(r"^Unknown field\.?$"), "is not a field of this form."),
    (re.compile(r"^Shorter than minimum length (\d+)\.?$"), r"needs at least \1 characters."),
    (re.compile(r"^Longer than maximum length (\d+)\.?$"), r"is longer than \1 characters."),
    (
        re.compile(r"^Must be greater than or equal to (\S+) and less than or equal to (\S+?)\.?$"),
        r"must be between \1 and \2.",
    ),
    (re.compile(r"^Must be greater than or equal to (\S+?)\.?$"), r"must be at least \1."),
    (re.compile(r"^Must be less than or equal to (\S+?)\.?$"), r"must be at most \1."),
    (re.compile(r"^Must be one of: (.+?)\.?$"), r"must be one of \1."),
]


def label_of(field: str) -> str:
    return LABELS.get(field, field.replace("_", " ").capitalize())


def _sentence(field: str, message: str) -> str:
    label = label_of(field)
    for pattern, phrase in _PHRASES:
        if pattern.match(message):
            return f"{label} {pattern.sub(phrase, message)}"
    if field == "_schema":
        return message
    # A message that names its field already ("download_url: must be …") gets the label instead of the name.
    named = re.match(rf"^{re.escape(field)}\b:?\s*", message)
    if named:
        return f"{label} {message[named.end() :]}"
    return f"{label}: {message[:1].lower() + message[1:]}"


def in_words(error: ApiError) -> str:
    """The refusal as the admin UI shows it: one sentence per refused field, after the general message when
    the message says more than "The request is not valid."."""
    sentences = []
    for field, messages in (error.details or {}).items():
        for message in messages if isinstance(messages, list) else [messages]:
            if isinstance(message, dict):  # nested (e.g. one key of a JSON object): name the key
                sentences += [f"{label_of(field)} {k}: {v}" for k, v in message.items()]
            else:
                sentences.append(_sentence(str(field), str(message)))
    if not sentences:
        return error.message
    lead = "" if error.message == "The request is not valid." else error.message + " "
    return lead + " ".join(sentences)


TITLES = {
    "": "Dashboard",
    "licenses": "Licenses",
    "cards": "Card keys",
    "sessions": "Live sessions",
    "history": "Session history",
    "products": "Product settings",
    "plans": "Plans",
    "tokens": "API tokens",
    "admins": "Admin users",
    "audit": "Audit log",
    "security": "Security events",
    "customers": "Customers",
    "outbox": "Outbox",
    "webhooks": "Webhooks",
    "login": "Log in",
    "password": "Change password",
}
SINGULAR = {"licenses": "License", "cards": "Card batch", "customers": "Customer"}


def page_title(path: str) -> str:
    """The page's name from its path: /admin/licenses → Licenses, /admin/licenses/7 → License 7."""
    parts = path.removeprefix("/admin").strip("/").split("/")
    section = parts[0]
    if len(parts) > 1 and parts[1].isdigit() and section in SINGULAR:
        return f"{SINGULAR[section]} {parts[1]}"
    return TITLES.get(section, section.replace("-", " ").capitalize() or "Admin")
