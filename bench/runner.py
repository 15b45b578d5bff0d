"""One benchmark run: the stack, the three heartbeat servers side by side, the other measurements, the page.

Each measurement stands alone: one that cannot run says `n/a (why)` in its row and the others go on.
"""

from __future__ import annotations

import asyncio
import platform
import re
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench import data
from bench.cpu import CpuMeter
from bench.load import LoadResult, Wrk, wrk_path
from bench.report import TARGETS, Results, n_a, write
from bench.servers import (
    SECRET_KEY,
    ServerProcess,
    Stack,
    bare_server,
    child_env,
    licsrv_server,
    rows_server,
)
from licsrv.devstack.postgres import pg_bin
from licsrv.settings import Settings

HEARTBEAT_PATH = "/api/v1/sessions/heartbeat"
WEBHOOK_RATE = re.compile(r"webhooks: \d+ events, (\d+) worker\(s\): [\d.]+ s = (\d+) events/s")
START_PATH = "/api/v1/sessions/start"

ROW_A = "(a) bare aiohttp handler, 1 worker"
ROW_B = "(b) licsrv heartbeat, 1 worker"
ROW_C = "(c) row-per-heartbeat baseline, 1 worker"
ROW_M = "(b) licsrv heartbeat, MAC sessions (as the client libraries run them), 1 worker"
ROW_B_OVER_A = "b/a (licsrv / framework ceiling)"
ROW_M_OVER_A = "b/a with MAC sessions"
ROW_B_OVER_C = "b/c (licsrv / row-per-heartbeat)"
ROW_HALF_PEAK = "(b) latency at half its peak rate"
ROW_CPU = "CPU time per heartbeat at peak: {name}"
ROW_CPU_RATIO = "CPU per heartbeat, (c) / (b)"
ROW_B2 = "(b) licsrv heartbeat, 2 workers"
ROW_A2 = "(a) bare aiohttp handler, 2 workers"
ROW_SCALING = "licsrv 2 workers / 1 worker"
ROW_STARTS = "session starts/s, 1 worker"
ROW_MEMORY = "Redis bytes per live session at {count:,}"
ROW_CARDS = "card keys: {count:,} generated"
ROW_IMPORT = "licenses imported from CSV: {count:,} lines"
ROW_IMPORT_AGAIN = "the same CSV imported again: {count:,} lines unchanged"
ROW_WEBHOOKS = "webhook events delivered/s, {workers} worker(s)"
ROW_ADMIN = "admin at scale ({sessions:,} live sessions, {licenses:,} licenses): {page}"
ROW_ADMIN_SEED = "admin at scale: seeding {sessions:,} live sessions over {licenses:,} licenses"


@dataclass(frozen=True)
class Config:
    quick: bool
    seconds: float  # per load point
    connections: int  # closed-loop peaks
    licenses: int  # one live session each, the heartbeat token pool
    fractions: tuple[float, ...]  # offered load as a share of each server's own peak
    rounds: int  # peaks are the best of this many interleaved rounds
    memory_counts: tuple[int, ...]
    cards: int
    imports: int = 100_000  # lines of the license import
    admin_scale: tuple[int, int, int] = (1_000_000, 200_000, 1_000_000)  # live sessions, licenses, history
    admin_requests: int = 40
    wrk_threads: int = 1

    @classmethod
    def full(cls, seconds: float = 5.0) -> Config:
        return cls(False, seconds, 64, 1000, (0.1, 0.25, 0.5, 0.75, 0.9), 2, (100_000, 1_000_000), 100_000)

    @classmethod
    def quick_mode(cls) -> Config:
        return cls(True, 1.0, 16, 20, (0.5,), 1, (1_000,), 1_000, 1_000, (2_000, 400, 2_000), 5)


def _versions() -> dict[str, str]:
    def first_line(command: list[str]) -> str:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
        except OSError:
            return "?"
        return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "?"

    return {
        "Python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "Redis": first_line(["redis-server", "--version"]).split(" v=")[-1].split()[0],
        "PostgreSQL": first_line([pg_bin("postgres"), "--version"]).split("(PostgreSQL)")[-1].split()[0],
        "wrk": first_line([wrk_path() or "wrk", "--version"]).split()[1] if wrk_path() else "missing",
    }


