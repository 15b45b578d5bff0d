"""Moving an installation of the older server (reference 000) to licsrv, as docs/migrating-from-000.md says:
its global API key becomes the product's key, its licenses come over by CSV with their keys and activated
devices, and its shipped clients keep working unchanged on the legacy API."""

from __future__ import annotations

import csv
import io
import secrets

from licsrv.state import PRODUCTS

from factories import make_product

SINGLE_SESSION = "Es ist nur eine Sitzung erlaubt, stelle sicher, dass nirgendwo sonst das Programm läuft"


def reference_000_installation() -> dict:
    """What the older server holds: one global API key in client_configs, and its licenses (keys as it
    made them, mixed case), with the hardware hashes of the machines they were activated on."""
    tag = secrets.token_hex(3)
    return {
        "api_key": f"AF-2025-{secrets.token_hex(16)}",
        "licenses": [
            {
                "license_key": f"AF-F-202506-Kx7q-{tag}-0001",
                "customer": "Jürgen Groß",
                "email": "juergen@example.de",
                "valid_until": "2031-06-30T23:59:59+02:00",
                "device_limit": 2,
                "hardware": ["hw-buero-7f3a"],
            },
            {
                "license_key": f"af-t-202501-{tag}-0002",
                "customer": "王小明",
                "email": "",
                "valid_until": "2030-01-01T00:00:00Z",
                "device_limit": 1,
                "hardware": ["hw-laptop-01"],
            },
            {
                "license_key": f"AF-F-202412-{tag}-0003",
                "customer": "Ana García",
                "email": "ana@example.es",
                "valid_until": "2029-12-31T00:00:00Z",
                "device_limit": 3,
                "hardware": [],
            },
        ],
    }


def export_csv(installation: dict) -> str:
    """The older server's licenses as licsrv's import columns (docs/migrating-from-000.md, step 2)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["key", "customer", "email", "expires_at", "max_devices", "hardware_ids", "notes"])
    for lic in installation["licenses"]:
        writer.writerow(
            [
                lic["license_key"],
                lic["customer"],
                lic["email"],
                lic["valid_until"],
                lic["device_limit"],
                ";".join(lic["hardware"]),
                "from the older server",
            ]
        )
    return out.getvalue()


async def legacy_call(client, api_key: str, path: str, body: dict) -> tuple[int, dict]:
    """A shipped client of the older server: its paths, its field names, its global key."""
    response = await client.post(
        f"/api/license/{path}", json=body, headers={"X-API-Key": api_key, "Content-Type": "application/json"}
    )
    return response.status, await response.json()


async def test_an_installation_of_the_older_server_moves_over_and_its_clients_keep_working(
    client, conn, admin_headers
):
    old = reference_000_installation()
    product = await make_product(conn, client.app, current_version="1.2.0", minimum_version="1.0.0")
    # Step 1: the older server's global API key becomes the product's key (compiled into shipped clients).
    await conn.execute("UPDATE products SET api_key = $1 WHERE id = $2", old["api_key"], product["id"])
    await client.app[PRODUCTS].reload()

    # Step 2: its licenses, with their keys and activated devices; a dry run first, then for real.
    text = export_csv(old)
    url = f"/api/v1/admin/licenses/import?product_id={product['id']}"
    headers = {**admin_headers, "Content-Type": "text/csv"}
    checked = await (await client.post(url + "&dry_run=true", data=text.encode(), headers=headers)).json()
    assert (checked["data"]["created"], checked["data"]["refused"]) == (3, 0), checked
    done = await (await client.post(url, data=text.encode(), headers=headers)).json()
    assert (done["data"]["created"], done["data"]["refused"]) == (3, 0), done
    again = await (await client.post(url, data=text.encode(), headers=headers)).json()
    assert again["data"]["unchanged"] == 3

    first, second, third = old["licenses"]
    api_key = old["api_key"]
    # Step 3: the shipped client, unchanged. An imported device is already bound: verify needs no activation.
    status, body = await legacy_call(
        client, api_key, "verify", {"license_key": first["license_key"], "hardware_hash": "hw-buero-7f3a"}
    )
    assert (status, body["success"], body["valid"]) == (200, True, True), body
    assert body["expires_at"].startswith("2031-06-30")

    start = {
        "license_key": first["license_key"],
        "machine_id": "PC-Büro",
        "hardware_hash": "hw-buero-7f3a",
        "version": "1.1.0",
    }
    status, body = await legacy_call(client, api_key, "session/start", start)
    assert (status, body["success"]) == (200, True), body
    assert body["update_available"] is True and body["current_version"] == "1.2.0"
    token = body["session_token"]
    status, body = await legacy_call(client, api_key, "session/start", {**start, "hardware_hash": "hw-other"})
    assert (status, body) == (
        409,
        {"success": False, "error": SINGLE_SESSION, "code": "SESSION_LIMIT_REACHED"},
    )
    status, body = await legacy_call(
        client, api_key, "session/heartbeat", {"session_token": token, "license_key": first["license_key"]}
    )
    assert (status, body["success"]) == (200, True), body
    status, body = await legacy_call(client, api_key, "session/end", {"session_token": token})
    assert (status, body["success"]) == (200, True)

    # The mixed-case key is found as it was issued; its one slot is held by the imported device.
    status, body = await legacy_call(
        client, api_key, "activate", {"license_key": second["license_key"], "hardware_hash": "hw-new-pc"}
    )
    assert (status, body["code"]) == (409, "DEVICE_LIMIT_REACHED")
    status, body = await legacy_call(
        client,
        api_key,
        "session/start",
        {"license_key": second["license_key"], "hardware_hash": "hw-laptop-01", "version": "1.1.0"},
    )
    assert (status, body["success"]) == (200, True), body

    # A license imported without devices activates on first use, as it would have at the older server.
    status, body = await legacy_call(
        client, api_key, "activate", {"license_key": third["license_key"], "hardware_hash": "hw-ana-1"}
    )
    assert (status, body["activated"], body["devices_used"], body["max_devices"]) == (200, True, 1, 3)

    # The product's own client API answers the same key too.
    response = await client.post(
        "/api/v1/licenses/validate",
        json={"license_key": first["license_key"], "hardware_id": "hw-buero-7f3a"},
        headers={"X-API-Key": api_key},
    )
    assert response.status == 200
    assert (await response.json())["data"]["license_key"] == first["license_key"]
