"""`licsrv retention`: addresses older than the retention period are blanked, newer ones kept, in batches."""

from __future__ import annotations

import secrets
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from licsrv.services.audit import CLI_ACTOR
from licsrv.services.cards import generate_batch
from licsrv.services.retention import blank_old_ips, cutoff

from factories import make_license, make_product
from test_cli import LICSRV, cli_env

OLD, NEW = "192.0.2.1", "192.0.2.2"


async def arrange(conn, queries) -> dict[str, int]:
    """One old and one recent row in every table that keeps an address; returns the license id."""
    product = await make_product(conn)
    lic = await make_license(conn, queries, product)
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=120), now - timedelta(days=10)
    for hardware, seen, ip in (("old-pc", old, OLD), ("new-pc", recent, NEW)):
        await conn.execute(
            """INSERT INTO devices (license_id, hardware_id, first_ip, last_ip, first_seen_at, last_seen_at)
               VALUES ($1, $2, $3, $3, $4, $4)""",
            lic["id"],
            hardware,
            ip,
            seen,
        )
        await conn.execute(
            """INSERT INTO session_history
                   (id, license_id, hardware_id, ip, started_at, last_heartbeat_at, ended_at, end_reason)
               VALUES ($1, $2, $3, $4, $5, $5, $5::timestamptz + interval '1 hour', 'normal')""",
            secrets.token_hex(8),
            lic["id"],
            hardware,
            ip,
            seen,
        )
        await conn.execute(
            "INSERT INTO security_events (kind, details, ip, at, product_id) VALUES ('test', $1, $2, $3, $4)",
            {"ip": ip, "hardware_id": hardware},
            ip,
            seen,
            product["id"],
        )
        await conn.execute(
            """INSERT INTO audit_log (actor, action, object_type, object_id, ip, at)
               VALUES ('t', 'retention.test', 'license', $1, $2, $3)""",
            str(lic["id"]),
            ip,
            seen,
        )
    batch, codes = await generate_batch(conn, queries, product["id"], 2, 30, "retention", CLI_ACTOR)
    for code, seen, ip in zip(codes, (old, recent), (OLD, NEW), strict=True):
        await conn.execute(
            """UPDATE card_keys SET status = 'redeemed', license_id = $2, hardware_id = 'x', ip = $3,
                      redeemed_at = $4 WHERE code = $1""",
            code,
            lic["id"],
            ip,
            seen,
        )
    return {"license_id": lic["id"], "product_id": product["id"], "batch_id": batch["id"]}


async def addresses(conn, ids: dict[str, int]) -> dict[str, set]:
    license_id, product_id = ids["license_id"], ids["product_id"]

    async def column(sql: str, *args) -> set:
        return {row[0] for row in await conn.fetch(sql, *args)}

    return {
        "devices": await column(
            "SELECT host(first_ip) FROM devices WHERE license_id = $1"
            " UNION ALL SELECT host(last_ip) FROM devices WHERE license_id = $1",
            license_id,
        ),
        "session_history": await column(
            "SELECT host(ip) FROM session_history WHERE license_id = $1", license_id
        ),
        "card_keys": await column("SELECT host(ip) FROM card_keys WHERE batch_id = $1", ids["batch_id"]),
        "security_events": await column(
            "SELECT host(ip) FROM security_events WHERE product_id = $1 AND kind = 'test'"
            " UNION ALL SELECT details->>'ip' FROM security_events WHERE product_id = $1 AND kind = 'test'",
            product_id,
        ),
        "audit_log": await column(
            "SELECT host(ip) FROM audit_log WHERE action = 'retention.test' AND object_id = $1",
            str(license_id),
        ),
    }


async def test_addresses_older_than_the_period_are_blanked_and_newer_kept(conn, queries):
    ids = await arrange(conn, queries)

    counts = await blank_old_ips(conn, queries, cutoff(datetime.now(UTC), 90))

    after = await addresses(conn, ids)
    assert after["devices"] == {None, NEW}
    assert after["session_history"] == {None, NEW}
    assert after["card_keys"] == {None, NEW}
    assert after["security_events"] == {None, "", NEW}  # the column NULL, the address in details ''
    assert after["audit_log"] == {None, NEW}
    assert all(counts[name] >= 1 for name in after)
    again = await blank_old_ips(conn, queries, cutoff(datetime.now(UTC), 90))
    assert again == dict.fromkeys(counts, 0)


async def test_a_shorter_period_takes_the_newer_rows_too_batch_by_batch(conn, queries):
    ids = await arrange(conn, queries)
    await blank_old_ips(conn, queries, cutoff(datetime.now(UTC), 90))
    for number in range(250):  # more rows than one batch of 100
        await conn.execute(
            """INSERT INTO session_history
                   (id, license_id, hardware_id, ip, started_at, last_heartbeat_at, ended_at, end_reason)
               VALUES ($1, $2, 'many', '198.51.100.1', now() - interval '20 days',
                       now() - interval '20 days', now() - interval '20 days', 'normal')""",
            f"many-{secrets.token_hex(6)}-{number}",
            ids["license_id"],
        )
    batches: list[int] = []

    counts = await blank_old_ips(
        conn,
        queries,
        cutoff(datetime.now(UTC), 5),
        batch=100,
        progress=lambda name, n: batches.append(n) if name == "session_history" else None,
    )

    assert counts["session_history"] >= 251 and max(batches) == 100 and len(batches) >= 3
    assert all(value <= {None, ""} for value in (await addresses(conn, ids)).values())


def test_licsrv_retention_prints_what_it_blanked(settings):
    result = subprocess.run(
        [*LICSRV, "retention", "--days", "90", "--batch-size", "1000"],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "older than 90 days" in result.stdout
    for name in ("session_history", "devices", "card_keys", "security_events", "audit_log"):
        assert name in result.stdout


def test_retention_days_come_from_the_setting(settings):
    result = subprocess.run(
        [*LICSRV, "retention"],
        env=cli_env(settings, LICSRV_IP_RETENTION_DAYS="30"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "older than 30 days" in result.stdout


def test_the_backup_timer_runs_retention_after_the_backup():
    systemd = Path(__file__).parents[1] / "deploy" / "systemd"
    backup = (systemd / "licsrv-backup.service").read_text()
    retention = (systemd / "licsrv-retention.service").read_text()
    assert "Wants=licsrv-retention.service" in backup and "Before=licsrv-retention.service" in backup
    assert "ExecStart=/opt/licsrv/bin/licsrv retention" in retention and "Type=oneshot" in retention
    assert 'command: ["licsrv", "retention"]' in (systemd.parent / "k8s" / "backup-cronjob.yaml").read_text()
