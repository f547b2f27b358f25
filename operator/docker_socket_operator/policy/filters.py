"""Answers trimmed to what the client may see: container lists, events, inspect Env.

These read dockerd's JSON answers, whose keys are exactly as Docker writes them ("Names",
"Labels", "Actor"), so plain dict access is right here (unlike request bodies, see body.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from docker_socket_operator.policy.compile import CompiledPolicy
from docker_socket_operator.policy.floor import inspect_host_power
from docker_socket_operator.policy.ownership import OWNER_LABEL
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


def redact_container_inspect(policy: CompiledPolicy, doc: Any, key: str = "Config") -> Any:
    """GET /containers/{id}/json: Config.Env values replaced ('K=V' -> 'K=<redacted>')."""
    if not policy.redact_env or not isinstance(doc, dict):
        return doc
    config = doc.get(key)
    if not isinstance(config, dict) or not isinstance(config.get("Env"), list):
        return doc
    env = [
        f"{entry.partition('=')[0]}={REDACTED}"
        if isinstance(entry, str) and "=" in entry
        else entry
        for entry in config["Env"]
    ]
    return {**doc, key: {**config, "Env": env}}


def container_facts_from_inspect(doc: Any, *, host_power: bool = True) -> ContainerFacts:
    """What the policy needs from a container inspect answer (`host_power`: with the reason it
    holds host power, which only audit mode's floor reads). Raises BadBody if it is not one."""
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
        host_power=inspect_host_power(doc) if host_power else "",
    )


# -- visibility of what an answer names ---------------------------------------------------------
# A container list from the daemon (GET /containers/json?all=1) tells which IDs are visible and
# which volumes each container mounts; the filters below take it as `containers`.

_HEX_RUN = re.compile(r"[0-9a-fA-F]{12,}")
WITHHELD = "the daemon's answer is withheld: it names an object not visible to this client"


def visible_container_ids(policy: CompiledPolicy, containers: list[Any]) -> frozenset[str]:
    """Full IDs of the containers `visibility` lets the client see (all of them without it)."""
    selector = policy.visibility
    return frozenset(
        item["Id"]
        for item in containers
        if isinstance(item, dict)
        and isinstance(item.get("Id"), str)
        and (
            selector is None
            or selector.matches_parts(_primary_name(item.get("Names")), _labels(item.get("Labels")))
        )
    )


def _network_visible_part(doc: Any, visible: frozenset[str]) -> Any:
    if not isinstance(doc, dict) or not isinstance(doc.get("Containers"), dict):
        return doc
    return {**doc, "Containers": {k: v for k, v in doc["Containers"].items() if k in visible}}


def filter_network(policy: CompiledPolicy, doc: Any, containers: list[Any]) -> Any:
    """GET /networks/{id}: `Containers` (name, ID, addresses of every endpoint) keeps the
    visible containers only; endpoints of anything else (hidden, load balancers) are dropped."""
    if policy.visibility is None:
        return doc
    return _network_visible_part(doc, visible_container_ids(policy, containers))


def filter_network_list(policy: CompiledPolicy, doc: Any, containers: list[Any]) -> Any:
    """GET /networks: Podman fills `Containers` in list items too."""
    if policy.visibility is None:
        return doc
    if not isinstance(doc, list):
        return []
    visible = visible_container_ids(policy, containers)
    return [_network_visible_part(item, visible) for item in doc]


def volume_users(containers: list[Any]) -> dict[str, set[str]]:
    """Volume name -> IDs of the containers that mount it (from the list's `Mounts`)."""
    users: dict[str, set[str]] = {}
    for item in containers:
        if not isinstance(item, dict) or not isinstance(item.get("Id"), str):
            continue
        for mount in item.get("Mounts") or ():
            if isinstance(mount, dict) and mount.get("Type") == "volume":
                name = mount.get("Name")
                if isinstance(name, str) and name:
                    users.setdefault(name, set()).add(item["Id"])
    return users


def volume_visible(policy: CompiledPolicy, name: str, containers: list[Any]) -> bool:
    """A named volume is visible unless every container that mounts it is hidden (one that no
    container uses is visible: the client may have just made it)."""
    if policy.visibility is None:
        return True
    users = volume_users(containers).get(name)
    return not users or bool(users & visible_container_ids(policy, containers))


