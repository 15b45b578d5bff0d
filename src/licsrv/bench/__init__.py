"""`licsrv bench`: throughput, latency, memory and scaling of licsrv against a bare aiohttp ceiling and the
older row-per-heartbeat design, all measured in one run on this machine."""
