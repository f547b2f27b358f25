"""Ownership: creates stamped with the owner label from the decoding the checks read, forged
owner labels refused, owned rules reaching only owned objects, lists and prunes narrowed."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import pytest

from docker_socket_operator.api.models import DockerSocketPolicySpec
from docker_socket_operator.catalogue.operations import match_operation
from docker_socket_operator.catalogue.paths import parse_target
from docker_socket_operator.policy.body import DockerObject, decode_docker_json
from docker_socket_operator.policy.compile import CompiledPolicy, compile_policy
from docker_socket_operator.policy.decide import decide
from docker_socket_operator.policy.ownership import (
    OWNER_LABEL,
    forwarded_request,
    narrowed_filters,
    stamp_owner,
)
from docker_socket_operator.policy.types import (
    BadBody,
    ContainerFacts,
    Decision,
    PolicyError,
    RequestFacts,
)

OWNED = ContainerFacts(id="a" * 64, name="job-1", labels={OWNER_LABEL: "ci"})
FOREIGN = ContainerFacts(id="b" * 64, name="db", labels={OWNER_LABEL: "other"})
HAND = ContainerFacts(id="c" * 64, name="hand", labels={})


def plain(doc: Any) -> Any:
    """A decoded body as plain JSON with keys as sent (what dockerd's structs and maps read)."""
    if isinstance(doc, DockerObject):
        return {k: plain(v) for k, v in doc.as_map().items()}
    if isinstance(doc, list):
        return [plain(v) for v in doc]
    return doc


BODIES = [
    b'{"Image":"busybox","Labels":{"a":"1"},"HostConfig":{"Binds":["/x:/y"]}}',
    b'{"image":"busybox","labels":{"a":"1"}}',
    b'{"Image":"busybox","LABELS":null,"Env":["A=\\ud800","B=\\u00e9"],"StopTimeout":1e3}',
    b'{"Image":"busybox","Label\\u017f":{}}',
    b'{"Image":"x","Label\xc5\xbf":{"k":"v"},"Cmd":["sh","-c","echo \\"hi\\""],"N":12345678901234567890}',
    b'{"Name":"net","Driver":"bridge","Options":{"com.docker.network.bridge.name":"br9"}}',
    b"",
    b"null",
    b'{"Image":"busybox","Healthcheck":{"Interval":1.5e9},"Labels":{"\\u0000":"z"}}',
]


@pytest.mark.parametrize("raw", BODIES)
def test_stamp_round_trips_every_other_field(raw: bytes) -> None:
    before = decode_docker_json(raw)
    after = decode_docker_json(stamp_owner(before, "ci"))
    expected = plain(before) or {}
    label_key = next((k for k in expected if k.lower().startswith("labe")), "Labels")
    expected[label_key] = {**(expected.get(label_key) or {}), OWNER_LABEL: "ci"}
    assert plain(after) == expected
    # the daemon reads the same Labels field the checks read: one key that folds to "labels"
    assert isinstance(after, DockerObject)
    assert after["labels"].as_map()[OWNER_LABEL] == "ci"


def test_stamp_refuses_labels_that_are_not_an_object() -> None:
    with pytest.raises(BadBody):
        stamp_owner(decode_docker_json(b'{"Labels":["a=b"]}'), "ci")


def spec(rules: list[Any], **extra: Any) -> CompiledPolicy:
    doc = {"ownership": {}, "rules": rules, **extra}
    return compile_policy(DockerSocketPolicySpec.model_validate(doc), "ci")


def send(
    p: CompiledPolicy,
    method: str,
    path: str,
    *,
    container: ContainerFacts | None = None,
    body: bytes | None = None,
    object_labels: dict[str, str] | None = None,
) -> Decision:
    target = parse_target(path)
    matched = match_operation(method, target.api_path)
    assert matched is not None
    return decide(
        p,
        RequestFacts(
            method,
            target.api_path,
            matched.op,
            matched.params,
            dict(parse_qsl(target.query)),
            None if body is None else decode_docker_json(body),
            container,
            target=target,
            object_labels=object_labels,
        ),
    )


CI = [
    {
        "allow": ["containers.*", "exec.*", "networks.*", "volumes.*", "system.events"],
        "owned": True,
    },
    {"allow": ["images.create", "images.inspect", "system.ping", "system.version"]},
]


def test_owned_rule_reaches_owned_containers_only() -> None:
    p = spec(CI)
    for method, path in [
        ("POST", "/containers/x/start"),
        ("GET", "/containers/x/logs"),
        ("DELETE", "/containers/x"),
        ("POST", "/containers/x/exec"),
        ("POST", "/exec/e/start"),
    ]:
        assert send(p, method, path, container=OWNED).allow
        assert not send(p, method, path, container=FOREIGN).allow
        assert not send(p, method, path, container=HAND).allow
    assert send(p, "POST", "/containers/create", body=b'{"Image":"busybox"}').allow
    assert send(p, "POST", "/images/create?fromImage=busybox").allow
    assert not send(p, "GET", "/images/json").allow  # owned rules never match images


@pytest.mark.parametrize(
    "key",
    [OWNER_LABEL, "DockerSocket.io/owner", "dockersocket.io/other", "docker\u017focket.io/owner"],
)
@pytest.mark.parametrize("path", ["/containers/create", "/networks/create", "/volumes/create"])
def test_forged_owner_label_is_refused(key: str, path: str) -> None:
    body = json.dumps({"Image": "busybox", "Name": "n", "labels": {key: "ci"}}).encode()
    for p in (
        spec(CI),
        spec(CI, mode="audit"),
        compile_policy(DockerSocketPolicySpec.model_validate({"rules": [{"allow": ["*"]}]})),
    ):
        decision = send(p, "POST", path, body=body)
        assert not decision.allow and decision.rule == "ownership", (p.mode, decision)


def test_networks_and_volumes_by_their_labels() -> None:
    p = spec(CI)
    assert p.needs_object(match_operation("DELETE", "/networks/n").op)  # type: ignore[union-attr]
    for method, path in [("DELETE", "/networks/n"), ("GET", "/volumes/v"), ("GET", "/networks/n")]:
        assert send(p, method, path, object_labels={OWNER_LABEL: "ci"}).allow
        assert not send(p, method, path, object_labels={OWNER_LABEL: "other"}).allow
        assert not send(p, method, path, object_labels={}).allow
    # connect names a container in its body: not an owned operation
    assert not send(
        p,
        "POST",
        "/networks/n/connect",
        body=b'{"Container":"x"}',
        object_labels={OWNER_LABEL: "ci"},
    ).allow


def test_owned_lists_and_prunes_go_out_narrowed() -> None:
    p = spec(CI)
    decision = send(p, "POST", "/volumes/prune")
    assert decision.allow and decision.owned
    target = parse_target('/v1.43/volumes/prune?filters={"label":{"a=b":false}}')
    new, body = forwarded_request(
        "ci", "volumes.prune", True, target, {"filters": '{"label":{"a=b":false}}'}, None
    )
    assert body is None and new.version == "/v1.43"
    sent = json.loads(dict(parse_qsl(new.query))["filters"])
    assert sent == {"label": {"a=b": False, f"{OWNER_LABEL}=ci": True}}
    assert json.loads(narrowed_filters('{"label":["x"],"until":["1h"]}', "ci")) == {
        "label": ["x", f"{OWNER_LABEL}=ci"],
        "until": ["1h"],
    }
    for bad in ("[1]", '{"label":{"a":1}}', '{"label":["a"],"until":{"1h":true}}', "{"):
        with pytest.raises(BadBody):
            narrowed_filters(bad, "ci")
    # a list allowed by a rule that is not owned goes out as sent
    q = spec([{"allow": ["networks.list"]}])
    assert not send(q, "GET", "/networks").owned


def test_visibility_owned_hides_the_rest() -> None:
    p = spec([{"allow": ["containers.*", "networks.*"]}], visibility={"owned": True})
    assert send(p, "GET", "/containers/x/json", container=OWNED).allow
    assert send(p, "GET", "/containers/x/json", container=HAND).rule == "visibility"
    assert send(p, "DELETE", "/networks/n", object_labels={}).rule == "visibility"
    assert send(p, "POST", "/containers/prune").owned  # narrowed, not refused
    assert p.filters_containers


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"rules": [{"allow": ["containers.*"], "owned": True}]}, "needs spec.ownership"),
        ({"visibility": {"owned": True}}, "needs spec.ownership"),
        (
            {"ownership": {}, "rules": [{"allow": ["libpod:GET /libpod/*"], "owned": True}]},
            "libpod",
        ),
        (
            {
                "ownership": {},
                "rules": [
                    {
                        "allow": ["containers.*"],
                        "owned": True,
                        "containers": {"labels": {OWNER_LABEL: "x"}},
                    }
                ],
            },
            "contradicts",
        ),
    ],
)
def test_compile_errors(doc: dict[str, Any], needle: str) -> None:
    with pytest.raises(PolicyError, match=needle):
        compile_policy(DockerSocketPolicySpec.model_validate(doc), "ci")


def test_owner_defaults_to_the_policy_name_and_needs_one() -> None:
    s = DockerSocketPolicySpec.model_validate({"ownership": {}})
    assert compile_policy(s, "ci").owner == "ci"
    with pytest.raises(PolicyError, match="needs an owner"):
        compile_policy(s)
    named = DockerSocketPolicySpec.model_validate({"ownership": {"owner": "team-a"}})
    assert compile_policy(named, "ci").owner == "team-a"
