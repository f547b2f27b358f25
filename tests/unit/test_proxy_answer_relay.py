"""An answer the client gets unchanged goes out from the daemon connection's callback as soon
as its head is whole: at once when all of it came, otherwise as far as it came, its body relay
taking the rest as it arrives (and judging its framing as it always does). An answer to
rewrite, an interim 1xx or one without a body stays buffered for the request's coroutine."""

from __future__ import annotations

import asyncio

import pytest

from docker_socket_operator.proxy.http1 import ResponseHead, UpstreamProtocolError
from docker_socket_operator.proxy.stream import Stream
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

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return 0, 1 << 20

    def get_write_buffer_size(self) -> int:
        return 0


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
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",  # two chunks
        ONE_CHUNK.replace(b"0\r\n\r\n", b"0\r\nX-T: 1\r\n\r\n"),  # a trailer
    ],
)
async def test_any_whole_chunked_answer_goes_out_from_the_callback(body: bytes) -> None:
    sent, relay, resp, left = await _answer([HEAD_CHUNKED + body])
    assert sent == HEAD_CHUNKED + body and relay.resp is resp and left == b""
    assert relay.body is not None and relay.body.finished and relay.body.clean


async def test_a_part_goes_out_at_once_and_the_rest_as_it_arrives() -> None:
    conn, client, relay, task = await _armed()
    conn.data_received(HEAD_CHUNKED + ONE_CHUNK[:10])
    resp = await task  # the coroutine wakes with the answer already on its way
    assert relay.resp is resp and bytes(client.sent) == HEAD_CHUNKED + ONE_CHUNK[:10]
    assert relay.body is not None and not relay.body.finished and conn.buffer == b""
    conn.data_received(ONE_CHUNK[10:])
    assert bytes(client.sent) == HEAD_CHUNKED + ONE_CHUNK
    assert relay.body.finished and relay.body.clean


async def test_a_length_body_in_two_reads_goes_out_as_it_arrives() -> None:
    conn, client, relay, task = await _armed()
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nOK")
    await task
    assert relay.body is not None and not relay.body.finished
    conn.data_received(b"OK")
    assert bytes(client.sent) == b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nOKOK"
    assert relay.body.finished and relay.body.clean


async def test_one_byte_short_waits_for_the_daemon() -> None:
    _sent, relay, _resp, _left = await _answer([HEAD_CHUNKED + ONE_CHUNK[:-1]])
    assert relay.body is not None and not relay.body.finished


async def test_a_chunk_longer_than_its_size_fails_the_relay() -> None:
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(LIST) - 1, LIST)
    _sent, relay, _resp, _left = await _answer([HEAD_CHUNKED + body])
    assert relay.body is not None and isinstance(relay.body.error, UpstreamProtocolError)


async def test_a_malformed_chunk_is_not_sent_and_fails_the_relay() -> None:
    body = ONE_CHUNK.replace(b"\r\n", b"\n", 1)  # a bare LF after the size
    sent, relay, _resp, _left = await _answer([HEAD_CHUNKED + body])
    assert sent == b""
    assert relay.body is not None and relay.body.finished
    assert isinstance(relay.body.error, UpstreamProtocolError)
    with pytest.raises(UpstreamProtocolError):
        await relay.body.run(Stream(1))  # the coroutine's wait raises what cut the relay


async def test_bytes_after_a_chunked_answer_are_not_sent_and_the_connection_is_not_clean() -> None:
    sent, relay, _resp, _left = await _answer([HEAD_CHUNKED + ONE_CHUNK + b"HTTP/1.1 200 OK\r\n"])
    assert sent == HEAD_CHUNKED + ONE_CHUNK
    assert relay.body is not None and relay.body.finished and not relay.body.clean


async def test_an_answer_to_rewrite_is_left_to_the_coroutine() -> None:
    sent, relay, _resp, left = await _answer([HEAD_CHUNKED + ONE_CHUNK], as_is=False)
    assert sent == b"" and relay.resp is None and left == ONE_CHUNK


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",  # a body until close
    ],
)
async def test_an_answer_without_a_framed_body_is_left_to_the_coroutine(head: bytes) -> None:
    conn, client, relay, task = await _armed()
    conn.data_received(head)
    await asyncio.sleep(0)
    assert bytes(client.sent) == b"" and relay.resp is None and relay.body is None
    task.cancel()


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
