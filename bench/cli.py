"""`python -m bench` (`make bench`): picks the mode and the output directory, runs, prints the page."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from bench.runner import Config, run_bench
from licsrv.logs import setup_logging


def run_from_cli(quick: bool, seconds: float, output_dir: str | None) -> None:
    setup_logging("WARNING")  # the run's own migrations would log into the printed page
    config = Config.quick_mode() if quick else Config.full(seconds)
    if output_dir is None:
        # A quick run must not overwrite the published numbers.
        output_dir = tempfile.mkdtemp(prefix="licsrv-bench-quick-") if quick else "docs"
    command = (
        "make bench"
        if not quick and seconds == 5.0
        else "python -m bench"
        + (" --quick" if quick else "")
        + ("" if quick or seconds == 5.0 else f" --seconds {seconds:g}")
    )
    _, page = run_bench(config, Path(output_dir), command)
    click.echo(page.read_text(encoding="utf-8"))
    click.echo(f"written: {page}")
