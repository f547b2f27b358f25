"""suggest: the smallest policy for what an audit log shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from docker_socket_operator.api.models import DockerSocketPolicy
from docker_socket_operator.cli import main
from docker_socket_operator.policy.presets import PRESETS
from docker_socket_operator.policy.suggest import container_scope, parse_audit_lines, suggest


def line(op: str, decision: str = "would-deny", **facts: Any) -> dict[str, Any]:
    return {"operation": op, "decision": decision, "method": "GET", "path": "/x", **facts}


def c(name: str, **labels: str) -> dict[str, Any]:
    return {"name": name, "labels": labels}


def test_parse_tolerates_other_lines_and_prefixes() -> None:
    text = [
        "not json at all",
        '{"ts": "t", "msg": "listening"}',
        '[pod/dsp-x-abc/proxy] {"operation": "system.ping", "decision": "allow"}',
        '{"operation": "system.info", "decision": "would-deny"',
        "",
    ]
    assert parse_audit_lines(text) == [{"operation": "system.ping", "decision": "allow"}]


def test_a_preset_when_the_calls_are_exactly_one() -> None:
    records = [line(op) for op in PRESETS["discovery"]]
    rules = suggest(records).document["spec"]["rules"]
    assert rules == [{"preset": "discovery"}]


def test_named_operations_otherwise_with_the_smallest_preset_that_holds_them() -> None:
    records = [line("system.ping"), line("containers.list"), line("system.events")]
    rules = suggest(records).document["spec"]["rules"]
    assert rules == [
        {
            "allow": ["containers.list", "system.events", "system.ping"],
            "description": "seen: 3 of the 11 in preset discovery",
        }
    ]


def test_scopes_by_project_then_common_labels_then_names() -> None:
    shop = {"com.docker.compose.project": "shop", "com.docker.compose.service": "api"}
    assert container_scope([c("a", **shop), c("b", **shop)]) == {"composeProject": "shop"}
    made = frozenset({"a", "b"})
    assert container_scope([c("a", team="ci", x="1"), c("b", team="ci")], made) == {
        "labels": {"team": "ci"}
    }
    # Containers the client did not create: exactly the ones it touched.
    assert container_scope([c("a", team="ci"), c("b", team="ci")]) == {"names": ["a", "b"]}
    assert container_scope([c("b", **{"org.opencontainers.image.title": "x"}), c("a")], made) == {
        "names": ["a", "b"]
    }


def test_container_calls_are_scoped_and_grouped_by_scope() -> None:
    records = [
        line("system.ping"),
        line("containers.restart", container=c("rst")),
        line("containers.inspect", container=c("rst")),
        line("containers.create", create={"name": "web", "image": "bb", "labels": {"app": "shop"}}),
        line("containers.logs", container=c("web", app="shop")),
        line("containers.create", create={"name": "db", "image": "bb", "labels": {"app": "shop"}}),
        line("containers.logs", container=c("db", app="shop")),
    ]
    rules = suggest(records).document["spec"]["rules"]
    assert rules[0] == {
        "allow": ["system.ping"],
        "description": "seen: 1 of the 7 in preset restart-only",
    }
    assert {
        "allow": ["containers.create", "containers.logs"],
        "containers": {"labels": {"app": "shop"}},
        "create": {"images": ["bb"]},
        "description": "seen: 2 of the 33 in preset ci-runner",
    } in rules
    restart = next(r for r in rules if "containers.restart" in r.get("allow", []))
    assert restart["allow"] == ["containers.inspect", "containers.restart"]
    assert restart["containers"] == {"names": ["rst"]}


def test_an_operation_seen_without_a_container_is_not_scoped() -> None:
    records = [
        line("containers.inspect", container=c("rst")),
        line("containers.inspect"),
    ]
    assert suggest(records).document["spec"]["rules"][0]["allow"] == ["containers.inspect"]
    assert "containers" not in suggest(records).document["spec"]["rules"][0]


def test_create_constraints_open_exactly_what_the_bodies_asked() -> None:
    job = {"ci.job": "true"}
    records = [
        line("containers.create", create={"name": "j1", "image": "bb:1", "labels": job}),
        line(
            "containers.create",
            decision="allow",
            create={
                "name": "j2",
                "image": "bb:2",
                "labels": job,
                "binds": ["/srv/ci"],
                "capabilities": ["NET_ADMIN"],
            },
        ),
        line("containers.start", container=c("j1", **job)),
        line("exec.create", container=c("j1", **job), exec={"user": "1000"}),
    ]
    rules = suggest(records).document["spec"]["rules"]
    assert rules == [
        {
            "allow": ["containers.create", "containers.start", "exec.create"],
            "containers": {"labels": {"ci.job": "true"}},
            "create": {
                "bindPrefixes": ["/srv/ci"],
                "capabilities": ["NET_ADMIN"],
                "images": ["bb:1", "bb:2"],
            },
            "exec": {"users": ["1000"]},
            "description": "seen: 3 of the 33 in preset ci-runner",
        }
    ]


def test_with_the_current_policy_only_would_deny_is_added_in_front() -> None:
    current = DockerSocketPolicy.model_validate(
        {
            "metadata": {"name": "bot"},
            "spec": {
                "mode": "audit",
                "audit": "all",
                "rules": [{"deny": ["containers.kill"]}, {"allow": ["system.ping"]}],
                "visibility": {"containers": {"names": ["rst"]}},
            },
        }
    )
    records = [
        line("system.ping", decision="allow"),
        line("containers.kill", container=c("rst")),
        line("containers.create", decision="deny", reason="x; audit floor: HostConfig.Privileged"),
    ]
    result = suggest(records, current)
    spec = result.document["spec"]
    assert result.document["metadata"] == {"name": "bot"}
    assert "mode" not in spec and spec["audit"] == "all"
    assert spec["visibility"] == {"containers": {"names": ["rst"]}}
    assert spec["rules"][0]["allow"] == ["containers.kill"]
    assert spec["rules"][1:] == [{"deny": ["containers.kill"]}, {"allow": ["system.ping"]}]
    assert result.refused == ["GET /x: x; audit floor: HostConfig.Privileged"]


def test_floor_refusals_and_unknown_operations_are_never_suggested() -> None:
    records = [
        line("unknown"),
        line("libpod"),
        line("containers.create", decision="deny", reason="no; audit floor: privileged"),
        line("system.ping", decision="reject"),
    ]
    assert suggest(records).document["spec"]["rules"] == []


def test_cli_reads_stdin_and_prints_a_valid_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    text = "\n".join(json.dumps(line(op)) for op in PRESETS["restart-only"]) + "\nnoise\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert main(["suggest", "-"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert DockerSocketPolicy.model_validate(doc).spec.rules[0].preset == "restart-only"
    empty = tmp_path / "empty.log"
    empty.write_text("nothing here\n")
    assert main(["suggest", str(empty)]) == 2
    assert main(["suggest", str(tmp_path / "missing.log")]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec: {rules: [{allow: [nope.nope]}], bogus: 1}\n")
    assert main(["suggest", str(empty), "--policy", str(bad)]) == 2


OWNED_AUDIT = {
    "apiVersion": "dockersocket.io/v1alpha1",
    "kind": "DockerSocketPolicy",
    "metadata": {"name": "ci"},
    "spec": {"mode": "audit", "audit": "all", "ownership": {}, "rules": [{"preset": "discovery"}]},
}


def test_under_ownership_what_the_client_created_becomes_owned() -> None:
    # `docker run --rm bb`: an anonymous create, then calls on a name the daemon made up.
    mine = c("sharp_fermat", **{"dockersocket.io/owner": "ci"})
    records = [
        line("containers.create", create={"name": "", "image": "bb", "labels": {}}),
        line("containers.attach", container=mine),
        line("containers.start", container=mine),
        line("containers.wait", container=mine),
        line("containers.restart", container=c("web", app="web")),
    ]
    result = suggest(records, DockerSocketPolicy.model_validate(OWNED_AUDIT))
    rules = result.document["spec"]["rules"]
    assert {
        "allow": ["containers.attach", "containers.create", "containers.start", "containers.wait"],
        "owned": True,
        "create": {"images": ["bb"]},
        "description": "seen: 4 of the 33 in preset ci-runner",
    } in rules
    restart = next(r for r in rules if r.get("allow") == ["containers.restart"])
    assert restart["containers"] == {"names": ["web"]}  # not created by the client: by name
    assert result.document["spec"]["ownership"] == {}
    assert result.notes == []
    # Another owner's label is not ours.
    theirs = c("x", **{"dockersocket.io/owner": "other"})
    other = suggest(
        [line("containers.start", container=theirs)], DockerSocketPolicy.model_validate(OWNED_AUDIT)
    )
    assert other.document["spec"]["rules"][0]["containers"] == {"names": ["x"]}


def test_anonymous_creates_without_ownership_get_a_note() -> None:
    anonymous = [
        line("containers.create", create={"name": "", "image": "bb", "labels": {}}),
        line("containers.start", container=c("sharp_fermat")),
    ]
    note = suggest(anonymous).notes
    assert len(note) == 1 and "spec.ownership" in note[0]
    named = [line("containers.create", create={"name": "job", "image": "bb", "labels": {}})]
    assert suggest(named).notes == []


def test_cli_prints_notes_as_comments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "audit.log"
    log.write_text(
        json.dumps(line("containers.create", create={"name": "", "image": "bb", "labels": {}}))
        + "\n"
    )
    assert main(["suggest", str(log)]) == 0
    out = capsys.readouterr().out
    comments = [x for x in out.splitlines() if x.startswith("#")]
    assert any("spec.ownership" in x for x in comments)
    DockerSocketPolicy.model_validate(yaml.safe_load(out))
