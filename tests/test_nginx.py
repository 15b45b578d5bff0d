"""deploy/nginx/licsrv.conf in Debian's nginx, in front of two real `licsrv serve` instances that share
PostgreSQL and Redis: one instance is killed under heartbeat and start load, and the clients do not notice."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
import pytest

from licsrv.devstack.postgres import free_port
from live_servers import Server, until

from factories import make_license, make_product

SITE = Path(__file__).resolve().parents[1] / "deploy" / "nginx" / "licsrv.conf"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (`make test` installs it)")


def swap(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"deploy/nginx/licsrv.conf no longer has {old!r} once"
    return text.replace(old, new)


def render_site(upstreams: list[int], http_port: int, https_port: int, cert: Path, key: Path) -> str:
    """The shipped file with only what differs on a test machine: instances, ports and certificate."""
    text = SITE.read_text()
    servers = "".join(f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=10s;\n" for port in upstreams)
    text = swap(text, "    server app:8080 max_fails=1 fail_timeout=10s;\n", servers)
    text = swap(text, "listen 80;", f"listen 127.0.0.1:{http_port};")
    text = swap(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    text = swap(text, "/etc/nginx/certs/licsrv.crt", str(cert))
    return swap(text, "/etc/nginx/certs/licsrv.key", str(key))


class Nginx:
    """nginx as a foreground child with its own prefix, pid, logs and temporary files."""

    def __init__(self, upstreams: list[int]) -> None:
        self.prefix = Path(tempfile.mkdtemp(prefix="licsrv-nginx-"))
        self.prefix.chmod(0o755)  # workers run as nobody when we are root
        self.http_port, self.https_port = free_port(), free_port()
        cert, key = self.prefix / "licsrv.crt", self.prefix / "licsrv.key"
        subject = ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)]
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *subject],
            check=True,
            capture_output=True,
            timeout=60,
        )
        (self.prefix / "licsrv.conf").write_text(
            render_site(upstreams, self.http_port, self.https_port, cert, key)
        )
        user = "user nobody nogroup;\n" if os.geteuid() == 0 and _has_user("nobody") else ""
        temp = "".join(
            f"    {name}_temp_path {self.prefix / 'temp' / name};\n"
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        self.conf = self.prefix / "nginx.conf"
        self.conf.write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {self.prefix / 'nginx.pid'};\n"
            f"error_log {self.error_log} info;\nevents {{ worker_connections 512; }}\n"
            f"http {{\n    access_log {self.prefix / 'access.log'};\n{temp}"
            f"    include {self.prefix / 'licsrv.conf'};\n}}\n"
        )
        (self.prefix / "temp").mkdir()
        self.process: subprocess.Popen | None = None

    @property
    def error_log(self) -> Path:
        return self.prefix / "error.log"

    def command(self, *args: str) -> list[str]:
        return [NGINX, "-p", str(self.prefix), "-c", str(self.conf), "-e", str(self.error_log), *args]

    def check(self) -> subprocess.CompletedProcess:
        return subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30, check=False)

    def start(self) -> Nginx:
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.prefix, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def test_the_shipped_config_loads_in_this_nginx():
    nginx = Nginx([free_port()])
    try:
        result = nginx.check()
    finally:
        nginx.stop()
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


class Clients:
    """Client programs behind nginx: each heartbeats its session; a starter keeps starting sessions, and
    retries a start that failed at the gateway, as a client retries a failed connection."""

    def __init__(self, http: aiohttp.ClientSession, base: str, api_key: str) -> None:
        self.http, self.base, self.headers = http, base, {"X-API-Key": api_key}
        self.heartbeats: list[tuple[float, str, int, str | None]] = []
        self.start_failures: list[int] = []
        self.starts = 0
        self.stopped = asyncio.Event()

    async def post(self, path: str, body: dict) -> tuple[int, dict | None]:
        async with self.http.post(self.base + path, json=body, headers=self.headers) as response:
            is_json = response.content_type == "application/json"
            return response.status, (await response.json()) if is_json else None

    async def start(self, license_key: str, hardware_id: str) -> str:
        for _ in range(3):
            status, body = await self.post(
                "/api/v1/sessions/start",
                {"license_key": license_key, "hardware_id": hardware_id, "client_version": "2.0.0"},
            )
            if status == 200:
                self.starts += 1
                return body["data"]["session_token"]
            self.start_failures.append(status)
            await asyncio.sleep(0.2)
        raise AssertionError(f"a session start failed three times: {self.start_failures}")

    async def heartbeat_forever(self, token: str) -> None:
        while not self.stopped.is_set():
            status, body = await self.post("/api/v1/sessions/heartbeat", {"session_token": token})
            code = body["error"]["code"] if body and status != 200 else None
            self.heartbeats.append((time.monotonic(), token, status, code))
            await asyncio.sleep(0.5)

    async def keep_starting(self, licenses: list[dict]) -> None:
        n = 0
        while not self.stopped.is_set():
            lic = licenses[n % len(licenses)]
            await self.start(lic["key"], f"hw-starter-{lic['id']}")
            n += 1
            await asyncio.sleep(0.7)


SESSIONS = 8


@pytest.mark.ci
async def test_one_of_two_instances_killed_under_load_goes_unnoticed(settings, conn, queries):
    product = await make_product(conn, heartbeat_interval=30, session_timeout=60, session_policy="replace")
    held = [await make_license(conn, queries, product) for _ in range(SESSIONS)]
    started = [await make_license(conn, queries, product) for _ in range(6)]
    env = {"LICSRV_TRUSTED_PROXIES": "127.0.0.1/32", "LICSRV_LOG_LEVEL": "WARNING"}
    doomed, survivor = await asyncio.gather(Server(settings, **env).start(), Server(settings, **env).start())
    nginx = Nginx([doomed.port, survivor.port]).start()
    base = f"https://127.0.0.1:{nginx.https_port}"
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE  # the test's own self-signed cert
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=insecure)) as http:
            await until(lambda: _answers(http, base + "/health"), "nginx to proxy /health")
            clients = Clients(http, base, product["api_key"])
            tokens = [await clients.start(lic["key"], f"hw-{lic['id']}") for lic in held]
            load = [asyncio.create_task(clients.heartbeat_forever(token)) for token in tokens]
            load.append(asyncio.create_task(clients.keep_starting(started)))
            try:
                await asyncio.sleep(2)
                # Frozen first, so that requests are in flight on it when it dies without a goodbye.
                doomed.process.send_signal(signal.SIGSTOP)
                await asyncio.sleep(0.5)
                doomed.process.send_signal(signal.SIGKILL)
                assert await asyncio.wait_for(doomed.process.wait(), 10) == -signal.SIGKILL
                killed = time.monotonic()
                await asyncio.sleep(4)
            finally:
                clients.stopped.set()
                await asyncio.gather(*load)
    finally:
        log = nginx.error_log.read_text(errors="replace") if nginx.error_log.exists() else ""
        nginx.stop()
        await doomed.stop()
        await survivor.stop()

    assert {(status, code) for _, _, status, code in clients.heartbeats} == {(200, None)}  # not one failed
    after = [token for t, token, _, _ in clients.heartbeats if t > killed + 0.5]
    assert (
        set(after) == set(tokens) and len(after) >= SESSIONS * 3
    )  # each session lives on, wherever it began
    assert clients.starts >= SESSIONS + 6
    assert set(clients.start_failures) <= {502}  # at most a start that was in flight on the killed one
    assert len(clients.start_failures) <= 2
    assert f"127.0.0.1:{doomed.port}" in log  # nginx did meet the dead instance, and went on to the other


async def _answers(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False
