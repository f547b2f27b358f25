"""`docker-socket-operator suggest AUDIT.jsonl|- [--policy CURRENT.yaml]`: print the policy that
would have allowed exactly the calls an audit log shows (policy/suggest.py), as YAML.

Typical use: run a policy with `mode: audit` and `audit: all`, then
`kubectl logs -l app.kubernetes.io/instance=dsp-NAME | docker-socket-operator suggest - --policy p.yaml`.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any

import yaml

from docker_socket_operator.api.models import DockerSocketPolicy
from docker_socket_operator.policy.compile import read_policy_file
from docker_socket_operator.policy.problems import os_problem
from docker_socket_operator.policy.suggest import Suggestion, parse_audit_lines, suggest
from docker_socket_operator.policy.types import PolicyError


def register_suggest(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "suggest", help="print the smallest policy that allows what an audit log shows"
    )
    p.add_argument("audit", help="audit log (JSON lines; other lines are skipped), or - for stdin")
    p.add_argument(
        "--policy",
        help="the policy the log was written under: its other fields are kept and only the "
        "calls it would deny are added",
    )
    p.set_defaults(func=run_suggest)


def _load_current(path: str) -> DockerSocketPolicy:
    """The --policy file, checked as the proxy checks it (PolicyError, one line)."""
    return read_policy_file(path)[0]


def render(result: Suggestion) -> str:
    head = [
        "# Suggested by `docker-socket-operator suggest` from "
        f"{result.calls} audited call(s); review it, then apply it (mode: enforce).",
    ]
    for note in result.notes:
        head += ["#", *(f"# {line}" for line in textwrap.wrap(note, 92))]
    if result.refused:
        head.append("# Refused by the audit floor and NOT suggested (open them by hand if needed):")
        head += [f"#   {line}" for line in result.refused]
    body: Any = result.document
    return "\n".join(head) + "\n" + yaml.safe_dump(body, sort_keys=False, width=100)


def run_suggest(args: argparse.Namespace) -> int:
    try:
        current = _load_current(args.policy) if args.policy else None
        if args.audit == "-":
            records = parse_audit_lines(sys.stdin)
        else:
            try:
                with open(args.audit, encoding="utf-8", errors="replace") as f:
                    records = parse_audit_lines(f)
            except OSError as e:
                raise PolicyError(f"cannot read audit log {args.audit}: {os_problem(e)}") from None
        result = suggest(records, current)
    except PolicyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if result.calls == 0 and not result.refused:
        print("error: no audit records in the input", file=sys.stderr)
        return 2
    sys.stdout.write(render(result))
    return 0
