"""Chunked transfer coding: find where a chunked body ends while relaying its bytes unchanged,
or decode it (capped) when the body must be read. Strict: hex size, optional extensions, CRLF
after each chunk, well-formed trailers; anything else is a ChunkError.
"""

from __future__ import annotations

import re

from docker_socket_operator.proxy.http1 import BAD_VALUE, FIELD

CHUNK_LINE_LIMIT = 4096  # chunk-size line or trailer line, as Go's reader
TRAILER_LIMIT = 16 * 1024
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})(;[^\x00-\x08\x0a-\x1f\x7f]*)?\r\n")


_RUNS: dict[bytes, re.Pattern[bytes]] = {}
_RUNS_KEPT = 256


def _same_size_run(size_line: bytes, size: int) -> re.Pattern[bytes]:
    """Zero or more complete chunks whose size line is exactly `size_line` (no extension)."""
    run = _RUNS.get(size_line)
    if run is None:
        if len(_RUNS) >= _RUNS_KEPT:
            _RUNS.clear()
        run = re.compile(rb"(?:%s\r\n.{%d}\r\n)*" % (re.escape(size_line), size), re.DOTALL)
        _RUNS[size_line] = run
    return run


class ChunkError(Exception):
    """Malformed chunked framing (400 from a client, 502 from the daemon)."""


class BodyTooLarge(Exception):
    """A body the proxy must buffer is over the policy's limit (413)."""


_SIZE, _DATA, _DATA_CRLF, _TRAILER, _DONE = range(5)


