"""Audit mode: what enforce would deny is forwarded as would-deny, except the floor."""

from __future__ import annotations

from typing import Any

import pytest

from docker_socket_operator.catalogue.operations import ALL_OPERATIONS
from docker_socket_operator.policy.asks import audit_facts, create_asks
from docker_socket_operator.policy.body import decode_docker_json
from docker_socket_operator.policy.floor import AUDIT_FORWARDABLE, inspect_host_power
from docker_socket_operator.policy.types import ContainerFacts, RequestFacts
from tests.unit.test_policy_decide import WEB, compiled, send

PRIV = ContainerFacts(id="d" * 64, name="agent", host_power="privileged")


def audit(spec: dict[str, Any] | None = None) -> Any:
    return compiled({"mode": "audit", "rules": [], **(spec or {})})


def test_enforce_is_the_default_and_never_would_deny() -> None:
    p = compiled({"rules": []})
    assert p.mode == "enforce"
    d = send(p, "POST", "/containers/web/restart", container=WEB)
    assert not d.allow and not d.would_deny


def test_audit_forwards_a_denial_with_its_rule_and_reason() -> None:
    p = audit({"rules": [{"deny": ["containers.restart"]}]})
    d = send(p, "POST", "/containers/web/restart", container=WEB)
    assert d.allow and d.would_deny
    assert d.rule == "rules[0] deny containers.restart" and "denied by policy" in d.reason
    d = send(p, "GET", "/containers/json")
    assert d.allow and d.would_deny and d.rule == "default deny"


def test_allowed_requests_stay_plain_allows() -> None:
    p = audit({"rules": [{"allow": ["system.ping"]}]})
    d = send(p, "GET", "/_ping")
    assert d.allow and not d.would_deny


def test_audit_reads_every_body_and_container() -> None:
    p = audit()
    ops = {op.name: op for op in ALL_OPERATIONS}
    assert p.needs_body(ops["containers.create"]) and p.needs_body(ops["exec.create"])
    assert p.needs_container(ops["containers.restart"]) and p.needs_container(ops["exec.start"])


@pytest.mark.parametrize(
    "body",
    [
        {"Image": "bb", "HostConfig": {"Privileged": True}},
        {"Image": "bb", "HostConfig": {"privileged": True}},
        {"Image": "bb", "Privileged": True},  # the pre-1.25 embedded HostConfig
        {"Image": "bb", "HostConfig": {"Binds": ["/:/host"]}},
        {
            "Image": "bb",
            "HostConfig": {"Mounts": [{"Type": "bind", "Source": "/", "Target": "/h"}]},
        },
        {"Image": "bb", "HostConfig": {"PidMode": "host"}},
        {"Image": "bb", "HostConfig": {"NetworkMode": "host"}},
        {"Image": "bb", "HostConfig": {"CapAdd": ["SYS_ADMIN"]}},
        {"Image": "bb", "HostConfig": {"Devices": [{"PathOnHost": "/dev/sda"}]}},
        {"Image": "bb", "HostConfig": {"SecurityOpt": ["seccomp=unconfined"]}},
    ],
)
def test_the_floor_keeps_host_power_creates_denied(body: dict[str, Any]) -> None:
    for p in (audit(), audit({"rules": [{"allow": ["containers.create"]}]})):
        d = send(p, "POST", "/containers/create", body=body, query={"name": "x"})
        assert not d.allow and not d.would_deny and "audit floor" in d.reason


def test_a_plain_create_is_forwarded() -> None:
    d = send(audit(), "POST", "/containers/create", body={"Image": "bb", "Cmd": ["true"]})
    assert d.allow and d.would_deny


def test_a_policy_that_opens_host_power_still_allows_it_in_audit_mode() -> None:
    p = audit({"rules": [{"allow": ["containers.create"], "create": {"privileged": True}}]})
    d = send(
        p, "POST", "/containers/create", body={"Image": "bb", "HostConfig": {"Privileged": True}}
    )
    assert d.allow and not d.would_deny


