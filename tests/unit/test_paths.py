"""Request-target parsing: a path that could be read two ways is a 400, never a guess."""

from __future__ import annotations

import random
from urllib.parse import quote

import pytest

from docker_socket_operator.catalogue.operations import match_operation
from docker_socket_operator.catalogue.paths import (
    checked_path_and_query,
    forward_target,
    parse_target,
)
from docker_socket_operator.catalogue.types import BadTarget, RequestTarget


@pytest.mark.parametrize(
    ("raw", "version", "api_path", "query"),
    [
        ("/containers/json", "", "/containers/json", ""),
        ("/v1.41/containers/json", "/v1.41", "/containers/json", ""),
        ("/v1/containers/json", "/v1", "/containers/json", ""),
        ("/v1.56/_ping", "/v1.56", "/_ping", ""),
        ("/v1.41/containers/json?all=1&size=0", "/v1.41", "/containers/json", "all=1&size=0"),
        ("/containers/json?a=1?b=2", "", "/containers/json", "a=1?b=2"),
        ("/containers/json?", "", "/containers/json", ""),
        ("/_ping", "", "/_ping", ""),
        ("/", "", "/", ""),
        # Only a well-formed version is a prefix; the rest stays in the path and matches nothing.
        ("/v1.41", "", "/v1.41", ""),
        ("/v1.41a/containers/json", "", "/v1.41a/containers/json", ""),
        ("/V1.41/containers/json", "", "/V1.41/containers/json", ""),
        ("/v1./containers/json", "", "/v1./containers/json", ""),
        ("/v1.41/v1.41/containers/json", "/v1.41", "/v1.41/containers/json", ""),
        # Percent-decoding is fine where it does not change routing.
        ("/%63ontainers/json", "", "/containers/json", ""),
        ("/images/a%20b/json", "", "/images/a b/json", ""),
        ("/images/x%25y/json", "", "/images/x%y/json", ""),
        (
            "/containers/json?filters=%7B%22a%22%3A1%7D",
            "",
            "/containers/json",
            "filters=%7B%22a%22%3A1%7D",
        ),
    ],
)
def test_parse_target(raw: str, version: str, api_path: str, query: str) -> None:
    assert parse_target(raw) == RequestTarget(version, api_path, query, libpod=False)


@pytest.mark.parametrize(
    ("raw", "version", "api_path"),
    [
        ("/v4.0.0/libpod/containers/json", "/v4.0.0", "/libpod/containers/json"),
        ("/libpod/_ping", "", "/libpod/_ping"),
        ("/v5.4.2/libpod/images/x/json", "/v5.4.2", "/libpod/images/x/json"),
    ],
)
def test_libpod_targets(raw: str, version: str, api_path: str) -> None:
    target = parse_target(raw)
    assert (target.version, target.api_path, target.libpod) == (version, api_path, True)
    assert match_operation("GET", target.api_path) is None


def test_libpod_is_a_whole_segment() -> None:
    assert not parse_target("/v1.41/libpodx/containers/json").libpod


@pytest.mark.parametrize(
    "raw",
    [
        # traversal and non-canonical forms, plain and encoded
        "/containers/x/../../images/json",
        "/v1.41/../containers/json",
        "/containers/./json",
        "/containers/%2e%2e/images/json",
        "/%2E/containers/json",
        "//containers/json",
        "/v1.41//containers/json",
        "/containers/json/",
        "/v1.41/",
        "/containers/json//",
        # encoded separators and bytes that names cannot hold
        "/containers%2Fjson",
        "/containers%2fjson",
        "/images/a%2Fb/json",
        "/v1.41/containers/x%00/start",
        "/containers/x%0a/start",
        "/containers/x%7f/start",
        "/containers/x%c2%85/start",  # U+0085, a C1 control
        "/containers/x%5c..%5cjson",
        "/containers\\json",
        "/containers/x%ff/json",  # not UTF-8
        # malformed percent-encoding
        "/containers/x%zz/start",
        "/containers/x%4",
        "/containers/x%",
        # not origin-form
        "http://localhost/containers/json",
        "http://localhost:2375/v1.41/containers/json",
        "localhost:2375",
        "*",
        "",
        "containers/json",
        # fragments, raw controls, spaces and non-ASCII
        "/containers/json#frag",
        "/containers/json?all=1#frag",
        "/containers/json\x00",
        "/containers/ json",
        "/containers/json\t",
        "/containers/caf\u00e9/json",
    ],
)
def test_bad_targets(raw: str) -> None:
    with pytest.raises(BadTarget):
        parse_target(raw)


