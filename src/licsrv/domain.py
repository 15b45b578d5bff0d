"""The vocabulary of licsrv, spelled once: roles, statuses, end reasons, limits and the version pattern."""

from __future__ import annotations

ROLES = ("owner", "operator", "viewer")
ROLE_RANK = {"viewer": 0, "operator": 1, "owner": 2}

LICENSE_STATUSES = ("active", "suspended", "revoked")
# What a blocked license's live sessions end as, and what their clients' next heartbeat hears.
BLOCKING_STATUSES = ("suspended", "revoked")

# A card key's state, the same word in the API, the CSV, the admin UI and the CLI.
CARD_STATUSES = ("new", "redeemed", "void")

END_REASONS = ("normal", "timeout", "forced", "replaced", "suspended", "revoked")

SESSION_POLICIES = ("reject", "replace")

VERSION_PATTERN = r"^[0-9A-Za-z.+-]{1,40}$"
VERSION_RULE = "up to 40 of 0-9 A-Z a-z . + -"

MAX_DURATION_DAYS = 36500
MAX_DEVICES = 100_000
MAX_SESSIONS = 10_000

# A page of an admin listing; listings never load more than this from PostgreSQL or Redis at once.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

API_KEY_GRACE_DAYS = 30