def test_exec_floor_privileged_and_host_power_containers() -> None:
    p = audit()
    d = send(p, "POST", "/containers/web/exec", container=WEB, body={"Cmd": ["id"], "User": "0"})
    assert d.allow and d.would_deny
    d = send(
        p, "POST", "/containers/web/exec", container=WEB, body={"Cmd": ["id"], "Privileged": True}
    )
    assert not d.allow and "Privileged" in d.reason
    for method, path in [
        ("POST", "/containers/agent/exec"),
        ("POST", "/containers/agent/attach"),
        ("PUT", "/containers/agent/archive"),
        ("GET", "/containers/agent/archive"),
        ("GET", "/containers/agent/export"),
    ]:
        d = send(p, method, path, container=PRIV, body={"Cmd": ["id"]} if "exec" in path else None)
        assert not d.allow and "host power (privileged)" in d.reason, path
    d = send(p, "POST", "/containers/agent/restart", container=PRIV)
    assert d.allow and d.would_deny  # a restart reaches no host power through the container


def test_visibility_is_a_floor() -> None:
    p = audit({"visibility": {"containers": {"names": ["web"]}}})
    db = ContainerFacts(id="b" * 64, name="db")
    d = send(p, "POST", "/containers/db/exec", container=db, body={"Cmd": ["sh"]})
    assert not d.allow and d.rule == "visibility" and not d.would_deny
    d = send(p, "POST", "/containers/create", body={"Image": "bb"}, query={"name": "db2"})
    assert not d.allow and d.rule == "visibility"
    d = send(p, "POST", "/containers/prune")
    assert not d.allow


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nonsense"),
        ("POST", "/plugins/pull"),
        ("POST", "/swarm/init"),
        ("GET", "/swarm"),
        ("POST", "/services/create"),
        ("POST", "/build"),
        ("POST", "/networks/create"),
        ("POST", "/volumes/prune"),
        ("POST", "/containers/prune"),
        ("POST", "/session"),
        ("GET", "/secrets"),
    ],
)
def test_operations_outside_the_allowlist_stay_denied(method: str, path: str) -> None:
    d = send(audit(), method, path)
    assert not d.allow and "audit floor" in d.reason


def test_libpod_routes_stay_denied() -> None:
    d = audit().plans  # no libpod rules at all
    assert d == {}
    from docker_socket_operator.policy.decide import decide

    req = RequestFacts(method="POST", api_path="/libpod/containers/create", op=None, libpod=True)
    out = decide(audit(), req)
    assert not out.allow and "libpod" in out.reason


def test_volume_create_with_a_host_device_stays_denied() -> None:
    body = {"Name": "v", "DriverOpts": {"type": "none", "o": "bind", "device": "/etc"}}
    d = send(audit(), "POST", "/volumes/create", body=body)
    assert not d.allow
    d = send(audit(), "POST", "/volumes/create", body={"Name": "v"})
    assert d.allow and d.would_deny


def test_a_start_that_restores_a_checkpoint_stays_denied() -> None:
    d = send(audit(), "POST", "/containers/web/start", container=WEB)
    assert d.allow and d.would_deny
    query = {"checkpoint": "../../etc"}
    d = send(audit(), "POST", "/containers/web/start", container=WEB, query=query)
    assert not d.allow and "checkpoint" in d.reason


def test_every_forwardable_operation_is_in_the_catalogue() -> None:
    assert {op.name for op in ALL_OPERATIONS} >= AUDIT_FORWARDABLE


