"""Container selectors and globs, compiled once so that matching a request costs no regex compile."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import translate

from docker_socket_operator.api.models import ContainerSelector
from docker_socket_operator.policy.types import ContainerFacts

COMPOSE_PROJECT_LABEL = "com.docker.compose.project"


def compile_globs(globs: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for "any of these shell globs" (case-sensitive, '*' crosses '/'), None if empty."""
    parts = [translate(g) for g in globs]
    if not parts:
        return None
    return re.compile("|".join(f"(?:{p})" for p in parts))


@dataclass(frozen=True, slots=True)
class Selector:
    """A compiled ContainerSelector: every given field must match (AND)."""

    names: re.Pattern[str] | None  # any glob matches the name (without leading '/')
    labels: tuple[tuple[str, str | None], ...]  # (key, value); None = any value
    summary: str  # "names=[web], labels={team=ci}", for rule labels and audit lines

    def matches(self, container: ContainerFacts) -> bool:
        return self.matches_parts(container.name, container.labels)

    def matches_parts(self, name: str, labels: Mapping[str, object]) -> bool:
        if self.names is not None and self.names.match(name) is None:
            return False
        for key, value in self.labels:
            if key not in labels:
                return False
            if value is not None and labels[key] != value:
                return False
        return True


def compile_selector(selector: ContainerSelector | None) -> Selector | None:
    """None for no selector or an empty one (which would match every container anyway)."""
    if selector is None:
        return None
    labels: dict[str, str | None] = {
        k: (None if v == "*" else v) for k, v in selector.labels.items()
    }
    if selector.composeProject is not None:
        labels[COMPOSE_PROJECT_LABEL] = selector.composeProject
    if not selector.names and not labels:
        return None
    summary: list[str] = []
    if selector.names:
        summary.append(f"names=[{', '.join(selector.names)}]")
    if selector.labels:
        summary.append("labels={" + ", ".join(f"{k}={v}" for k, v in selector.labels.items()) + "}")
    if selector.composeProject is not None:
        summary.append(f"composeProject={selector.composeProject}")
    return Selector(
        names=compile_globs(selector.names),
        labels=tuple(sorted(labels.items())),
        summary=", ".join(summary),
    )
