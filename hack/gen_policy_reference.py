"""Generate docs/policy-reference.md from the pydantic models (the CRD's source of truth).

    python hack/gen_policy_reference.py           # rewrite docs/policy-reference.md
    python hack/gen_policy_reference.py --check   # exit 1 when it is stale

Every field of every model reachable from DockerSocketPolicy gets its type, default,
constraints, description and an example. Descriptions come from the models' `Field(description=)`;
a field without one must have an entry in NOTES below (as must every field's example), so a
new field cannot ship undocumented: `render()` raises and the unit test fails.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from docker_socket_operator.api import models
from docker_socket_operator.policy.floor import AUDIT_FORWARDABLE, HOST_REACHING
from docker_socket_operator.policy.presets import PRESETS

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "docs" / "policy-reference.md"
ROOT = models.DockerSocketPolicy

# (Model, field) -> (description if the model has none, example YAML). Examples are YAML as it
# appears under the field's parent.
NOTES: dict[tuple[str, str], tuple[str | None, str]] = {
    ("DockerSocketPolicy", "apiVersion"): ("API group and version.", "apiVersion: dockersocket.io/v1alpha1"),
    ("DockerSocketPolicy", "kind"): ("Resource kind.", "kind: DockerSocketPolicy"),
    ("DockerSocketPolicy", "metadata"): (
        "Standard object metadata. Policies are cluster-scoped; the name becomes the proxy's "
        "Service `dsp-<name>` in the operator's namespace.",
        "metadata: {name: traefik}",
    ),
    ("DockerSocketPolicy", "spec"): ("What the clients may do, and where the proxies run.", "spec: {rules: [{preset: read-only}]}"),
    ("DockerSocketPolicy", "status"): ("Written by the operator; read by kubectl, Argo CD and Flux.", "status: {observedGeneration: 3}"),
    ("ObjectMeta", "name"): ("The policy's name (any other metadata is kept as is).", "name: traefik"),
    ("DockerSocketPolicySpec", "socket"): ("Which host socket the proxies forward to.", "socket: {path: /run/podman/podman.sock}"),
    ("DockerSocketPolicySpec", "nodeSelector"): (
        "Node labels a node must carry to run this policy's proxy (a DaemonSet pod per "
        "matching node). Clients reach the proxy on their own node only "
        "(`internalTrafficPolicy: Local`): schedule clients onto these nodes.",
        "nodeSelector: {dockersocket.io/docker: \"true\"}",
    ),
    ("DockerSocketPolicySpec", "tolerations"): ("Tolerations of the proxy pods (e.g. to run on tainted edge nodes).", "tolerations: [{key: edge, operator: Exists, effect: NoSchedule}]"),
    ("DockerSocketPolicySpec", "clients"): (
        "Pods allowed to connect to the proxy (NetworkPolicy ingress peers on the API port). "
        "Empty: nobody can connect. Needs a CNI that enforces NetworkPolicy.",
        "clients:\n  - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress}}\n    podSelector: {matchLabels: {app.kubernetes.io/name: traefik}}",
    ),
    ("DockerSocketPolicySpec", "port"): ("Port of the proxy's Service (the client's DOCKER_HOST port).", "port: 2375"),
    ("DockerSocketPolicySpec", "rules"): (
        "Tried in order; the first rule that matches a request decides it; a request no rule "
        "matches is denied (403 `blocked by policy: ...`).",
        "rules:\n  - preset: read-only\n  - allow: [containers.restart]\n    containers: {names: [web]}",
    ),
    ("DockerSocketPolicySpec", "visibility"): ("Which containers exist for the client at all.", "visibility: {containers: {labels: {team: ci}}}"),
    ("DockerSocketPolicySpec", "audit"): (
        "Which decisions the proxy logs (one JSON line each on the proxy's stderr: `kubectl logs`): `none`, only `denied` "
        "requests, or `all`.",
        "audit: all",
    ),
    ("DockerSocketPolicySpec", "ownership"): (None, "ownership: {}  # owner label value: the policy's name"),
    ("Ownership", "owner"): (None, "owner: ci-runner"),
    ("DockerSocketPolicySpec", "mode"): (None, "mode: audit  # then: docker-socket-operator suggest AUDIT.jsonl"),
    ("DockerSocketPolicySpec", "limits"): ("Request limits the proxy enforces.", "limits: {maxBodyBytes: 2097152}"),
    ("DockerSocketPolicySpec", "resources"): ("CPU and memory of each proxy container.", "resources: {requests: {cpu: 10m, memory: 32Mi}, limits: {memory: 128Mi}}"),
    ("DockerSocketPolicySpec", "seLinuxType"): (None, "seLinuxType: spc_t"),
    ("SocketSpec", "path"): (None, "path: /var/run/docker.sock"),
    ("SocketSpec", "group"): (None, "group: 998  # stat -c %g /var/run/docker.sock, on a node"),
    ("DockerSocketPolicySpec", "runAsRoot"): (None, "runAsRoot: false"),
    ("DockerSocketPolicySpec", "controllerName"): (None, "controllerName: dockersocket.io/operator"),
    ("DockerSocketPolicyStatus", "warnings"): (None, "warnings: [\"spec.socket.group is not set: ...\"]"),
    ("DockerSocketPolicyStatus", "controllerName"): (None, "controllerName: dockersocket.io/operator"),
    ("LabelSelector", "matchLabels"): ("Labels that must all be present with these values.", "matchLabels: {app.kubernetes.io/name: traefik}"),
    ("LabelSelector", "matchExpressions"): ("Set-based requirements, all of which must hold.", "matchExpressions: [{key: tier, operator: In, values: [web]}]"),
    ("LabelSelectorRequirement", "key"): ("The label key.", "key: tier"),
    ("LabelSelectorRequirement", "operator"): ("How the key's value is compared with `values`.", "operator: In"),
    ("LabelSelectorRequirement", "values"): ("Values for In/NotIn; empty for Exists/DoesNotExist.", "values: [web, api]"),
    ("ClientPeer", "namespace"): (None, "namespace: ingress"),
    ("ClientPeer", "namespaces"): (None, "namespaces: [ci, ci-staging]"),
    ("ClientPeer", "namespaceSelector"): (
        "Namespaces of the client pods by label; must select something (`{}` is refused: "
        "name the namespaces). Exactly one of namespace, namespaces, namespaceSelector.",
        "namespaceSelector: {matchLabels: {team: ci}}",
    ),
    ("ClientPeer", "podSelector"): (
        "Client pods within those namespaces; must select something (`{}` is refused: write "
        "`allPods: true` to admit every pod of the namespaces).",
        "podSelector: {matchLabels: {app.kubernetes.io/name: traefik}}",
    ),
    ("ClientPeer", "allPods"): (None, "allPods: true"),
    ("Toleration", "key"): ("Taint key (empty with operator Exists: every taint).", "key: dedicated"),
    ("Toleration", "operator"): ("`Equal` (default) or `Exists`.", "operator: Exists"),
    ("Toleration", "value"): ("Taint value for `Equal`.", "value: docker"),
    ("Toleration", "effect"): ("Taint effect to tolerate (empty: all).", "effect: NoSchedule"),
    ("Toleration", "tolerationSeconds"): ("For NoExecute: how long the pod stays after the taint appears.", "tolerationSeconds: 300"),
    ("ContainerSelector", "names"): (None, "names: [mcp-gateway, \"web-*\"]"),
    ("ContainerSelector", "labels"): (None, "labels: {com.example/team: ci, traefik.enable: \"*\"}"),
    ("ContainerSelector", "composeProject"): (None, "composeProject: shop"),
    ("CreateConstraints", "privileged"): ("Allow `HostConfig.Privileged: true`.", "privileged: false"),
    ("CreateConstraints", "bindPrefixes"): (None, "bindPrefixes: [/srv/ci]"),
    ("CreateConstraints", "hostNamespaces"): (None, "hostNamespaces: false"),
    ("CreateConstraints", "capabilities"): (None, "capabilities: [NET_BIND_SERVICE]"),
    ("CreateConstraints", "devices"): (None, "devices: false"),
    ("CreateConstraints", "images"): (None, "images: [\"registry.example/ci/*\"]"),
    ("CreateConstraints", "volumesFrom"): ("Allow `HostConfig.VolumesFrom` (another container's mounts, binds included).", "volumesFrom: false"),
    ("CreateConstraints", "sysctls"): ("Allow `HostConfig.Sysctls`.", "sysctls: false"),
    ("CreateConstraints", "securityOpt"): (None, "securityOpt: [\"apparmor=unconfined\"]"),
    ("CreateConstraints", "runtimes"): (None, "runtimes: [runsc]"),
    ("CreateConstraints", "cgroupParent"): ("Allow `HostConfig.CgroupParent`.", "cgroupParent: false"),
    ("CreateConstraints", "logDrivers"): (None, "logDrivers: [syslog]"),
    ("ExecConstraints", "privileged"): ("Allow exec create with `Privileged: true`.", "privileged: false"),
    ("ExecConstraints", "users"): (None, "users: [\"1000\", app]"),
    ("Rule", "preset"): ("A named bundle of operations (see docs/presets.md).", "preset: read-only"),
    ("Rule", "allow"): ("Operations this rule allows: names from docs/operations.md, globs (`containers.*`), or `libpod:METHOD /libpod/glob`. A glob never allows the operations that give the node away where the proxy cannot look (plugins.pull/create/set/upgrade/enable, services.create/update, swarm.init/join, build.grpc): name each one.", "allow: [containers.restart, containers.logs]"),
    ("Rule", "deny"): ("Operations this rule denies (to carve an exception out of a later allow).", "deny: [exec.*]"),
    ("Rule", "containers"): ("Only requests on these containers match the rule (operations without a container never match a scoped rule).", "containers: {composeProject: shop}"),
    ("Rule", "create"): ("What container create/update bodies may ask for (everything with host power is refused unless opened here).", "create: {bindPrefixes: [/srv/ci], images: [\"registry.example/*\"]}"),
    ("Rule", "exec"): ("What exec create bodies may ask for.", "exec: {users: [app]}"),
    ("Rule", "owned"): (None, "owned: true  # with spec.ownership: only what this policy created"),
    ("Rule", "description"): ("Free text for people reading the policy: why the rule exists.", "description: the watchdog restarts the gateway"),
    ("Visibility", "containers"): (None, "containers: {labels: {team: ci}}"),
    ("Visibility", "redactEnv"): (None, "redactEnv: true"),
    ("Visibility", "owned"): (None, "owned: true"),
    ("Limits", "maxBodyBytes"): (None, "maxBodyBytes: 1048576"),
    ("Resources", "requests"): ("Requested CPU and memory.", "requests: {cpu: 10m, memory: 32Mi}"),
    ("Resources", "limits"): ("CPU and memory limits.", "limits: {memory: 128Mi}"),
    ("ResourceList", "cpu"): ("CPU quantity.", "cpu: 50m"),
    ("ResourceList", "memory"): ("Memory quantity.", "memory: 64Mi"),
    ("DockerSocketPolicyStatus", "observedGeneration"): ("The `metadata.generation` this status describes; behind means the operator has not caught up.", "observedGeneration: 3"),
    ("DockerSocketPolicyStatus", "conditions"): ("`Ready`, `Progressing`, `Degraded`, and the kstatus mirrors `Reconciling` and `Stalled`.", "conditions: [{type: Ready, status: \"True\", reason: Available, message: 3/3 nodes ready}]"),
    ("DockerSocketPolicyStatus", "endpoint"): ("The clients' DOCKER_HOST.", "endpoint: tcp://dsp-traefik.docker-socket-operator.svc:2375"),
    ("DockerSocketPolicyStatus", "nodes"): ("Proxy pods wanted and ready.", "nodes: {desired: 3, ready: 3}"),
    ("DockerSocketPolicyStatus", "nodesReady"): (None, "nodesReady: 3/3"),
    ("NodesStatus", "desired"): ("Nodes that should run a proxy.", "desired: 3"),
    ("NodesStatus", "ready"): ("Nodes whose proxy is up to date and ready.", "ready: 3"),
    ("Condition", "type"): ("Ready, Progressing, Degraded, Reconciling or Stalled.", "type: Ready"),
    ("Condition", "status"): ("Whether the condition holds.", "status: \"True\""),
    ("Condition", "reason"): ("One word: Available, RollingOut, ProxiesNotReady, NoMatchingNodes, InvalidPolicy, ApplyFailed, ...", "reason: InvalidPolicy"),
    ("Condition", "message"): ("Human-readable detail.", "message: \"rules[1]: 'containers.restrat' names no Docker API operation\""),
    ("Condition", "observedGeneration"): ("The generation the condition was computed for.", "observedGeneration: 3"),
    ("Condition", "lastTransitionTime"): ("When `status` last changed.", "lastTransitionTime: \"2025-01-01T12:00:00Z\""),
}  # fmt: skip


class Undocumented(ValueError):
    pass


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True  # noqa: UP007
    return tp, False


def _anchor(model: type[BaseModel]) -> str:
    return model.__name__.lower()


def type_text(tp: Any) -> str:
    tp, optional = _strip_optional(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        text = type_text(args[0])
    elif origin is typing.Literal:
        text = " \\| ".join(f"`{a}`" for a in args)
    elif origin is list:
        text = f"list of {type_text(args[0])}"
    elif origin is dict:
        text = f"map {type_text(args[0])} → {type_text(args[1])}"
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        text = f"[{tp.__name__}](#{_anchor(tp)})"
    else:
        text = {str: "string", int: "integer", bool: "boolean"}.get(tp, str(tp))
    return f"{text} (optional)" if optional else text


def _constraints(info: FieldInfo) -> list[str]:
    out: list[str] = []

    def walk(meta: list[Any]) -> None:
        for m in meta:
            if isinstance(m, annotated_types.Ge):
                out.append(f"≥ {m.ge}")
            elif isinstance(m, annotated_types.Le):
                out.append(f"≤ {m.le}")
            elif isinstance(m, annotated_types.MaxLen):
                out.append(f"at most {m.max_length} items")
            elif getattr(m, "pattern", None):
                out.append(f"pattern `{m.pattern}`")

    walk(list(info.metadata))
    tp, _ = _strip_optional(info.annotation)
    if typing.get_origin(tp) is list:
        inner = typing.get_args(tp)[0]
        if typing.get_origin(inner) is typing.Annotated:
            for extra in typing.get_args(inner)[1:]:
                walk([extra, *getattr(extra, "metadata", [])])
    return out


def default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.default_factory() if info.default_factory else info.default  # type: ignore[call-arg]
    if isinstance(value, BaseModel):
        return "its fields' defaults"
    if value is None:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value in ({}, []):
        return f"`{value}`"
    return f"`{value}`" if not isinstance(value, dict) else f"`{_flow(value)}`"


def _flow(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    return str(value)


def _nested_models(tp: Any) -> list[type[BaseModel]]:
    tp, _ = _strip_optional(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [m for a in typing.get_args(tp) for m in _nested_models(a)]


def walk_models() -> tuple[list[type[BaseModel]], dict[str, list[str]]]:
    """Models breadth-first from the root (the spec's tree, then the status'), and the paths
    each is used at."""
    order: list[type[BaseModel]] = []
    used_at: dict[str, list[str]] = {}

    def visit(start: type[BaseModel], start_path: str, where: str) -> None:
        order.append(start)
        used_at[start.__name__] = [where]
        queue = [(start, start_path)]
        while queue:
            model, path = queue.pop(0)
            for name, info in model.model_fields.items():
                if model is ROOT and name == "status":
                    continue
                tp, _ = _strip_optional(info.annotation)
                sub_path = f"{path}.{name}" if path else name
                if typing.get_origin(tp) is list:
                    sub_path += "[]"
                for sub in _nested_models(info.annotation):
                    used_at.setdefault(sub.__name__, []).append(f"`{sub_path}`")
                    if sub not in order:
                        order.append(sub)
                        queue.append((sub, sub_path))

    visit(ROOT, "", "(the resource)")
    visit(models.DockerSocketPolicyStatus, "status", "`status`")
    return order, used_at


def audit_floor_section() -> list[str]:
    """The audit-mode floor, from policy/floor.py: what `mode: audit` may forward."""
    ops = ", ".join(f"`{name}`" for name in sorted(AUDIT_FORWARDABLE))
    reaching = ", ".join(f"`{name}`" for name in sorted(HOST_REACHING))
    return [
        "## Audit mode and its floor",
        "",
        "With `mode: audit` every request is decided as in `enforce`, but one the policy would deny "
        "is forwarded and logged (and counted) with `decision: would-deny`, its rule and reason, "
        "unless the floor refuses it. The floor (docs/security.md says why) keeps denied:",
        "",
        "- everything hidden by `visibility` (containers, and what names them) and, under "
        "`redactEnv`, `top` with environment-printing `ps_args`;",
        "- unknown routes and every Podman libpod route;",
        "- every operation not in this list: " + ops + ";",
        "- a container create or update, a volume create or an old-API start body asking for "
        "host power: privileged, any bind or bind mount of a host path, host or container "
        "namespaces, capabilities beyond Docker's default set, devices, VolumesFrom, sysctls, "
        "security options, runtimes, cgroup parent (unless the policy's own rule allows it: then "
        "it is simply allowed);",
        "- a privileged exec;",
        "- " + reaching + " into a container that has host power itself (privileged, host "
        "namespaces, added capabilities, devices, binds or bind mounts, unconfined security "
        "options).",
        "",
    ]


def render() -> str:
    order, used_at = walk_models()
    missing: list[str] = []
    lines = [
        "# DockerSocketPolicy reference",
        "",
        "<!-- GENERATED by hack/gen_policy_reference.py from operator/docker_socket_operator/api/models.py:",
        "     do not edit; run `make policy-reference`. -->",
        "",
        "`apiVersion: dockersocket.io/v1alpha1`, `kind: DockerSocketPolicy`, cluster-scoped",
        "(short name `dsp`). Unknown fields are rejected, so a typo never widens access. Operation",
        "names are listed in [operations.md](operations.md), presets in [presets.md](presets.md).",
        "",
        "Presets: " + ", ".join(f"`{name}`" for name in PRESETS) + ".",
        "",
    ]
    lines += audit_floor_section()
    for model in order:
        lines += [f"## {model.__name__}", ""]
        doc = (model.__doc__ or "").strip()
        if doc and model.__module__ == models.__name__ and "Strict base" not in doc:
            lines += [" ".join(doc.split()), ""]
        lines += [f"Used at: {', '.join(used_at[model.__name__])}.", ""]
        lines += ["| Field | Type | Default | Description | Example |", "|---|---|---|---|---|"]
        for name, info in model.model_fields.items():
            note = NOTES.get((model.__name__, name))
            description = info.description or (note[0] if note else None)
            example = note[1] if note else None
            if not description or not example:
                missing.append(f"{model.__name__}.{name}")
                continue
            constraints = _constraints(info)
            if constraints:
                description += " Constraints: " + ", ".join(constraints) + "."
            cells = [
                f"`{name}`",
                type_text(info.annotation),
                default_text(info),
                description.replace("|", "\\|"),
                "<code>"
                + example.replace("|", "\\|").replace("\n", "<br>").replace(" ", "&nbsp;")
                + "</code>"
                if "\n" in example
                else f"`{example}`",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if missing:
        raise Undocumented(f"fields without description or example (add to NOTES): {missing}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print("stale: docs/policy-reference.md (run `make policy-reference`)")
            return 1
        return 0
    OUTPUT.write_text(text)
    print(OUTPUT.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
