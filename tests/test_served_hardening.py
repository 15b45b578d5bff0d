"""What `licsrv serve` itself guards: the request-head read timeout, and logs free of secrets."""

from __future__ import annotations

import asyncio
import secrets
import signal
import socket
import subprocess
import time

import aiohttp
import pytest

from licsrv.devstack.postgres import free_port

from factories import make_license, make_product
from test_cli import LICSRV, cli_env, wait_for


@pytest.fixture
def served(settings, tmp_path):
    """`licsrv serve` with a 1-second head timeout, its JSON log written to a file."""
    port = free_port()
    log = tmp_path / "server.log"
    env = cli_env(settings, LICSRV_PORT=str(port), LICSRV_HEADER_READ_TIMEOUT="1", LICSRV_LOG_LEVEL="INFO")
    with log.open("w") as output:
        process = subprocess.Popen(
            [*LICSRV, "serve", "--workers", "1", "--no-migrate"], env=env, stdout=output, stderr=output
        )
    try:
        assert wait_for(f"http://127.0.0.1:{port}/health")[0] == 200
        yield port, log
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed the connection (EOF or reset), None if it stayed open."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(1024):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_partial_request_heads_are_dropped_but_idle_keep_alive_is_not(served):
    port, _ = served
    partial = []
    for n in range(50):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow-" + str(n).encode())
        partial.append(sock)
    silent = socket.create_connection(("127.0.0.1", port))  # connects, sends nothing
    trickle = socket.create_connection(("127.0.0.1", port))
    keep_alive = socket.create_connection(("127.0.0.1", port))
    keep_alive.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert keep_alive.recv(4096).startswith(b"HTTP/1.1 200")
    for byte in b"GET /health HTTP/1.1\r\nHo":  # a byte every 0.1 s: each arrives, the head never does
        try:
            trickle.sendall(bytes([byte]))
        except OSError:
            break
        time.sleep(0.1)
    waits = [closed_within(sock, 5) for sock in [*partial, silent, trickle]]
    assert all(w is not None for w in waits), waits  # every one dropped within 5 s (the limit is 1 s)
    # The idle keep-alive connection (between requests, not inside a head) still serves.
    keep_alive.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert keep_alive.recv(4096).startswith(b"HTTP/1.1 200")
    for sock in [*partial, silent, trickle, keep_alive]:
        sock.close()


async def test_log_of_a_refused_write_holds_no_api_key_or_license_key(
    served, conn, queries, owner_token, settings
):
    port, log = served
    product = await make_product(conn)
    lic = await make_license(conn, queries, product)
    word = f"forbidden-{secrets.token_hex(3)}"
    # Constraints that fail only for these rows, so PostgreSQL answers with "DETAIL: Failing row contains".
    await conn.execute(
        f"ALTER TABLE products ADD CONSTRAINT log_test_p CHECK (whats_new <> '{word}') NOT VALID;"
        f"ALTER TABLE licenses ADD CONSTRAINT log_test_l CHECK (notes <> '{word}') NOT VALID"
    )
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {owner_token}"}) as http:
            for path, body in (
                (f"/api/v1/admin/products/{product['id']}", {"whats_new": word}),
                (f"/api/v1/admin/licenses/{lic['id']}", {"notes": word}),
            ):
                async with http.patch(f"http://127.0.0.1:{port}{path}", json=body) as refused:
                    assert refused.status == 400
                    assert (await refused.json())["error"]["code"] == "VALIDATION_ERROR"
    finally:
        await conn.execute(
            "ALTER TABLE products DROP CONSTRAINT log_test_p; ALTER TABLE licenses DROP CONSTRAINT log_test_l"
        )
    for _ in range(100):  # the worker writes its log line as it answers; give the file a moment
        if log.read_text().count("refused_by_database") >= 2:
            break
        await asyncio.sleep(0.05)
    text = log.read_text()
    assert text.count("Failing row contains (redacted)") == 2  # the failure is logged, the row is not
    assert product["api_key"] not in text and product["api_key"][3:20] not in text
    assert lic["key"] not in text and lic["key"].replace("-", "") not in text
