"""Failures of the live store that the HTTP layer turns into 503 SERVICE_UNAVAILABLE."""

from __future__ import annotations


class LiveUnavailable(Exception):
    """Redis could not be reached or did not answer in time."""
