"""An answer the client gets unchanged goes out from the daemon connection's callback when it
came whole; anything else (not all here, more than one chunk, bytes after it, an answer to
rewrite) stays buffered for the request's coroutine, which reads and judges it as before."""

from __future__ import annotations

import asyncio

import pytest

from docker_socket_operator.proxy.http1 import ResponseHead
from docker_socket_operator.proxy.upstream import AnswerRelay, UpstreamConnection

HEAD_CHUNKED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
)
LIST = b'[{"Id":"' + b"a" * 64 + b'","Names":["/web"]}]\n'
ONE_CHUNK = b"%x\r\n%s\r\n0\r\n\r\n" % (len(LIST), LIST)


class _Client:
    def __init__(self) -> None:
        self.sent = bytearray()
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.sent += data
        self.writes.append(data)

    def is_closing(self) -> bool:
        return False


class _Daemon:
    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


async def _armed(
    as_is: bool = True,
) -> tuple[UpstreamConnection, _Client, AnswerRelay, asyncio.Task[ResponseHead]]:
    """A daemon connection whose coroutine waits for a response head with a relay armed."""
    conn = UpstreamConnection(1 << 16)
    conn.loop = asyncio.get_running_loop()
    conn.transport = _Daemon()  # type: ignore[assignment]
    client = _Client()
    relay = AnswerRelay(client, "GET", lambda resp: as_is)  # type: ignore[arg-type]
    task = asyncio.create_task(conn.read_head("GET", relay))
    await asyncio.sleep(0)
    return conn, client, relay, task


async def _answer(
    pieces: list[bytes], as_is: bool = True
) -> tuple[bytes, AnswerRelay, ResponseHead, bytes]:
    """What the client was sent from the callback, the relay, the head read_head returned,
    and what stayed buffered for the coroutine."""
    conn, client, relay, task = await _armed(as_is)
    for piece in pieces:
        conn.data_received(piece)
        await asyncio.sleep(0)
    resp = await task
    return bytes(client.sent), relay, resp, bytes(conn.buffer)


async def test_a_whole_one_chunk_answer_goes_out_from_the_callback_unchanged() -> None:
    sent, relay, resp, left = await _answer([HEAD_CHUNKED + ONE_CHUNK])
    assert sent == HEAD_CHUNKED + ONE_CHUNK
    assert relay.resp is resp and resp.status == 200
    assert relay.clean and left == b""


async def test_a_whole_length_answer_goes_out_from_the_callback() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK"
    sent, relay, _resp, left = await _answer([answer])
    assert sent == answer and relay.clean and left == b""


@pytest.mark.parametrize(
    "body",
    [
        ONE_CHUNK[:-1],  # not all here yet
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",  # two chunks: the scanner's job
        ONE_CHUNK + b"HTTP/1.1 200 OK\r\n",  # bytes after the end
        ONE_CHUNK.replace(b"0\r\n\r\n", b"0\r\nX-T: 1\r\n\r\n"),  # a trailer
        ONE_CHUNK.replace(b"\r\n", b"\n", 1),  # a bare LF after the size
        b"%x\r\n%s\r\n0\r\n\r\n" % (len(LIST) + 1, LIST),  # one byte short
    ],
)
async def test_any_other_chunked_answer_is_left_to_the_coroutine(body: bytes) -> None:
    sent, relay, resp, left = await _answer([HEAD_CHUNKED + body])
    assert sent == b"" and relay.resp is None
    assert resp.status == 200 and left == body  # the coroutine reads the body as it came


async def test_an_answer_to_rewrite_is_left_to_the_coroutine() -> None:
    sent, relay, _resp, left = await _answer([HEAD_CHUNKED + ONE_CHUNK], as_is=False)
    assert sent == b"" and relay.resp is None and left == ONE_CHUNK


async def test_an_answer_in_two_reads_is_left_to_the_coroutine() -> None:
    # The callback looks once, at the first read: the rest is the body relay's, as before.
    sent, relay, _resp, left = await _answer([HEAD_CHUNKED + ONE_CHUNK[:10], ONE_CHUNK[10:]])
    assert sent == b"" and relay.resp is None and left == ONE_CHUNK


async def test_an_answer_whose_head_came_in_pieces_goes_out_when_whole() -> None:
    # The first read holds no whole head, so the coroutine waits again with the relay armed:
    # the second read completes the answer on top of what was buffered.
    answer = HEAD_CHUNKED + ONE_CHUNK
    sent, relay, resp, left = await _answer([answer[:20], answer[20:]])
    assert sent == answer and relay.resp is resp and relay.clean and left == b""


async def test_bytes_after_a_whole_answer_stay_buffered_and_the_connection_is_not_clean() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK"
    sent, relay, _resp, left = await _answer([answer + b"HTTP/1.1 200 OK\r\n"])
    assert sent == answer and not relay.clean and left == b"HTTP/1.1 200 OK\r\n"


async def test_the_answer_received_is_the_object_sent() -> None:
    # One read holding the whole answer is written as it came, not copied through the buffer.
    answer = HEAD_CHUNKED + ONE_CHUNK
    conn, client, _relay, task = await _armed()
    conn.data_received(answer)
    await task
    assert len(client.writes) == 1 and client.writes[0] is answer and conn.buffer == b""