def filter_volume_list(policy: CompiledPolicy, doc: Any, containers: list[Any]) -> Any:
    """GET /volumes: volumes used only by hidden containers are left out."""
    if policy.visibility is None or not isinstance(doc, dict):
        return doc
    volumes = doc.get("Volumes")
    if not isinstance(volumes, list):
        return doc
    users = volume_users(containers)
    visible = visible_container_ids(policy, containers)
    kept = [
        v
        for v in volumes
        if isinstance(v, dict)
        and isinstance(v.get("Name"), str)
        and (not users.get(v["Name"]) or bool(users[v["Name"]] & visible))
    ]
    return {**doc, "Volumes": kept}


def _mounted_names(config: Any) -> list[str]:
    if not isinstance(config, dict):
        return []
    names: list[str] = []
    binds = config.get("binds")
    for entry in binds if isinstance(binds, list) else ():
        if isinstance(entry, str):
            source, sep, _ = entry.partition(":")
            if sep and source and not source.startswith("/"):
                names.append(source)
    mounts = config.get("mounts")
    for mount in mounts if isinstance(mounts, list) else ():
        if isinstance(mount, dict):
            kind, named = mount.get("type"), mount.get("source")
            # no Type: whatever an engine might default it to, a name is a volume's
            volume = kind is None or (isinstance(kind, str) and kind.lower() in ("volume", ""))
            if volume and isinstance(named, str) and not named.startswith("/"):
                names.append(named)
    return names


def create_volume_names(body: Any) -> list[str]:
    """The named volumes a create body mounts (Binds `name:/dst`, Mounts of type volume), read
    from HostConfig and from the deprecated top-level copy dockerd still reads (keys folded)."""
    if not isinstance(body, dict):
        return []
    return [n for n in _mounted_names(body) + _mounted_names(body.get("hostconfig")) if n]


_CONTAINER_MODES = ("networkmode", "pidmode", "ipcmode", "cgroup", "usernsmode", "utsmode")


def _referenced(config: Any) -> list[str]:
    if not isinstance(config, dict):
        return []
    refs = [
        mode.partition(":")[2]
        for key in _CONTAINER_MODES
        if isinstance(mode := config.get(key), str) and mode.startswith("container:")
    ]
    for key in ("volumesfrom", "links"):
        entries = config.get(key)
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, str):
                refs.append(entry.partition(":")[0].lstrip("/"))
    return refs


def create_container_refs(body: Any) -> list[str]:
    """The other containers a create body reaches (namespace modes `container:<ref>`,
    VolumesFrom, Links), from HostConfig and the deprecated top-level copy (keys folded)."""
    if not isinstance(body, dict):
        return []
    return [r for r in _referenced(body) + _referenced(body.get("hostconfig")) if r]


def error_names_hidden(raw: bytes, sent: str, own_id: str) -> bool:
    """Whether a daemon error body may name an object the client cannot see: any run of 12 or
    more hex digits (container, network, volume users, image IDs) other than one the client
    sent itself (`sent`: its request target) or the ID of the container it was allowed to act on."""
    text = raw.decode("utf-8", "replace")
    mine = set(_HEX_RUN.findall(sent))
    return any(
        run not in mine and not (own_id and own_id.startswith(run))
        for run in _HEX_RUN.findall(text)
    )


_ATTACH_ACTIONS = frozenset({"connect", "disconnect"})


_GONE_ACTIONS = frozenset({"destroy", "remove", "delete", "prune"})
OWNED_KNOWN_LIMIT = 10_000  # refs an events stream remembers before it forgets the others


class OwnedObjects:
    """Which networks (by ID and by name) and volumes (by name) carry a policy's owner label,
    as an events stream learns it: True owned, False not, absent not known yet (looked up by
    the stream, then learnt). Labels never change on a network or volume, so what is learnt
    holds while the object lives; a name is forgotten when its object goes (a new one may
    take the name)."""

    __slots__ = ("networks", "owner", "volumes")

    def __init__(self, owner: str, networks: dict[str, bool], volumes: dict[str, bool]) -> None:
        self.owner = owner
        self.networks = networks
        self.volumes = volumes

    def _known(self, kind: str) -> dict[str, bool]:
        return self.networks if kind == "network" else self.volumes

    def owned(self, kind: str, refs: list[str]) -> bool | None:
        """True when one of an event's refs is owned, False when all are known not to be,
        None when some are not known yet."""
        known = self._known(kind)
        states = [known.get(ref) for ref in refs]
        if True in states:
            return True
        return None if None in states else False

    def unknown(self, kind: str, refs: list[str]) -> list[str]:
        known = self._known(kind)
        return [ref for ref in refs if ref not in known]

    def learn(self, kind: str, ref: str, doc: Any) -> None:
        """What an inspect of `ref` answered (None: no answer, the object gone or the daemon
        failing). Only an answer about the object named by `ref` exactly teaches anything
        (dockerd also finds a network by an ID prefix); anything else leaves `ref` unknown, so
        that its event is hidden (fail closed) and the next one naming it is looked up again:
        a daemon error, or an object gone before its lookup, must not hide an owned object
        that takes the name later."""
        exact = isinstance(doc, dict) and ref in (doc.get("Id"), doc.get("Name"))
        if not exact:
            return
        known = self._known(kind)
        if len(known) >= OWNED_KNOWN_LIMIT:
            for key in [k for k, v in known.items() if not v]:
                del known[key]
        known[ref] = _labels(doc.get("Labels")).get(OWNER_LABEL) == self.owner

    def forget(self, kind: str, refs: list[str]) -> None:
        known = self._known(kind)
        for ref in refs:
            known.pop(ref, None)


