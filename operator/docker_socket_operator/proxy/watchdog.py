"""Request-head deadlines, checked by one periodic task instead of a timer per request.

Arming a deadline is a dict store (the hot path pays no timer handle per request); a task
that wakes a few times per timeout fails the reads of clients past their deadline, the way
HAProxy walks its timer tree. A head is then late by at most one tick.
"""

from __future__ import annotations

import asyncio

from docker_socket_operator.proxy.stream import Stream


class HeadTimeout(Exception):
    """A client did not send its request head in time. `begun`: it had sent part of one."""

    def __init__(self, begun: bool) -> None:
        super().__init__("request head timeout")
        self.begun = begun


class HeadWatch:
    def __init__(self, head_timeout: float, tick: float) -> None:
        self.head_timeout = head_timeout
        self.tick = tick
        # reader -> (deadline on the loop's clock, the head has begun)
        self.deadlines: dict[Stream, tuple[float, bool]] = {}
        self._task: asyncio.Task[None] | None = None

    def arm(self, reader: Stream, seconds: float) -> None:
        loop = reader.loop
        self.deadlines[reader] = (loop.time() + seconds, False)
        if self._task is None:
            self._task = loop.create_task(self._run())

    def head_begun(self, reader: Stream) -> None:
        """The first line of a head is in: the rest is due within the head timeout."""
        now = reader.loop.time()
        self.deadlines[reader] = (now + self.head_timeout, True)

    def disarm(self, reader: Stream) -> None:
        self.deadlines.pop(reader, None)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.tick)
            now = loop.time()
            late = [(r, begun) for r, (due, begun) in self.deadlines.items() if due <= now]
            for reader, begun in late:
                # Only a reader that is still waiting: one whose bytes have just arrived
                # (its handler not yet resumed) is left to the next tick, so that a reader
                # is never failed after it has handed out a complete head.
                if not reader.waiting:
                    continue
                del self.deadlines[reader]
                reader.fail(HeadTimeout(begun or bool(reader.buffer)))
