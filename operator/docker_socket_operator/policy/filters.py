"""Answers trimmed to what the client may see: container lists, events, inspect Env.

These read dockerd's JSON answers, whose keys are exactly as Docker writes them ("Names",
"Labels", "Actor"), so plain dict access is right here (unlike request bodies, see body.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from docker_socket_operator.policy.compile import CompiledPolicy
from docker_socket_operator.policy.selectors import Selector
from docker_socket_operator.policy.types import BadBody, ContainerFacts

REDACTED = "<redacted>"


def _labels(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _primary_name(names: Any) -> str:
    """'/web' from ['/web', '/app/web'] (the others are legacy link aliases)."""
    if isinstance(names, list):
        for name in names:
            if isinstance(name, str) and "/" not in name.lstrip("/"):
                return name.lstrip("/")
    return ""


def _visible(filters: tuple[Selector, ...], name: str, labels: Mapping[str, Any]) -> bool:
    return all(f.matches_parts(name, labels) for f in filters)


def filter_container_list(policy: CompiledPolicy, items: list[Any]) -> list[Any]:
    """GET /containers/json: keep the containers the client may see (malformed items are dropped)."""
    filters = policy.list_filters
    if not filters:
        return items
    return [
        item
        for item in items
        if isinstance(item, dict)
        and _visible(filters, _primary_name(item.get("Names")), _labels(item.get("Labels")))
    ]


def event_visible(policy: CompiledPolicy, event: Any) -> bool:
    """GET /events: container events (exec events included) only for visible containers; other
    event types pass. A container event's Actor.Attributes hold its name and all its labels."""
    filters = policy.event_filters
    if not filters:
        return True
    if not isinstance(event, dict):
        return False
    kind = event.get("Type")
    if kind is None and "id" in event and "status" in event:
        kind = "container"  # pre-1.22 event shape
    if kind != "container":
        return True
    actor = event.get("Actor")
    attributes = _labels(actor.get("Attributes")) if isinstance(actor, dict) else {}
    name = attributes.get("name")
    return _visible(filters, name if isinstance(name, str) else "", attributes)


def redact_container_inspect(policy: CompiledPolicy, doc: Any) -> Any:
    """GET /containers/{id}/json: Config.Env values replaced ('K=V' -> 'K=<redacted>')."""
    if not policy.redact_env or not isinstance(doc, dict):
        return doc
    config = doc.get("Config")
    if not isinstance(config, dict) or not isinstance(config.get("Env"), list):
        return doc
    env = [
        f"{entry.partition('=')[0]}={REDACTED}"
        if isinstance(entry, str) and "=" in entry
        else entry
        for entry in config["Env"]
    ]
    return {**doc, "Config": {**config, "Env": env}}


def container_facts_from_inspect(doc: Any) -> ContainerFacts:
    """What the policy needs from a container inspect answer. Raises BadBody if it is not one."""
    if not isinstance(doc, dict) or not isinstance(doc.get("Id"), str):
        raise BadBody("container inspect answer has no Id")
    config = doc.get("Config")
    config = config if isinstance(config, dict) else {}
    name = doc.get("Name")
    image = config.get("Image")
    return ContainerFacts(
        id=doc["Id"],
        name=name.lstrip("/") if isinstance(name, str) else "",
        labels={k: v for k, v in _labels(config.get("Labels")).items() if isinstance(v, str)},
        image=image if isinstance(image, str) else "",
    )
