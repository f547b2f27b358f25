"""Operations other than container create (integration: tests/integration/test_more_ops.py).

Podman's compat handlers read query parameters the Docker API does not define, and some act
beyond the object a request names: restart `all` restarts every container, a network delete's
`force` removes the containers attached to it, an image delete's `force` removes the containers
made from it, a push's `destination` writes any host path. On Podman (and an engine the proxy
cannot identify) a state-changing operation takes only the Docker API's parameters; image
names a daemon turns into a push destination are plain references; and a rename may not move
a container into or out of a rule scoped by name."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from docker_socket_operator.api.models import DockerSocketPolicySpec
from docker_socket_operator.catalogue.operations import (
    ALL_OPERATIONS,
    UNCHECKED_HOST_POWER,
    match_operation,
)
from docker_socket_operator.policy.body import decode_docker_json
from docker_socket_operator.policy.compile import CompiledPolicy, compile_policy
from docker_socket_operator.policy.decide import decide
from docker_socket_operator.policy.queries import DOCKER_WRITE_PARAMS, query_reason
from docker_socket_operator.policy.types import (
    ContainerFacts,
    Decision,
    Engine,
    PolicyError,
    RequestFacts,
)


def compiled(spec: dict[str, Any]) -> CompiledPolicy:
    return compile_policy(DockerSocketPolicySpec.model_validate(spec))


def send(
    p: CompiledPolicy,
    method: str,
    path: str,
    *,
    engine: Engine = "unknown",
    container: ContainerFacts | None = None,
    query: dict[str, str] | None = None,
    body: Any = None,
) -> Decision:
    matched = match_operation(method, path)
    assert matched is not None
    raw = json.dumps(body).encode() if body is not None else b""
    return decide(
        p,
        RequestFacts(
            method=method,
            api_path=path,
            op=matched.op,
            params=matched.params,
            query=query or {},
            body=decode_docker_json(raw),
            container=container if p.needs_container(matched.op) else None,
            engine=engine,
        ),
    )


@pytest.mark.parametrize(
    ("op", "query"),
    [
        ("containers.restart", {"all": "1"}),
        ("containers.restart", {"t": "0", "all": "true"}),
        ("containers.stop", {"ignore": "1"}),
        ("networks.delete", {"force": "1"}),
        ("networks.delete", {"force": "0"}),
        ("images.delete", {"force": "1"}),
        ("images.delete", {"force": "true"}),
        ("images.delete", {"force": "yes"}),
        ("images.push", {"destination": "docker-archive:/etc/cron.d/x"}),
        ("images.push", {"tag": "1", "compress": "true"}),
        ("containers.put-archive", {"path": "/", "rename": '{"a":"b"}'}),
        ("containers.resize", {"h": "1", "w": "1", "running": "1"}),
        ("containers.delete", {"depend": "1"}),
        ("exec.start", {"anything": "x"}),
    ],
)
def test_podman_extras_on_write_operations_are_refused(op: str, query: dict[str, str]) -> None:
    assert query_reason(op, query, "podman") is not None
    assert query_reason(op, query, "unknown") is not None
    # dockerd reads none of these (an image delete's force leaves other containers alone)
    assert query_reason(op, query, "docker") is None


@pytest.mark.parametrize(
    ("op", "query"),
    [
        ("containers.restart", {"t": "10"}),
        ("containers.stop", {"t": "10", "signal": "SIGTERM"}),
        ("containers.delete", {"force": "1", "v": "1"}),
        ("containers.kill", {"signal": "KILL"}),
        ("containers.wait", {"condition": "not-running"}),
        ("containers.put-archive", {"path": "/tmp", "noOverwriteDirNonDir": "1"}),
        ("containers.attach", {"stream": "1", "stdin": "1", "stdout": "1", "detachKeys": "x"}),
        ("containers.start", {"detachKeys": "ctrl-p,ctrl-q"}),
        ("images.delete", {"force": "0", "noprune": "1"}),
        ("images.delete", {"force": "false"}),
        ("images.tag", {"repo": "localhost/x", "tag": "1", "force": "0"}),
        ("images.push", {"tag": "1"}),
        ("volumes.delete", {"force": "1"}),
        ("exec.resize", {"h": "24", "w": "80"}),
        ("containers.list", {"all": "1", "trunc_cmd": "0"}),
        ("images.list", {"only_ids": "0"}),
    ],
)
def test_what_clients_send_still_passes(op: str, query: dict[str, str]) -> None:
    for engine in ("docker", "podman", "unknown"):
        assert query_reason(op, query, engine) is None, (op, query, engine)


def test_every_write_parameter_list_names_a_write_operation() -> None:
    writes = {op.name for op in ALL_OPERATIONS if op.writes}
    assert set(DOCKER_WRITE_PARAMS) <= writes


@pytest.mark.parametrize(
    ("op", "query", "params"),
    [
        ("images.tag", {"repo": "dir:5000/x", "tag": "1"}, {}),
        ("images.tag", {"repo": "oci-archive:5000/x"}, {}),
        ("images.tag", {"repo": "localhost/x", "tag": "a,b"}, {}),
        ("images.commit", {"container": "c", "repo": "docker-archive:5000/x"}, {}),
        ("images.push", {}, {"name": "dir:5000/x"}),
        ("images.push", {"tag": "../x"}, {"name": "localhost/x"}),
    ],
)
def test_names_a_push_would_write_as_a_transport_are_refused(
    op: str, query: dict[str, str], params: dict[str, str]
) -> None:
    for engine in ("docker", "podman", "unknown"):
        assert query_reason(op, query, engine, params) is not None


def test_decide_reads_the_engine() -> None:
    p = compiled({"rules": [{"allow": ["containers.restart", "networks.delete"]}]})
    c = ContainerFacts(id="a" * 64, name="web")
    cases: tuple[tuple[Engine, bool], ...] = (
        ("docker", True),
        ("podman", False),
        ("unknown", False),
    )
    for engine, ok in cases:
        got = send(
            p, "POST", "/containers/web/restart", engine=engine, container=c, query={"all": "1"}
        )
        assert got.allow is ok, engine
        got = send(p, "DELETE", "/networks/podman", engine=engine, query={"force": "1"})
        assert got.allow is ok, engine
    assert send(p, "DELETE", "/networks/podman", engine="podman").allow


def test_audit_floor_keeps_podman_extras_refused() -> None:
    p = compiled({"mode": "audit", "rules": []})
    got = send(p, "DELETE", "/images/x", engine="podman", query={"force": "1"})
    assert not got.allow
    got = send(p, "DELETE", "/images/x", engine="docker", query={"force": "1"})
    assert got.allow and got.would_deny


RENAME_SPEC: dict[str, Any] = {
    "rules": [
        {"allow": ["exec.create"], "containers": {"names": ["web"]}},
        {"deny": ["exec.create"], "containers": {"names": ["prod-*"]}},
        {"allow": ["containers.rename", "exec.create"], "containers": {"labels": {"team": "ci"}}},
        {"allow": ["containers.rename"]},
    ]
}


@pytest.mark.parametrize(
    ("old", "new", "ok"),
    [
        ("other", "web", False),  # into a rule scoped by name: exec opens on it
        ("/other", "/web", False),
        ("prod-db", "db", False),  # out of a scoped deny
        ("web", "web-old", True),  # out of an allow only narrows (compose renames what it replaces)
        ("db", "prod-db", True),  # into a deny only narrows
        ("other", "other-2", True),
        ("prod-db", "prod-db2", True),
    ],
)
def test_rename_cannot_change_which_name_scopes_apply(old: str, new: str, ok: bool) -> None:
    p = compiled(RENAME_SPEC)
    c = ContainerFacts(id="d" * 64, name=old.lstrip("/"), labels={"team": "ci"})
    got = send(p, "POST", f"/containers/{old.lstrip('/')}/rename", container=c, query={"name": new})
    assert got.allow is ok, got.reason


def test_rename_under_label_scopes_only_is_unchanged() -> None:
    p = compiled(
        {"rules": [{"allow": ["containers.rename"], "containers": {"labels": {"a": "b"}}}]}
    )
    c = ContainerFacts(id="d" * 64, name="x", labels={"a": "b"})
    assert send(p, "POST", "/containers/x/rename", container=c, query={"name": "y"}).allow


# -- operations that give the node away where the proxy cannot look --------------------------


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "p1", path)


UNCHECKED = [op for op in ALL_OPERATIONS if op.name in UNCHECKED_HOST_POWER]


def test_every_unchecked_host_power_name_is_an_operation() -> None:
    assert {op.name for op in UNCHECKED} == UNCHECKED_HOST_POWER


@pytest.mark.parametrize("op", UNCHECKED, ids=lambda op: op.name)
@pytest.mark.parametrize("glob", ["*", "*.*", "{section}.*", "{head}*.*", "*.{verb}*"])
def test_a_glob_never_allows_unchecked_host_power(op: Any, glob: str) -> None:
    # `allow: ["*"]` beside create constraints: a plugin's privileges, a service's mounts, a
    # foreign swarm's manager or a BuildKit solve would hand out what the constraints refuse.
    section, verb = op.name.split(".")
    pattern = glob.format(section=section, head=section[0], verb=verb[:2])
    try:
        p = compiled({"rules": [{"allow": [pattern, "system.ping"]}]})
    except PolicyError as e:
        assert "name each one" in str(e)  # the glob names nothing else: refused outright
        return
    d = send(p, op.method, concrete(op.template))
    assert not d.allow, (pattern, op.name)
    # Named, it is allowed: the policy's author asked for exactly that.
    named = compiled({"rules": [{"allow": [pattern, op.name]}]})
    assert send(named, op.method, concrete(op.template)).allow


def test_a_glob_still_allows_the_rest_of_its_section() -> None:
    p = compiled({"rules": [{"allow": ["plugins.*", "services.*", "swarm.*"]}]})
    for method, path in [
        ("GET", "/plugins"),
        ("POST", "/plugins/p1/disable"),
        ("GET", "/services/s1"),
        ("DELETE", "/services/s1"),
        ("POST", "/swarm/leave"),
    ]:
        assert send(p, method, path).allow, path
    assert not send(p, "POST", "/plugins/pull").allow


def test_a_deny_glob_still_denies_them() -> None:
    p = compiled({"rules": [{"deny": ["plugins.*"]}, {"allow": ["plugins.pull"]}]})
    assert not send(p, "POST", "/plugins/pull").allow


def test_a_glob_that_names_only_them_is_an_error() -> None:
    with pytest.raises(PolicyError, match="name each one"):
        compiled({"rules": [{"allow": ["swarm.j*"]}]})
    compiled({"rules": [{"deny": ["swarm.j*"]}]})
