"""Offline activation, the server's side (DESIGN §6): a request code in, the device bound to a slot as in an
online activation, a signed certificate out. The wire format is licsrv.offline_codes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from licsrv.db import Database
from licsrv.errors import ApiError
from licsrv.offline_codes import OfflineError, OfflineRequest, certificate_code, parse_request_code
from licsrv.services import licensing
from licsrv.services.products import Product, ProductCache
from licsrv.signing import Keyring

# A request code is made on the offline machine and carried to a phone: it may take a while, not days.
MAX_REQUEST_AGE_S = 24 * 3600
MAX_CLOCK_AHEAD_S = 600
MACHINE_NAME = "offline activation"


def read_request(code: str, now: datetime) -> OfflineRequest:
    try:
        request = parse_request_code(code)
    except OfflineError as exc:
        raise ApiError("VALIDATION_ERROR", f"request_code: {exc}.") from None
    age = now.timestamp() - request.requested_at
    if age > MAX_REQUEST_AGE_S or age < -MAX_CLOCK_AHEAD_S:
        raise ApiError(
            "VALIDATION_ERROR",
            "request_code: older than a day, or the offline machine's clock is wrong; make a new one.",
        )
    return request


async def product_of(db: Database, products: ProductCache, license_key: str) -> Product:
    """The phone page has no API key: the license key names the product."""
    async with db.connection() as conn:
        row = await db.q.get_license_by_key(conn, key=license_key.strip())
    product = products.by_id(row["product_id"]) if row is not None else None
    if product is None:
        raise ApiError("LICENSE_NOT_FOUND")
    return product


async def activate_offline(
    db: Database,
    keyring: Keyring,
    product: Product,
    request: OfflineRequest,
    now: datetime,
) -> dict[str, Any]:
    """Binds the request's device (slots, first-activation clock) and returns the license and certificate."""
    async with db.transaction() as conn:
        view = await licensing.activate_device(
            conn,
            db.q,
            product,
            request.license_key,
            request.hardware_id,
            machine_name=MACHINE_NAME,
            ip=None,  # the phone's address says nothing about the machine
            now=now,
        )
    expires_at = datetime.fromisoformat(view["expires_at"]) if view["expires_at"] else None
    # Until the license expires; a perpetual license's certificate is renewed online (a revoked or suspended
    # license's is not: activate_device refuses it).
    valid_until = expires_at or now + timedelta(days=product.offline_renewal_days)
    payload = {
        "v": 1,
        "kid": keyring.key_id,
        "product": product.slug,
        "license_key": request.license_key,  # as the client sent it: its check compares
        "hardware_id": request.hardware_id,
        "nonce": request.nonce,
        "status": view["status"],
        "features": view["features"],
        "expires_at": int(expires_at.timestamp()) if expires_at else None,
        "issued_at": int(now.timestamp()),
        "valid_until": int(valid_until.timestamp()),
    }
    view.pop("device_id", None)
    return {"certificate": certificate_code(payload, keyring.sign), "license": view}
