"""A leadership term: what one replica may do between winning the Lease and losing it.

Background work (drift retries) is spawned on the term and cancelled when it ends, and the
term's client refuses every write once the term is over: a replica that lost the Lease can
still be mid-request, never start a new write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TermEnded(Exception):
    """A write was attempted after leadership was lost."""


class Term:
    def __init__(self) -> None:
        self.active = True
        self._tasks: set[asyncio.Task[None]] = set()

    def check(self) -> None:
        if not self.active:
            raise TermEnded("leadership lost: not writing")

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
        if not self.active:
            coro.close()
            return None
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def end(self) -> None:
        """No more writes; cancel and wait for every task of the term."""
        self.active = False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if tasks:
            log.info("leadership term ended: %d background task(s) cancelled", len(tasks))
