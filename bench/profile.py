"""`python -m bench --profile`: where a worker's time goes under peak heartbeat load.

Starts the benchmark's own PostgreSQL, Redis and one `licsrv serve` worker with live sessions, drives
heartbeats with wrk and samples the worker with py-spy meanwhile. Prints the functions with the most samples
(own time and with callees) and writes a flame graph (SVG). This is how the hot path was trimmed; rerun it
after changing anything on it.
"""

from __future__ import annotations

import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import data
from bench.load import Wrk
from bench.runner import HEARTBEAT_PATH, Config, Run
from bench.servers import Stack, licsrv_server

STARTUP = ("<module>", "serve ", "run_worker ", "_serve_app ", "main ")


def _frame_name(frame: str) -> str:
    """`function (path/file.py:line)` → `function (file.py)`."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})" if where else name


def summarise(raw: str, top: int = 25) -> str:
    own: collections.Counter[str] = collections.Counter()
    total_with_callees: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = stack.split(";")
        own[_frame_name(frames[-1])] += count
        # Request handling in licsrv's own code (not the process's start-up frames every stack shares).
        for name in {_frame_name(f) for f in frames if "(licsrv/" in f and not f.startswith(STARTUP)}:
            total_with_callees[name] += count
    lines = [f"{samples} samples", "", "own time:"]
    lines += [f"  {100 * n / samples:5.1f} %  {name}" for name, n in own.most_common(top)]
    lines += ["", "licsrv's code, with what it calls:"]
    lines += [f"  {100 * n / samples:5.1f} %  {name}" for name, n in total_with_callees.most_common(top)]
    return "\n".join(lines)


def profile_heartbeats(seconds: float, output: Path) -> str:
    beside = Path(sys.executable).with_name("py-spy")  # the virtualenv's, even when it is not on PATH
    py_spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if py_spy is None:
        raise RuntimeError("py-spy is not installed (`make profile` installs it into the virtualenv)")
    run = Run(Config.full(seconds), "python -m bench --profile")
    run.stack = Stack().start()
    workdir = Path(tempfile.mkdtemp(prefix="licsrv-profile-"))
    try:
        run._prepare()
        server = run._serve("b", licsrv_server(run.stack, 1))
        # MAC sessions: the client libraries start them by default (they send a client_public_key).
        tokens = asyncio.run(data.start_sessions(server.base_url, run.api_key, run.license_keys, mac=True))
        bodies = [data.heartbeat_body(token) for token in tokens]
        raw = workdir / "samples.txt"
        record = [py_spy, "record", "--pid", str(server.pids()[0]), "--duration", str(int(seconds))]
        record += ["--rate", "250", "--nonblocking"]
        spies = [
            subprocess.Popen([*record, "--format", "raw", "--output", str(raw)], stdout=subprocess.DEVNULL),
            subprocess.Popen([*record, "--output", str(output)], stdout=subprocess.DEVNULL),
        ]
        with Wrk(server.base_url + HEARTBEAT_PATH, bodies, run.api_key) as wrk:
            result = wrk.peak(64, seconds + 1)
        for spy in spies:
            spy.wait(timeout=60)
        header = f"heartbeats under profiling: {result.rps:,.0f} req/s (64 connections, {seconds:g} s)"
        return header + "\n" + summarise(raw.read_text()) + f"\n\nflame graph: {output}"
    finally:
        for name in list(run.servers):
            run._stop(name)
        run.stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
