"""A redis-server of our own from the machine's binaries, for `licsrv dev` and the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from licsrv.devstack.postgres import free_port

# Redis announces an expired key (the notice behind `session.timed_out`) when its expiry cycle reaches it. At
# the defaults (`hz 10`, `active-expire-effort 1`) the cycle looks at about 250 keys with a TTL a second, so
# among 10 000 live sessions a notice came up to 47 s late; with these, 1.5 s at most (docs/webhooks.md).
EXPIRY_PROMPTLY = ("--hz", "100", "--active-expire-effort", "10")


class RedisServer:
    def __init__(
        self, data_dir: Path, port: int | None = None, *, persist: bool = False, cluster: bool = False
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port(below=55536 if cluster else 65536)
        self.persist = persist
        self.cluster = cluster
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server not found: install it (`make run` does it with apt-get)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir)]
        args += (
            ["--save", "60 1", "--appendonly", "no"] if self.persist else ["--save", "", "--appendonly", "no"]
        )
        args += EXPIRY_PROMPTLY
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", str(self.data_dir / "nodes.conf")]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill: no save, no goodbye to clients. `start` brings it back."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisCluster:
    """Three (or more) masters on loopback ports, slots spread by `redis-cli --cluster create`."""

    def __init__(self, base_dir: Path, masters: int = 3) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.nodes = [RedisServer(self.base_dir / f"node{n}", cluster=True) for n in range(masters)]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}/0"

    def start(self) -> RedisCluster:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [_redis_cli(), "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(_cluster_ok(node.port) for node in self.nodes):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the Redis cluster did not reach cluster_state:ok")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _redis_cli() -> str:
    binary = shutil.which("redis-cli")
    if binary is None:
        raise FileNotFoundError("redis-cli not found: install redis-server (it ships redis-cli)")
    return binary


def _cluster_ok(port: int) -> bool:
    result = subprocess.run(
        [_redis_cli(), "-p", str(port), "cluster", "info"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return "cluster_state:ok" in result.stdout
