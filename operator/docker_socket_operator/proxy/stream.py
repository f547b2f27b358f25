"""One connection as an asyncio protocol: received bytes in a buffer the request path reads
from, writes with flow control. The client side and the daemon side are both this class.

asyncio's StreamReader has no public way to look at what is buffered, to hand a whole
buffer to a relay, or to see whether a reader is waiting; the proxy needs all three (a request
head that came in one read is taken in one step, a response body is relayed straight from
data_received, the head watchdog fails only readers that still wait). Owning the protocol
gives them without touching asyncio's private attributes, and costs one object per
connection instead of three (reader, protocol, writer).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, cast


class Sink(Protocol):
    """Takes a connection's bytes as they arrive, bypassing the buffer (a body relay)."""

    def feed(self, data: bytes) -> None: ...

    def eof(self) -> None: ...


class Stream(asyncio.Protocol):
    """Reads as StreamReader reads (readuntil, readexactly, read, with the same exceptions),
    writes as StreamWriter writes. Reading pauses while more than twice `limit` is buffered."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buffer = bytearray()  # received, not read yet; read-only outside this class
        self.transport: asyncio.Transport = cast(asyncio.Transport, None)
        # The loop the connection lives on, kept: asyncio.get_running_loop() costs a getpid()
        # system call per call on Python 3.11, and a request waits twice.
        self.loop: asyncio.AbstractEventLoop = cast(asyncio.AbstractEventLoop, None)
        self.sink: Sink | None = None
        self._eof = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._lost = False

    # -- protocol callbacks --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.loop = asyncio.get_running_loop()

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is not None:
            sink.feed(data)
            return
        self.buffer += data
        self._wake()
        if not self._reading_paused and len(self.buffer) > 2 * self.limit:
            try:
                self.transport.pause_reading()
                self._reading_paused = True
            except NotImplementedError:
                pass

    def eof_received(self) -> bool:
        if self.sink is not None:
            self.sink.eof()
        self._eof = True
        self._wake()
        return True  # keep the write side open: the answer to the last request still goes out

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self.sink is not None:
            self.sink.eof()
        if exc is not None:
            self._error = exc
        self._eof = True
        self._wake()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("connection lost"))

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- reading --------------------------------------------------------------------------------

    @property
    def waiting(self) -> bool:
        """A coroutine waits for bytes on this connection."""
        return self._waiter is not None and not self._waiter.done()

    @property
    def eof_seen(self) -> bool:
        """The peer closed (or the connection failed), whatever is still buffered."""
        return self._eof or self._error is not None

    def at_eof(self) -> bool:
        return self._eof and not self.buffer

    def exception(self) -> BaseException | None:
        return self._error

    def fail(self, error: BaseException) -> None:
        """Make the pending and every later read raise `error` (a deadline passed)."""
        self._error = error
        self._wake()

    def take_buffered(self) -> bytes:
        """Everything received and not read yet, removed from the buffer."""
        data = bytes(self.buffer)
        self.buffer.clear()
        self._resume()
        return data

    def consume(self, n: int) -> bytes:
        """The first `n` buffered bytes, which the caller knows are there."""
        buf = self.buffer
        if n == len(buf):
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(buf[:n])
            del buf[:n]
        if self._reading_paused:
            self._resume()
        return data

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        buf = self.buffer
        start = 0
        while True:
            at = buf.find(separator, start)
            if at >= 0:
                end = at + len(separator)
                if end > self.limit:
                    raise asyncio.LimitOverrunError("separator found beyond the limit", at)
                return self.consume(end)
            if len(buf) > self.limit:
                raise asyncio.LimitOverrunError("separator not found within the limit", len(buf))
            start = max(0, len(buf) + 1 - len(separator))
            await self.wait_more()

    async def readexactly(self, n: int) -> bytes:
        buf = self.buffer
        while len(buf) < n:
            if self._eof:
                partial = bytes(buf)
                buf.clear()
                raise asyncio.IncompleteReadError(partial, n)
            await self.wait_more()
        return self.consume(n)

    async def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes (all buffered ones when n < 0); b"" at EOF."""
        if not self.buffer and not self._eof:
            await self.wait_more()
        if self._error is not None and not self.buffer:
            raise self._error
        return self.consume(len(self.buffer) if n < 0 else n)

    async def wait_more(self) -> None:
        """Until more bytes arrive; the connection's error, or IncompleteReadError at EOF."""
        self._raise_error()
        if self._eof:
            raise asyncio.IncompleteReadError(bytes(self.buffer), None)
        self._resume()  # a reader that waits has read everything it could
        self._waiter = self.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        self._raise_error()  # set while this reader waited (a deadline, a lost connection)

    def _raise_error(self) -> None:
        # Read afresh on each call: a narrowed `self._error` would be taken as still None
        # after the wait by mypyc's compiled code (setup.py), which trusts mypy's narrowing.
        error = self._error
        if error is not None:
            raise error

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _resume(self) -> None:
        if self._reading_paused and len(self.buffer) <= self.limit:
            self._reading_paused = False
            with contextlib.suppress(Exception):
                self.transport.resume_reading()

    # -- writing --------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    @property
    def writing_paused(self) -> bool:
        """More than the high-water mark waits in the transport for the peer to read it."""
        return self._writing_paused

    async def drain(self) -> None:
        """Until the transport's write buffer is below its high-water mark."""
        if self._lost:
            raise ConnectionResetError("connection lost")
        if not self._writing_paused:
            return
        self._drain_waiter = self.loop.create_future()
        try:
            await self._drain_waiter
        finally:
            self._drain_waiter = None

    def can_write_eof(self) -> bool:
        return self.transport.can_write_eof()

    def write_eof(self) -> None:
        self.transport.write_eof()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.transport.close()


class ClientStream(Stream):
    """A client connection: its handler starts as soon as the connection is made."""

    def __init__(
        self,
        limit: int,
        handler: Callable[[ClientStream], Coroutine[Any, Any, None]],
        tasks: set[asyncio.Task[None]],
    ) -> None:
        super().__init__(limit)
        self._handler = handler
        self._tasks = tasks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        task = self.loop.create_task(self._handler(self))
        self._tasks.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._tasks.discard)
