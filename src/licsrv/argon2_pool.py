"""Password work (argon2id hashes and checks, password-sealed credential files) off the event loop, on
threads of its own. Each hash takes about 70 ms of a core and 64 MiB: in asyncio's default executor a burst of
registrations or logins ran six at once and could take both cores of a small machine from the event loop, and
with it from the heartbeats and the transactions the loop holds row locks in. One thread per two cores, at
least one; callers beyond that queue.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

THREADS = max(1, (os.cpu_count() or 2) // 2)
_pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="argon2")


async def off_loop(func: Callable[..., Any], *args: Any) -> Any:
    """`func(*args)` on the password threads."""
    return await asyncio.get_running_loop().run_in_executor(_pool, func, *args)
