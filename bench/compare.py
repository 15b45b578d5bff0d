"""`python -m bench heartbeat [--against TREE]`: heartbeat peaks of bare aiohttp and licsrv side by side, and
of licsrv from another source tree (e.g. a worktree of the previous commit) on the same PostgreSQL and
Redis, in interleaved rounds: a before/after ratio that a noisy shared machine cannot fake."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench import data
from bench.load import Wrk
from bench.runner import HEARTBEAT_PATH, Config, Run
from bench.servers import Stack, bare_server, licsrv_server


def _other_tree(server, tree: Path):
    """The same server started from another checkout's `src` (its PYTHONPATH comes first)."""
    server.env = {**server.env, "PYTHONPATH": f"{tree.resolve() / 'src'}:{server.env.get('PYTHONPATH', '')}"}
    server.name += "-" + tree.name
    return server


def compare_heartbeats(seconds: float, rounds: int, against: Path | None) -> str:
    run = Run(Config.full(seconds), "python -m bench heartbeat")
    run.stack = Stack().start()
    try:
        run._prepare()
        servers = {
            "bare": run._serve("a", bare_server(1)),
            "licsrv": run._serve("b", licsrv_server(run.stack, 1)),
        }
        if against is not None:
            servers["before"] = run._serve("p", _other_tree(licsrv_server(run.stack, 1), against))
        url = servers["licsrv"].base_url
        plain = [
            data.heartbeat_body(t)
            for t in asyncio.run(data.start_sessions(url, run.api_key, run.license_keys))
        ]
        mac = [
            data.heartbeat_body(t)
            for t in asyncio.run(data.start_sessions(url, run.api_key, run.license_keys, mac=True))
        ]
        targets = {"bare": ("bare", plain)}
        for name in servers:
            if name != "bare":
                targets[f"{name} MAC"] = (name, mac)
                targets[f"{name} Ed25519"] = (name, plain)
        wrks = {
            label: Wrk(servers[name].base_url + HEARTBEAT_PATH, bodies, run.api_key)
            for label, (name, bodies) in targets.items()
        }
        peaks: dict[str, float] = {}
        try:
            for _ in range(rounds):
                for label, wrk in wrks.items():
                    peaks[label] = max(peaks.get(label, 0.0), wrk.peak(64, seconds).rps)
        finally:
            for wrk in wrks.values():
                wrk.close()
        bare = peaks["bare"]
        lines = [f"heartbeat peaks, best of {rounds} interleaved rounds of {seconds:g} s, 64 connections:"]
        lines += [
            f"  {label:18s} {rps:9,.0f} req/s   vs bare {rps / bare:.2f}" for label, rps in peaks.items()
        ]
        if against is not None:
            for kind in ("MAC", "Ed25519"):
                lines.append(
                    f"  licsrv/before {kind}: {peaks[f'licsrv {kind}'] / peaks[f'before {kind}']:.2f}"
                )
        return "\n".join(lines)
    finally:
        for name in list(run.servers):
            run._stop(name)
        run.stack.stop()
