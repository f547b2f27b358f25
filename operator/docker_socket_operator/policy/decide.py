"""decide(): one request in, allow or deny out. Pure and on the hot path: a dict lookup, then the
few rules that name the operation (see compile.py for the rule semantics)."""

from __future__ import annotations

import re

from docker_socket_operator.policy.body import as_labels
from docker_socket_operator.policy.compile import (
    OWNED_NEVER,
    VISIBILITY_BLIND,
    CompiledPolicy,
    OpRule,
    ScopeKind,
    scope_kind,
)
from docker_socket_operator.policy.constraints import (
    check_create_body,
    check_exec_body,
    check_start_body,
    check_update_body,
    check_volume_create_body,
)
from docker_socket_operator.policy.floor import floor_reason
from docker_socket_operator.policy.networks import check_network_create_body
from docker_socket_operator.policy.ownership import (
    OWNER_LABEL,
    STAMPED_OPERATIONS,
    reserved_label_reason,
)
from docker_socket_operator.policy.psargs import top_args_reason
from docker_socket_operator.policy.queries import query_reason
from docker_socket_operator.policy.selectors import Selector
from docker_socket_operator.policy.types import BadBody, ContainerFacts, Decision, RequestFacts

DEFAULT_DENY = "default deny"
NOT_VISIBLE = "container not visible to this client"
REDACT_ENV = "visibility.redactEnv"
OWNERSHIP = "ownership"
# Denials that are floors in themselves: audit mode never forwards what a client may not see,
# nor a create that claims another policy's ownership.
FLOOR_RULES = frozenset({"visibility", REDACT_ENV, OWNERSHIP})
_LIBPOD_TOP = re.compile(r"/libpod/containers/[^/]+/top")


def _new_container(req: RequestFacts, owner: str | None) -> ContainerFacts:
    """The container a create would make, as a selector sees it (owned once stamped)."""
    labels = as_labels(req.body.get("labels")) if isinstance(req.body, dict) else {}
    if owner is not None:
        labels[OWNER_LABEL] = owner
    image = req.body.get("image") if isinstance(req.body, dict) else None
    return ContainerFacts(
        id="",
        name=req.query.get("name", "").lstrip("/"),
        labels=labels,
        image=image if isinstance(image, str) else "",
    )


def _owns(policy: CompiledPolicy, req: RequestFacts) -> bool:
    """The network or volume the path names carries this policy's owner label."""
    labels = req.object_labels
    return labels is not None and labels.get(OWNER_LABEL) == policy.owner


def _rule_matches(
    policy: CompiledPolicy, rule: OpRule, scope: ScopeKind, req: RequestFacts
) -> bool:
    """Whether a scoped rule (containers selector, owned, or both) applies to the request."""
    assert rule.selector is not None and req.op is not None
    if rule.only_owned and scope in ("object", "ownable"):
        if req.op.name in OWNED_NEVER:  # the container named in the body must be owned too
            container = req.container
            if container is None or container.labels.get(OWNER_LABEL) != policy.owner:
                return False
        return scope == "ownable" or _owns(policy, req)
    return _scope_matches(rule.selector, scope, req, policy.owner)


def _scope_matches(
    selector: Selector, scope: ScopeKind, req: RequestFacts, owner: str | None
) -> bool:
    if scope == "target":
        return req.container is not None and selector.matches(req.container)
    if scope == "create":
        return selector.matches(_new_container(req, owner))
    if scope == "rename":
        # Renaming into a rule's names would hand the container another rule's powers.
        return (
            req.container is not None
            and selector.matches(req.container)
            and selector.matches_parts(req.query.get("name", "").lstrip("/"), req.container.labels)
        )
    return scope == "filtered"


def _body_reason(rule: OpRule, req: RequestFacts) -> str | None:
    assert req.op is not None
    name = req.op.name
    if name == "containers.create":
        return check_create_body(req.body, rule.create, req.engine, req.create_context)
    if name == "containers.start":
        return check_start_body(req.body)
    if name == "exec.create":
        return check_exec_body(req.body, rule.exec)
    if name == "containers.update":
        return check_update_body(req.body, rule.create)
    if name == "volumes.create":
        return check_volume_create_body(req.body, rule.create)
    if name == "networks.create":
        return check_network_create_body(req.body)
    return None


def _visibility_denial(
    policy: CompiledPolicy, scope: ScopeKind, req: RequestFacts
) -> Decision | None:
    visibility = policy.visibility
    assert visibility is not None and req.op is not None
    if scope in ("target", "rename"):
        if req.container is None or not visibility.matches(req.container):
            return Decision(False, "visibility", NOT_VISIBLE)
    elif scope == "create":
        if not visibility.matches(_new_container(req, policy.owner)):
            return Decision(False, "visibility", "a new container must be visible to this client")
    elif scope == "object" and policy.visibility_owned:
        if req.op.name in OWNED_NEVER or not _owns(policy, req):
            return Decision(False, "visibility", f"{req.op.target} not visible to this client")
    elif req.op.name == "containers.prune" and policy.visibility_owned_only:
        return None  # narrowed to owned containers, which are exactly the visible ones
    elif req.op.name in VISIBILITY_BLIND:
        return Decision(
            False, "visibility", f"{req.op.name} can reach containers not visible to this client"
        )
    return None


