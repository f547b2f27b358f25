"""The smallest policy that would have allowed exactly the calls an audit log shows.

Input: the proxy's audit lines (policy/asks.py says what a line records about the container a
call reached and what a create or exec asked for). Output: a DockerSocketPolicy document whose
rules allow each operation seen, scoped to the containers it was seen on (a compose project,
labels they all carry, or their names), with create and exec constraints that open exactly what
the bodies asked for. A rule takes a preset's name when its operations are exactly the preset.

With the policy the log was written under (`current`), only the calls it would deny are new:
the suggested rules go in front of its own rules (so no deny rule of it shadows them) and the
rest of its spec (clients, visibility, socket...) is kept, in enforce mode. Calls the audit floor
refused are never suggested: they are listed for a human to decide.

A client that creates containers without a name (`docker run` without `--name`) touches names
the daemon made up, new on every run: rules naming them would fit this log only. Under a current
policy with `spec.ownership` the containers the client created carry the owner label, and the
calls on them become `owned: true` rules; without it the suggestion says so in a note.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from docker_socket_operator.api.models import DockerSocketPolicy
from docker_socket_operator.catalogue.operations import ALL_OPERATIONS
from docker_socket_operator.policy.compile import compile_policy, scope_kind
from docker_socket_operator.policy.ownership import OWNER_LABEL
from docker_socket_operator.policy.presets import PRESETS

COMPOSE_PROJECT = "com.docker.compose.project"
# Labels that say where an image came from or which replica a container is, not what it is for.
_INCIDENTAL_LABEL_PREFIXES = (
    "org.opencontainers.",
    "org.label-schema.",
    "maintainer",
    "com.docker.compose.",
)
_OPERATIONS = {op.name: op for op in reversed(ALL_OPERATIONS)}
_BOOL_ASKS = ("privileged", "hostNamespaces", "devices", "volumesFrom", "sysctls", "cgroupParent")
_LIST_ASKS = {"capabilities": "capabilities", "securityOpt": "securityOpt", "runtimes": "runtimes"}


def parse_audit_lines(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The audit records among `lines`. Anything else (the proxy's other log lines, a
    `kubectl logs --prefix` tag before the JSON, blank lines) is skipped."""
    records: list[dict[str, Any]] = []
    for line in lines:
        start = line.find("{")
        if start < 0:
            continue
        try:
            doc = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("decision"), str) and "operation" in doc:
            records.append(doc)
    return records


@dataclass
class _Calls:
    containers: list[Mapping[str, Any]] = field(default_factory=list)
    unscoped: bool = False  # a call of this operation with no container facts
    creates: list[Mapping[str, Any]] = field(default_factory=list)
    execs: list[Mapping[str, Any]] = field(default_factory=list)


@dataclass
class Suggestion:
    document: dict[str, Any]
    calls: int  # audit records that asked for a permission
    refused: list[str]  # "operation: reason" the audit floor refused, never suggested
    notes: list[str] = field(default_factory=list)  # what a reviewer should know first


def _container_of(
    op_name: str, rec: Mapping[str, Any], owner: str | None
) -> Mapping[str, Any] | None:
    if op_name == "containers.create":
        create = rec.get("create")
        if isinstance(create, dict):
            labels = create.get("labels") or {}
            if owner is not None and isinstance(labels, dict):
                labels = {**labels, OWNER_LABEL: owner}  # the proxy stamps it on the way
            return {"name": create.get("name", ""), "labels": labels}
        return None
    container = rec.get("container")
    return container if isinstance(container, dict) else None


def _label_items(container: Mapping[str, Any]) -> set[tuple[str, str]]:
    labels = container.get("labels")
    if not isinstance(labels, dict):
        return set()
    return {
        (k, v)
        for k, v in labels.items()
        if isinstance(v, str) and not k.startswith(_INCIDENTAL_LABEL_PREFIXES)
    }


OWNED: dict[str, Any] = {"owned": True}  # a scope that is the rule's `owned: true`


def container_scope(
    containers: Sequence[Mapping[str, Any]],
    created: frozenset[str] = frozenset(),
    owner: str | None = None,
) -> dict[str, Any]:
    """The narrowest selector, by what the containers show: one compose project; else, for
    containers the client created itself (`created`: their names), the labels its creates set
    (the names of a CI job or a terminal change with every run); else the names seen. With
    the current policy's `owner`, containers that all carry its label are OWNED."""
    if owner is not None and all(
        isinstance(c.get("labels"), dict) and c["labels"].get(OWNER_LABEL) == owner
        for c in containers
    ):
        return OWNED
    projects = {
        (c.get("labels") or {}).get(COMPOSE_PROJECT) if isinstance(c.get("labels"), dict) else None
        for c in containers
    }
    if len(projects) == 1 and isinstance(next(iter(projects)), str):
        return {"composeProject": next(iter(projects))}
    names = sorted({str(c.get("name", "")) for c in containers})
    if set(names) <= created:
        common = set.intersection(*(_label_items(c) for c in containers))
        if common:
            return {"labels": dict(sorted(common))}
    return {"names": names}


