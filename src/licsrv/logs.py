"""Structured logs: one JSON object per line, with the request id bound across awaits, scrubbed of secrets."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

# What must never reach a log line, however it got into a message or a traceback: PostgreSQL's copy of the
# failing row and of a key's value, product API keys, management tokens, license keys, card keys and session
# tokens. Each is replaced by a marker that still says what was there.
_SECRETS = [
    (re.compile(r"(Failing row contains )\(.*?\)(?=\.?(?:\\n|\n|$|\"))", re.S), r"\1(redacted)"),
    (re.compile(r"(Key \([^)\n]*\)=)\(.*?\)(?= is | already |\.?(?:\\n|\n|$))"), r"\1(redacted)"),
    (re.compile(r"\blk_[0-9A-Za-z]{8,}"), "lk_[redacted]"),
    (re.compile(r"\blst_[0-9A-Za-z_-]{16,}"), "lst_[redacted]"),
    (re.compile(r"\b[2-9A-HJ-NP-Z]{5}(?:-[2-9A-HJ-NP-Z]{5}){4}\b"), "[license key]"),
    (re.compile(r"\b[2-9A-HJ-NP-Z]{32}\b"), "[card key]"),
    (re.compile(r"\b\d{1,19}\.[A-Za-z0-9_-]{22,}"), "[session token]"),
]


def scrub(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def scrub_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """A structlog processor, after the traceback is formatted: every string value scrubbed."""
    return {key: scrub(value) if isinstance(value, str) else value for key, value in event_dict.items()}


def setup_logging(level: str = "INFO") -> None:
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            scrub_secrets,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
