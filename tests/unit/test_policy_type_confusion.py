"""Type confusion in request bodies: dockerd decodes into typed Go structs, so a field of the
wrong JSON type is its 400. Every check must answer a Decision or BadBody (the proxy's 400),
never fail as a proxy bug (a 500), on every engine and in audit mode too."""

from __future__ import annotations

import json
from typing import Any

import pytest

from docker_socket_operator.api.models import DockerSocketPolicySpec
from docker_socket_operator.catalogue.operations import match_operation
from docker_socket_operator.policy.asks import audit_facts
from docker_socket_operator.policy.body import decode_docker_json
from docker_socket_operator.policy.compile import compile_policy
from docker_socket_operator.policy.decide import decide
from docker_socket_operator.policy.types import BadBody, Engine, RequestFacts

WRONG_TYPES: tuple[Any, ...] = ({}, [], [{}], [1], 1, 1.5, True, None, "x", {"a": {}})
HOST_CONFIG_FIELDS = (
    "Binds",
    "Mounts",
    "Privileged",
    "NetworkMode",
    "PidMode",
    "IpcMode",
    "UTSMode",
    "UsernsMode",
    "CgroupnsMode",
    "Cgroup",
    "CapAdd",
    "CapDrop",
    "Devices",
    "DeviceRequests",
    "DeviceCgroupRules",
    "SecurityOpt",
    "Sysctls",
    "Runtime",
    "CgroupParent",
    "VolumesFrom",
    "Links",
    "LogConfig",
    "Tmpfs",
    "GroupAdd",
    "MaskedPaths",
    "ReadonlyPaths",
    "ContainerIDFile",
    "Annotations",
    "ExtraHosts",
    "PortBindings",
    "Ulimits",
    "OomScoreAdj",
)
CONFIG_FIELDS = ("Volumes", "Labels", "Env", "User", "Image", "Entrypoint", "Cmd", "HostConfig")
SPECS: dict[str, dict[str, Any]] = {
    "enforce": {"rules": [{"allow": ["containers.create"], "create": {"bindPrefixes": ["/srv"]}}]},
    "audit": {"mode": "audit", "rules": [{"allow": ["system.ping"]}]},
    "owned": {"ownership": {"owner": "ci"}, "rules": [{"allow": ["containers.*"], "owned": True}]},
}


def _bodies() -> list[tuple[str, Any]]:
    cases: list[tuple[str, Any]] = []
    for field in HOST_CONFIG_FIELDS:
        for value in WRONG_TYPES:
            cases.append((f"HostConfig.{field}={value!r}", {"HostConfig": {field: value}}))
    for field in CONFIG_FIELDS:
        for value in WRONG_TYPES:
            cases.append((f"{field}={value!r}", {field: value}))
    for value in WRONG_TYPES:
        cases.append((f"NetworkingConfig={value!r}", {"NetworkingConfig": value}))
        cases.append(
            (f"EndpointsConfig={value!r}", {"NetworkingConfig": {"EndpointsConfig": value}})
        )
        cases.append(
            (
                f"Mounts[0].Source={value!r}",
                {"HostConfig": {"Mounts": [{"Type": "bind", "Source": value, "Target": "/x"}]}},
            )
        )
        cases.append(
            (
                f"LogConfig.Config={value!r}",
                {"HostConfig": {"LogConfig": {"Type": "json-file", "Config": value}}},
            )
        )
    return cases


@pytest.mark.parametrize("engine", ["docker", "podman", "unknown"])
@pytest.mark.parametrize("mode", sorted(SPECS))
def test_wrong_types_are_a_decision_or_a_400(mode: str, engine: Engine) -> None:
    policy = compile_policy(DockerSocketPolicySpec.model_validate(SPECS[mode]), name="ci")
    matched = match_operation("POST", "/containers/create")
    assert matched is not None
    crashes = []
    for label, body in _bodies():
        facts = RequestFacts(
            method="POST",
            api_path="/containers/create",
            op=matched.op,
            body=decode_docker_json(json.dumps(body).encode()),
            engine=engine,
        )
        try:
            decision = decide(policy, facts)
            audit_facts(facts)
        except BadBody:
            continue
        except Exception as e:  # the point: nothing else may escape
            crashes.append(f"{label}: {e!r}")
            continue
        host_config = body.get("HostConfig")
        if decision.allow and isinstance(host_config, dict):
            # Go decodes only a JSON true into the bool: that one must never pass
            assert host_config.get("Privileged") is not True, label
    assert crashes == []
