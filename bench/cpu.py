"""CPU time of process trees from /proc: what a peak cost the server and the data store behind it.

On a small machine the three heartbeat designs do not get the same CPUs: the row-per-heartbeat baseline's
PostgreSQL works on the cores the single worker leaves idle. CPU time per answered request shows what each
design costs regardless of which core paid for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds so far) of one process, or None once it has gone."""
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def tree_cpu_seconds(roots: Iterable[int]) -> float:
    """CPU seconds used so far by the given processes and all their descendants."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    total, todo, seen = 0.0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo.extend(children.get(pid, ()))
    return total


class CpuMeter:
    """CPU seconds of a set of process trees between `start()` and `stop()`."""

    def __init__(self, roots: Callable[[], list[int]]) -> None:
        self._roots = roots
        self._before = 0.0

    def start(self) -> None:
        self._before = tree_cpu_seconds(self._roots())

    def stop(self) -> float:
        return max(0.0, tree_cpu_seconds(self._roots()) - self._before)
