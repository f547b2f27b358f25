"""Compile a DockerSocketPolicySpec into per-operation rule lists, so that deciding a request costs
one dict lookup and a walk over the few rules that name its operation.

Rule semantics (docs/presets.md has the user's view):
- rules are tried in order, first match wins, no match is a deny;
- a rule's `containers` scopes the operations that act on a container: per-container calls
  (the target, or the exec's container), containers.create (the new container's name and labels)
  and containers.rename (old and new name). containers.list and system.events are not refused by
  a scoped allow rule: their answers are filtered to its containers. Any other operation (one
  with no container) never matches a scoped rule;
- an allow rule that matches but whose body checks fail does not end the walk: a later rule may
  still allow; if none does, the first failure is the answer;
- an `owned` rule (spec.ownership) adds the owner label to its `containers` selector; without a
  `containers` selector it also matches the network and volume operations on owned objects, their
  creates (stamped owned), and their lists and prunes (narrowed to owned). It never matches any
  other operation (images, system: nothing there is owned).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import translate
from pathlib import Path
from typing import Literal

import yaml
from pydantic import ValidationError

from docker_socket_operator.api.models import (
    ContainerSelector,
    DockerSocketPolicy,
    DockerSocketPolicySpec,
    PolicyMode,
    Rule,
)
from docker_socket_operator.catalogue.operations import (
    ALL_OPERATIONS,
    UNCHECKED_HOST_POWER,
    is_glob,
    operations_named,
)
from docker_socket_operator.catalogue.types import Operation
from docker_socket_operator.policy.constraints import CreateLimits, ExecLimits
from docker_socket_operator.policy.ownership import (
    NARROWED_OPERATIONS,
    OWNER_LABEL,
    STAMPED_OPERATIONS,
)
from docker_socket_operator.policy.presets import PRESETS
from docker_socket_operator.policy.problems import os_problem, validation_problems, yaml_problem
from docker_socket_operator.policy.selectors import Selector, compile_selector
from docker_socket_operator.policy.types import ContainerFacts, PolicyError

# How a rule's `containers` (or `owned`) applies to an operation. object: a network or volume
# named in the path; ownable: creates, lists and prunes of networks and volumes (containers.prune).
ScopeKind = Literal["target", "create", "rename", "filtered", "object", "ownable", "none"]

BODY_OPERATIONS = frozenset(
    {
        "containers.create",
        "containers.update",
        "containers.start",
        "exec.create",
        "volumes.create",
        "networks.create",
        "networks.connect",
        "networks.disconnect",
    }
)
# They name a container in the body: an owned rule matches when it too is owned (the proxy
# resolves it into RequestFacts.container).
OWNED_NEVER = frozenset({"networks.connect", "networks.disconnect"})
FILTERED_OPERATIONS = frozenset({"containers.list", "system.events"})
# Operations that reach containers without naming one in the path: refused under visibility.
VISIBILITY_BLIND = frozenset(
    {
        "containers.prune",
        "images.commit",
        "system.data-usage",
        "networks.connect",
        "networks.disconnect",
    }
)


def scope_kind(op: Operation) -> ScopeKind:
    if op.name == "containers.create":
        return "create"
    if op.name == "containers.rename":
        return "rename"
    if op.name in FILTERED_OPERATIONS:
        return "filtered"
    if op.target in ("container", "exec"):
        return "target"
    if op.target in ("network", "volume"):
        return "object"
    if op.name in STAMPED_OPERATIONS or op.name in NARROWED_OPERATIONS:
        return "ownable"
    return "none"


@dataclass(frozen=True, slots=True)
class OpRule:
    """One rule as seen by one operation."""

    label: str  # "rules[1] allow containers.restart (containers: names=[web])"
    allow: bool
    selector: Selector | None
    create: CreateLimits
    exec: ExecLimits
    # owned: the owner label is in `selector`; only_owned: and nothing else is (no `containers`).
    owned: bool = False
    only_owned: bool = False


@dataclass(frozen=True, slots=True)
class OpPlan:
    scope: ScopeKind
    rules: tuple[OpRule, ...]


@dataclass(frozen=True, slots=True)
class LibpodRule:
    label: str
    allow: bool
    method: str  # "*" = any
    path: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    audit: str
    max_body: int
    redact_env: bool
    visibility: Selector | None
    plans: Mapping[str, OpPlan]
    libpod_rules: tuple[LibpodRule, ...]
    # Selectors every item of a containers.list answer / container event must match.
    list_filters: tuple[Selector, ...]
    event_filters: tuple[Selector, ...]
    body_ops: frozenset[str] = frozenset()
    container_ops: frozenset[str] = frozenset()
    mode: PolicyMode = (
        "enforce"  # or "audit": decide() forwards denials above the floor as would-deny
    )
    owner: str | None = None  # spec.ownership: the owner label value stamped on creates
    # visibility.owned: networks and volumes too must be owned; visibility_owned_only: and
    # visibility selects nothing else, so an owned-narrowed containers.prune stays within it.
    visibility_owned: bool = False
    visibility_owned_only: bool = False
    # Network/volume operations whose target's labels decide() needs (object_labels).
    object_ops: frozenset[str] = frozenset()
    # Every rule scoped by container name (its label, whether it allows, its selector): a
    # rename may not move a container into an allow rule's names nor out of a deny's (decide.py).
    name_scopes: tuple[tuple[str, bool, Selector], ...] = ()
    # Operation -> what would allow it, said with "no rule allows" (env mode: the variables).
    unallowed_hints: Mapping[str, str] = field(default_factory=dict)

    def needs_body(self, op: Operation) -> bool:
        """Whether decide() must see the decoded request body for this operation."""
        return op.name in self.body_ops

    def needs_container(self, op: Operation) -> bool:
        """Whether decide() must see the resolved target container (op.target container/exec)."""
        return op.name in self.container_ops

    def needs_object(self, op: Operation) -> bool:
        """Whether decide() must see the labels of the network or volume named in the path."""
        return op.name in self.object_ops

    @property
    def filters_containers(self) -> bool:
        """Whether containers.list / system.events answers must go through filters.py."""
        return bool(self.list_filters or self.event_filters)

    def container_visible(self, c: ContainerFacts) -> bool:
        return self.visibility is None or self.visibility.matches(c)


def expand_presets(spec: DockerSocketPolicySpec) -> DockerSocketPolicySpec:
    """The same spec with each preset rule replaced by the explicit allow rule it stands for
    (same index, scope and constraints), for the ConfigMap the proxies read."""
    rules = [
        rule.model_copy(
            update={
                "preset": None,
                "allow": list(PRESETS[rule.preset]),
                "description": rule.description or f"preset {rule.preset}",
            }
        )
        if rule.preset is not None
        else rule
        for rule in spec.rules
    ]
    return spec.model_copy(update={"rules": rules})


def _operation_names(index: int, patterns: list[str], allow: bool) -> list[str]:
    """The operations a rule's patterns name. An allow glob skips UNCHECKED_HOST_POWER (a
    deny glob does not): `allow: ["*"]` next to create constraints must not open the node
    through a plugin, a service or a swarm, so those are allowed only by their own name."""
    names: list[str] = []
    for pattern in patterns:
        if pattern.startswith("libpod:"):
            continue
        found = operations_named(pattern)
        if not found:
            raise PolicyError(f"rules[{index}]: {pattern!r} names no Docker API operation")
        if allow and is_glob(pattern):
            found = [op for op in found if op.name not in UNCHECKED_HOST_POWER]
            if not found:
                raise PolicyError(
                    f"rules[{index}]: {pattern!r} names only operations that give the node"
                    " away unchecked (plugins, services, swarm, BuildKit): a glob cannot allow"
                    " them, name each one"
                )
        names.extend(op.name for op in found if op.name not in names)
    return names


def _libpod_rules(index: int, kind: str, patterns: list[str], rule: Rule) -> list[LibpodRule]:
    out: list[LibpodRule] = []
    for pattern in patterns:
        if not pattern.startswith("libpod:"):
            continue
        if rule.containers is not None:
            raise PolicyError(
                f"rules[{index}]: containers scoping cannot apply to libpod routes ({pattern!r})"
            )
        method, _, path = pattern[len("libpod:") :].partition(" ")
        out.append(
            LibpodRule(
                f"rules[{index}] {kind} {pattern}",
                kind == "allow",
                method,
                re.compile(translate(path)),
            )
        )
    return out


def _list_filters(visibility: Selector | None, plan: OpPlan | None) -> tuple[Selector, ...]:
    filters = [] if visibility is None else [visibility]
    for rule in plan.rules if plan else ():
        if rule.selector is not None and not rule.allow:
            continue  # scoped deny rules do not apply to lists (visibility hides containers)
        if rule.selector is not None:
            filters.append(rule.selector)
        break
    return tuple(filters)


def _owner(spec: DockerSocketPolicySpec, name: str | None) -> str | None:
    if spec.ownership is None:
        if any(rule.owned for rule in spec.rules) or spec.visibility.owned:
            raise PolicyError("owned: true needs spec.ownership (what the policy owns)")
        return None
    owner = spec.ownership.owner or name
    if not owner:
        raise PolicyError("spec.ownership needs an owner (spec.ownership.owner or metadata.name)")
    return owner


def _with_owner(selector: ContainerSelector | None, owner: str | None) -> ContainerSelector | None:
    """The selector that also requires the owner label (owner None: unchanged)."""
    if owner is None:
        return selector
    selector = selector or ContainerSelector()
    if selector.labels.get(OWNER_LABEL, owner) != owner:
        raise PolicyError(f"containers.labels[{OWNER_LABEL}] contradicts owned: true")
    return selector.model_copy(update={"labels": {**selector.labels, OWNER_LABEL: owner}})


def compile_policy(spec: DockerSocketPolicySpec, name: str | None = None) -> CompiledPolicy:
    """Validate every rule against the catalogue and index them by operation. `name` is the
    policy's metadata.name, the default owner. Raises PolicyError."""
    owner = _owner(spec, name)
    by_op: dict[str, list[OpRule]] = {}
    libpod: list[LibpodRule] = []
    for index, rule in enumerate(spec.rules):
        kind = "deny" if rule.deny else "allow"
        patterns = rule.deny or rule.allow or PRESETS[rule.preset or ""]
        if kind == "deny" and (rule.create is not None or rule.exec is not None):
            raise PolicyError(f"rules[{index}]: create/exec constraints only apply to allow rules")
        try:
            create = CreateLimits.from_model(rule.create)
        except ValueError as exc:
            raise PolicyError(f"rules[{index}]: {exc}") from None
        exec_limits = ExecLimits.from_model(rule.exec)
        if rule.owned and any(p.startswith("libpod:") for p in patterns):
            raise PolicyError(f"rules[{index}]: owned cannot apply to libpod routes")
        selector = compile_selector(_with_owner(rule.containers, owner if rule.owned else None))
        only_owned = rule.owned and compile_selector(rule.containers) is None
        scope = f" (containers: {selector.summary})" if selector else ""
        preset = f" (preset {rule.preset})" if rule.preset else ""
        for name in _operation_names(index, patterns, kind == "allow"):
            label = f"rules[{index}] {kind} {name}{preset}{scope}"
            op_rule = OpRule(
                label, kind == "allow", selector, create, exec_limits, rule.owned, only_owned
            )
            by_op.setdefault(name, []).append(op_rule)
        libpod.extend(_libpod_rules(index, kind, patterns, rule))

    visibility_owned = spec.visibility.owned
    visibility = compile_selector(
        _with_owner(spec.visibility.containers, owner if visibility_owned else None)
    )
    if visibility is not None and libpod:
        raise PolicyError("visibility.containers cannot be enforced on Podman libpod routes")

    first_op = {op.name: op for op in reversed(ALL_OPERATIONS)}
    plans = {
        name: OpPlan(scope_kind(first_op[name]), tuple(rules)) for name, rules in by_op.items()
    }
    body_ops = frozenset(
        name
        for name, plan in plans.items()
        if name in BODY_OPERATIONS and any(r.allow for r in plan.rules)
    )
    name_scopes = _name_scopes(plans)
    container_ops = frozenset(
        name
        for name, plan in plans.items()
        if first_op[name].target in ("container", "exec")
        and (
            visibility is not None
            or any(r.selector is not None for r in plan.rules)
            or (name == "containers.rename" and bool(name_scopes))
        )
    )
    object_ops = frozenset(
        op.name
        for op in ALL_OPERATIONS
        if scope_kind(op) == "object"
        and (
            visibility_owned
            or any(r.only_owned for r in plans.get(op.name, OpPlan("none", ())).rules)
        )
    )
    if spec.mode == "audit":
        # The floor reads every body with host power and every container a call reaches, and
        # the audit log records them for `suggest`.
        body_ops = BODY_OPERATIONS
        container_ops = frozenset(
            op.name for op in ALL_OPERATIONS if op.target in ("container", "exec")
        )
    return CompiledPolicy(
        audit=spec.audit,
        max_body=spec.limits.maxBodyBytes,
        redact_env=spec.visibility.redactEnv,
        visibility=visibility,
        plans=plans,
        libpod_rules=tuple(libpod),
        list_filters=_list_filters(visibility, plans.get("containers.list")),
        event_filters=_list_filters(visibility, plans.get("system.events")),
        body_ops=body_ops,
        container_ops=container_ops,
        mode=spec.mode,
        owner=owner,
        visibility_owned=visibility_owned,
        visibility_owned_only=visibility_owned
        and compile_selector(spec.visibility.containers) is None,
        object_ops=object_ops,
        name_scopes=name_scopes,
    )