def owned_objects(owner: str, networks: Any, volumes: Any) -> OwnedObjects:
    """From a network list and a volume list answer (all of them, as the daemon gives them)."""

    def owned(item: dict[str, Any]) -> bool:
        return _labels(item.get("Labels")).get(OWNER_LABEL) == owner

    nets: dict[str, bool] = {}
    for item in networks if isinstance(networks, list) else []:
        if isinstance(item, dict):
            for ref in (item.get("Id"), item.get("Name")):
                if isinstance(ref, str) and ref:
                    nets[ref] = owned(item)
    vols = volumes.get("Volumes") if isinstance(volumes, dict) else None
    return OwnedObjects(
        owner,
        nets,
        {
            item["Name"]: owned(item)
            for item in (vols if isinstance(vols, list) else [])
            if isinstance(item, dict) and isinstance(item.get("Name"), str) and item["Name"]
        },
    )


def _object_refs(actor: Mapping[str, Any], attributes: Mapping[str, Any]) -> list[str]:
    """How a network or volume event names its object: the actor's ID (Docker: the network's
    ID or the volume's name; Podman: a volume's is empty, a connect's is the container) and
    the `name` attribute."""
    refs = []
    for ref in (actor.get("ID"), attributes.get("name")):
        if isinstance(ref, str) and ref and ref not in refs:
            refs.append(ref)
    return refs