@pytest.mark.parametrize(
    ("host_config", "mounts", "power"),
    [
        ({}, [], ""),
        ({"NetworkMode": "bridge", "CapAdd": ["CHOWN"]}, [{"Type": "volume"}], ""),
        ({"Privileged": True}, [], "privileged"),
        ({"PidMode": "host"}, [], "pidmode host"),
        ({"NetworkMode": "container:abc"}, [], "networkmode container:abc"),
        ({"CapAdd": ["NET_ADMIN"]}, [], "capabilities NET_ADMIN"),
        ({"Binds": ["/srv:/srv"]}, [], "host binds"),
        ({}, [{"Type": "bind", "Source": "/etc"}], "bind mount /etc"),
        ({"SecurityOpt": ["apparmor=unconfined"]}, [], "security option apparmor=unconfined"),
        ({"SecurityOpt": ["no-new-privileges"], "MaskedPaths": ["/proc/kcore"]}, [], ""),
        ({"SecurityOpt": ["no-new-privileges:true"]}, [], ""),
        ({"SecurityOpt": ['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}']}, [],
         'security option seccomp={"defaultAction":"SCMP_ACT_ALLOW"}'),
        ({"SecurityOpt": ["no-new-privileges=false"]}, [],
         "security option no-new-privileges=false"),
        ({"MaskedPaths": []}, [], "maskedpaths empty (system paths unmasked)"),
        ({"MaskedPaths": None, "ReadonlyPaths": []}, [],
         "readonlypaths empty (system paths unmasked)"),
        ({"CgroupParent": "/"}, [], "cgroupparent"),
        ({"Sysctls": {"net.ipv4.ip_forward": "1"}}, [], "sysctls"),
    ],
)  # fmt: skip
def test_host_power_of_an_inspected_container(
    host_config: dict[str, Any], mounts: list[Any], power: str
) -> None:
    assert inspect_host_power({"HostConfig": host_config, "Mounts": mounts}) == power


def test_audit_facts_of_a_create_and_an_exec() -> None:
    body = decode_docker_json(
        b'{"Image": "bb:1", "Labels": {"ci.job": "7"}, "HostConfig": {"Binds": ["/srv/c:/c", "vol:/v"],'
        b' "CapAdd": ["cap_net_admin", "CHOWN"], "privileged": true}}'
    )
    asks = create_asks(body, "/job-7")
    assert asks == {
        "name": "job-7",
        "image": "bb:1",
        "labels": {"ci.job": "7"},
        "privileged": True,
        "binds": ["/srv/c"],
        "capabilities": ["NET_ADMIN"],
    }
    matched = next(op for op in ALL_OPERATIONS if op.name == "exec.create")
    req = RequestFacts(
        method="POST",
        api_path="/containers/web/exec",
        op=matched,
        body=decode_docker_json(b'{"User": "app", "Cmd": ["id"]}'),
        container=WEB,
    )
    assert audit_facts(req) == {
        "container": {"name": "web", "labels": {"team": "ci"}},
        "exec": {"user": "app"},
    }


def test_the_status_says_a_policy_is_in_audit_mode() -> None:
    from docker_socket_operator.controller.status import Outcome, compute_status

    policy: dict[str, Any] = {"metadata": {"generation": 2}, "spec": {"mode": "audit"}}
    status = compute_status(policy, Outcome(), None, now="t")
    audit_mode = [c for c in status["conditions"] if c["type"] == "AuditMode"]
    assert (
        audit_mode
        and audit_mode[0]["status"] == "True"
        and "would-deny" in audit_mode[0]["message"]
    )
    policy["spec"]["mode"] = "enforce"
    status = compute_status(policy, Outcome(), None, now="t")
    assert all(c["type"] != "AuditMode" for c in status["conditions"])


def test_the_proxy_policy_document_carries_audit_mode_only_when_set() -> None:
    from docker_socket_operator.api.models import DockerSocketPolicySpec
    from docker_socket_operator.controller.render.configmap import policy_document

    audit_spec = DockerSocketPolicySpec.model_validate({"mode": "audit"})
    assert policy_document("p", audit_spec)["spec"]["mode"] == "audit"
    assert "mode" not in policy_document("p", DockerSocketPolicySpec())["spec"]
