"""The differential fuzzer, bounded for `make test` (a case count, not a time); `make fuzz` runs it
for FUZZ_SECONDS. FUZZ_SEED replays a seed (the run prints the one it used)."""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from docker_socket_operator.api.models import DockerSocketPolicySpec
from docker_socket_operator.policy.compile import compile_policy
from tests.fuzz.fakedaemon import FakeDaemon
from tests.fuzz.generator import Case, make_case
from tests.fuzz.goreading import Engine, go_fold, go_json, query_reading, query_values
from tests.fuzz.oracle import check_record
from tests.fuzz.runner import run, send_direct
from tests.fuzz.world import CONTAINERS, POLICIES

CI_CASES = int(os.environ.get("FUZZ_CASES", "5000"))
CI_SEED = int(os.environ.get("FUZZ_SEED", "20261201"))


def test_nothing_denied_reaches_the_daemon() -> None:
    """Mutated, pipelined and interleaved requests through the real proxy, on a Docker-like and a
    Podman-like daemon under a scoped and a broad policy (and one that passes for neither engine,
    where both readings must hold): every request the daemon received is allowed when re-decided
    as the daemon read it, and the proxy never fails or dies."""
    report = run(CI_SEED, cases=CI_CASES)
    assert not report.violations, report.summary()
    assert report.cases == CI_CASES
    # the run is not vacuous: a good share of the requests were let through
    assert report.requests_recorded > CI_CASES // 4, report.summary()


@pytest.fixture(params=["docker", "podman"])
def bare_daemon(request: pytest.FixtureRequest) -> Iterator[FakeDaemon]:
    engine: Engine = request.param
    with tempfile.TemporaryDirectory(prefix="dso-fuzz-", dir="/tmp") as tmp:
        daemon = FakeDaemon(str(Path(tmp) / "d.sock"), engine).start()
        try:
            yield daemon
        finally:
            daemon.stop()


def _violations(daemon: FakeDaemon, policy: str, data: bytes) -> list[str]:
    compiled = compile_policy(DockerSocketPolicySpec.model_validate(POLICIES[policy]))
    since = len(daemon.snapshot())
    send_direct(daemon, data)
    return [
        v.kind for rec in daemon.snapshot(since) for v in check_record(compiled, rec, daemon.engine)
    ]


def _post(path: str, body: str) -> bytes:
    data = body.encode()
    return b"POST %s HTTP/1.1\r\nHost: d\r\nContent-Length: %d\r\n\r\n%s" % (
        path.encode(),
        len(data),
        data,
    )


SECRET_ID = CONTAINERS[3].id


@pytest.mark.parametrize(
    ("policy", "raw", "kind"),
    [
        # a privileged create, the key spelt with U+017F where Go folds it to 's'
        ("broad", _post("/v1.41/containers/create", '{"Image":"alpine","Ho\u017ftConfig":{"Privileged":true}}'),
         "denied-reached"),
        # Go merges a repeated object: the second HostConfig does not undo the first
        ("broad", _post("/containers/create", '{"HostConfig":{"Privileged":true},"HostConfig":{}}'),
         "denied-reached"),
        # a container the scoped client may not touch, and one it cannot even see
        ("scoped", b"POST /v1.41/containers/db/restart HTTP/1.1\r\nHost: d\r\n\r\n", "denied-reached"),
        ("scoped", b"GET /containers/" + SECRET_ID.encode() + b"/json HTTP/1.1\r\nX-Fuzz-Case: 1\r\n\r\n",
         "denied-reached"),
        # rename out of scope through a repeated parameter (dockerd reads the first)
        ("scoped", b"POST /containers/web/rename?name=secret2&name=web-3 HTTP/1.1\r\nHost: d\r\n\r\n",
         "two-readings"),
        ("scoped", b"POST /containers/web/../db/kill HTTP/1.1\r\nHost: d\r\n\r\n", "two-readings"),
        # framing a Go server reads one way and a strict parser another
        ("broad", b"GET /_ping HTTP/1.1\nHost: d\r\n\r\n", "framing"),
    ],
)  # fmt: skip
def test_the_oracle_sees_what_slips_through(
    bare_daemon: FakeDaemon, policy: str, raw: bytes, kind: str
) -> None:
    """Sent straight to the fake daemon (no proxy), each of these is flagged: the oracle is not
    one that always passes."""
    assert kind in _violations(bare_daemon, policy, raw)


def test_podman_readings(bare_daemon: FakeDaemon) -> None:
    """Host power that only Podman reads into a create body is seen on the Podman daemon only."""
    body = '{"Image":"alpine","HostConfig":{"Binds":["../../..:/host"]},"Volumes":{"/:/h":{}}}'
    raw = _post("/containers/create", body)
    found = _violations(bare_daemon, "broad", raw)
    assert ("host-power" in found) == (bare_daemon.engine == "podman"), found


def test_cases_replay_from_their_seed() -> None:
    """A seed's case i is the same bytes on every run (what makes a reproducer a reproducer)."""

    def cases(seed: int) -> list[Case]:
        rng = random.Random(seed)
        return [make_case(rng, i, "podman") for i in range(50)]

    assert [c.streams for c in cases(5)] == [c.streams for c in cases(5)]
    assert [c.streams for c in cases(5)] != [c.streams for c in cases(6)]


def test_go_readings() -> None:
    """The oracle's model of the daemons: Go's key folding and the two query readings."""
    assert go_fold("HO\u017fTCONFIG") == "hostconfig"
    assert go_fold("\u212aernelMemory") == "kernelmemory"
    assert go_fold("\ufb01le") != "file"  # no multi-rune folds in Go
    body = go_json(b'{"HostConfig":{"Privileged":true},"hostconfig":{"Binds":null}}')
    assert body["hostconfig"]["privileged"] is True  # the repeated object merged, not replaced
    values = query_values("name=a&NAME=b&name=c+d&x=%zz&y;z=1")
    assert query_reading(values, "docker") == {"name": "a", "NAME": "b"}
    assert query_reading(values, "podman") == {"name": "c d"}
