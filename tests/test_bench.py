"""`licsrv bench --quick` runs end to end and writes the table; no throughput is asserted (shared machine)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from licsrv.bench import runner
from licsrv.bench.load import parse_wrk

pytestmark = [pytest.mark.slow, pytest.mark.ci]

SRC = Path(__file__).resolve().parents[1] / "src"

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
        [sys.executable, "-m", "licsrv.cli", "bench", "--quick", "--output-dir", str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(SRC)},
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
    assert "licsrv bench --quick" in page and "cores" in page
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
    from licsrv.bench.profile import summarise

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
        [sys.executable, "-m", "licsrv.cli", "bench", "--profile", "--quick", "--output-dir", str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "own time:" in done.stdout and "HeartbeatFastPath.__call__" in done.stdout
    assert (tmp_path / "heartbeat-profile.svg").read_text().startswith("<?xml")