def _rename_reason(policy: CompiledPolicy, req: RequestFacts) -> str | None:
    """A container's name is all a name-scoped rule knows of it: a rename may not move a
    container into an allow rule's names (another container then gets that rule's powers) nor
    out of a deny rule's. Moving out of an allow (compose renames a container it replaces) or
    into a deny only narrows. Label selectors do not change with a rename."""
    if not policy.name_scopes:
        return None
    container = req.container
    if container is None:
        return "the container to rename is not known"
    new = req.query.get("name", "").lstrip("/")
    for label, allow, selector in policy.name_scopes:
        before = selector.matches(container)
        after = selector.matches_parts(new, container.labels)
        if (allow and after and not before) or (not allow and before and not after):
            into = "into" if allow else "out of"
            return (
                f"renaming {container.name!r} to {new!r} would move it {into} a rule "
                f"scoped by name ({label})"
            )
    return None


def _env_denial(req: RequestFacts) -> Decision | None:
    """top prints what `ps` prints: under redactEnv, never a process's environment."""
    reason = top_args_reason(req.query.get("ps_args", ""))
    return None if reason is None else Decision(False, REDACT_ENV, reason)


def _view_denial(policy: CompiledPolicy, req: RequestFacts) -> Decision | None:
    """Visibility and redactEnv as they apply to an operation no rule names (audit mode)."""
    op = req.op
    if op is None:
        return None
    if policy.visibility is not None:
        hidden = _visibility_denial(policy, scope_kind(op), req)
        if hidden is not None:
            return hidden
    if policy.redact_env and op.name == "containers.top":
        return _env_denial(req)
    return None


def _decide_libpod(policy: CompiledPolicy, req: RequestFacts) -> Decision:
    if policy.redact_env and _LIBPOD_TOP.fullmatch(req.api_path):
        denied = _env_denial(req)
        if denied is not None:
            return denied
    for rule in policy.libpod_rules:
        if rule.method in ("*", req.method) and rule.path.match(req.api_path):
            if rule.allow:
                return Decision(True, rule.label, "allowed")
            return Decision(False, rule.label, f"libpod {req.method} {req.api_path} is denied")
    return Decision(False, DEFAULT_DENY, f"no rule allows libpod {req.method} {req.api_path}")


def decide(policy: CompiledPolicy, req: RequestFacts) -> Decision:
    """Allow or deny one request. Default deny; first matching rule wins. In audit mode a denial
    above the floor (policy/floor.py) comes back allowed, marked would_deny, rule and reason kept.
    Raises BadBody (the proxy's 400) for a body field of the wrong JSON type."""
    try:
        return _decide_in_mode(policy, req)
    except (TypeError, AttributeError) as e:
        # dockerd decodes bodies into typed Go structs: a field of the wrong JSON type is its
        # 400, so a check that meets one answers the same instead of failing as a proxy bug.
        raise BadBody(f"a body field has the wrong JSON type ({e})") from None


def _decide_in_mode(policy: CompiledPolicy, req: RequestFacts) -> Decision:
    decision = _decide(policy, req)
    if decision.allow or policy.mode != "audit" or decision.rule in FLOOR_RULES:
        return decision
    hidden = _view_denial(policy, req)
    if hidden is not None:
        return hidden
    floor = floor_reason(req)
    if floor is not None:
        return Decision(False, decision.rule, f"{decision.reason}; audit floor: {floor}")
    return Decision(True, decision.rule, decision.reason, would_deny=True)


def _decide(policy: CompiledPolicy, req: RequestFacts) -> Decision:
    if req.libpod:
        return _decide_libpod(policy, req)
    op = req.op
    if op is None:
        return Decision(False, DEFAULT_DENY, "unknown API route")
    plan = policy.plans.get(op.name)
    if plan is None:
        return Decision(False, DEFAULT_DENY, _no_rule(policy, op.name))
    if policy.visibility is not None:
        hidden = _visibility_denial(policy, plan.scope, req)
        if hidden is not None:
            return hidden
    if policy.redact_env and op.name == "containers.top":
        denied = _env_denial(req)
        if denied is not None:
            return denied
    if op.name in STAMPED_OPERATIONS:
        claimed = reserved_label_reason(req.body)
        if claimed is not None:
            return Decision(False, OWNERSHIP, claimed)
    refused: Decision | None = None  # the first allow rule whose body checks failed
    reaches = query_reason(op.name, req.query, req.engine, req.params)
    if reaches is None and op.name == "containers.rename":
        reaches = _rename_reason(policy, req)
    for rule in plan.rules:
        if rule.selector is not None:
            if not rule.allow and plan.scope == "filtered":
                continue  # a scoped deny does not refuse a whole list; visibility hides containers
            if not _rule_matches(policy, rule, plan.scope, req):
                continue
        if not rule.allow:
            return refused or Decision(False, rule.label, f"{op.name} is denied by policy")
        reason = reaches or (_body_reason(rule, req) if op.name in policy.body_ops else None)
        if reason is None:
            return Decision(
                True, rule.label, "allowed", owned=rule.owned or policy.visibility_owned
            )
        refused = refused or Decision(False, rule.label, reason)
    return refused or Decision(False, DEFAULT_DENY, _no_rule(policy, op.name))


def _no_rule(policy: CompiledPolicy, name: str) -> str:
    hint = policy.unallowed_hints.get(name)
    return f"no rule allows {name}" if hint is None else f"no rule allows {name} ({hint})"