def test_non_canonical_message() -> None:
    with pytest.raises(BadTarget, match="path is not canonical"):
        parse_target("/containers/x/../../images/json")


def test_encoded_segment_name_matches_like_the_plain_one() -> None:
    matched = match_operation("GET", parse_target("/%63ontainers/json").api_path)
    assert matched is not None and matched.op.name == "containers.list"


def test_image_reference_end_to_end() -> None:
    target = parse_target("/v1.41/images/registry.example:5000/ci/x:1/json")
    matched = match_operation("GET", target.api_path)
    assert matched is not None
    assert (matched.op.name, matched.params) == (
        "images.inspect",
        {"name": "registry.example:5000/ci/x:1"},
    )
    assert forward_target(target) == "/v1.41/images/registry.example:5000/ci/x:1/json"


@pytest.mark.parametrize(
    ("raw", "forwarded"),
    [
        ("/v1.41/containers/json?all=1", "/v1.41/containers/json?all=1"),
        ("/containers/json", "/containers/json"),
        ("/containers/json?", "/containers/json"),
        ("/v1/%63ontainers/json", "/v1/containers/json"),
        ("/images/a%20b/json", "/images/a%20b/json"),
        ("/images/x%25y/json", "/images/x%25y/json"),
        ("/images/x%3Fy/json?q=1", "/images/x%3Fy/json?q=1"),
        ("/images/x%23y/json", "/images/x%23y/json"),
        ("/images/x@sha256:abc/json", "/images/x@sha256:abc/json"),
        ("/v4.0.0/libpod/info", "/v4.0.0/libpod/info"),
        ("/containers/json?filters=%7B%7D", "/containers/json?filters=%7B%7D"),
    ],
)
def test_forward_target(raw: str, forwarded: str) -> None:
    target = parse_target(raw)
    assert forward_target(target) == forwarded
    # What we forward parses back to the very path we decided on.
    assert parse_target(forwarded).api_path == target.api_path


def test_forward_target_with_rewritten_path() -> None:
    target = parse_target("/v1.41/containers/web/restart?t=5")
    full_id = "3f4e1a2b9c7d" * 5 + "abcd"
    assert forward_target(target, f"/containers/{full_id}/restart") == (
        f"/v1.41/containers/{full_id}/restart?t=5"
    )


def _general_verdict(raw: str) -> tuple[str, str] | str:
    try:
        return checked_path_and_query(raw)
    except BadTarget as e:
        return f"error: {e}"


def test_fast_path_agrees_with_the_character_checks() -> None:
    """parse_target's one-regex fast path accepts only what the full checks accept, unchanged."""
    rng = random.Random(1234)
    alphabet = "/..?#%2fF0aZ-_~!$&'()*+,;=:@\\ \t\x7f\x01é`{}[]|^\"<>"
    samples = [
        "/",
        "/_ping",
        "/v1.41/containers/json?all=1",
        "/containers/a..b/json",
        "/containers/.../json",
        "/containers/./json",
        "/containers/../json",
        "/containers/..?x",
        "/containers/.?x",
        "/x?",
        "/x?a?b#c",
        "/x//y",
        "/x/",
    ]
    samples += [
        "/" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(20000)
    ]
    for raw in samples:
        general = _general_verdict(raw)
        try:
            t = parse_target(raw)
        except BadTarget as e:
            assert general == f"error: {e}", raw
            continue
        assert not isinstance(general, str), raw
        path, query = general
        assert (t.version + t.api_path, t.query) == (path, query), raw


@pytest.mark.parametrize("path", ["/containers/web/json", "/images/a b/json", "/x/%/é", "/a@b:c"])
def test_forward_target_fast_path_matches_quote(path: str) -> None:
    expected = quote(path, safe="/!$&'()*+,;=:@")
    assert forward_target(RequestTarget(version="", api_path="/", query=""), path) == expected
