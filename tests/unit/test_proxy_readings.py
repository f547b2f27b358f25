"""A request head's reading is kept for a repeat of its bytes: the repeat must get exactly what a
fresh reading would (same parse, same facts, the decision of the policy in force now)."""

from __future__ import annotations

import dataclasses

import pytest

from docker_socket_operator.api.models import DockerSocketPolicySpec
from docker_socket_operator.catalogue.operations import match_operation
from docker_socket_operator.catalogue.paths import parse_target
from docker_socket_operator.policy.compile import CompiledPolicy, compile_policy
from docker_socket_operator.policy.types import ContainerFacts, CreateContext, RequestFacts
from docker_socket_operator.proxy.facts import READINGS_KEPT, Readings, request_facts
from docker_socket_operator.proxy.http1 import HttpError

PING = b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"


def policy(*allow: str) -> CompiledPolicy:
    return compile_policy(
        DockerSocketPolicySpec.model_validate({"rules": [{"allow": list(allow)}]})
    )


def test_a_repeated_head_is_read_once() -> None:
    readings = Readings()
    first = readings.read(PING, "docker")
    again = readings.read(bytes(PING), "docker")
    assert first is again
    assert not isinstance(first, tuple)
    assert first.facts == request_facts("GET", "/_ping", engine="docker")


def test_another_engine_reads_the_head_again() -> None:
    readings = Readings()
    docker = readings.read(PING, "docker")
    podman = readings.read(PING, "podman")
    assert not isinstance(podman, tuple) and not isinstance(docker, tuple)
    assert podman is not docker and podman.facts.engine == "podman"


def test_the_decision_follows_the_policy_in_force() -> None:
    reading = Readings().read(PING, "docker")
    assert not isinstance(reading, tuple)
    allowing, denying = policy("system.ping"), policy("system.version")
    assert reading.decided(allowing, reading.facts).allow
    assert not reading.decided(denying, reading.facts).allow
    assert reading.decided(allowing, reading.facts).allow


def test_derived_facts_are_decided_afresh() -> None:
    reading = Readings().read(b"GET /containers/web/json HTTP/1.1\r\nHost: d\r\n\r\n", "docker")
    assert not isinstance(reading, tuple)
    p = compile_policy(
        DockerSocketPolicySpec.model_validate(
            {"rules": [{"allow": ["containers.inspect"], "containers": {"names": ["web"]}}]}
        )
    )
    web = reading.facts.but(container=ContainerFacts(id="a" * 64, name="web"))
    other = reading.facts.but(container=ContainerFacts(id="b" * 64, name="db"))
    assert reading.decided(p, web).allow
    assert not reading.decided(p, other).allow
    assert reading.decided(p, web).allow


def test_bad_heads_are_refused_every_time_and_never_kept() -> None:
    readings = Readings()
    bad = b"GET /_ping HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
    for _ in range(2):
        with pytest.raises(HttpError):
            readings.read(bad, "docker")
    refused = readings.read(b"GET /containers/a/../b/json HTTP/1.1\r\nHost: d\r\n\r\n", "docker")
    assert isinstance(refused, tuple) and refused[1].status == 400


def test_the_kept_readings_are_bounded() -> None:
    readings = Readings()
    for i in range(READINGS_KEPT * 3):
        readings.read(b"GET /_ping?n=%d HTTP/1.1\r\nHost: d\r\n\r\n" % i, "docker")
    assert len(readings._kept) <= READINGS_KEPT


def test_but_keeps_every_other_field() -> None:
    facts = RequestFacts(
        method="GET",
        api_path="/containers/x/json",
        op=None,
        params={"id": "x"},
        query={"size": "1"},
        body={"a": 1},
        container=ContainerFacts(id="c" * 64, name="x"),
        libpod=True,
        engine="podman",
        target=parse_target("/v1.41/containers/x/json?size=1"),
        object_labels={"k": "v"},
        create_context=CreateContext(volumes={"v": {}}),
    )
    start = match_operation("POST", "/containers/y/start")
    assert start is not None
    other = RequestFacts(
        method="POST",
        api_path="/containers/y/start",
        op=start.op,
        params={"id": "y"},
        query={},
        body=None,
        container=ContainerFacts(id="d" * 64, name="y"),
        libpod=False,
        engine="docker",
        target=parse_target("/containers/y/start"),
        object_labels=None,
        create_context=None,
    )
    names = [f.name for f in dataclasses.fields(RequestFacts)]
    assert all(getattr(facts, n) != getattr(other, n) for n in names)
    assert facts.but() == facts
    for name in names:
        changed = facts.but(**{name: getattr(other, name)})
        assert getattr(changed, name) == getattr(other, name)
        assert all(getattr(changed, n) == getattr(facts, n) for n in names if n != name)


def test_facts_with_a_kept_container_are_kept_and_decided_once_per_policy() -> None:
    # The answer memo gives one ContainerFacts object per exact inspect answer: the same object
    # gives the same facts and decision; another object (another answer) is decided afresh.
    reading = Readings().read(b"GET /containers/web/json HTTP/1.1\r\nHost: d\r\n\r\n", "docker")
    assert not isinstance(reading, tuple)
    names = {"rules": [{"allow": ["containers.inspect"], "containers": {"names": ["web"]}}]}
    p = compile_policy(DockerSocketPolicySpec.model_validate(names))
    web = ContainerFacts(id="a" * 64, name="web")
    renamed = ContainerFacts(id="a" * 64, name="db")  # the same container, renamed
    first = reading.with_container(reading.facts, web)
    assert first == reading.facts.but(container=web)
    assert reading.with_container(reading.facts, web) is first
    assert reading.decided(p, first).allow
    moved = reading.with_container(reading.facts, renamed)
    assert moved.container is renamed and not reading.decided(p, moved).allow
    again = reading.with_container(reading.facts, web)
    assert again.container is web and reading.decided(p, again).allow
    reloaded = compile_policy(
        DockerSocketPolicySpec.model_validate({"rules": [{"allow": ["system.ping"]}]})
    )
    assert not reading.decided(reloaded, again).allow  # the policy in force decides
    # Facts that are not the reading's own (a body was read) are never kept.
    with_body = reading.facts.but(body={"x": 1})
    assert reading.with_container(with_body, web) is not reading.with_container(with_body, web)