def _create_constraints(creates: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    constraints: dict[str, Any] = {}
    for key in _BOOL_ASKS:
        if any(c.get(key) is True for c in creates):
            constraints[key] = True
    binds = sorted({b for c in creates for b in c.get("binds") or []})
    if binds:
        constraints["bindPrefixes"] = binds
    for ask, key in _LIST_ASKS.items():
        values = sorted({v for c in creates for v in c.get(ask) or []})
        if values:
            constraints[key] = values
    images = sorted({str(c.get("image")) for c in creates if c.get("image")})
    if images and all(c.get("image") for c in creates):
        constraints["images"] = images
    return constraints


def _exec_constraints(execs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    constraints: dict[str, Any] = {}
    if any(e.get("privileged") is True for e in execs):
        constraints["privileged"] = True
    users = sorted({str(e["user"]) for e in execs if e.get("user")})
    if users:
        constraints["users"] = users
    return constraints


def _operations_rule(ops: list[str]) -> dict[str, Any]:
    for name, preset_ops in PRESETS.items():
        if set(ops) == set(preset_ops):
            return {"preset": name}
    rule: dict[str, Any] = {"allow": sorted(ops)}
    fits = [n for n, p in PRESETS.items() if set(ops) <= set(p)]
    if fits:
        smallest = min(fits, key=lambda n: len(PRESETS[n]))
        rule["description"] = (
            f"seen: {len(ops)} of the {len(PRESETS[smallest])} in preset {smallest}"
        )
    return rule


def _rules(by_op: Mapping[str, _Calls], owner: str | None) -> list[dict[str, Any]]:
    groups: dict[str, list[str]] = {}
    scopes: dict[str, dict[str, Any] | None] = {}
    created = frozenset(str(c.get("name", "")) for calls in by_op.values() for c in calls.creates)
    for name, calls in by_op.items():
        scoped = scope_kind(_OPERATIONS[name]) in ("target", "create", "rename")
        scope = (
            container_scope(calls.containers, created, owner)
            if scoped and not calls.unscoped
            else None
        )
        key = json.dumps(scope, sort_keys=True)
        groups.setdefault(key, []).append(name)
        scopes[key] = scope
    rules: list[dict[str, Any]] = []
    for key in sorted(groups, key=lambda k: (k != "null", k)):
        ops = groups[key]
        rule = _operations_rule(ops)
        scope = scopes[key]
        if scope == OWNED:
            rule["owned"] = True
        elif scope is not None:
            rule["containers"] = scope
        creates = [c for name in ops for c in by_op[name].creates]
        if creates:
            create = _create_constraints(creates)
            if create:
                rule["create"] = create
        execs = [e for name in ops for e in by_op[name].execs]
        exec_constraints = _exec_constraints(execs)
        if exec_constraints:
            rule["exec"] = exec_constraints
        # Keys in the order a person writes them.
        order = ("preset", "allow", "owned", "containers", "create", "exec", "description")
        rules.append({k: rule[k] for k in order if k in rule})
    return rules


def suggest(
    records: Iterable[Mapping[str, Any]], current: DockerSocketPolicy | None = None
) -> Suggestion:
    """The policy for what `records` show (see the module doc). The document is checked: it
    validates as a DockerSocketPolicy and compiles."""
    wanted = ("would-deny",) if current is not None else ("allow", "would-deny")
    owner = None
    if current is not None and current.spec.ownership is not None:
        owner = current.spec.ownership.owner or current.metadata.name
    by_op: dict[str, _Calls] = {}
    refused: list[str] = []
    count = 0
    for rec in records:
        name = str(rec.get("operation", ""))
        decision = rec.get("decision")
        if decision == "deny" and "audit floor" in str(rec.get("reason", "")):
            refused.append(f"{rec.get('method', '')} {rec.get('path', '')}: {rec.get('reason')}")
            continue
        if decision not in wanted or name not in _OPERATIONS:
            continue
        count += 1
        calls = by_op.setdefault(name, _Calls())
        container = _container_of(name, rec, owner)
        if container is None:
            calls.unscoped = True
        else:
            calls.containers.append(container)
        if isinstance(rec.get("create"), dict):
            calls.creates.append(rec["create"])
        if isinstance(rec.get("exec"), dict):
            calls.execs.append(rec["exec"])
    rules = _rules(by_op, owner)
    if current is not None:
        rest = current.spec.model_dump(mode="json", exclude_defaults=True, exclude={"mode"})
        spec = {"rules": rules + rest.pop("rules", []), **rest}
        name = current.metadata.name
    else:
        spec = {"rules": rules}
        name = "suggested"
    document = {
        "apiVersion": "dockersocket.io/v1alpha1",
        "kind": "DockerSocketPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }
    compile_policy(DockerSocketPolicy.model_validate(document).spec, name)
    notes = []
    if owner is None and any(not c.get("name") for calls in by_op.values() for c in calls.creates):
        notes.append(
            "The client created containers without a name: the daemon named them, and rules "
            "naming them fit this log only. Audit again with spec.ownership: {} and pass that "
            "policy as --policy: the calls on what the client created become owned: true."
        )
    return Suggestion(document, count, sorted(set(refused)), notes)
