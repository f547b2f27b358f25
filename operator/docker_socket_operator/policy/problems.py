"""One-line messages for what goes wrong reading a policy file: a command prints one line a
user can act on, never a traceback or a twelve-line validation report."""

from __future__ import annotations

import pydantic
import yaml


def validation_problems(exc: pydantic.ValidationError, prefix: str = "") -> str:
    """`spec.audit: Input should be ...; spec.rules.0.bogus: Extra inputs are not permitted`."""
    return "; ".join(
        f"{prefix}{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )


def yaml_problem(exc: yaml.YAMLError) -> str:
    """`line 2, column 1: expected the node content, but found '<stream end>'`."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return f"{where}{exc.problem or exc.context or 'not YAML'}"
    return " ".join(str(exc).split())


def os_problem(exc: OSError) -> str:
    """`No such file or directory` (the file name is the caller's to say)."""
    return exc.strerror or str(exc)
