"""The license import at scale: `licsrv import licenses FILE.csv` with N lines (keys as an older system
made them, customers, expiry, features, one or two activated devices each), then the same file again."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import data
from bench.servers import SECRET_KEY, Stack, child_env
from licsrv.settings import Settings

SUMMARY = re.compile(r"created (\d+), updated (\d+), unchanged (\d+), refused (\d+)")
HEADER = ["key", "customer", "email", "max_devices", "expires_at", "features", "hardware_ids", "notes"]


def write_csv(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(count):
            devices = f"hw-{n}-a" if n % 2 else f"hw-{n}-a;hw-{n}-b"
            writer.writerow(
                [
                    f"AF-{2019 + n % 6}-{n:07d}-xk",
                    ("Jürgen Groß", "王小明", "Ana García")[n % 3] + f" {n}",
                    f"customer{n}@example.com",
                    2,
                    f"20{27 + n % 3}-0{1 + n % 9}-15T00:00:00Z",
                    "pro=true;seats=5" if n % 4 == 0 else "",
                    devices,
                    "imported from the older server",
                ]
            )


def run_import(path: Path, env: dict[str, str]) -> tuple[float, tuple[int, int, int, int]]:
    """Wall time of `licsrv import licenses PATH` in a subprocess (interpreter start included), and its
    counts: created, updated, unchanged, refused."""
    command = [sys.executable, "-m", "licsrv.cli", "import", "licenses", str(path)]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - started
    load = os.getloadavg()[0]
    print(
        f"bench: import of {path.name}: {elapsed:.1f} s wall, 1-minute load average {load:.1f}",
        file=sys.stderr,
    )
    found = SUMMARY.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"import failed: {(done.stderr or done.stdout).strip()[-1000:]}")
    created, updated, unchanged, refused = (int(n) for n in found.groups())
    return elapsed, (created, updated, unchanged, refused)


def time_import(count: int, env: dict[str, str]) -> tuple[float, float]:
    """Seconds for the first import of `count` lines (all created) and for the same file again (all
    unchanged); RuntimeError when the counts are not those."""
    with tempfile.TemporaryDirectory(prefix="licsrv-bench-import-") as tmp:
        path = Path(tmp) / "licenses.csv"
        write_csv(path, count)
        first, counts = run_import(path, env)
        if counts != (count, 0, 0, 0):
            raise RuntimeError(f"first import counted {counts}, expected {count} created")
        again, counts = run_import(path, env)
        if counts != (0, 0, count, 0):
            raise RuntimeError(f"second import counted {counts}, expected {count} unchanged")
        return first, again


def measure_on_own_stack(count: int) -> tuple[float, float]:
    """`python -m bench import`: a throwaway PostgreSQL and Redis, migrated, then the two imports."""
    stack = Stack().start()
    try:
        env = stack.licsrv_env(0, 1)
        settings = Settings.from_env(env)
        asyncio.run(data.migrate_only(stack.database_url, settings.sql_dir, SECRET_KEY))
        return time_import(count, child_env(env))
    finally:
        stack.stop()