def _attempt(results: Results, rows: list[str], work: Callable[[], None]) -> None:
    """Runs one measurement; if it fails its rows say why instead of the whole run failing."""
    try:
        work()
    except Exception as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
        for name in rows:
            if results.row(name) is None:
                results.add(name, n_a(reason))
        print(f"bench: {', '.join(rows)} failed:\n{traceback.format_exc()}", file=sys.stderr)


def _fmt_peak(result: LoadResult) -> str:
    errors = f", {result.error_share:.1%} errors" if result.error_share else ""
    return f"{result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms{errors}"


def _best_peak(wrk: Wrk, config: Config) -> LoadResult:
    return max(
        (wrk.peak(config.connections, config.seconds) for _ in range(config.rounds)), key=lambda r: r.rps
    )


class Run:
    def __init__(self, config: Config, command: str) -> None:
        self.config = config
        self.results = Results(
            command=command, quick=config.quick, seconds=config.seconds, connections=config.connections
        )
        self.settings = Settings()
        self.stack: Stack | None = None
        self.servers: dict[str, ServerProcess] = {}
        self.api_key = ""
        self.license_keys: list[str] = []
        self.bodies: list[str] = []

    # -- servers ---------------------------------------------------------------------------------------

    def _serve(self, name: str, server: ServerProcess) -> ServerProcess:
        self.servers[name] = server.start()
        return server

    def _stop(self, name: str) -> None:
        server = self.servers.pop(name, None)
        if server is not None:
            server.stop()

    # -- measurements ----------------------------------------------------------------------------------

    def heartbeats_side_by_side(self) -> None:
        config, results = self.config, self.results
        stack = self.stack
        assert stack is not None
        licsrv = self._serve("b", licsrv_server(stack, 1))
        self._serve("a", bare_server(1))
        tokens = asyncio.run(data.start_sessions(licsrv.base_url, self.api_key, self.license_keys))
        self.bodies = [data.heartbeat_body(token) for token in tokens]
        mac_tokens = asyncio.run(
            data.start_sessions(licsrv.base_url, self.api_key, self.license_keys, mac=True)
        )
        mac_bodies = [data.heartbeat_body(token) for token in mac_tokens]
        try:
            asyncio.run(data.prepare_rows(stack.rows_url, self.settings.sql_dir, tokens))
            self._serve("c", rows_server(stack, 1))
        except Exception as exc:
            results.add(ROW_C, n_a(f"baseline did not start: {exc}"))
        wrks = {
            key: Wrk(
                self.servers[key].base_url + HEARTBEAT_PATH, self.bodies, self.api_key, config.wrk_threads
            )
            for key in ("a", "b", "c")
            if key in self.servers
        }
        # The same licsrv worker, heartbeats of sessions started with a client key: answered with HMAC.
        wrks["m"] = Wrk(licsrv.base_url + HEARTBEAT_PATH, mac_bodies, self.api_key, config.wrk_threads)
        try:
            # Rounds interleave the servers, so a noisy neighbour hurts all of them alike.
            peaks: dict[str, LoadResult] = {}
            costs: dict[str, tuple[float, float]] = {}  # CPU µs per answer: (server, its data store)
            stores = {"a": None, "b": stack.redis.pid, "m": stack.redis.pid, "c": stack.postgres.pid}
            for _ in range(config.rounds):
                for key, wrk in wrks.items():
                    server_cpu = CpuMeter(self.servers["b" if key == "m" else key].pids)
                    store_cpu = CpuMeter(lambda key=key: [pid] if (pid := stores[key]) else [])
                    server_cpu.start()
                    store_cpu.start()
                    result = wrk.peak(config.connections, config.seconds)
                    used = (server_cpu.stop(), store_cpu.stop())
                    if key not in peaks or result.rps > peaks[key].rps:
                        peaks[key] = result
                        costs[key] = tuple(1e6 * seconds / max(result.requests, 1) for seconds in used)
            results.peaks = {key: peaks[key] for key in ("a", "b", "m", "c") if key in peaks}
            for key, name in (("a", ROW_A), ("b", ROW_B), ("m", ROW_M), ("c", ROW_C)):
                if key in peaks:
                    results.add(name, _fmt_peak(peaks[key]))
            a, b, c = peaks.get("a"), peaks.get("b"), peaks.get("c")
            if a and b:
                ratio = b.rps / a.rps
                results.add(ROW_B_OVER_A, f"{ratio:.2f}", "≥ 0.60", ratio >= 0.6)
            m = peaks.get("m")
            if a and m:
                ratio = m.rps / a.rps
                results.add(ROW_M_OVER_A, f"{ratio:.2f}", "≥ 0.60", ratio >= 0.6)
            if b and c:
                ratio = b.rps / c.rps
                results.add(ROW_B_OVER_C, f"{ratio:.2f}", "≥ 3", ratio >= 3)
            self._cpu_rows(costs)
            curves: dict[str, list[LoadResult]] = {key: [] for key in wrks if key != "m"}
            for fraction in config.fractions:
                for key in curves:
                    curves[key].append(wrks[key].offered(fraction * peaks[key].rps, config.seconds))
            results.curves = curves
            half = next(
                (
                    p
                    for p in curves.get("b", [])
                    if p.offered_rps and abs(p.offered_rps / peaks["b"].rps - 0.5) < 1e-6
                ),
                None,
            )
            if half is not None:
                results.add(
                    ROW_HALF_PEAK,
                    f"p99 {half.p99_ms:.2f} ms (p50 {half.p50_ms:.2f}) at {half.rps:,.0f} req/s",
                    "p99 ≤ 10 ms",
                    half.p99_ms <= 10,
                )
        finally:
            for wrk in wrks.values():
                wrk.close()
            self._stop("c")

    def _cpu_rows(self, costs: dict[str, tuple[float, float]]) -> None:
        stores = {"a": "", "b": "Redis", "m": "Redis", "c": "PostgreSQL"}
        for key, (server, store) in costs.items():
            parts = f" (server {server:.0f} + {stores[key]} {store:.0f})" if stores[key] else ""
            self.results.add(ROW_CPU.format(name=TARGETS[key]), f"{server + store:.0f} µs{parts}")
        if "b" in costs and "c" in costs:
            ratio = sum(costs["c"]) / max(sum(costs["b"]), 1e-9)
            self.results.add(ROW_CPU_RATIO, f"{ratio:.2f}")

    def session_starts(self) -> None:
        server = self.servers["b"]
        bodies = [data.start_body(key) for key in self.license_keys]
        with Wrk(server.base_url + START_PATH, bodies, self.api_key, self.config.wrk_threads) as wrk:
            result = _best_peak(wrk, self.config)  # like the heartbeat peaks: the best of the rounds
        self.results.add(
            ROW_STARTS, _fmt_peak(result), "≥ 1 500/s", result.rps >= 1500 and result.error_share < 0.01
        )

    def two_workers(self) -> None:
        config, results = self.config, self.results
        stack = self.stack
        assert stack is not None
        one = results.peaks.get("b")
        bare_one = results.peaks.get("a")
        self._stop("b")
        self._stop("a")
        server = self._serve("b2", licsrv_server(stack, 2))
        with Wrk(
            server.base_url + HEARTBEAT_PATH, self.bodies, self.api_key, max(2, config.wrk_threads)
        ) as wrk:
            two = _best_peak(wrk, config)
        self._stop("b2")
        results.add(ROW_B2, _fmt_peak(two))
        bare = self._serve("a2", bare_server(2))
        with Wrk(
            bare.base_url + HEARTBEAT_PATH, self.bodies, self.api_key, max(2, config.wrk_threads)
        ) as wrk:
            bare_two = _best_peak(wrk, config)
        self._stop("a2")
        results.add(ROW_A2, _fmt_peak(bare_two))
        if one:
            ratio = two.rps / one.rps
            reference = f"; bare aiohttp: {bare_two.rps / bare_one.rps:.2f}" if bare_one else ""
            results.add(ROW_SCALING, f"{ratio:.2f}{reference}", "≥ 1.6 (0.8·N)", ratio >= 1.6)

    def cards(self) -> None:
        stack = self.stack
        assert stack is not None
        count = self.config.cards
        elapsed, internal = data.time_card_generation(count, child_env(stack.licsrv_env(0, 1)))
        met = elapsed <= 10 if count == 100_000 else None
        self.results.add(
            ROW_CARDS.format(count=count),
            f"{elapsed:.1f} s wall ({internal} s inside the command)",
            "100 000 ≤ 10 s",
            met,
        )

    def imports(self) -> None:
        from bench.imports import time_import

        stack = self.stack
        assert stack is not None
        count = self.config.imports
        first, again = time_import(count, child_env(stack.licsrv_env(0, 1)))
        met = first <= 30 if count == 100_000 else None
        self.results.add(ROW_IMPORT.format(count=count), f"{first:.1f} s wall", "100 000 ≤ 30 s", met)
        self.results.add(ROW_IMPORT_AGAIN.format(count=count), f"{again:.1f} s wall")

    def memory(self) -> None:
        counts = list(self.config.memory_counts)
        names = [ROW_MEMORY.format(count=count) for count in counts]

        def work() -> None:
            for count, per_session in data.measure_redis_memory(counts).items():
                met = per_session <= 300 if count == 1_000_000 else None
                self.results.add(
                    ROW_MEMORY.format(count=count), f"{per_session:.0f} B", "≤ 300 B at 1 M", met
                )

        _attempt(self.results, names, work)
        if 1_000_000 not in counts:
            self.results.add(ROW_MEMORY.format(count=1_000_000), n_a("full mode only"), "≤ 300 B at 1 M")

    def webhooks(self) -> None:
        """The webhook delivery rate, from the slow test that measures it against a real receiver."""
        checkout = Path(__file__).resolve().parents[1]
        test = checkout / "tests" / "test_webhooks_bench.py"
        if not test.exists():
            for workers in (1, 2):
                self.results.add(ROW_WEBHOOKS.format(workers=workers), n_a("needs a checkout's tests/"))
            return
        done = subprocess.run(
            [sys.executable, "-m", "pytest", str(test), "-m", "slow", "-s", "-q", "-p", "no:cacheprovider"],
            cwd=checkout,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        found = dict(WEBHOOK_RATE.findall(done.stdout))
        for workers in ("1", "2"):
            rate = found.get(workers)
            result = f"{float(rate):,.0f} events/s" if rate else n_a(f"pytest exited {done.returncode}")
            self.results.add(ROW_WEBHOOKS.format(workers=workers), result)

    def admin_at_scale(self) -> None:
        """Every admin page and management listing with a million live sessions, on a stack of its own."""
        from bench.admin import run_measure, run_seed, run_seed_live

        sessions, licenses, history = self.config.admin_scale
        stack = Stack().start()
        try:
            settings = Settings.from_env(stack.licsrv_env(0, 1))
            asyncio.run(data.migrate_only(stack.database_url, settings.sql_dir, settings.secret_key))
            run_seed(settings, licenses, history)
            _, seconds = run_seed_live(settings, sessions, licenses)
            self.results.add(ROW_ADMIN_SEED.format(sessions=sessions, licenses=licenses), f"{seconds:.0f} s")
            for page, (p50, p95) in run_measure(settings, self.config.admin_requests).items():
                self.results.add(
                    ROW_ADMIN.format(sessions=sessions, licenses=licenses, page=page),
                    f"p95 {p95:.1f} ms (p50 {p50:.1f})",
                    "p95 ≤ 100 ms",
                    p95 <= 100 if sessions >= 1_000_000 else None,
                )
        finally:
            stack.stop()

    # -- the whole run ---------------------------------------------------------------------------------

    def run(self) -> Results:
        results = self.results
        _attempt(results, [], lambda: results.versions.update(_versions()))
        heartbeat_rows = [ROW_A, ROW_B, ROW_M, ROW_C, ROW_B_OVER_A, ROW_M_OVER_A, ROW_B_OVER_C, ROW_HALF_PEAK]
        worker_rows = [ROW_B2, ROW_A2, ROW_SCALING]
        card_rows = [ROW_CARDS.format(count=self.config.cards)]
        if wrk_path() is None:
            for name in [*heartbeat_rows, ROW_STARTS, *worker_rows]:
                results.add(name, n_a("needs wrk: apt-get install wrk"))
        try:
            self.stack = Stack().start()
            _attempt(results, [*heartbeat_rows, ROW_STARTS, *worker_rows, *card_rows], self._prepare)
            if self.api_key and wrk_path() is not None:
                _attempt(results, heartbeat_rows, self.heartbeats_side_by_side)
                if "b" in self.servers:
                    _attempt(results, [ROW_STARTS], self.session_starts)
                    _attempt(results, worker_rows, self.two_workers)
            for name in list(self.servers):
                self._stop(name)
            if self.api_key:
                _attempt(results, card_rows, self.cards)
                import_rows = [ROW_IMPORT.format(count=self.config.imports)]
                _attempt(
                    results, [*import_rows, ROW_IMPORT_AGAIN.format(count=self.config.imports)], self.imports
                )
        finally:
            for name in list(self.servers):
                self._stop(name)
            if self.stack is not None:
                self.stack.stop()
        self.memory()
        _attempt(results, [ROW_WEBHOOKS.format(workers=n) for n in (1, 2)], self.webhooks)
        sessions, licenses, _ = self.config.admin_scale
        _attempt(results, [ROW_ADMIN_SEED.format(sessions=sessions, licenses=licenses)], self.admin_at_scale)
        results.notes += NOTES
        return results

    def _prepare(self) -> None:
        stack = self.stack
        assert stack is not None
        self.api_key, self.license_keys = asyncio.run(
            data.prepare_licsrv(stack.database_url, self.settings.sql_dir, SECRET_KEY, self.config.licenses)
        )


NOTES = [
    "All three heartbeat servers run at the same time with the same settings (1 worker, uvloop, no access "
    "log) and are measured one after the other by the same wrk, with the same pool of session tokens "
    "(one live session per license, round robin) and the same `X-API-Key` header.",
    "(a) reads the body and answers a fixed small JSON body; (b) is `POST /api/v1/sessions/heartbeat` of "
    "licsrv (`licsrv serve --workers N`, signed envelope, one batched Redis script); (c) parses the body and "
    "updates the session row's `last_heartbeat` to `now()` by token through an asyncpg pool set up like "
    "licsrv's own, in a database of its own (bench/sql/bench.sql); PostgreSQL runs with its durable "
    "defaults (fsync, synchronous commit), as the older server's did.",
    "licsrv serves heartbeats ahead of aiohttp's router and middlewares (licsrv.fastpath); (a) is a plain "
    "aiohttp route. Both parse the HTTP request and write the answer through aiohttp.",
    "CPU time per heartbeat: CPU seconds used by the server's processes and by its data store (Redis for "
    "(b), the whole PostgreSQL cluster for (c)) during the kept peak, divided by the answers. On a small "
    "machine (c)'s PostgreSQL works on the cores a single worker leaves idle, so its rate flatters it; "
    "the CPU cost does not depend on which core paid.",
    "Peaks are closed loop: a fixed number of connections sending as fast as answers come; the best of the "
    "interleaved rounds is kept.",
    "Offered load is emulated, since wrk2 is not packaged in Debian: wrk's `delay()` makes each connection "
    "pause a random 0..2·d ms before each request (about 50 requests/s per connection), at shares of each "
    "server's own peak. The pause is not counted as latency and a slow answer delays that connection's next "
    "request (coordinated omission), so latency near saturation reads optimistic; the achieved rate is shown "
    "next to the offered one.",
    "Session starts: wrk posts `/api/v1/sessions/start` round robin over the licenses, the best of the "
    "rounds as for the peaks. A start is one PostgreSQL read, one Redis script and one PostgreSQL write "
    "(the history row, committed durably), so its rate follows the disk's fsync latency, which varies a lot "
    "on a shared machine (1 300 to 1 760 starts/s in single runs on the same day).",
    "Redis memory: `INFO memory` used_memory before and after creating the sessions through the live layer "
    "directly (LiveSessions.start, pipelined by the batcher, one session per license), on a Redis of its "
    "own.",
    "Card keys: wall time of `licsrv cards generate -n N -d 30 --out …` in a subprocess, interpreter start "
    "included.",
    "License import: wall time of `licsrv import licenses FILE.csv` in a subprocess (interpreter start "
    "included) with N lines of keys as an older system made them, customers, expiry, features and one or two "
    "activated devices each; then the same file again, every line unchanged (`python -m bench import` runs "
    "this step alone on a stack of its own).",
    "Webhooks: `pytest tests/test_webhooks_bench.py -m slow -s` (3 000 events committed at once, delivered "
    "to a real aiohttp receiver on loopback by 1 and by 2 app instances in one process; none twice).",
    "Admin at scale: a stack of its own seeded by `python -m bench seed --licenses L --history H "
    "--live-sessions S` (live sessions made through the live layer with their open history rows), then "
    "`python -m bench admin`: sequential requests over loopback HTTP to every admin page (a viewer's login) "
    "and to the management API's listings (a viewer token), p50 and p95 of each.",
    "The machine is shared and wrk runs on the same cores as the servers, Redis and PostgreSQL: on 2 cores "
    "a second worker competes with wrk and Redis, so the 2-worker row is a floor, not the scaling of N "
    "workers on N free cores; the bare aiohttp ratio next to it shows what the machine allows.",
]


def run_bench(config: Config, output_dir: Path, command: str) -> tuple[Results, Path]:
    results = Run(config, command).run()
    page, _ = write(results, output_dir)
    return results, page
