"""Serving: one aiohttp worker per process, several processes sharing the port through SO_REUSEPORT."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import shutil
import signal
import tempfile
from dataclasses import replace

from aiohttp import web

from licsrv import fastpath, head_timeout
from licsrv.app import create_app
from licsrv.logs import setup_logging
from licsrv.metrics import flush_tallies
from licsrv.settings import Settings


def install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _tune_gc(app: web.Application) -> None:
    # Everything made at start-up lives for the whole process: keep it out of every collection, and collect
    # the young generation less often (a request allocates many short-lived objects and few cycles).
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


GC_THRESHOLD = 50_000
ANSWER_GRACE = 2.0


def run_worker(settings: Settings, reuse_port: bool = False) -> None:
    """Serves until SIGINT/SIGTERM, then stops accepting and finishes in-flight requests."""
    setup_logging(settings.log_level)
    install_uvloop()
    app = create_app(settings)
    app.on_startup.append(_tune_gc)
    asyncio.run(_serve_app(app, settings, reuse_port))


async def _serve_app(app: web.Application, settings: Settings, reuse_port: bool) -> None:
    # The app cuts the database connections still in use after `shutdown_timeout` (their requests answer
    # 503); aiohttp waits a little longer, so that those answers go out before it cancels the handlers.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=settings.shutdown_timeout + ANSWER_GRACE)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await runner.setup()
    try:
        fastpath.install(runner.server, app)
        head_timeout.install(runner.server, settings.header_read_timeout)
        await web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port).start()
        await stop.wait()
    finally:
        await runner.cleanup()
        flush_tallies()  # the last second's heartbeats, into the metrics files that outlive this worker


def serve(settings: Settings, workers: int) -> int:
    if workers <= 1:
        run_worker(settings)
        return 0
    own_metrics_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        own_metrics_dir = tempfile.mkdtemp(prefix="licsrv-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_metrics_dir
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=run_worker, args=(replace(settings, workers=1), True), name=f"licsrv-worker-{n}"
        )
        for n in range(workers)
    ]
    for process in processes:
        process.start()

    def forward(signum: int, _frame: object) -> None:
        for process in processes:
            if process.is_alive() and process.pid:
                os.kill(process.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for process in processes:
        process.join()
    if own_metrics_dir:
        shutil.rmtree(own_metrics_dir, ignore_errors=True)
    return max((p.exitcode or 0) for p in processes)
