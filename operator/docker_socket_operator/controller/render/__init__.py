"""Pure manifest builders: a DockerSocketPolicy object in, the child objects out.

No I/O here: the operator, the `render` command and the unit tests all call `render`.
"""

from __future__ import annotations

from typing import Any

from docker_socket_operator.controller.render.common import (
    MANAGER,
    POLICY_LABEL,
    RenderOptions,
    child_name,
)
from docker_socket_operator.controller.render.configmap import render_configmap
from docker_socket_operator.controller.render.daemonset import render_daemonset
from docker_socket_operator.controller.render.networkpolicy import render_networkpolicy
from docker_socket_operator.controller.render.service import endpoint, render_service
from docker_socket_operator.controller.validate import expand, parse_spec

__all__ = ["MANAGER", "POLICY_LABEL", "RenderOptions", "child_name", "endpoint", "render"]


def render(
    policy: dict[str, Any],
    namespace: str,
    image: str,
    options: RenderOptions | None = None,
) -> list[dict[str, Any]]:
    """The objects the operator applies for one policy, in apply order.

    Raises PolicyError when the spec does not parse; call `validate_policy` first to also
    catch what only the compiler sees (unknown operations, bad globs).
    """
    opts = options or RenderOptions()
    spec = parse_spec(policy)
    return [
        render_configmap(policy, namespace, expand(spec), opts),
        render_daemonset(policy, namespace, spec, image, opts),
        render_service(policy, namespace, spec, opts),
        render_networkpolicy(policy, namespace, spec, opts),
    ]
