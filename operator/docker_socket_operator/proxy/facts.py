"""What a request is, for the policy: one reading of its target, query, operation and body,
shared by the proxy and `check` so that both decide on exactly the same facts (pure)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from docker_socket_operator.catalogue.operations import match_operation
from docker_socket_operator.catalogue.paths import parse_target
from docker_socket_operator.catalogue.types import BadTarget
from docker_socket_operator.policy.body import decode_docker_json
from docker_socket_operator.policy.types import BadBody, ContainerFacts, Engine, RequestFacts
from docker_socket_operator.proxy.http1 import HttpError, parse_query


def request_facts(
    method: str,
    raw_target: str,
    body: bytes | None = None,
    *,
    container: ContainerFacts | None = None,
    engine: Engine = "unknown",
) -> RequestFacts:
    """The facts of `method raw_target` with its `body` (None: not read). HttpError 400 for a
    target, query or body the daemon could read otherwise than the proxy."""
    try:
        target = parse_target(raw_target)
    except BadTarget as e:
        raise HttpError(400, f"bad request target: {e}") from None
    query = parse_query(target.query, libpod=target.libpod)
    matched = match_operation(method, target.api_path)
    return RequestFacts(
        method=method,
        api_path=target.api_path,
        op=matched.op if matched is not None else None,
        params=matched.params if matched is not None else {},
        query=query,
        body=None if body is None else decode_body(body),
        container=container,
        libpod=target.libpod,
        engine=engine,
        target=target,
    )


def with_body(facts: RequestFacts, body: bytes) -> RequestFacts:
    """The same request with its body read (the proxy reads one only when the policy needs it,
    which it knows once the operation is)."""
    return replace(facts, body=decode_body(body))


def decode_body(raw: bytes) -> Any:
    """A JSON request body as dockerd decodes it (policy/body.py); empty is no body."""
    if not raw.strip():
        return None
    try:
        return decode_docker_json(raw)
    except BadBody as e:
        raise HttpError(400, f"invalid JSON body: {e}") from None


def operation_name(facts: RequestFacts) -> str:
    """The operation's name for the audit log and metrics."""
    if facts.op is not None:
        return facts.op.name
    return "libpod" if facts.libpod else "unknown"
