"""The proxy's HTTP/1.1 parsers: what a request must look like to be decided at all."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from docker_socket_operator.proxy.chunked import (
    BodyTooLarge,
    ChunkError,
    ChunkScanner,
    ends_as_one_chunk,
    single_chunk,
)
from docker_socket_operator.proxy.http1 import (
    Framing,
    HttpError,
    ResponseHead,
    UpstreamProtocolError,
    is_form_body,
    json_error,
    parse_query,
    parse_request_head,
    parse_response_head,
)


def head(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def rejected(raw: bytes) -> HttpError:
    with pytest.raises(HttpError) as info:
        parse_request_head(raw)
    return info.value


# -- request heads -------------------------------------------------------------------------------


def test_plain_get_is_parsed_with_its_fields_in_order() -> None:
    req = parse_request_head(
        head("GET /v1.41/containers/json?all=1 HTTP/1.1", "Host: docker", "X-A: b")
    )
    assert (req.method, req.target, req.version) == (
        "GET",
        "/v1.41/containers/json?all=1",
        "HTTP/1.1",
    )
    assert req.fields == ((b"host", b"Host: docker"), (b"x-a", b"X-A: b"))
    assert req.keep_alive and not req.has_body and req.content_length is None


def test_content_length_and_chunked_bodies_are_recognised() -> None:
    assert parse_request_head(head("POST /x HTTP/1.1", "Content-Length: 12")).content_length == 12
    req = parse_request_head(head("POST /x HTTP/1.1", "Transfer-Encoding: chunked"))
    assert req.chunked and req.has_body


def test_connection_close_and_http10_end_keep_alive() -> None:
    assert not parse_request_head(head("GET / HTTP/1.1", "Connection: close")).keep_alive
    assert not parse_request_head(head("GET / HTTP/1.0")).keep_alive


def test_docker_hijack_upgrade_is_accepted() -> None:
    req = parse_request_head(
        head(
            "POST /exec/abc/start HTTP/1.1",
            "Connection: Upgrade",
            "Upgrade: tcp",
            "Content-Length: 2",
        )
    )
    assert req.upgrade_tcp


@pytest.mark.parametrize(
    "raw",
    [
        b"GET / HTTP/1.1\nHost: x\n\n",  # bare LF everywhere
        b"GET / HTTP/1.1\r\nHost: x\n\r\n",  # one bare LF
        b"GET / HTTP/1.1\r\n\n",  # a bare-LF blank line right after the request line
        b"GET / HTTP/1.1\r\nHost: x\r\n\n",  # a bare-LF blank line
        b"GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n",  # bare CR
        head("GET / HTTP/1.1", "X-A: b", " folded"),  # obs-fold
        head("GET / HTTP/1.1", "X-A: b", "\tfolded"),
        head("GET / HTTP/1.1", "Bad Name: x"),
        head("GET / HTTP/1.1", "Host : x"),  # whitespace before colon
        head("GET / HTTP/1.1", "X-A\x01: b"),
        head("GET / HTTP/1.1", "NoColon"),
        head("GET / HTTP/1.1", "X-A: b\x00c"),
        head("POST / HTTP/1.1", "Content-Length: 5", "Content-Length: 5"),  # even equal
        head("POST / HTTP/1.1", "Content-Length: 5, 5"),
        head("POST / HTTP/1.1", "Content-Length: +5"),
        head("POST / HTTP/1.1", "Content-Length: -1"),
        head("POST / HTTP/1.1", "Content-Length: 0x10"),
        head("POST / HTTP/1.1", "Content-Length: 5", "Transfer-Encoding: chunked"),
        head("POST / HTTP/1.1", "Transfer-Encoding: gzip, chunked"),
        head("POST / HTTP/1.1", "Transfer-Encoding: chunked, identity"),
        head("POST / HTTP/1.1", "Transfer-Encoding: identity"),
        head("POST / HTTP/1.1", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"),
        head("POST / HTTP/1.0", "Transfer-Encoding: chunked"),
        head("GET / HTTP/1.1", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAAP__"),
        head("GET / HTTP/1.1", "Upgrade: h2c"),
        head("GET / HTTP/1.1", "HTTP2-Settings: AAMAAABkAAQAAP__"),
        head("GET /containers/x/attach/ws HTTP/1.1", "Upgrade: websocket", "Upgrade: tcp"),
        head("GET /containers/x/attach/ws HTTP/1.1", "Upgrade: websocket, tcp"),
        head("GET /containers/x/attach/ws HTTP/1.1", "Upgrade: websocket/13"),
        head("POST /x HTTP/1.1", "X-HTTP-Method-Override: DELETE"),
        head("POST /x HTTP/1.1", "X-HTTP-Method: DELETE"),
        head("POST /x HTTP/1.1", "x-method-override: DELETE"),
        head("GET / HTTP/1.1", "Host: a", "Host: b"),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        head("GET / HTTP/2.0"),
        head("GET / HTTP/1.2"),
        head("GET  / HTTP/1.1"),
        head("GET / extra HTTP/1.1"),
        head("GET /\x7f HTTP/1.1"),
        head("GET / http/1.1"),
        head("GET /"),
    ],
)
def test_ambiguous_requests_are_refused_with_400(raw: bytes) -> None:
    err = rejected(raw)
    assert err.status == 400 and err.close


@pytest.mark.parametrize(
    "method", ["PATCH", "OPTIONS", "TRACE", "CONNECT", "get", "Post", "PROPFIND"]
)
def test_other_methods_are_405(method: str) -> None:
    assert rejected(head(f"{method} /containers/json HTTP/1.1")).status == 405


def test_oversized_head_is_431() -> None:
    raw = head("GET / HTTP/1.1", "X-Big: " + "a" * 70000)
    assert rejected(raw).status == 431


def test_unknown_expectation_is_417() -> None:
    assert rejected(head("POST / HTTP/1.1", "Expect: something")).status == 417
    assert parse_request_head(head("POST / HTTP/1.1", "Expect: 100-continue")).expect_continue


def test_error_body_has_dockers_shape() -> None:
    raw = json_error(403, 'blocked by policy: "x"', close=True)
    assert raw.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"Connection: close\r\n" in raw
    assert raw.endswith(b'\r\n\r\n{"message": "blocked by policy: \\"x\\""}\n')


# -- query and form bodies -----------------------------------------------------------------------


def test_query_decoding_is_gos() -> None:
    assert parse_query("force=1&v") == {"force": "1", "v": ""}
    assert parse_query("filters=%7B%22a%22%3A1%7D&x=a+b") == {"filters": '{"a":1}', "x": "a b"}
    assert parse_query("fromImage=busybox&tag=latest") == {"fromImage": "busybox", "tag": "latest"}
    assert parse_query("=x&&a=") == {"": "x", "a": ""}


@pytest.mark.parametrize("raw", ["a=1;force=1", "a=%zz", "a=%", "a=%ff", "a;=1"])
def test_queries_go_would_read_differently_are_refused(raw: str) -> None:
    with pytest.raises(HttpError):
        parse_query(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "name=web&name=evil",  # Go reads the first, Podman the last
        "name=web&na%6De=evil",  # the same name once decoded
        "name=web&NAME=evil",  # Podman matches names ignoring case
        "force=1&force=0",
        "a+b=1&a%20b=2",  # '+' is a space in names too
        "=1&=2",
        "fromImage=a&fromimage=b",
    ],
)
def test_repeated_query_parameters_are_refused(raw: str) -> None:
    with pytest.raises(HttpError, match="repeated query parameter"):
        parse_query(raw)
    with pytest.raises(HttpError, match="repeated query parameter"):
        parse_query(raw, libpod=True)


@pytest.mark.parametrize(
    "raw",
    [
        "NAME=evil",  # dockerd ignores it, Podman reads it as name
        "Name=evil",
        "fromimage=busybox",  # dockerd reads only fromImage
        "FromImage=busybox",
        "%C5%BFignal=KILL",  # U+017F folds to 's' in Go's EqualFold
        "ps.args=eww",  # gorilla/schema tries a '.' path joined with '_'
        "caf%C3%A9=1",
    ],
)
def test_query_names_either_daemon_would_read_differently_are_refused(raw: str) -> None:
    with pytest.raises(HttpError):
        parse_query(raw)


def test_libpod_routes_keep_their_own_spelling_but_not_repeats() -> None:
    assert parse_query("ignoreRootFS=true&a.b=1", libpod=True) == {
        "ignoreRootFS": "true",
        "a.b": "1",
    }
    with pytest.raises(HttpError):
        parse_query("a.b=1&a_b=2", libpod=True)


@pytest.mark.parametrize(
    "ctype",
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        "Application/X-WWW-Form-Urlencoded",
        " application/x-www-form-urlencoded\t;",
        'application/x-www-form-urlencoded;;bad="',  # Go: form, and an error dockerd ignores
        "APPLICATION/X-WWW-FORM-URLENCODED ; x",
        "multipart/form-data; boundary=x",
    ],
)
def test_form_encoded_bodies_are_spotted(ctype: str) -> None:
    assert is_form_body(ctype)


@pytest.mark.parametrize(
    "ctype", ["application/json", "application/x-tar", "text/plain", "", "application/octet-stream"]
)
def test_other_bodies_are_not_forms(ctype: str) -> None:
    assert not is_form_body(ctype)


def test_non_ascii_content_type_is_refused() -> None:
    # Go lower-cases with Unicode rules: "İ" (U+0130) becomes "i".
    ctype = "appl\u0130cation/x-www-form-urlencoded".encode()
    with pytest.raises(HttpError, match="non-ASCII Content-Type"):
        parse_request_head(
            head(
                "POST /containers/x/rename?name=a HTTP/1.1",
                "Content-Type: " + ctype.decode("latin-1"),
            )
        )


@pytest.mark.parametrize(
    "name",
    [
        "Content-Type",
        "X-Registry-Auth",
        "X-Registry-Config",
        "Authorization",
        "User-Agent",
        "Host",
        "Content-Length",
        "Transfer-Encoding",
        "Upgrade",
        "Expect",
        "X-Anything",
    ],
)
def test_repeated_headers_are_refused(name: str) -> None:
    values = {
        "Content-Length": "0",
        "Transfer-Encoding": "chunked",
        "Upgrade": "tcp",
        "Expect": "100-continue",
    }
    value = values.get(name, "a")
    lines = [f"{name}: {value}", f"{name.upper()}: {value}"]
    if name != "Host":
        lines.insert(0, "Host: docker")
    with pytest.raises(HttpError) as e:
        parse_request_head(head("POST /containers/create HTTP/1.1", *lines))
    assert e.value.status == 400
    assert name.lower() in e.value.message.lower()


def test_hop_by_hop_lists_may_repeat() -> None:
    req = parse_request_head(
        head("GET /_ping HTTP/1.1", "Host: docker", "Connection: keep-alive", "Connection: close")
    )
    assert not req.keep_alive


# -- response heads ------------------------------------------------------------------------------


def test_response_framing() -> None:
    r = parse_response_head(head("HTTP/1.1 200 OK", "Content-Length: 2"), "GET")
    assert r.framing is Framing.LENGTH and r.content_length == 2 and r.reusable
    r = parse_response_head(head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), "GET")
    assert r.framing is Framing.CHUNKED and r.reusable
    r = parse_response_head(head("HTTP/1.1 200 OK", "Content-Length: 2"), "HEAD")
    assert r.framing is Framing.NONE
    r = parse_response_head(head("HTTP/1.1 204 No Content"), "POST")
    assert r.framing is Framing.NONE and r.reusable
    r = parse_response_head(
        head("HTTP/1.1 200 OK", "Content-Type: application/vnd.docker.raw-stream"), "POST"
    )
    assert r.framing is Framing.CLOSE and r.raw_stream and not r.reusable
    r = parse_response_head(
        head("HTTP/1.1 101 UPGRADED", "Upgrade: tcp", "Connection: Upgrade"), "POST"
    )
    assert r.status == 101 and not r.reusable
    r = parse_response_head(
        head("HTTP/1.1 200 OK", "Content-Length: 2", "Connection: close"), "GET"
    )
    assert not r.reusable


def test_bad_daemon_responses_raise() -> None:
    for raw in (
        head("HTTP/1.1 2000 OK"),
        head("HTTP/1.1 200 OK", "Content-Length: 2", "Content-Length: 3"),
        head("HTTP/1.1 200 OK", "Content-Length: x"),
        head("HTTP/1.0 20 OK"),
        head("HTTP/1.1 200 OK", "Transfer-Encoding: gzip"),
        b"HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n",
    ):
        with pytest.raises(UpstreamProtocolError):
            parse_response_head(raw, "GET")


def test_rebuilt_head_replaces_framing() -> None:
    r = parse_response_head(
        head("HTTP/1.1 200 OK", "Api-Version: 1.41", "Transfer-Encoding: chunked"), "GET"
    )
    assert r.rebuilt(7) == head("HTTP/1.1 200 OK", "Api-Version: 1.41", "Content-Length: 7")


# -- chunked bodies ------------------------------------------------------------------------------

BODY = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"


def test_scanner_finds_the_end_and_keeps_bytes_after_it() -> None:
    s = ChunkScanner()
    assert s.feed(BODY + b"GET / HTTP/1.1\r\n") == len(BODY)
    assert s.done


def test_scanner_works_byte_by_byte_and_collects() -> None:
    s = ChunkScanner(collect=True, limit=100)
    for i in range(len(BODY)):
        assert s.feed(BODY[i : i + 1]) == 1
    assert s.done and s.take() == b"hello world"


def test_scanner_safe_read_never_crosses_the_body_end() -> None:
    s = ChunkScanner()
    assert s.wants_line
    s.feed(b"a\r\n")
    assert not s.wants_line and s.safe_read_size() == 12
    s.feed(b"0123456789\r")
    assert s.safe_read_size() == 1


def test_scanner_limit() -> None:
    s = ChunkScanner(collect=True, limit=4)
    with pytest.raises(BodyTooLarge):
        s.feed(b"5\r\nhello\r\n0\r\n\r\n")


@pytest.mark.parametrize(
    "raw",
    [
        b"x\r\nhello\r\n",
        b"5\nhello\r\n",  # bare LF after size
        b"5\r\nhelloXX",  # missing CRLF after data
        b" 5\r\nhello\r\n",
        b"5 \r\nhello\r\n",
        b"-5\r\nhello\r\n",
        b"0x5\r\nhello\r\n",
        b"1234567890123456\r\n",  # more than 15 hex digits
        b"5;a\x00b\r\nhello\r\n",
        b"0\r\nBad Trailer\r\n\r\n",
        b"0\r\nX: y\n\r\n",
        b"f" * 5000,  # overlong size line
    ],
)
def test_scanner_refuses_malformed_framing(raw: bytes) -> None:
    with pytest.raises(ChunkError):
        ChunkScanner().feed(raw)


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 1000, 1 << 20])
def test_scanner_gives_the_same_answer_however_the_bytes_arrive(step: int) -> None:
    payloads = [bytes([65 + i % 26]) * (i * 37 % 300 + 1) for i in range(200)]
    raw = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in payloads) + b"0\r\n\r\n"
    s = ChunkScanner(collect=True, limit=1 << 20)
    used = 0
    for i in range(0, len(raw) + 5, step):
        piece = (raw + b"extra")[i : i + step]
        used += s.feed(piece)
        if s.done:
            break
    assert s.done and used == len(raw)
    assert s.take() == b"".join(payloads)


LINE = b"%x\r\n%s\r\n" % (117, b"x" * 117)  # one log line per chunk, all of one length


@pytest.mark.parametrize("step", [1, 5, 124, 1000, 1 << 20])
def test_scanner_walks_runs_of_equal_chunks_however_they_arrive(step: int) -> None:
    raw = LINE * 500 + b"3\r\nend\r\n" + LINE * 3 + b"0\r\n\r\n"
    s = ChunkScanner()
    used = 0
    for i in range(0, len(raw) + 5, step):
        used += s.feed((raw + b"HTTP/1.1 200 OK\r\n")[i : i + step])
        if s.done:
            break
    assert s.done and used == len(raw)


@pytest.mark.parametrize(
    "damage",
    [
        lambda c: c[:-2] + b"X\n",  # data not followed by CRLF
        lambda c: c[:-1],  # one byte short: the next size line is then wrong
        lambda c: c.replace(b"75", b"75 ", 1),
        lambda c: c.replace(b"75", b"76", 1),
    ],
)
def test_scanner_refuses_a_bad_chunk_inside_a_run_of_equal_ones(
    damage: Callable[[bytes], bytes],
) -> None:
    raw = LINE * 300 + damage(LINE) + LINE * 300 + b"0\r\n\r\n"
    with pytest.raises(ChunkError):
        ChunkScanner().feed(raw)


def _scanned(raw: bytes, limit: int) -> bytes | str:
    """What the scanner makes of a whole body: its payload, or why it refuses it."""
    s = ChunkScanner(collect=True, limit=limit)
    try:
        used = s.feed(raw)
    except (ChunkError, BodyTooLarge) as e:
        return type(e).__name__
    return s.take() if s.done and used == len(raw) else "incomplete or followed by bytes"


@pytest.mark.parametrize(
    "raw",
    [
        b"5\r\nhello\r\n0\r\n\r\n",
        b"5;name=v\r\nhello\r\n0\r\n\r\n",
        b"C30\r\n" + b"j" * 0xC30 + b"\r\n0\r\n\r\n",
        b"0\r\n\r\n",
        b"5\r\nhello\r\n0\r\nX: y\r\n\r\n",  # a trailer: left to the scanner
        b"5\r\nhello\r\n00\r\n\r\n",
        b"5\r\nhello\r\n0;e\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",  # no CRLF after the data
        b"6\r\nhello\r\n0\r\n\r\n",  # one byte short
        b"4\r\nhello\r\n0\r\n\r\n",  # one byte over
        b"5\r\nhello\r\n0\r\n\r\nGET",  # bytes after the end
        b"5\r\nhello\r\n0\r\n\r",  # not all here yet
        b"5\nhello\r\n0\r\n\r\n",
        b"5\r\nhel\r\n0\r\n\r\n\r\n0\r\n\r\n",
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",  # two chunks
        b"5\r\nhello\r\n0\r\n\r\n"[:-1] + b"\n",
        b"00000005\r\nhello\r\n0\r\n\r\n",
        b"a\r\n0\r\n\r\n0\r\n\r\n\r\n0\r\n\r\n",  # the end's bytes inside the data
    ],
)
@pytest.mark.parametrize("limit", [4, 5, 1 << 20])
def test_a_whole_single_chunk_body_is_read_as_the_scanner_reads_it(raw: bytes, limit: int) -> None:
    # single_chunk is the read of the common case (one read, one chunk); it answers only when
    # the scanner would accept the same bytes with the same payload, and leaves the rest to it.
    fast = single_chunk(bytearray(raw), limit)
    if fast is not None:
        assert fast == _scanned(raw, limit)


@pytest.mark.parametrize(
    "raw",
    [
        b"5\r\nhello\r\n0\r\n\r\n",
        b"5;name=v\r\nhello\r\n0\r\n\r\n",
        b"0\r\n\r\n",
        b"5\r\nhello\r\n0\r\nX: y\r\n\r\n",
        b"5\r\nhello\r\n0;e\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"6\r\nhello\r\n0\r\n\r\n",
        b"4\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r\n0\r\n\r\nGET",
        b"5\r\nhello\r\n0\r\n\r",
        b"5\nhello\r\n0\r\n\r\n",
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        b"a\r\n0\r\n\r\n0\r\n\r\n\r\n0\r\n\r\n",
    ],
)
def test_an_answer_sent_whole_as_one_chunk_is_one_the_scanner_relays_unchanged(raw: bytes) -> None:
    # The answer relay sends such a body from the daemon's callback, unscanned: only when the
    # scanner would take exactly these bytes as one whole body (a head before it is skipped).
    buf = bytearray(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + raw)
    if ends_as_one_chunk(buf, len(buf) - len(raw)):
        scanner = ChunkScanner()
        assert scanner.feed(raw) == len(raw) and scanner.done


def test_the_daemons_one_chunk_answer_is_read_whole() -> None:
    payload = b'{"Id":"' + b"a" * 3000 + b'"}\n'
    raw = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
    assert single_chunk(bytearray(raw), 1 << 20) == payload
    assert single_chunk(bytearray(raw), len(payload) - 1) is None  # over the limit: scanned


def test_websocket_upgrade_is_parsed_for_the_server_to_place() -> None:
    # Only containers.attach-websocket takes it; the server answers 400 on any other route.
    req = parse_request_head(
        head("GET /containers/x/attach/ws HTTP/1.1", "Connection: Upgrade", "Upgrade: WebSocket")
    )
    assert req.upgrade_websocket and not req.upgrade_tcp


def test_rebuilt_head_drops_framing_lines_in_any_case() -> None:
    raw = head(
        "HTTP/1.1 200 OK",
        "TRANSFER-ENCODING: chunked",
        "X-Content-Length: 3",
        "content-length : 9",
        "Api-Version: 1.41",
    )
    r = parse_response_head(raw.replace(b"content-length : 9\r\n", b""), "GET")
    assert r.rebuilt(7) == head(
        "HTTP/1.1 200 OK", "X-Content-Length: 3", "Api-Version: 1.41", "Content-Length: 7"
    )
    assert ResponseHead(200, raw, Framing.CLOSE).rebuilt(2) == head(
        "HTTP/1.1 200 OK", "X-Content-Length: 3", "Api-Version: 1.41", "Content-Length: 2"
    )
