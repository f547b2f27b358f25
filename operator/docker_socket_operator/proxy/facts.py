"""What a request is, for the policy: one reading of its target, query, operation and body,
shared by the proxy and `check` so that both decide on exactly the same facts (pure)."""

from __future__ import annotations

from typing import Any

from docker_socket_operator.catalogue.operations import match_operation
from docker_socket_operator.catalogue.paths import parse_target
from docker_socket_operator.catalogue.types import BadTarget
from docker_socket_operator.policy.body import decode_docker_json
from docker_socket_operator.policy.compile import CompiledPolicy
from docker_socket_operator.policy.decide import decide
from docker_socket_operator.policy.types import (
    BadBody,
    ContainerFacts,
    Decision,
    Engine,
    RequestFacts,
)
from docker_socket_operator.proxy.http1 import (
    HttpError,
    RequestHead,
    parse_query,
    parse_request_head,
)

READINGS_KEPT = 512  # distinct request heads whose reading is kept
READING_MAX_HEAD = 4096  # longer heads are read every time


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
    return facts.but(body=decode_body(body))


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


class Reading:
    """What one request head's bytes mean: the parsed head, its facts without a body, and, once
    computed, the decision on those facts under one policy and the head forwarded for them
    (both pure functions of the facts, kept for a request that sends the same bytes again)."""

    __slots__ = ("decision", "facts", "forward", "policy", "req")

    def __init__(self, req: RequestHead, facts: RequestFacts) -> None:
        self.req = req
        self.facts = facts
        self.policy: object = None  # the policy `decision` was made under
        self.decision: Decision | None = None
        self.forward: bytes | None = None  # the upstream head when nothing was rewritten

    def decided(self, policy: CompiledPolicy, facts: RequestFacts) -> Decision:
        """decide(policy, facts), kept when the facts are this reading's own (no body, no
        container or object resolved: nothing but the head's bytes went into them)."""
        if facts is not self.facts:
            return decide(policy, facts)
        if self.policy is not policy or self.decision is None:
            self.decision = decide(policy, facts)
            self.policy = policy
        return self.decision


class Readings:
    """The reading of a request head's bytes, kept for the next request that sends the same
    bytes: a keep-alive client (a discovery poller, a health check) sends the same head again
    and again, and a reading is a pure function of those bytes and the engine. A head that
    fails to parse is never kept, and the kept set is bounded (emptied when full)."""

    __slots__ = ("_kept",)

    def __init__(self) -> None:
        self._kept: dict[bytes, Reading] = {}

    def read(self, head: bytes, engine: Engine) -> Reading | tuple[RequestHead, HttpError]:
        """The head's reading (HttpError raised when the head cannot be parsed), or the parsed
        head with the HttpError that refuses its target (answered once it is on record)."""
        kept = self._kept.get(head)
        if kept is not None and kept.facts.engine == engine:
            return kept
        req = parse_request_head(head)
        try:
            facts = request_facts(req.method, req.target, engine=engine)
        except HttpError as e:
            return req, e
        reading = Reading(req, facts)
        if len(head) <= READING_MAX_HEAD:
            if len(self._kept) >= READINGS_KEPT:
                self._kept.clear()
            self._kept[head] = reading
        return reading
