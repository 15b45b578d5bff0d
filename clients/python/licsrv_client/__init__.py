"""licsrv-client: the Python client of a licsrv license server (docs/protocol.md is the contract).

`licsrv_client.sdk` — the online client: activation, validation, card redemption, run sessions with a
background heartbeat; every answer verified (signature or MAC, nonce, subject) before it is believed.
`licsrv_client.offline` — offline activation: request codes, certificates, the clock guard.
"""

from licsrv_client.offline import (
    CertificateExpired,
    ClockGuard,
    ClockMovedBackwards,
    OfflineError,
    check_certificate,
    make_request,
)
from licsrv_client.sdk import LicenseClient, LicsrvError, Session, UntrustedAnswer

__all__ = [
    "CertificateExpired",
    "ClockGuard",
    "ClockMovedBackwards",
    "LicenseClient",
    "LicsrvError",
    "OfflineError",
    "Session",
    "UntrustedAnswer",
    "check_certificate",
    "make_request",
]