def _name_scopes(plans: Mapping[str, OpPlan]) -> tuple[tuple[str, bool, Selector], ...]:
    """Each selector with names, once per allow/deny, with the label of the first rule that
    uses it."""
    seen: dict[tuple[int, bool], tuple[str, bool, Selector]] = {}
    for plan in plans.values():
        for rule in plan.rules:
            selector = rule.selector
            if selector is not None and selector.names is not None:
                seen.setdefault((id(selector), rule.allow), (rule.label, rule.allow, selector))
    return tuple(seen.values())


def load_policy_file(path: str | Path) -> CompiledPolicy:
    """Read a YAML DockerSocketPolicy (or a bare spec) and compile it. Raises PolicyError."""
    return read_policy_file(path)[1]


def read_policy_file(path: str | Path) -> tuple[DockerSocketPolicy, CompiledPolicy]:
    """The policy file as written (a bare spec wrapped in a DockerSocketPolicy) and compiled.
    Raises PolicyError with a one-line message that names the file."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {os_problem(exc)}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file {path} is not valid YAML: {yaml_problem(exc)}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise PolicyError(f"policy file {path} must hold a YAML mapping")
    try:
        name: str | None = None
        if "spec" in doc or "kind" in doc or "apiVersion" in doc:
            policy = DockerSocketPolicy.model_validate(doc)
            name = policy.metadata.name
        else:
            policy = DockerSocketPolicy(spec=DockerSocketPolicySpec.model_validate(doc))
    except ValidationError as exc:
        raise PolicyError(
            f"policy file {path} is not a valid policy: {validation_problems(exc)}"
        ) from None
    try:
        return policy, compile_policy(policy.spec, name)
    except PolicyError as exc:
        raise PolicyError(f"policy file {path}: {exc}") from None
