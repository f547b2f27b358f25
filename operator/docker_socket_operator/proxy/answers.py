"""What the proxy made of a daemon answer, kept by the answer's exact bytes.

A poller (a discovery provider, a dashboard) asks for the same inspect or list again and
again, and the daemon answers with the same bytes while nothing changed. The container
facts read from an inspect answer, and the answer as an operation's filter rewrites it, are
pure functions of those bytes (and of the policy, for a rewrite): kept for the same bytes,
they are what decoding them again would give, never a stale view. A changed container
answers with other bytes, which miss. Rewrites that also read the daemon's container list
(under visibility) are not kept: that list is not part of the key.
"""

from __future__ import annotations

from docker_socket_operator.policy.types import ContainerFacts

ANSWERS_KEPT = 128  # distinct answers kept
ANSWER_MAX = 1 << 20  # larger answers are decoded every time
KEPT_BYTES_MAX = 8 << 20  # all the kept answers' bytes together
EDGE = 48  # bytes from each end of an answer that go into its key


def _key(operation: str, raw: bytes) -> tuple[str, int, bytes, bytes]:
    """Where an answer is kept: its length and ends (cheap to hash; a 3 KB answer's own hash
    was 1.5 % of a scoped inspect). Answers that share a key are told apart by their bytes."""
    return operation, len(raw), raw[:EDGE], raw[-EDGE:]


class _Kept:
    __slots__ = ("facts", "host_power", "policy", "raw", "rewritten")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw  # the answer all of the rest was made of
        self.facts: ContainerFacts | None = None
        self.host_power = False  # the facts include the reason a container holds host power
        self.policy: object = None  # the policy `rewritten` was made under
        self.rewritten: bytes | None = None


class AnswerMemo:
    """Per daemon answer (its operation and bytes): the container facts it gave and the
    rewrite a policy made of it. Bounded: emptied when it holds too many or too many bytes."""

    __slots__ = ("_bytes", "_kept")

    def __init__(self) -> None:
        self._kept: dict[tuple[str, int, bytes, bytes], _Kept] = {}
        self._bytes = 0

    def facts(self, operation: str, raw: bytes, host_power: bool) -> ContainerFacts | None:
        kept = self._kept.get(_key(operation, raw))
        if kept is None or kept.host_power != host_power or kept.raw != raw:
            return None
        return kept.facts

    def keep_facts(
        self, operation: str, raw: bytes, host_power: bool, facts: ContainerFacts
    ) -> None:
        kept = self._entry(operation, raw)
        if kept is not None:
            kept.facts = facts
            kept.host_power = host_power

    def rewritten(self, operation: str, raw: bytes, policy: object) -> bytes | None:
        kept = self._kept.get(_key(operation, raw))
        if kept is None or kept.policy is not policy or kept.raw != raw:
            return None
        return kept.rewritten

    def keep_rewritten(self, operation: str, raw: bytes, policy: object, out: bytes) -> None:
        kept = self._entry(operation, raw)
        if kept is not None:
            kept.policy = policy
            kept.rewritten = out
            self._bytes += len(out)

    def _entry(self, operation: str, raw: bytes) -> _Kept | None:
        if len(raw) > ANSWER_MAX:
            return None
        key = _key(operation, raw)
        kept = self._kept.get(key)
        if kept is None or kept.raw != raw:  # new, or other bytes with the same key: replaced
            if len(self._kept) >= ANSWERS_KEPT or self._bytes > KEPT_BYTES_MAX:
                self._kept.clear()
                self._bytes = 0
            kept = self._kept[key] = _Kept(raw)
            self._bytes += len(raw)
        return kept
