"""What a request is, for the policy: one reading of its target, query, operation and body,
shared by the proxy and `check` so that both decide on exactly the same facts (pure)."""

from __future__ import annotations

from typing import Any

from docker_socket_operator.catalogue.operations import match_operation
from docker_socket_operator.catalogue.paths import forward_target, parse_target
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
    (both pure functions of the facts, kept for a request that sends the same bytes again).
    The same holds for the facts with a resolved container: a container's facts come from the
    answer memo (proxy/answers.py), one object per exact inspect answer, so the facts with the
    same object, and the decision on them, are what computing them again would give."""

    __slots__ = (
        "_contained",
        "_contained_decision",
        "_contained_policy",
        "_container",
        "_own",
        "decision",
        "facts",
        "forward",
        "policy",
        "req",
    )

    def __init__(self, req: RequestHead, facts: RequestFacts) -> None:
        self.req = req
        self.facts = facts
        self.policy: object = None  # the policy `decision` was made under
        self.decision: Decision | None = None
        self.forward: bytes | None = None  # the upstream head when nothing was rewritten
        self._own: str | None = None  # the target forwarded as is (forward_target)
        self._container: ContainerFacts | None = None  # the container `_contained` holds
        self._contained: RequestFacts | None = None
        self._contained_policy: object = None
        self._contained_decision: Decision | None = None

    def own_target(self) -> str:
        """forward_target of this reading's own target."""
        own = self._own
        if own is None:
            target = self.facts.target
            assert target is not None
            own = self._own = forward_target(target)
        return own

    def with_container(self, facts: RequestFacts, container: ContainerFacts) -> RequestFacts:
        """`facts` with `container` resolved; the same object again for the same container
        object, when `facts` are this reading's own."""
        if facts is not self.facts:
            return facts.but(container=container)
        contained = self._contained
        if contained is None or self._container is not container:
            contained = self._contained = facts.but(container=container)
            self._container = container
            self._contained_decision = None
        return contained

    def decided(self, policy: CompiledPolicy, facts: RequestFacts) -> Decision:
        """decide(policy, facts), kept when the facts are this reading's own (no body, no
        object resolved: nothing but the head's bytes went into them) or those facts with a
        container from `with_container`."""
        if facts is self.facts:
            if self.policy is not policy or self.decision is None:
                self.decision = decide(policy, facts)
                self.policy = policy
            return self.decision
        if facts is self._contained:
            decision = self._contained_decision
            if self._contained_policy is not policy or decision is None:
                decision = self._contained_decision = decide(policy, facts)
                self._contained_policy = policy
            return decision
        return decide(policy, facts)


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
