"""`python -m bench` (`make bench`): throughput, latency, memory and scaling of licsrv against a bare aiohttp
ceiling and the older row-per-heartbeat design, all measured in one run on this machine."""

from pathlib import Path

BENCH_SQL = Path(__file__).resolve().parent / "sql"