class ChunkScanner:
    """Finds where a chunked body ends while its bytes are relayed unchanged.

    feed() walks the chunk framing (hex size, optional extensions, CRLF, data, CRLF, trailers)
    without copying data; with collect=True the chunk payloads are also gathered in `body`
    (capped at `limit`) for bodies that must be decoded.
    """

    __slots__ = (
        "_crlf",
        "_line",
        "_remaining",
        "_state",
        "_trailer_bytes",
        "body",
        "collect",
        "limit",
    )

    def __init__(self, *, collect: bool = False, limit: int = 0) -> None:
        self._state = _SIZE
        self._remaining = 0
        self._crlf = 0
        self._line = bytearray()
        self._trailer_bytes = 0
        self.collect = collect
        self.limit = limit
        self.body = bytearray()

    @property
    def done(self) -> bool:
        return self._state == _DONE

    @property
    def wants_line(self) -> bool:
        """The next bytes are a size or trailer line (read up to LF, never past it)."""
        return self._state in (_SIZE, _TRAILER)

    def safe_read_size(self) -> int:
        """How many bytes can be read without reading past this body (outside line states)."""
        if self._state == _DATA:
            return self._remaining + 2
        if self._state == _DATA_CRLF:
            return 2 - self._crlf
        return 0

    def take(self) -> bytes:
        """The payload gathered so far (collect mode), removing it from the scanner."""
        out = bytes(self.body)
        self.body.clear()
        return out

    def feed(self, data: bytes) -> int:
        """Consume framing from `data`; returns how many bytes belong to the body (less than
        len(data) only when the body ended inside it)."""
        pos = 0
        end = len(data)
        collect = self.collect
        while pos < end:
            state = self._state
            if state == _SIZE and not self._line:
                pos = self._whole_chunks(data, pos)
                if pos >= end or self._state != _SIZE:
                    continue
            if state == _DATA:
                take = min(self._remaining, end - pos)
                if collect:
                    if len(self.body) + take > self.limit:
                        raise BodyTooLarge()
                    self.body += data[pos : pos + take]
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = _DATA_CRLF
                    self._crlf = 0
            elif state == _DATA_CRLF:
                if data[pos] != b"\r\n"[self._crlf]:
                    raise ChunkError("chunk data not followed by CRLF")
                pos += 1
                self._crlf += 1
                if self._crlf == 2:
                    self._state = _SIZE
            elif state == _DONE:
                break
            else:
                nl = data.find(b"\n", pos)
                if nl < 0:
                    self._line += data[pos:]
                    if len(self._line) > CHUNK_LINE_LIMIT:
                        raise ChunkError("chunk line too long")
                    pos = end
                    break
                if self._line:
                    self._line += data[pos : nl + 1]
                    line = bytes(self._line)
                    self._line.clear()
                else:
                    line = data[pos : nl + 1]
                pos = nl + 1
                if len(line) > CHUNK_LINE_LIMIT:
                    raise ChunkError("chunk line too long")
                if state == _SIZE:
                    self._size_line(line)
                else:
                    self._trailer_line(line)
        return pos

    def _whole_chunks(self, data: bytes, pos: int) -> int:
        """Fast path (a daemon flushing one small chunk per log line sends millions): the
        chunks whose size line, data and CRLF are all in `data`, without slicing the data;
        returns where the next one starts. The anchored match ends at the line's first LF, as
        the line-by-line reading does (neither size nor extension may hold CR or LF); no match
        is a malformed or an incomplete line, left to that reading."""
        match = _CHUNK_SIZE.match
        crlf_at = data.startswith
        end = len(data)
        collect = self.collect
        last = -1  # the size of the chunk before
        while True:
            m = match(data, pos)
            if m is None:
                return pos
            start = m.end()
            if start - pos > CHUNK_LINE_LIMIT:
                return pos
            size = int(m.group(1), 16)
            if size == 0:
                self._state = _TRAILER
                return start
            stop = start + size
            if stop + 2 > end:
                self._remaining = size
                self._state = _DATA
                return start
            if not crlf_at(b"\r\n", stop):
                raise ChunkError("chunk data not followed by CRLF")
            pos = stop + 2
            if collect:
                if len(self.body) + size > self.limit:
                    raise BodyTooLarge()
                self.body += data[start:stop]
            elif size == last and m.lastindex == 1:
                # A run of chunks of one size (log lines of one length): one regex call
                # walks it, with the same checks, in C.
                run = _same_size_run(m.group(1), size).match(data, pos)
                pos = run.end() if run is not None else pos  # it matches even zero chunks
            last = size

    def _size_line(self, line: bytes) -> None:
        m = _CHUNK_SIZE.fullmatch(line)
        if m is None:
            raise ChunkError("malformed chunk size line")
        size = int(m.group(1), 16)
        if size == 0:
            self._state = _TRAILER
        else:
            self._remaining = size
            self._state = _DATA

    def _trailer_line(self, line: bytes) -> None:
        if line == b"\r\n":
            self._state = _DONE
            return
        self._trailer_bytes += len(line)
        if self._trailer_bytes > TRAILER_LIMIT:
            raise ChunkError("trailers too large")
        if not line.endswith(b"\r\n") or b"\r" in line[:-2]:
            raise ChunkError("malformed trailer line")
        m = FIELD.fullmatch(line[:-2])
        if m is None or BAD_VALUE.search(m.group(2)) is not None:
            raise ChunkError("malformed trailer line")


_LAST = b"\r\n0\r\n\r\n"  # the CRLF after a chunk's data, then the last chunk


def _one_chunk(buf: bytes | bytearray, start: int) -> tuple[int, int] | None:
    """Where the payload of `buf[start:]` lies when that is one chunk and the last chunk with
    no trailers, and nothing after them; None for anything else."""
    m = _CHUNK_SIZE.match(buf, start)
    if m is None or m.end() - start > CHUNK_LINE_LIMIT:
        return None
    begin = m.end()
    stop = begin + int(m.group(1), 16)
    if len(buf) != stop + len(_LAST) or not buf.endswith(_LAST):
        return None
    return begin, stop


def single_chunk(buf: bytearray, limit: int) -> bytes | None:
    """The payload of a chunked body that is all of `buf` as one chunk and the last chunk
    with no trailers (how the daemon sends an inspect or a list: one read, one copy); None
    for anything else, which ChunkScanner reads (and judges) as it always does."""
    span = _one_chunk(buf, 0)
    if span is None or span[1] - span[0] > limit:
        return None
    return bytes(buf[span[0] : span[1]])


def ends_as_one_chunk(buf: bytes | bytearray, start: int) -> bool:
    """Whether `buf[start:]` is a whole chunked body of one chunk that ChunkScanner would
    relay unchanged and find ended at the end of `buf` (anything else is scanned)."""
    return _one_chunk(buf, start) is not None


def encode_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
