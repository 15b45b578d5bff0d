"""The benchmark harness, outside the server package: `python -m bench` (`make bench`),
`python -m bench seed`, `python -m bench admin`, `python -m bench import`. Not shipped in the licsrv wheel."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from licsrv.logs import setup_logging
from licsrv.settings import Settings


def _settings() -> Settings:
    settings = Settings.from_env()
    setup_logging(settings.log_level)
    return settings


@click.group(invoke_without_command=True)
@click.pass_context
@click.option("--quick", is_flag=True, help="Smoke test: tiny counts, 1 s per point, a few seconds in all.")
@click.option(
    "--seconds", type=click.FloatRange(1, 60), default=5.0, show_default=True, help="Per load point."
)
@click.option(
    "--output-dir", type=click.Path(file_okay=False), default=None, help="Default: docs/ (quick: a temp dir)."
)
@click.option(
    "--profile",
    is_flag=True,
    help="Instead: sample one worker with py-spy under peak heartbeats; top functions and a flame graph.",
)
def main(ctx: click.Context, quick: bool, seconds: float, output_dir: str | None, profile: bool) -> None:
    """Measure heartbeat throughput against bare aiohttp and the row-per-heartbeat design, and more
    (`make bench`); `seed` and `admin` measure the admin pages on the configured database."""
    if ctx.invoked_subcommand is not None:
        return
    if profile:
        from bench.profile import profile_heartbeats

        folder = Path(output_dir or tempfile.mkdtemp(prefix="licsrv-profile-"))
        folder.mkdir(parents=True, exist_ok=True)
        try:
            report = profile_heartbeats(2.0 if quick else max(seconds, 8.0), folder / "heartbeat-profile.svg")
        except RuntimeError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(report)
        return
    from bench.cli import run_from_cli

    run_from_cli(quick, seconds, output_dir)


@main.command()
@click.option(
    "--licenses", "license_count", type=click.IntRange(0, 10_000_000), default=100_000, show_default=True
)
@click.option(
    "--history", "history_count", type=click.IntRange(0, 100_000_000), default=1_000_000, show_default=True
)
@click.option(
    "--live-sessions",
    "live_count",
    type=click.IntRange(0, 10_000_000),
    default=0,
    show_default=True,
    help="live sessions (Redis keys + open history rows), spread evenly over the seeded licenses",
)
def seed(license_count: int, history_count: int, live_count: int) -> None:
    """Fill the database with synthetic licenses and session history (for measuring; never in production)."""
    from bench.admin import run_seed, run_seed_live

    settings = _settings()
    made, rows, seconds = run_seed(settings, license_count, history_count)
    click.echo(f"seeded {made} licenses and {rows} history rows in {seconds:.1f} s")
    if live_count:
        live, seconds = run_seed_live(settings, live_count, license_count)
        click.echo(f"seeded {live} live sessions over {license_count} licenses in {seconds:.1f} s")


@main.command("admin")
@click.option(
    "--requests", "requests_per_page", type=click.IntRange(5, 10_000), default=50, show_default=True
)
def bench_admin(requests_per_page: int) -> None:
    """p50/p95 of the admin pages over real HTTP against the configured database (seed it first)."""
    from bench.admin import run_measure

    click.echo(f"{'page':<34} {'p50 ms':>8} {'p95 ms':>8}")
    for name, (p50, p95) in run_measure(_settings(), requests_per_page).items():
        click.echo(f"{name:<34} {p50:>8.1f} {p95:>8.1f}")


@main.command()
@click.option("--seconds", type=click.FloatRange(1, 60), default=5.0, show_default=True, help="Per peak.")
@click.option("--rounds", type=click.IntRange(1, 20), default=3, show_default=True)
@click.option(
    "--against",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Another checkout (e.g. `git worktree add /tmp/before HEAD~1`) measured beside this one.",
)
def heartbeat(seconds: float, rounds: int, against: Path | None) -> None:
    """Heartbeat peaks only: bare aiohttp, licsrv (MAC and Ed25519 sessions), and licsrv from --against."""
    from bench.compare import compare_heartbeats

    setup_logging("WARNING")
    click.echo(compare_heartbeats(seconds, rounds, against))


@main.command("import")
@click.option("--rows", type=click.IntRange(1, 10_000_000), default=100_000, show_default=True)
def bench_import(rows: int) -> None:
    """Wall time of `licsrv import licenses` with ROWS lines, then the same file again (own stack)."""
    from bench.imports import measure_on_own_stack

    first, again = measure_on_own_stack(rows)
    click.echo(
        f"licsrv import licenses: {rows:,} lines created in {first:.1f} s; the same file again: {again:.1f} s"
    )


if __name__ == "__main__":
    main()
