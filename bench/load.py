"""The load generator: wrk on loopback with a Lua script that POSTs JSON bodies from a pool, round robin.

Peak throughput is closed-loop (fixed connections, no pause). Offered load is emulated, since wrk2 is not in
Debian: each connection pauses a random 0..2·d ms (wrk's `delay()`) before each request, so c connections
offer about c·1000/d requests per second. The pause is not counted as latency, and a slow answer delays
the next request of its connection (coordinated omission), so latency near saturation reads optimistic.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

MARK = "LICSRV_BENCH "

WRK_SCRIPT = r"""
local bodies = {}
for line in io.lines(os.getenv("LICSRV_BENCH_BODIES")) do bodies[#bodies + 1] = line end
local delay_ms = tonumber(os.getenv("LICSRV_BENCH_DELAY_MS") or "0")
local api_key = os.getenv("LICSRV_BENCH_API_KEY") or ""
local counter = 0

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
  counter = math.random(#bodies)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if api_key ~= "" then wrk.headers["X-API-Key"] = api_key end
end

function request()
  counter = counter % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[counter])
end

if delay_ms > 0 then
  function delay()
    return math.random(0, 2 * delay_ms)
  end
end

function done(summary, latency, requests)
  io.write(string.format(
    "LICSRV_BENCH {\"requests\": %d, \"duration_us\": %d, \"status_errors\": %d, \"socket_errors\": %d, " ..
    "\"timeouts\": %d, \"p50_us\": %d, \"p90_us\": %d, \"p99_us\": %d, \"mean_us\": %.1f, \"max_us\": %d}\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


class LoadError(RuntimeError):
    pass


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    status_errors: int  # answers that were not 2xx/3xx
    socket_errors: int
    timeouts: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    connections: int
    offered_rps: float | None = None  # None: closed loop, as fast as the server answers

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_share(self) -> float:
        return (self.status_errors + self.socket_errors + self.timeouts) / max(self.requests, 1)


def wrk_path() -> str | None:
    return shutil.which("wrk")


def parse_wrk(output: str, connections: int, offered_rps: float | None = None) -> LoadResult:
    """Reads the JSON line our `done()` prints; wrk's own text report is ignored."""
    for line in output.splitlines():
        if line.startswith(MARK):
            data = json.loads(line[len(MARK) :])
            return LoadResult(
                requests=data["requests"],
                seconds=data["duration_us"] / 1e6,
                status_errors=data["status_errors"],
                socket_errors=data["socket_errors"],
                timeouts=data["timeouts"],
                p50_ms=data["p50_us"] / 1000,
                p90_ms=data["p90_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                mean_ms=data["mean_us"] / 1000,
                max_ms=data["max_us"] / 1000,
                connections=connections,
                offered_rps=offered_rps,
            )
    raise LoadError(f"wrk printed no result:\n{output[-2000:]}")


class Wrk:
    """Runs wrk against one URL with a pool of request bodies (one JSON document per line)."""

    def __init__(self, url: str, bodies: list[str], api_key: str = "", threads: int = 1) -> None:
        if not bodies:
            raise ValueError("wrk needs at least one request body")
        binary = wrk_path()
        if binary is None:
            raise LoadError("wrk is not installed (`make bench` installs it with apt-get)")
        self.binary = binary
        self.url = url
        self.api_key = api_key
        self.threads = threads
        self.dir = Path(tempfile.mkdtemp(prefix="licsrv-wrk-"))
        self.script = self.dir / "post.lua"
        self.script.write_text(WRK_SCRIPT)
        self.bodies = self.dir / "bodies.txt"
        self.bodies.write_text("\n".join(bodies) + "\n")

    def _run(self, connections: int, seconds: float, delay_ms: int, offered: float | None) -> LoadResult:
        threads = max(1, min(self.threads, connections))
        env = dict(os.environ)
        env.update(
            LICSRV_BENCH_BODIES=str(self.bodies),
            LICSRV_BENCH_API_KEY=self.api_key,
            LICSRV_BENCH_DELAY_MS=str(delay_ms),
        )
        command = [
            self.binary,
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{max(1, round(seconds))}s",
        ]
        command += ["--timeout", "5s", "--latency", "-s", str(self.script), self.url]
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 30)
        except subprocess.TimeoutExpired as exc:
            raise LoadError(f"wrk did not finish: {' '.join(command)}") from exc
        if done.returncode != 0:
            raise LoadError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-1000:]}")
        return parse_wrk(done.stdout, connections, offered)

    def peak(self, connections: int, seconds: float) -> LoadResult:
        return self._run(connections, seconds, 0, None)

    def offered(self, rps: float, seconds: float, per_connection_rps: float = 50.0) -> LoadResult:
        """About `rps` requests per second: enough connections that each paces itself near 50/s."""
        connections = max(2, min(512, math.ceil(rps / per_connection_rps)))
        delay_ms = max(1, round(1000 * connections / rps))
        return self._run(connections, seconds, delay_ms, rps)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Wrk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
