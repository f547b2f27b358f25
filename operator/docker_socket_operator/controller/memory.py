"""Freed heap memory given back to the system after a burst of work.

A cold start reconciles every policy at once: thousands of watch events and API answers are
decoded and dropped within seconds. glibc keeps what Python frees for later allocations and
returns it to the system only from the top of its heap. At 200 policies one `malloc_trim(0)`
(through a debugger, on an operator some minutes after its cold start) took it from 145.9 to
102.4 MiB resident; with this trimmer alone the bench's figure went from 143.5 to 134.2 MiB
(most of the rest was TLS connections left open: see `bounded_session` in runner.py). The
trimmer calls it once work has happened since the last call, at most every `period` seconds
(it walks the free lists: milliseconds).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

TRIM_PERIOD = 10.0  # seconds between trims while there is work


def libc_trim() -> Callable[[], object] | None:
    """glibc's `malloc_trim(0)`, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class Trimmer:
    """Counts work (`touch`) and trims after it: once per period that saw some."""

    def __init__(
        self, trim: Callable[[], object] | None = None, period: float = TRIM_PERIOD
    ) -> None:
        self.trim = trim
        self.period = period
        self.pending = False  # work happened since the last trim
        self.trims = 0

    def touch(self) -> None:
        self.pending = True

    def tick(self) -> bool:
        """Trim when work happened since the last tick; True when it did."""
        if not self.pending or self.trim is None:
            return False
        self.pending = False
        self.trim()
        self.trims += 1
        return True

    async def run(self) -> None:
        if self.trim is None:
            log.debug("no malloc_trim in this C library: freed memory stays with the heap")
            return
        while True:
            await asyncio.sleep(self.period)
            self.tick()
