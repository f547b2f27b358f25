"""Who set which field of a child, read from its managedFields, and taking fields over.

Pure functions: the I/O (one merge patch of managedFields, then the forced apply) is in
apply.py. Entries of subresources (the DaemonSet controller writes `status`) are never
foreign; neither are fields nobody owns (what the API server defaulted).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from docker_socket_operator.controller.render.common import MANAGER

FieldSet = dict[str, Any]  # a fieldsV1 trie: {"f:spec": {"f:hostPID": {}}, ...}


def _main_entries(live: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e for e in live.get("metadata", {}).get("managedFields") or [] if not e.get("subresource")
    ]


def _ours(entry: dict[str, Any]) -> bool:
    return entry.get("manager") == MANAGER and entry.get("operation") == "Apply"


def union(a: FieldSet, b: FieldSet) -> FieldSet:
    out = copy.deepcopy(a)
    for key, sub in b.items():
        out[key] = union(out.get(key) or {}, sub) if isinstance(sub, dict) else sub
    return out


def difference(a: FieldSet, b: FieldSet) -> FieldSet:
    """The fields of `a` that `b` does not have."""
    out: FieldSet = {}
    for key, sub in a.items():
        if key not in b:
            out[key] = sub
            continue
        rest = difference(sub or {}, b[key] or {}) if isinstance(sub, dict) else {}
        if rest:
            out[key] = rest
    return out


def foreign_fields(live: dict[str, Any]) -> FieldSet | None:
    """Fields of the main resource only other managers own (None: there are none).

    A field we own too is not drift: another manager applied the same value (a GitOps tool
    that committed a rendered child co-owns it). A different value would have taken the
    field from us. An object with no apply entry of ours at all (managedFields reset by
    someone) counts as drift too: nothing would tell our next apply what to remove.
    """
    entries = _main_entries(live)
    ours: FieldSet = {}
    theirs: FieldSet = {}
    for entry in entries:
        if _ours(entry):
            ours = union(ours, entry.get("fieldsV1") or {})
        else:
            theirs = union(theirs, entry.get("fieldsV1") or {})
    foreign = difference(theirs, ours)
    if foreign or not any(_ours(e) for e in entries):
        return foreign
    return None


def take_over(live: dict[str, Any]) -> dict[str, Any]:
    """A merge patch giving our apply entry every field of the main resource.

    The forced apply that follows then removes each field we own but do not send. The
    resourceVersion makes the patch fail (409) if the object moved since we read it.
    """
    meta = live["metadata"]
    entries = meta.get("managedFields") or []
    owned: FieldSet = {}
    for entry in _main_entries(live):
        owned = union(owned, entry.get("fieldsV1") or {})
    template = next((e for e in entries if _ours(e)), None) or {
        "manager": MANAGER,
        "operation": "Apply",
        "apiVersion": live["apiVersion"],
        "fieldsType": "FieldsV1",
    }
    ours = {**template, "fieldsV1": owned}
    kept = [e for e in entries if e.get("subresource")]
    return {
        "metadata": {"resourceVersion": meta["resourceVersion"], "managedFields": [ours, *kept]}
    }


def _key(part: str) -> str:
    kind, _, rest = part.partition(":")
    if kind == "f":
        return f".{rest}"
    if kind == "k":
        try:
            item = json.loads(rest)
        except ValueError:
            return f"[{rest}]"
        return "[" + ",".join(f"{k}={v}" for k, v in sorted(item.items())) + "]"
    return f"[{rest}]"


def field_paths(fields: FieldSet, prefix: str = "") -> list[str]:
    """The leaves of a fieldsV1 trie as readable paths (`spec.template.spec.hostPID`)."""
    out: list[str] = []
    for part, sub in sorted(fields.items()):
        if part == ".":
            continue
        path = f"{prefix}{_key(part)}"
        children = {k: v for k, v in (sub or {}).items() if k != "."}
        if children and "." not in (sub or {}):  # "." : the whole item or map is theirs
            out += field_paths(children, path)
        else:
            out.append(path.lstrip("."))
    return out
