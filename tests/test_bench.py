"""`python -m bench --quick` runs end to end and writes the table; no throughput is asserted (shared host)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bench import runner
from bench.load import parse_wrk

pytestmark = [pytest.mark.slow, pytest.mark.ci]

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
# The benchmark lives outside the server package, at the top of the checkout.
BENCH_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join((str(SRC), str(ROOT)))}

EXPECTED_ROWS = [
    runner.ROW_A,
    runner.ROW_B,
    runner.ROW_M,
    runner.ROW_C,
    runner.ROW_B_OVER_A,
    runner.ROW_M_OVER_A,
    runner.ROW_B_OVER_C,
    runner.ROW_HALF_PEAK,
    runner.ROW_B2,
    runner.ROW_A2,
    runner.ROW_SCALING,
    runner.ROW_STARTS,
    runner.ROW_CPU.format(name="(b) licsrv heartbeat"),
    runner.ROW_CPU_RATIO,
    runner.ROW_CARDS.format(count=1_000),
    runner.ROW_IMPORT.format(count=1_000),
    runner.ROW_MEMORY.format(count=1_000),
    runner.ROW_MEMORY.format(count=1_000_000),
    runner.ROW_ADMIN.format(sessions=2_000, licenses=400, page="API: live sessions (second page)"),
]


def table_rows(page: str) -> dict[str, str]:
    rows = {}
    for line in page.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 4:
            rows[cells[0]] = cells[1]
    return rows


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make bench installs it)")
def test_quick_bench_writes_a_table_with_every_measurement_and_a_plot(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output-dir", str(tmp_path)],
        env=BENCH_ENV,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / "benchmarks.md").read_text(encoding="utf-8")
    rows = table_rows(page)
    missing = [name for name in EXPECTED_ROWS if name not in rows]
    assert not missing, (missing, page)
    measured = [runner.ROW_A, runner.ROW_B, runner.ROW_M, runner.ROW_C, runner.ROW_STARTS, runner.ROW_B2]
    assert all("req/s" in rows[name] for name in measured), (page, done.stderr[-3000:])
    assert rows[runner.ROW_MEMORY.format(count=1_000_000)].startswith("n/a")
    assert "python -m bench --quick" in page and "cores" in page
    assert (tmp_path / "benchmarks-latency.png").read_bytes().startswith(b"\x89PNG")


def test_wrk_result_line_is_read_from_the_output():
    output = (
        "Running 1s test @ http://127.0.0.1:1/\n"
        'LICSRV_BENCH {"requests": 2000, "duration_us": 1000000, "status_errors": 10, "socket_errors": 0, '
        '"timeouts": 0, "p50_us": 500, "p90_us": 900, "p99_us": 1500, "mean_us": 600.0, "max_us": 4000}\n'
    )
    result = parse_wrk(output, connections=8, offered_rps=None)
    assert result.rps == 2000
    assert result.p99_ms == 1.5
    assert result.error_share == pytest.approx(0.005)


def test_profile_summary_counts_own_time_and_licsrv_frames():
    from bench.profile import summarise

    raw = (
        "serve (licsrv/serve.py:69);Runner.run (asyncio/runners.py:118);"
        "heartbeat_answer (licsrv/api/sessions.py:130);pack_evalsha (licsrv/live/wire.py:44) 3\n"
        "serve (licsrv/serve.py:69);Runner.run (asyncio/runners.py:118) 1\n"
    )
    text = summarise(raw)
    assert "4 samples" in text
    assert "75.0 %  pack_evalsha (wire.py)" in text and "25.0 %  Runner.run (runners.py)" in text
    licsrv_part = text.split("licsrv's code")[1]
    assert "75.0 %  heartbeat_answer (sessions.py)" in licsrv_part and "serve (" not in licsrv_part


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make bench installs it)")
def test_profile_command_reports_and_draws_a_flame_graph(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--profile", "--quick", "--output-dir", str(tmp_path)],
        env=BENCH_ENV,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "own time:" in done.stdout and "HeartbeatFastPath.__call__" in done.stdout
    assert (tmp_path / "heartbeat-profile.svg").read_text().startswith("<?xml")


def test_the_server_package_holds_no_benchmark():
    """The wheel ships the server only: the harness and its SQL live at the top of the checkout."""
    assert not (SRC / "licsrv" / "bench").exists() and not (SRC / "licsrv" / "admin_bench.py").exists()
    production = {path.name for path in (ROOT / "sql" / "queries").glob("*.sql")}
    assert "bench.sql" not in production and "seed.sql" not in production