def _actor_of(event: dict[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    actor = _labels(event.get("Actor"))
    return actor, _labels(actor.get("Attributes"))


class EventVisibility:
    """The events filter. Container events: by the container's name and labels (its attributes).
    Events about other objects (volume mount, network connect...) that name a container, in
    `Attributes.container` or, as Podman does, as their actor: only when that container is
    visible. Volume events also follow the volume's users, like volume_visible(), but under
    visibility fail closed: only about a volume a visible container is known to use (a bare
    create, destroy or prune of a volume no visible container uses is dropped). Which IDs
    are visible, and who mounts what, is learnt from the container list taken when the stream
    opens and kept up to date from the stream itself (a create comes before any mount)."""

    __slots__ = ("_known", "_owned", "_policy", "_users")

    def __init__(
        self, policy: CompiledPolicy, containers: list[Any], owned: OwnedObjects | None = None
    ) -> None:
        self._policy = policy
        # Allowed by an owned rule: network and volume events only about owned ones. Their
        # events carry no labels: one not known yet is looked up (lookups()) before it is
        # decided on, and is hidden until then.
        self._owned = owned
        filters = policy.event_filters
        self._known: dict[str, bool] = {
            item["Id"]: _visible(
                filters, _primary_name(item.get("Names")), _labels(item.get("Labels"))
            )
            for item in containers
            if isinstance(item, dict) and isinstance(item.get("Id"), str)
        }
        self._users = volume_users(containers)

    def lookups(self, event: Any) -> list[tuple[str, str]]:
        """The networks or volumes an event names whose owner this stream does not know yet:
        (kind, ref) to inspect and learn() before the event is decided on."""
        owned = self._owned
        if owned is None or not isinstance(event, dict):
            return []
        kind = event.get("Type")
        if kind not in ("network", "volume"):
            return []
        refs = _object_refs(*_actor_of(event))
        if owned.owned(kind, refs) is not None:
            return []
        return [(kind, ref) for ref in owned.unknown(kind, refs)]

    def learn(self, kind: str, ref: str, doc: Any) -> None:
        """The inspect answer for a lookup (None: no answer; the object stays unknown)."""
        if self._owned is not None:
            self._owned.learn(kind, ref, doc)

    def __call__(self, event: Any) -> bool:
        visible = self._visible(event)
        owned = self._owned
        if (
            owned is not None
            and isinstance(event, dict)
            and event.get("Type") in ("network", "volume")
            and event.get("Action") in _GONE_ACTIONS
        ):
            owned.forget(str(event["Type"]), _object_refs(*_actor_of(event)))
        return visible

    def _visible(self, event: Any) -> bool:
        if not isinstance(event, dict):
            return False
        actor = event.get("Actor")
        actor = actor if isinstance(actor, dict) else {}
        kind = event.get("Type")
        if kind is None and "id" in event and "status" in event:
            kind = "container"  # pre-1.22 event shape
        if kind == "container":
            visible = event_visible(self._policy, event)
            ident = actor.get("ID", event.get("id"))
            if isinstance(ident, str):
                self._known[ident] = visible
            return visible
        attributes = _labels(actor.get("Attributes"))
        owned = self._owned
        if (
            owned is not None
            and kind in ("network", "volume")
            and not owned.owned(kind, _object_refs(actor, attributes))
        ):
            return False  # not owned, or not known (fail closed)
        named = attributes.get("container")
        if named is None and kind == "network" and event.get("Action") in _ATTACH_ACTIONS:
            named = actor.get("ID", "")  # Podman: the container is the actor
        if kind == "volume":
            volume = actor.get("ID") or attributes.get("name")  # Podman: ID "", name in attributes
            users = self._users.setdefault(str(volume), set())
            if named is not None:
                users.add(str(named))
            used = any(self._known.get(u, False) for u in users)
            # Under visibility, fail closed: a volume's create comes before any mount, when
            # the stream cannot know whether only hidden containers will use it (an implicit
            # named volume, an anonymous one). So a volume event is relayed only once a
            # visible container is known to use the volume.
            if not used and (users or self._policy.visibility is not None):
                return False
        if named is not None and not self._known.get(str(named), False):
            return False  # names a hidden container, or one this stream never saw
        return not any(
            isinstance(ident, str) and self._known.get(ident) is False
            for ident in (actor.get("ID"), event.get("id"))
        )


# -- references to other containers in a container's own answers ------------------------------
# A container's HostConfig names other containers: namespace modes `container:<ref>`,
# VolumesFrom `<ref>[:ro|:rw]`, Links `/<name>:/<own name>/<alias>`. Under visibility a ref to a
# container that is not visible is removed: a mode keeps its kind with the ref blanked
# ("container:"), VolumesFrom and Links lose the entry. Refs are rare, so only an answer that
# holds one takes the daemon's container list (answer_refers()).

ANSWER_MODES = ("NetworkMode", "PidMode", "IpcMode", "Cgroup", "UsernsMode", "UTSMode")
CONTAINER_MODE = "container:"
# A container in another's network namespace shares that one's hostname and these files,
# whose paths hold its full ID (/var/lib/docker/containers/<ID>/hostname).
_NETWORK_SHARED = ("HostnamePath", "HostsPath", "ResolvConfPath")


def _host_config_refers(host_config: Any) -> bool:
    if not isinstance(host_config, dict):
        return False
    for key in ANSWER_MODES:
        mode = host_config.get(key)
        if isinstance(mode, str) and mode.startswith(CONTAINER_MODE):
            return True
    return any(host_config.get(key) for key in ("VolumesFrom", "Links"))


def inspect_refers(doc: Any) -> bool:
    """Whether a container inspect answer names other containers (a `container:` mode, a
    non-empty VolumesFrom or Links): only then does its filter need the container list."""
    return isinstance(doc, dict) and _host_config_refers(doc.get("HostConfig"))


def _borrowed_aliases(item: Any) -> list[str]:
    """Podman's list items have no HostConfig: one in another container's network namespace
    shows that namespace's networks, with the owner's short ID among their aliases. The hex
    aliases (12 digits or more) that are not a prefix of the item's own ID."""
    if not isinstance(item, dict) or not isinstance(item.get("Id"), str):
        return []
    settings = item.get("NetworkSettings")
    networks = settings.get("Networks") if isinstance(settings, dict) else None
    found: list[str] = []
    for network in networks.values() if isinstance(networks, dict) else ():
        aliases = network.get("Aliases") if isinstance(network, dict) else None
        for alias in aliases if isinstance(aliases, list) else ():
            if (
                isinstance(alias, str)
                and _HEX_RUN.fullmatch(alias)
                and not item["Id"].startswith(alias)
            ):
                found.append(alias)
    return found


def _item_refers(item: Any) -> bool:
    return isinstance(item, dict) and (
        _host_config_refers(item.get("HostConfig")) or bool(_borrowed_aliases(item))
    )


def list_refers(doc: Any) -> bool:
    """Whether a container list answer names other containers (an item's HostConfig holds a
    `container:` NetworkMode, or on Podman its networks are another container's)."""
    return isinstance(doc, list) and any(_item_refers(item) for item in doc)


def container_refs_visible(policy: CompiledPolicy, containers: list[Any]) -> dict[str, bool]:
    """Every way a ref in an answer may name a container of the list (its full ID, each of its
    names, with and without the leading '/') -> whether it is visible. A ref that two
    containers answer to is visible only if both are (fail closed)."""
    visible = visible_container_ids(policy, containers)
    refs: dict[str, bool] = {}
    for item in containers:
        if not isinstance(item, dict) or not isinstance(item.get("Id"), str):
            continue
        seen = item["Id"] in visible
        names = item.get("Names")
        keys = [
            item["Id"],
            *(n for n in (names if isinstance(names, list) else ()) if isinstance(n, str)),
        ]
        for key in keys:
            for ref in {key, key.lstrip("/")}:
                if ref:
                    refs[ref] = refs.get(ref, True) and seen
    return refs


def _ref_visible(ref: str, refs: Mapping[str, bool]) -> bool:
    """A full ID or a name (with or without '/') of a visible container; anything that does not
    resolve to one (an ID prefix, a container gone) counts as hidden."""
    return refs.get(ref, False) or refs.get(ref.lstrip("/"), False)


def hide_container_refs(host_config: Any, refs: Mapping[str, bool]) -> tuple[Any, list[str]]:
    """A HostConfig without its refs to containers that are not visible (see above), and the
    keys of the modes whose ref was blanked."""
    if not isinstance(host_config, dict):
        return host_config, []
    out = dict(host_config)
    blanked: list[str] = []
    for key in ANSWER_MODES:
        mode = out.get(key)
        shared = isinstance(mode, str) and mode.startswith(CONTAINER_MODE)
        if shared and not _ref_visible(str(mode)[len(CONTAINER_MODE) :], refs):
            out[key] = CONTAINER_MODE
            blanked.append(key)
    for key in ("VolumesFrom", "Links"):
        entries = out.get(key)
        if isinstance(entries, list) and entries:
            out[key] = [
                e for e in entries if isinstance(e, str) and _ref_visible(e.partition(":")[0], refs)
            ]
    return out, blanked


def _emptied(value: Any) -> Any:
    """The empty value of a JSON value's type (a bool, a number that is not a count... kept)."""
    if isinstance(value, str):
        return ""
    if isinstance(value, dict):
        return {}
    if isinstance(value, list):
        return []
    if isinstance(value, int) and not isinstance(value, bool):
        return 0
    return value


def filter_container_refs(policy: CompiledPolicy, doc: Any, containers: list[Any]) -> Any:
    """GET /containers/{id}/json under visibility: HostConfig's refs to containers that are not
    visible removed. A network namespace shared with one also blanks what came with it: the
    hostname, domain name, the paths of its hostname, hosts and resolv.conf files, and every
    value of NetworkSettings (emptied, keys kept)."""
    if policy.visibility is None or not inspect_refers(doc):
        return doc
    host_config, blanked = hide_container_refs(
        doc["HostConfig"], container_refs_visible(policy, containers)
    )
    out = {**doc, "HostConfig": host_config}
    if "NetworkMode" in blanked:
        for key in _NETWORK_SHARED:
            if isinstance(out.get(key), str):
                out[key] = ""
        if isinstance(out.get("NetworkSettings"), dict):
            # Podman reports the shared namespace's addresses, networks and aliases here.
            out["NetworkSettings"] = {k: _emptied(v) for k, v in out["NetworkSettings"].items()}
        config = out.get("Config")
        if isinstance(config, dict):
            out["Config"] = {
                **config,
                **{k: "" for k in ("Hostname", "Domainname") if isinstance(config.get(k), str)},
            }
    return out


def filter_container_list_refs(policy: CompiledPolicy, doc: Any, containers: list[Any]) -> Any:
    """GET /containers/json under visibility: an item's `container:` NetworkMode naming a
    container that is not visible keeps its kind, without the ref; an item that shows the
    networks of a container that is not visible (Podman) has its NetworkSettings emptied."""
    if policy.visibility is None or not list_refers(doc):
        return doc
    refs = container_refs_visible(policy, containers)
    ids = [c["Id"] for c in containers if isinstance(c, dict) and isinstance(c.get("Id"), str)]
    out = []
    for item in doc:
        if isinstance(item, dict) and _host_config_refers(item.get("HostConfig")):
            item = {**item, "HostConfig": hide_container_refs(item["HostConfig"], refs)[0]}
        borrowed = _borrowed_aliases(item)
        owners = [i for i in ids if any(i.startswith(alias) for alias in borrowed)]
        if borrowed and not (owners and all(refs.get(i, False) for i in owners)):
            settings = item["NetworkSettings"]
            item = {**item, "NetworkSettings": {k: _emptied(v) for k, v in settings.items()}}
        out.append(item)
    return out


def _rewrite_container_list(policy: CompiledPolicy, doc: Any, containers: list[Any]) -> Any:
    if not isinstance(doc, list):
        return []
    return filter_container_list_refs(policy, filter_container_list(policy, doc), containers)


def _rewrite_container_inspect(policy: CompiledPolicy, doc: Any, containers: list[Any]) -> Any:
    return filter_container_refs(policy, redact_container_inspect(policy, doc), containers)


def filter_image_inspect(policy: CompiledPolicy, doc: Any, containers: list[Any]) -> Any:
    """GET /images/{name}/json: an image committed from a container keeps (API < 1.45) that
    container's ID in `Container` and its whole config, environment included, in
    `ContainerConfig`. The ID is blanked unless visible (and with it a `Hostname` in `Config`
    and `ContainerConfig` that is a prefix of it: the container's default hostname is its
    short ID), the environment redacted."""
    doc = redact_container_inspect(policy, doc, "ContainerConfig")
    source = doc.get("Container") if isinstance(doc, dict) else None
    hidden = (
        policy.visibility is not None
        and isinstance(source, str)
        and source != ""
        and source not in visible_container_ids(policy, containers)
    )
    if not hidden:
        return doc
    assert isinstance(doc, dict) and isinstance(source, str)
    out = {**doc, "Container": ""}
    for key in ("Config", "ContainerConfig"):
        # The committed container's default hostname is its short ID.
        config = out.get(key)
        if isinstance(config, dict) and _names_id(config.get("Hostname"), source):
            out[key] = {**config, "Hostname": ""}
    return out


def _names_id(value: Any, ident: str) -> bool:
    """Whether `value` is a (short) form of the container ID `ident`: a prefix of it."""
    return isinstance(value, str) and value != "" and ident.startswith(value)


def _under_visibility(policy: CompiledPolicy) -> bool:
    return policy.visibility is not None


@dataclass(frozen=True, slots=True)
class AnswerFilter:
    """How the 200 answer to one GET operation is rewritten before the client sees it.
    `needs_containers`: under visibility the rewrite takes the daemon's full container list
    (who is visible, who mounts what); otherwise it gets an empty one, unless `refers` says
    this answer needs it."""

    applies: Callable[[CompiledPolicy], bool]
    rewrite: Callable[[CompiledPolicy, Any, list[Any]], Any]
    needs_containers: bool = False
    # Under visibility, whether this decoded answer needs the container list after all (it
    # names other containers); such a rewrite is not kept by the answer's bytes either.
    refers: Callable[[Any], bool] | None = None


# Operation name -> filter. system.events is a stream: see EventVisibility.
ANSWER_FILTERS: Mapping[str, AnswerFilter] = {
    "containers.list": AnswerFilter(
        lambda p: p.filters_containers, _rewrite_container_list, refers=list_refers
    ),
    "containers.inspect": AnswerFilter(
        lambda p: p.redact_env or p.visibility is not None,
        _rewrite_container_inspect,
        refers=inspect_refers,
    ),
    "networks.inspect": AnswerFilter(_under_visibility, filter_network, True),
    "networks.list": AnswerFilter(_under_visibility, filter_network_list, True),
    "volumes.list": AnswerFilter(_under_visibility, filter_volume_list, True),
    "images.inspect": AnswerFilter(
        lambda p: p.redact_env or p.visibility is not None, filter_image_inspect, True
    ),
}
