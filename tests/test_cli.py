from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from licsrv.devstack.postgres import free_port

LICSRV = [sys.executable, "-m", "licsrv.cli"]


def cli_env(settings, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "LICSRV_DATABASE_URL": settings.database_url,
        "LICSRV_REDIS_URL": settings.redis_url,
        "LICSRV_SECRET_KEY": settings.secret_key,
        "LICSRV_LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


def licsrv(settings, *args: str) -> str:
    result = subprocess.run(
        [*LICSRV, *args], env=cli_env(settings), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_migrate_is_idempotent(settings):
    assert licsrv(settings, "migrate") == "applied 0 migration(s)"


def test_tokens_create_prints_a_token(settings):
    token = licsrv(settings, "tokens", "create", "--name", "shop", "--role", "operator")
    assert re.fullmatch(r"lst_[A-Za-z0-9_-]{40,}", token)


def test_licenses_create_prints_a_key(settings):
    key = licsrv(settings, "licenses", "create", "--customer-name", "Jürgen Groß", "--max-devices", "3")
    assert re.fullmatch(r"([2-9A-Z]{5}-){4}[2-9A-Z]{5}", key)


def test_create_admin_refuses_a_short_password(settings):
    result = subprocess.run(
        [*LICSRV, "create-admin", "--username", "shorty", "--password", "abc"],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "at least" in result.stderr


def test_keys_rotate_keeps_the_old_key_published(settings):
    before = licsrv(settings, "keys", "rotate")
    after = licsrv(settings, "keys", "rotate")
    assert before != after and after.startswith("active signing key: ")


def test_keys_add_then_activate(settings):
    added = licsrv(settings, "keys", "add")
    assert added.startswith("next signing key: ")
    key_id = added.split(": ")[1].strip()
    assert licsrv(settings, "keys", "activate", key_id).strip() == f"active signing key: {key_id}"
    again = subprocess.run(
        [*LICSRV, "keys", "activate", key_id],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode != 0 and "not a next key" in again.stderr


def http_get(url: str, headers: dict | None = None, method: str = "GET") -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def wait_for(url: str, timeout: float = 60.0) -> tuple[int, dict]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, _, body = http_get(url)
            return status, body
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_serve_with_urls_answers_health_ready_and_the_management_api(settings):
    port = free_port()
    token = licsrv(settings, "tokens", "create", "--name", "serve-test")
    process = subprocess.Popen(
        [*LICSRV, "serve", "--workers", "2"],
        env=cli_env(settings, LICSRV_PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(f"{base}/health") == (200, {"status": "ok"})
        status, body = wait_for(f"{base}/ready")
        assert status == 200, body
        status, _, body = http_get(f"{base}/api/v1/admin/products", {"Authorization": f"Bearer {token}"})
        assert status == 200
        assert body["data"][0]["slug"] == "default"
        status, headers, body = http_get(
            f"{base}/api/v1/licenses/activate", {"X-API-Key": "x"}, method="POST"
        )
        assert status == 401
        assert body["error"]["code"] == "INVALID_API_KEY"
        assert "X-Licsrv-Signature" in headers
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output


async def test_sigterm_finishes_the_request_in_flight_then_exits(settings, conn, queries):
    import asyncio

    from factories import make_license

    product = dict(await queries.get_product(conn, id=1))
    lic = await make_license(conn, queries, product)
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *LICSRV,
        "serve",
        env=cli_env(settings, LICSRV_PORT=str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    body = json.dumps({"license_key": lic["key"], "hardware_id": "hw-term"}).encode()
    try:
        assert await asyncio.to_thread(wait_for, f"{base}/health") == (200, {"status": "ok"})
        async with conn.transaction():
            # Hold the license row: the activation below waits for it, in flight, when SIGTERM comes.
            await conn.execute("SELECT 1 FROM licenses WHERE id = $1 FOR UPDATE", lic["id"])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST /api/v1/licenses/activate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"X-API-Key: {product['api_key']}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            await asyncio.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            with pytest.raises(OSError):  # no longer accepting
                await asyncio.open_connection("127.0.0.1", port)
        answer = (await asyncio.wait_for(reader.read(65536), 20)).decode()
        writer.close()
        assert answer.startswith("HTTP/1.1 200"), answer  # finished, not dropped
        assert await conn.fetchval("SELECT count(*) FROM devices WHERE license_id = $1", lic["id"]) == 1
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.ci
def test_dev_starts_its_own_postgres_and_redis_and_serves(tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LICSRV_")}
    env.update(LICSRV_DEV_DIR=str(tmp_path / "dev"), LICSRV_PORT=str(port), LICSRV_LOG_LEVEL="WARNING")
    process = subprocess.Popen(
        [*LICSRV, "dev"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert wait_for(f"http://127.0.0.1:{port}/health", timeout=120) == (200, {"status": "ok"})
        status, _ = wait_for(f"http://127.0.0.1:{port}/ready")
        assert status == 200
        # Beside it, the command line finds its stack (test_cli_devstack.py has the details).
        beside = subprocess.run(
            [*LICSRV, "tokens", "create", "--name", "beside-dev"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert beside.returncode == 0, beside.stderr
        assert beside.stdout.startswith("lst_") and "using the dev stack" in beside.stderr
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert re.search(r"Admin login \(shown once\): admin / \S{12,}", output), output
    assert (tmp_path / "dev" / "postgres" / "PG_VERSION").exists()
    pids = subprocess.run(["pgrep", "-f", str(tmp_path / "dev")], capture_output=True, text=True).stdout
    assert pids.strip() == "", "dev left PostgreSQL or Redis running"
