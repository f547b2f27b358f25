"""`ps_args` of containers.top under `redactEnv`: only arguments that cannot print a process's
environment pass.

dockerd runs the host's `ps` with ps_args split on spaces; Podman first tries them as psgo
descriptors (split on commas) and otherwise runs `ps` in the container with them shell-split.
procps reads a bare `e` as "show the environment", and format options (`o`, `-o`, `O`,
`--format`...) can name fields no list here can foresee, so this is an allowlist of flags, each
letter of which is harmless under every one of those readings; no token may hold anything but
letters (quotes, commas, `=` and `%` would be read differently by the three parsers).
"""

from __future__ import annotations

import re

# UNIX-style flags that take no argument and choose processes or a fixed format (-e is "every
# process" here, not the environment). Left out: -o/-O (formats) and every flag with an argument.
_UNIX_FLAGS = frozenset("AaedfFHjlLTwcyM")
# BSD-style letters, same rule. Left out: e (environment), o/O (formats), L, and p/t/U/k/...
_BSD_FLAGS = frozenset("auxwfjlvschmrnHS")
_TOKEN = re.compile(r"(-?)([A-Za-z]+)")


def top_args_reason(ps_args: str) -> str | None:
    """Why these ps_args could print the environment, or None when they cannot."""
    for token in ps_args.split(" "):
        if not token:
            continue
        m = _TOKEN.fullmatch(token)
        if m is None:
            return f"top ps_args {token!r} is not a plain flag (redactEnv)"
        allowed = _UNIX_FLAGS if m.group(1) else _BSD_FLAGS
        bad = sorted(set(m.group(2)) - allowed)
        if bad:
            return (
                f"top ps_args {token!r}: {''.join(bad)!r} may print the environment or a custom "
                "format (redactEnv allows only plain flags such as -ef or aux)"
            )
    return None
