"""The benchmark's results: the markdown page (docs/benchmarks.md) and the latency plot (PNG)."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.load import LoadResult

TARGETS = {
    "a": "(a) bare aiohttp handler",
    "b": "(b) licsrv heartbeat",
    "m": "(b) licsrv heartbeat, MAC sessions",
    "c": "(c) row-per-heartbeat (UPDATE in PostgreSQL)",
}


@dataclass
class Row:
    """One line of the summary table; `met` is None when there is no bar or no number."""

    name: str
    result: str
    bar: str = ""
    met: bool | None = None


@dataclass
class Results:
    command: str
    quick: bool
    seconds: float
    connections: int
    rows: list[Row] = field(default_factory=list)
    peaks: dict[str, LoadResult] = field(default_factory=dict)
    curves: dict[str, list[LoadResult]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    def add(self, name: str, result: str, bar: str = "", met: bool | None = None) -> None:
        self.rows.append(Row(name, result, bar, met))

    def row(self, name: str) -> Row | None:
        return next((row for row in self.rows if row.name == name), None)


def n_a(reason: str) -> str:
    return f"n/a ({reason})"


def _verdict(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "**no**")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def markdown(results: Results, plot_name: str | None) -> str:
    when = results.started.strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks" + (" (quick mode: smoke test, not numbers to quote)" if results.quick else ""),
        "",
        f"- Date: {when}",
        f"- Machine: {os.cpu_count()} cores ({_cpu_model()}), {platform.system()} {platform.release()}",
        f"- Command: `{results.command}`",
        "- Versions: " + ", ".join(f"{name} {version}" for name, version in results.versions.items()),
        f"- Load: wrk on loopback, {results.seconds:g} s per point; peaks with {results.connections} "
        "connections (closed loop). Server, Redis, PostgreSQL and wrk share the same cores.",
        "",
        "## Summary",
        "",
        "| measurement | result | bar (DESIGN §9) | met |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r.name} | {r.result} | {r.bar} | {_verdict(r.met)} |" for r in results.rows]
    if results.peaks:
        lines += ["", "## Peak heartbeat throughput, 1 worker", ""]
        lines += ["| server | requests/s | p50 ms | p99 ms | errors |", "|---|---|---|---|---|"]
        for key, peak in results.peaks.items():
            lines.append(
                f"| {TARGETS.get(key, key)} | {peak.rps:,.0f} | {peak.p50_ms:.2f} | {peak.p99_ms:.2f} "
                f"| {_errors(peak)} |"
            )
    if results.curves:
        lines += ["", "## Latency against offered load, 1 worker", ""]
        lines += [
            "| server | offered req/s | achieved req/s | connections | p50 ms | p90 ms | p99 ms | errors |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for key, curve in results.curves.items():
            for point in curve:
                lines.append(
                    f"| {TARGETS.get(key, key)} | {point.offered_rps or 0:,.0f} | {point.rps:,.0f} | "
                    f"{point.connections} | {point.p50_ms:.2f} | {point.p90_ms:.2f} | {point.p99_ms:.2f} "
                    f"| {_errors(point)} |"
                )
        if plot_name:
            lines += ["", f"![latency against offered load]({plot_name})"]
    if results.notes:
        lines += ["", "## How it was measured", ""]
        lines += [f"- {note}" for note in results.notes]
    return "\n".join(lines) + "\n"


def _errors(result: LoadResult) -> str:
    total = result.status_errors + result.socket_errors + result.timeouts
    return "0" if total == 0 else f"{total} ({100 * result.error_share:.1f} %)"


def plot(results: Results, path: Path) -> bool:
    """p50 (dashed) and p99 (solid) latency against offered load; False when there is nothing to draw."""
    if not any(results.curves.values()):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5), dpi=100)
    colours = {"a": "tab:green", "b": "tab:blue", "c": "tab:red"}
    for key, curve in results.curves.items():
        if not curve:
            continue
        points = sorted(curve, key=lambda p: p.offered_rps or 0)
        x = [p.offered_rps or p.rps for p in points]
        colour = colours.get(key)
        axes.plot(x, [p.p99_ms for p in points], "o-", color=colour, label=f"{TARGETS.get(key, key)} p99")
        axes.plot(
            x,
            [p.p50_ms for p in points],
            "o--",
            color=colour,
            alpha=0.6,
            label=f"{TARGETS.get(key, key)} p50",
        )
    axes.set_xlabel("offered requests/s (paced by wrk delay(); achieved rates in docs/benchmarks.md)")
    axes.set_ylabel("latency, ms")
    axes.set_yscale("log")
    axes.grid(True, which="both", alpha=0.3)
    axes.set_title(
        f"Heartbeat latency against load, 1 worker ({os.cpu_count()} cores, {results.started:%Y-%m-%d})"
    )
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return True


def write(results: Results, directory: Path) -> tuple[Path, Path | None]:
    directory.mkdir(parents=True, exist_ok=True)
    plot_path = directory / "benchmarks-latency.png"
    drawn = plot(results, plot_path)
    page = directory / "benchmarks.md"
    page.write_text(markdown(results, plot_path.name if drawn else None), encoding="utf-8")
    return page, plot_path if drawn else None
