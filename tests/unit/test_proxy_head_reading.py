"""A request head is the same head however its bytes are cut into reads: the proxy takes exactly
the bytes up to the first blank line (CRLF or bare LF), or refuses the same way."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from docker_socket_operator.proxy.http1 import HEAD_LIMIT, HttpError
from docker_socket_operator.proxy.messages import read_request_head
from docker_socket_operator.proxy.stream import Stream


class _Transport:
    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


async def _read(pieces: list[bytes]) -> tuple[Any, bytes]:
    """What read_request_head gives (the head, None, or the HttpError's status) when the bytes
    come in these pieces, then EOF; and what is left buffered after it."""
    stream = Stream(HEAD_LIMIT)
    stream.loop = asyncio.get_running_loop()
    stream.transport = _Transport()  # type: ignore[assignment]
    task = asyncio.create_task(read_request_head(stream))
    for piece in pieces:
        await asyncio.sleep(0)
        stream.data_received(piece)
    await asyncio.sleep(0)
    stream.eof_received()
    try:
        result: Any = await task
    except HttpError as e:
        result = e.status
    return result, bytes(stream.buffer)


CASES = [
    b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\nGET /version HTTP/1.1\r\n\r\n",
    b"POST /x HTTP/1.1\r\nContent-Length: 4\r\n\r\n\r\n\r\n",
    b"GET /_ping HTTP/1.1\nHost: d\n\nrest",
    b"GET /_ping HTTP/1.1\r\nHost: d\n\r\nrest",
    b"GET /_ping HTTP/1.1\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: d\r\n",
    b"GET /_ping HTTP/1.1",
    b"\r\nGET /_ping HTTP/1.1\r\n\r\n",
    b"\nGET / HTTP/1.1\r\n\r\n",
    b"",
]


@pytest.mark.parametrize("data", CASES)
def test_every_split_reads_the_same_head(data: bytes) -> None:
    whole = asyncio.run(_read([data]))
    for at in range(1, len(data)):
        assert asyncio.run(_read([data[:at], data[at:]])) == whole, at
    assert asyncio.run(_read([data[i : i + 1] for i in range(len(data))])) == whole


def test_what_a_head_is() -> None:
    assert asyncio.run(_read([CASES[1]])) == (
        b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n",
        b"GET /version HTTP/1.1\r\n\r\n",
    )
    assert asyncio.run(_read([CASES[3]])) == (b"GET /_ping HTTP/1.1\nHost: d\n\n", b"rest")
    assert asyncio.run(_read([CASES[6]]))[0] == 400  # closed inside the head
    assert asyncio.run(_read([CASES[7]]))[0] is None  # closed before a whole request line
    assert asyncio.run(_read([CASES[8]]))[0] == 400  # an empty request line


def test_a_head_over_the_limit_is_refused_whole_or_in_pieces() -> None:
    big = b"GET / HTTP/1.1\r\nX-A: " + b"a" * HEAD_LIMIT + b"\r\n\r\n"
    assert asyncio.run(_read([big]))[0] == 431
    assert asyncio.run(_read([big[i : i + 4096] for i in range(0, len(big), 4096)]))[0] == 431
