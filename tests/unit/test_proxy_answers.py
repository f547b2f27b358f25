"""The memo of what the proxy made of a daemon answer (proxy/answers.py): a pure function of
the answer's exact bytes (and the policy, for a rewrite), bounded."""

from __future__ import annotations

from docker_socket_operator.policy.types import ContainerFacts
from docker_socket_operator.proxy import answers
from docker_socket_operator.proxy.answers import AnswerMemo

INSPECT = "containers.inspect"
RAW = b'{"Id":"' + b"a" * 64 + b'","Name":"/web"}'
FACTS = ContainerFacts(id="a" * 64, name="web")


def test_facts_are_kept_for_the_same_bytes_only() -> None:
    memo = AnswerMemo()
    assert memo.facts(INSPECT, RAW, False) is None
    memo.keep_facts(INSPECT, RAW, False, FACTS)
    assert memo.facts(INSPECT, bytes(bytearray(RAW)), False) is FACTS  # equal bytes, new object
    assert memo.facts(INSPECT, RAW.replace(b"/web", b"/db"), False) is None  # a rename
    assert memo.facts("images.inspect", RAW, False) is None
    # Facts read without the host-power reason are not the ones audit mode asks for.
    assert memo.facts(INSPECT, RAW, True) is None


def test_answers_alike_at_both_ends_are_told_apart_by_their_middle() -> None:
    # A container that changed state answers with bytes of the same length and the same ends
    # (its ID first, its network settings last): what was kept for the old bytes is not used.
    memo = AnswerMemo()
    middle = b'"Running":false'
    old = b'{"Id":"' + b"a" * 64 + b'",' + middle + b',"Name":"/web","X":"' + b"z" * 64 + b'"}'
    new = old.replace(middle, middle.replace(b"false", b"true_"))
    assert len(new) == len(old) and new[:48] == old[:48] and new[-48:] == old[-48:]
    memo.keep_facts(INSPECT, old, False, FACTS)
    memo.keep_rewritten(INSPECT, old, None, b"old\n")
    assert memo.facts(INSPECT, new, False) is None
    assert memo.rewritten(INSPECT, new, None) is None
    other = ContainerFacts(id="a" * 64, name="web", labels={"state": "new"})
    memo.keep_facts(INSPECT, new, False, other)
    assert memo.facts(INSPECT, new, False) is other
    assert memo.facts(INSPECT, old, False) is None  # the newer answer took its place
    assert memo.rewritten(INSPECT, new, None) is None  # nothing of the old one carried over


def test_a_rewrite_is_kept_for_the_policy_it_was_made_under() -> None:
    memo = AnswerMemo()
    old, new = object(), object()
    memo.keep_rewritten(INSPECT, RAW, old, b"rewritten\n")
    assert memo.rewritten(INSPECT, RAW, old) == b"rewritten\n"
    assert memo.rewritten(INSPECT, RAW, new) is None  # a reloaded policy rewrites anew
    assert memo.rewritten("containers.list", RAW, old) is None
    memo.keep_rewritten(INSPECT, RAW, new, b"other\n")
    assert memo.rewritten(INSPECT, RAW, old) is None
    assert memo.rewritten(INSPECT, RAW, new) == b"other\n"
    # Facts and the rewrite of one answer live side by side.
    memo.keep_facts(INSPECT, RAW, False, FACTS)
    assert memo.rewritten(INSPECT, RAW, new) == b"other\n"
    assert memo.facts(INSPECT, RAW, False) is FACTS


def test_it_is_bounded_in_answers_and_in_bytes() -> None:
    memo = AnswerMemo()
    for i in range(answers.ANSWERS_KEPT + 10):
        memo.keep_facts(INSPECT, b"%d" % i, False, FACTS)
    kept = sum(memo.facts(INSPECT, b"%d" % i, False) is not None for i in range(1000))
    assert 0 < kept <= answers.ANSWERS_KEPT
    big = b"x" * (answers.ANSWER_MAX + 1)
    memo.keep_rewritten(INSPECT, big, None, b"out")
    assert memo.rewritten(INSPECT, big, None) is None  # too large to keep
    memo = AnswerMemo()
    # Answers of the largest size kept, and their rewrites, past the bound on bytes
    n = answers.KEPT_BYTES_MAX // answers.ANSWER_MAX + 2
    keys = [b"%02d" % i + b"y" * (answers.ANSWER_MAX - 2) for i in range(n)]
    for key in keys:
        memo.keep_rewritten(INSPECT, key, None, key)
    held = sum(memo.rewritten(INSPECT, key, None) is not None for key in keys)
    assert 0 < held < n
