"""Turn a DockerSocketPolicy object into a checked spec, or a PolicyError with a message a
user can act on. Nothing is applied for a policy that fails here."""

from __future__ import annotations

from typing import Any

import pydantic

from docker_socket_operator.api.models import DockerSocketPolicySpec
from docker_socket_operator.policy.problems import validation_problems
from docker_socket_operator.policy.types import PolicyError


def parse_spec(policy: dict[str, Any]) -> DockerSocketPolicySpec:
    try:
        return DockerSocketPolicySpec.model_validate(policy.get("spec") or {})
    except pydantic.ValidationError as exc:
        raise PolicyError(validation_problems(exc, "spec.")) from None


def expand(spec: DockerSocketPolicySpec) -> DockerSocketPolicySpec:
    """Presets replaced by their explicit operations (the policy compiler owns the list)."""
    from docker_socket_operator.policy.compile import expand_presets

    return expand_presets(spec)


def validate_policy(policy: dict[str, Any]) -> DockerSocketPolicySpec:
    """Parse and compile; raises PolicyError. Returns the parsed (unexpanded) spec."""
    from docker_socket_operator.policy.compile import compile_policy

    spec = parse_spec(policy)
    compile_policy(spec, (policy.get("metadata") or {}).get("name"))
    return spec
