"""Rules in order, default deny, container scoping, visibility, libpod, compile errors."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from docker_socket_operator.api.models import DockerSocketPolicySpec
from docker_socket_operator.catalogue.operations import ALL_OPERATIONS, match_operation
from docker_socket_operator.policy.body import decode_docker_json
from docker_socket_operator.policy.compile import (
    CompiledPolicy,
    compile_policy,
    expand_presets,
    load_policy_file,
)
from docker_socket_operator.policy.decide import decide
from docker_socket_operator.policy.types import ContainerFacts, Decision, PolicyError, RequestFacts

WEB = ContainerFacts(id="a" * 64, name="web", labels={"team": "ci"})
DB = ContainerFacts(id="b" * 64, name="db", labels={"team": "data"})
SHOP = ContainerFacts(id="c" * 64, name="shop-api-1", labels={"com.docker.compose.project": "shop"})


def compiled(spec: dict[str, Any]) -> CompiledPolicy:
    return compile_policy(DockerSocketPolicySpec.model_validate(spec))


def send(
    p: CompiledPolicy,
    method: str,
    path: str,
    *,
    container: ContainerFacts | None = None,
    body: Any = None,
    query: dict[str, str] | None = None,
) -> Decision:
    matched = match_operation(method, path)
    op = matched.op if matched else None
    raw = json.dumps(body).encode() if body is not None else b""
    return decide(
        p,
        RequestFacts(
            method=method,
            api_path=path,
            op=op,
            params=matched.params if matched else {},
            query=query or {},
            body=decode_docker_json(raw),
            container=container if op is None or p.needs_container(op) else None,
        ),
    )


def test_default_deny_and_unknown_route() -> None:
    p = compiled({"rules": []})
    d = send(p, "GET", "/containers/json")
    assert not d.allow and d.rule == "default deny" and "containers.list" in d.reason
    d = send(p, "GET", "/nonsense")
    assert not d.allow and d.reason == "unknown API route"


def test_first_match_wins() -> None:
    p = compiled({"rules": [{"deny": ["containers.delete"]}, {"allow": ["containers.*"]}]})
    d = send(p, "DELETE", "/containers/web", container=WEB)
    assert not d.allow and d.rule == "rules[0] deny containers.delete"
    d = send(p, "POST", "/containers/web/restart", container=WEB)
    assert d.allow and d.rule == "rules[1] allow containers.restart"


def test_head_is_its_own_operation() -> None:
    p = compiled({"rules": [{"allow": ["containers.archive-info"]}]})
    assert send(p, "HEAD", "/containers/web/archive", container=WEB).allow
    assert not send(p, "GET", "/containers/web/archive", container=WEB).allow


def test_scoped_by_name() -> None:
    p = compiled({"rules": [{"allow": ["containers.restart"], "containers": {"names": ["web"]}}]})
    op = match_operation("POST", "/containers/x/restart")
    assert op is not None and p.needs_container(op.op)
    d = send(p, "POST", "/containers/web/restart", container=WEB)
    assert d.allow and d.rule == "rules[0] allow containers.restart (containers: names=[web])"
    assert not send(p, "POST", "/containers/db/restart", container=DB).allow
    assert not send(p, "POST", "/containers/x/restart", container=None).allow


def test_scoped_by_label_and_glob() -> None:
    p = compiled(
        {
            "rules": [
                {
                    "allow": ["containers.logs"],
                    "containers": {"labels": {"team": "*"}, "names": ["w*"]},
                },
                {"allow": ["containers.stop"], "containers": {"labels": {"team": "data"}}},
            ]
        }
    )
    assert send(p, "GET", "/containers/web/logs", container=WEB).allow
    assert not send(p, "GET", "/containers/db/logs", container=DB).allow
    assert send(p, "POST", "/containers/db/stop", container=DB).allow
    assert not send(p, "POST", "/containers/web/stop", container=WEB).allow


def test_scoped_rule_does_not_match_operations_without_a_container() -> None:
    p = compiled(
        {
            "rules": [
                {"allow": ["images.list", "containers.prune"], "containers": {"names": ["web"]}}
            ]
        }
    )
    assert not send(p, "GET", "/images/json").allow
    assert not send(p, "POST", "/containers/prune").allow


def test_scoped_exec_follows_the_exec_container() -> None:
    p = compiled({"rules": [{"allow": ["exec.*"], "containers": {"names": ["web"]}}]})
    assert send(p, "POST", "/containers/web/exec", container=WEB, body={"Cmd": ["ls"]}).allow
    assert send(p, "POST", "/exec/123/start", container=WEB).allow
    assert not send(p, "POST", "/exec/456/start", container=DB).allow


def test_compose_project_scopes_create_by_labels_in_body() -> None:
    p = compiled({"rules": [{"preset": "compose-admin", "containers": {"composeProject": "shop"}}]})
    labels = {"com.docker.compose.project": "shop", "com.docker.compose.service": "api"}
    d = send(
        p,
        "POST",
        "/containers/create",
        body={"Image": "x", "Labels": labels},
        query={"name": "shop-api-1"},
    )
    assert d.allow, d
    other = {"com.docker.compose.project": "other"}
    assert not send(p, "POST", "/containers/create", body={"Image": "x", "Labels": other}).allow
    # label keys are Go map keys: not case-folded
    folded = {"COM.DOCKER.COMPOSE.PROJECT": "shop"}
    assert not send(p, "POST", "/containers/create", body={"Image": "x", "Labels": folded}).allow
    assert send(p, "POST", "/containers/shop-api-1/stop", container=SHOP).allow
    assert not send(p, "POST", "/containers/web/stop", container=WEB).allow


def test_scoped_create_by_name() -> None:
    p = compiled({"rules": [{"allow": ["containers.create"], "containers": {"names": ["ci-*"]}}]})
    assert send(p, "POST", "/containers/create", body={"Image": "x"}, query={"name": "ci-1"}).allow
    assert send(p, "POST", "/containers/create", body={"Image": "x"}, query={"name": "/ci-1"}).allow
    assert not send(
        p, "POST", "/containers/create", body={"Image": "x"}, query={"name": "web"}
    ).allow
    assert not send(p, "POST", "/containers/create", body={"Image": "x"}).allow


def test_rename_cannot_move_a_container_into_a_scope() -> None:
    p = compiled({"rules": [{"allow": ["containers.rename"], "containers": {"names": ["ci-*"]}}]})
    ci = ContainerFacts(id="d" * 64, name="ci-1")
    assert send(p, "POST", "/containers/ci-1/rename", container=ci, query={"name": "ci-2"}).allow
    assert not send(p, "POST", "/containers/ci-1/rename", container=ci, query={"name": "web"}).allow


def test_body_failure_falls_through_to_later_rules() -> None:
    p = compiled(
        {
            "rules": [
                {"allow": ["containers.create"]},
                {
                    "allow": ["containers.create"],
                    "create": {"privileged": True},
                    "containers": {"names": ["ci-*"]},
                },
            ]
        }
    )
    body = {"Image": "x", "HostConfig": {"Privileged": True}}
    d = send(p, "POST", "/containers/create", body=body, query={"name": "web"})
    assert not d.allow and d.reason == "HostConfig.Privileged is not allowed"
    assert d.rule == "rules[0] allow containers.create"
    assert send(p, "POST", "/containers/create", body=body, query={"name": "ci-9"}).allow


def test_visibility() -> None:
    p = compiled(
        {
            "rules": [
                {"allow": ["containers.*", "system.*", "networks.*", "images.commit", "exec.*"]}
            ],
            "visibility": {"containers": {"labels": {"team": "ci"}}},
        }
    )
    for op in ALL_OPERATIONS:
        if op.target in ("container", "exec"):
            assert p.needs_container(op)
    assert send(p, "GET", "/containers/web/json", container=WEB).allow
    d = send(p, "GET", "/containers/db/json", container=DB)
    assert not d.allow and d.reason == "container not visible to this client"
    assert not send(p, "GET", "/containers/gone/json", container=None).allow
    assert not send(p, "POST", "/exec/1/start", container=DB).allow
    assert send(p, "GET", "/containers/json").allow  # filtered, see test_policy_filters
    for method, path in [
        ("POST", "/containers/prune"),
        ("POST", "/commit"),
        ("GET", "/system/df"),
        ("POST", "/networks/n/connect"),
    ]:
        assert not send(p, method, path).allow, path
    create = {"Image": "x", "Labels": {"team": "ci"}}
    assert send(p, "POST", "/containers/create", body=create).allow
    assert not send(p, "POST", "/containers/create", body={"Image": "x"}).allow
    assert send(p, "GET", "/_ping").allow


def test_needs_body_and_container() -> None:
    p = compiled(
        {"rules": [{"allow": ["containers.create", "containers.start", "containers.list"]}]}
    )

    def op(method: str, path: str) -> Any:
        matched = match_operation(method, path)
        assert matched is not None
        return matched.op

    assert p.needs_body(op("POST", "/containers/create"))
    assert p.needs_body(op("POST", "/containers/x/start"))
    assert not p.needs_body(op("GET", "/containers/json"))
    assert not p.needs_body(op("POST", "/volumes/create"))  # denied anyway
    assert not p.needs_container(op("POST", "/containers/x/start"))


def test_libpod_rules() -> None:
    p = compiled({"rules": [{"allow": ["libpod:GET /libpod/containers/*", "system.ping"]}]})

    def libpod(method: str, path: str) -> Decision:
        return decide(p, RequestFacts(method=method, api_path=path, op=None, libpod=True))

    assert libpod("GET", "/libpod/containers/json").allow
    assert not libpod("POST", "/libpod/containers/x/start").allow
    assert not libpod("GET", "/libpod/images/json").allow
    assert not compiled({"rules": [{"preset": "read-only"}]}).libpod_rules
    with pytest.raises(PolicyError):
        compiled({"rules": [{"allow": ["libpod:* /libpod/*"], "containers": {"names": ["x"]}}]})
    with pytest.raises(PolicyError):
        compiled(
            {
                "rules": [{"allow": ["libpod:* /libpod/*"]}],
                "visibility": {"containers": {"names": ["x"]}},
            }
        )


@pytest.mark.parametrize(
    ("rules", "needle"),
    [
        ([{"allow": ["containers.list"]}, {"allow": ["containers.restrat"]}], "rules[1]"),
        ([{"allow": ["nothing.*"]}], "'nothing.*'"),
        ([{"deny": ["containers.create"], "create": {"privileged": True}}], "rules[0]"),
        ([{"allow": ["containers.create"], "create": {"bindPrefixes": ["/srv/../etc"]}}], ".."),
    ],
)
def test_compile_errors_name_the_rule(rules: list[Any], needle: str) -> None:
    with pytest.raises(
        PolicyError, match=needle.replace("[", r"\[").replace("]", r"\]").replace("*", r"\*")
    ):
        compiled({"rules": rules})


def test_expand_presets_decides_the_same() -> None:
    spec = DockerSocketPolicySpec.model_validate(
        {
            "rules": [
                {"preset": "restart-only", "containers": {"names": ["web"]}},
                {"preset": "read-only"},
            ]
        }
    )
    expanded = expand_presets(spec)
    assert all(r.preset is None and r.allow for r in expanded.rules)
    a, b = compile_policy(spec), compile_policy(expanded)
    for container in (WEB, DB):
        for method, path in [("POST", "/containers/x/restart"), ("GET", "/containers/x/json")]:
            assert (
                send(a, method, path, container=container).allow
                == send(b, method, path, container=container).allow
            )


def test_load_policy_file(tmp_path: Path) -> None:
    whole = tmp_path / "policy.yaml"
    whole.write_text(
        "apiVersion: dockersocket.io/v1alpha1\nkind: DockerSocketPolicy\nmetadata: {name: t}\n"
        "spec:\n  rules:\n    - preset: discovery\n  audit: all\n"
    )
    p = load_policy_file(whole)
    assert p.audit == "all" and send(p, "GET", "/containers/json").allow
    bare = tmp_path / "bare.yaml"
    bare.write_text("rules:\n  - allow: [system.ping]\nlimits: {maxBodyBytes: 4096}\n")
    p = load_policy_file(bare)
    assert p.max_body == 4096 and p.redact_env
    for text, needle in [
        ("rules:\n  - allow: [containers.bogus]\n", "containers.bogus"),
        ("rules:\n  - allow: [system.ping]\n    deny: [system.info]\n", "exactly one"),
        ("rulez: []\n", "rulez"),
        ("rules: [\n", "YAML"),
        ("- a\n", "mapping"),
    ]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(PolicyError, match=needle):
            load_policy_file(bad)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy_file(tmp_path / "missing.yaml")


def test_decide_is_fast() -> None:
    rules = [
        {"allow": [f"containers.{a}"], "containers": {"names": [f"svc-{i}-*"]}}
        for i in range(50)
        for a in ("stop",)
    ]
    p = compiled({"rules": [*rules, {"preset": "read-only"}]})
    matched = match_operation("GET", "/containers/json")
    assert matched is not None
    req = RequestFacts(method="GET", api_path="/containers/json", op=matched.op)
    start = time.perf_counter()
    for _ in range(20000):
        decide(p, req)
    assert (time.perf_counter() - start) / 20000 < 50e-6
