"""Redaction and visibility as properties of data: top arguments, network and volume answers,
events about other objects, daemon error texts (issue 7, classes 3 and 4)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import pytest

from docker_socket_operator.api.models import DockerSocketPolicySpec
from docker_socket_operator.catalogue.operations import match_operation
from docker_socket_operator.catalogue.paths import parse_target
from docker_socket_operator.policy.body import decode_docker_json
from docker_socket_operator.policy.compile import CompiledPolicy, compile_policy
from docker_socket_operator.policy.decide import decide
from docker_socket_operator.policy.filters import (
    ANSWER_FILTERS,
    EventVisibility,
    create_container_refs,
    create_volume_names,
    error_names_hidden,
    inspect_refers,
    list_refers,
    owned_objects,
    volume_visible,
)
from docker_socket_operator.policy.psargs import top_args_reason
from docker_socket_operator.policy.queries import (
    list_filter_refs,
    list_target_with_ids,
    resolved_list_filters,
)
from docker_socket_operator.policy.types import BadBody, ContainerFacts, RequestFacts

SEEN = "a" * 64
HIDDEN = "b" * 64


def compiled(spec: dict[str, Any]) -> CompiledPolicy:
    return compile_policy(DockerSocketPolicySpec.model_validate(spec))


VISIBLE_POLICY = compiled(
    {"rules": [{"preset": "read-only"}], "visibility": {"containers": {"labels": {"team": "ci"}}}}
)
CONTAINERS: list[Any] = [
    {"Id": SEEN, "Names": ["/mine"], "Labels": {"team": "ci"}, "Mounts": []},
    {
        "Id": HIDDEN,
        "Names": ["/theirs"],
        "Labels": {"team": "web"},
        "Mounts": [{"Type": "volume", "Name": "secret-data", "Destination": "/d"}],
    },
    {
        "Id": "c" * 64,
        "Names": ["/shared-user"],
        "Labels": {"team": "ci"},
        "Mounts": [{"Type": "volume", "Name": "shared"}, {"Type": "bind", "Name": ""}],
    },
    {
        "Id": "d" * 64,
        "Names": ["/other"],
        "Labels": {},
        "Mounts": [{"Type": "volume", "Name": "shared"}],
    },
]


@pytest.mark.parametrize("args", ["", "-ef", "aux", "-e -f", "auxww", "-A", "  aux  ", "-ejH", "f"])
def test_plain_ps_flags_pass(args: str) -> None:
    assert top_args_reason(args) is None


@pytest.mark.parametrize(
    "args",
    [
        "e",
        "eww",
        "auxe",
        "axe",
        "-ef e",
        "-o pid,args",
        "o",
        "-opid",
        "--format",
        "--format=pid",
        "O",
        "-O",
        "pid,user",
        "user",  # u s e r as BSD letters: e prints the environment
        "a'e'",  # Podman shell-splits: a'e' is ae
        'a"e"',
        "a\te",
        "%C",
        "-p 1",
        "x=PID",
        "-eE",
    ],
)
def test_env_printing_or_unknown_ps_args_are_refused(args: str) -> None:
    assert top_args_reason(args) is not None


def _top(policy: CompiledPolicy, target: str, ps_args: str | None) -> RequestFacts:
    matched = match_operation("GET", target)
    query = {} if ps_args is None else {"ps_args": ps_args}
    return RequestFacts(
        method="GET",
        api_path=target,
        op=matched.op if matched else None,
        params=matched.params if matched else {},
        query=query,
        container=ContainerFacts(id=SEEN, name="mine", labels={"team": "ci"}),
        libpod=target.startswith("/libpod/"),
    )


def test_top_refuses_env_args_only_under_redact_env() -> None:
    redacting = compiled({"rules": [{"preset": "read-only"}]})
    plain = compiled({"rules": [{"preset": "read-only"}], "visibility": {"redactEnv": False}})
    assert decide(redacting, _top(redacting, "/containers/mine/top", None)).allow
    assert decide(redacting, _top(redacting, "/containers/mine/top", "aux")).allow
    denied = decide(redacting, _top(redacting, "/containers/mine/top", "aux e"))
    assert not denied.allow and "environment" in denied.reason
    assert decide(plain, _top(plain, "/containers/mine/top", "eww")).allow
    libpod = compiled({"rules": [{"allow": ["libpod:GET /libpod/containers/*"]}]})
    assert not decide(libpod, _top(libpod, "/libpod/containers/mine/top", "e")).allow
    assert decide(libpod, _top(libpod, "/libpod/containers/mine/top", "-ef")).allow


def test_network_answers_keep_visible_containers_only() -> None:
    doc = {
        "Name": "n",
        "Containers": {SEEN: {"Name": "mine"}, HIDDEN: {"Name": "theirs"}, "lb-n": {}},
    }
    out = ANSWER_FILTERS["networks.inspect"].rewrite(VISIBLE_POLICY, doc, CONTAINERS)
    assert list(out["Containers"]) == [SEEN]
    listed = ANSWER_FILTERS["networks.list"].rewrite(
        VISIBLE_POLICY, [doc, {"Name": "x"}], CONTAINERS
    )
    assert list(listed[0]["Containers"]) == [SEEN] and listed[1] == {"Name": "x"}
    assert ANSWER_FILTERS["networks.list"].rewrite(VISIBLE_POLICY, {"bad": 1}, CONTAINERS) == []
    assert not ANSWER_FILTERS["networks.inspect"].applies(compiled({"rules": []}))


def test_volumes_used_only_by_hidden_containers_are_invisible() -> None:
    assert not volume_visible(VISIBLE_POLICY, "secret-data", CONTAINERS)
    assert volume_visible(VISIBLE_POLICY, "shared", CONTAINERS)  # a visible container uses it
    assert volume_visible(VISIBLE_POLICY, "unused", CONTAINERS)
    doc = {"Volumes": [{"Name": "secret-data"}, {"Name": "shared"}, {"Name": "unused"}, "junk"]}
    out = ANSWER_FILTERS["volumes.list"].rewrite(VISIBLE_POLICY, doc, CONTAINERS)
    assert [v["Name"] for v in out["Volumes"]] == ["shared", "unused"]


def test_create_volume_names_reads_binds_and_mounts_both_places() -> None:
    body = decode_docker_json(
        b'{"binds": ["top:/a"], "HostConfig": {"Binds": ["/host:/b", "vol:/c:ro", "/anon"],'
        b' "Mounts": [{"type": "VOLUME", "Source": "m"}, {"Type": "bind", "Source": "/x"},'
        b' {"Type": "volume", "Source": ""}, {"Source": "untyped"}]}}'
    )
    assert create_volume_names(body) == ["top", "vol", "m", "untyped"]
    assert create_volume_names(None) == []


def test_create_container_refs_reads_modes_volumes_from_and_links() -> None:
    body = decode_docker_json(
        b'{"PidMode": "container:top", "HostConfig": {"NetworkMode": "container:n",'
        b' "IpcMode": "shareable", "UsernsMode": "host", "VolumesFrom": ["vf:ro"],'
        b' "Links": ["/linked:alias"], "cgroup": "container:cg"}}'
    )
    assert create_container_refs(body) == ["top", "n", "cg", "vf", "linked"]
    assert create_container_refs(decode_docker_json(b'{"NetworkMode": "container:"}')) == []


def test_error_texts_that_name_other_objects_are_detected() -> None:
    conflict = b'{"message":"Conflict. The container name \\"/x\\" is already in use by container \\"%s\\"."}'
    assert error_names_hidden(conflict % HIDDEN.encode(), "/containers/create?name=x", "")
    assert not error_names_hidden(conflict % SEEN.encode(), "/containers/x/rename", SEEN)
    assert not error_names_hidden(conflict % SEEN[:12].encode(), "/x", SEEN)
    in_use = b'{"message":"in use - [%s]"}' % HIDDEN[:12].encode()
    assert error_names_hidden(in_use, f"/volumes/v?x={HIDDEN[:11]}", SEEN)
    assert not error_names_hidden(in_use, f"/exec/{HIDDEN[:12]}/json", "")  # the client's own
    assert not error_names_hidden(b'{"message":"get nope: no such volume"}', "/volumes/nope", "")


def test_events_about_other_objects_follow_the_container_they_name() -> None:
    visible = EventVisibility(VISIBLE_POLICY, CONTAINERS)

    def ev(kind: str, actor: str, **attrs: str) -> dict[str, Any]:
        return {"Type": kind, "Action": "x", "Actor": {"ID": actor, "Attributes": attrs}}

    assert visible(ev("volume", "v", container=SEEN))
    assert not visible(ev("volume", "secret-data", container=HIDDEN))
    assert not visible(ev("network", "n" * 64, container="e" * 64))  # never seen: fail closed
    assert not visible(ev("network", HIDDEN, name="theirs"))  # Podman: the actor is the container
    gone = {"Type": "network", "Action": "disconnect", "Actor": {"ID": "7" * 64, "Attributes": {}}}
    assert not visible(gone)  # Podman's shape, a container this stream never saw
    assert visible(ev("network", "n" * 64, name="bridge"))
    assert visible(ev("image", "sha256:1"))
    # a container created after the stream opened: learnt from its create event
    new = "f" * 64
    assert visible(ev("container", new, name="new", team="ci"))
    assert visible(ev("volume", "v", container=new))
    late = "9" * 64
    assert not visible(ev("container", late, name="late", team="web"))
    assert not visible(ev("network", "n" * 64, container=late))
    assert not visible("junk")
    assert not visible(ev("volume", "secret-data"))  # only a hidden container uses it
    assert not visible(ev("volume", "", name="secret-data"))  # Podman's shape
    assert visible(ev("volume", "shared"))
    # Under visibility a volume no visible container is known to use is not shown: its
    # create comes before the mount that would tell (fail closed).
    assert not visible(ev("volume", "brand-new"))
    assert not visible(ev("volume", "brand-new", container=late))
    assert not visible(ev("volume", "brand-new"))  # now it is used by a hidden one only


def test_image_inspect_hides_its_source_container_and_env() -> None:
    doc = {"Id": "sha256:1", "Container": HIDDEN, "ContainerConfig": {"Env": ["K=v"]}}
    out = ANSWER_FILTERS["images.inspect"].rewrite(VISIBLE_POLICY, doc, CONTAINERS)
    assert out["Container"] == "" and out["ContainerConfig"]["Env"] == ["K=<redacted>"]
    mine = ANSWER_FILTERS["images.inspect"].rewrite(VISIBLE_POLICY, {"Container": SEEN}, CONTAINERS)
    assert mine["Container"] == SEEN


def test_image_inspect_hides_the_hidden_source_containers_default_hostname() -> None:
    doc = {
        "Container": HIDDEN,
        "Config": {"Hostname": HIDDEN[:12], "Env": ["K=v"]},
        "ContainerConfig": {"Hostname": HIDDEN[:12], "Domainname": ""},
    }
    out = ANSWER_FILTERS["images.inspect"].rewrite(VISIBLE_POLICY, doc, CONTAINERS)
    assert out["Container"] == ""
    assert out["Config"] == {"Hostname": "", "Env": ["K=v"]}
    assert out["ContainerConfig"] == {"Hostname": "", "Domainname": ""}
    # a hostname of its own is not the ID; a visible source keeps everything
    named = {**doc, "Config": {"Hostname": "builder"}, "ContainerConfig": None}
    out = ANSWER_FILTERS["images.inspect"].rewrite(VISIBLE_POLICY, named, CONTAINERS)
    assert out["Config"] == {"Hostname": "builder"} and out["ContainerConfig"] is None
    mine = {"Container": SEEN, "Config": {"Hostname": SEEN[:12]}}
    assert ANSWER_FILTERS["images.inspect"].rewrite(VISIBLE_POLICY, mine, CONTAINERS) == mine


# -- a visible container's references to others (F3) ---------------------------------------

INSPECT_FILTER = ANSWER_FILTERS["containers.inspect"]
LIST_FILTER = ANSWER_FILTERS["containers.list"]
LINKER = {"Id": "e" * 64, "Names": ["/mine-linker", "/mine-linker/alias"], "Labels": {"team": "ci"}}
LINKED = [*CONTAINERS, LINKER]


def test_container_inspect_filter_applies_under_visibility_alone() -> None:
    assert INSPECT_FILTER.applies(VISIBLE_POLICY)
    plain = compiled({"rules": [{"preset": "read-only"}], "visibility": {"redactEnv": False}})
    assert not INSPECT_FILTER.applies(plain)
    bare: dict[str, Any] = {
        "rules": [{"preset": "read-only"}],
        "visibility": {"redactEnv": False, "containers": {"labels": {"team": "ci"}}},
    }
    assert INSPECT_FILTER.applies(compiled(bare))
    assert not INSPECT_FILTER.needs_containers and INSPECT_FILTER.refers is inspect_refers
    assert LIST_FILTER.refers is list_refers


def test_an_inspect_without_references_needs_no_container_list_and_is_unchanged() -> None:
    doc = {
        "Id": SEEN,
        "HostConfig": {"NetworkMode": "bridge", "PidMode": "", "VolumesFrom": None, "Links": None},
    }
    assert not inspect_refers(doc) and not inspect_refers([]) and not inspect_refers(None)
    assert not inspect_refers({"HostConfig": {"VolumesFrom": [], "Links": []}})
    assert INSPECT_FILTER.rewrite(VISIBLE_POLICY, doc, []) is doc


@pytest.mark.parametrize("ref", [HIDDEN, "theirs", "/theirs", HIDDEN[:12], "gone"])
def test_inspect_blanks_namespace_modes_that_name_a_hidden_container(ref: str) -> None:
    doc = {
        "Id": SEEN,
        "HostnamePath": f"/var/lib/docker/containers/{HIDDEN}/hostname",
        "HostsPath": f"/var/lib/docker/containers/{HIDDEN}/hosts",
        "ResolvConfPath": f"/var/lib/docker/containers/{HIDDEN}/resolv.conf",
        "Config": {"Hostname": HIDDEN[:12], "Domainname": "corp", "Image": "busybox"},
        "NetworkSettings": {
            "IPAddress": "10.88.0.4",
            "IPPrefixLen": 16,
            "HairpinMode": False,
            "SecondaryIPAddresses": None,
            "Ports": {"80/tcp": None},
            "Networks": {"podman": {"Aliases": [HIDDEN[:12]]}},
        },
        "HostConfig": {
            "NetworkMode": f"container:{ref}",
            "PidMode": f"container:{ref}",
            "IpcMode": f"container:{ref}",
            "Cgroup": f"container:{ref}",
        },
    }
    assert inspect_refers(doc)
    out = INSPECT_FILTER.rewrite(VISIBLE_POLICY, doc, CONTAINERS)
    assert out["HostConfig"] == {k: "container:" for k in doc["HostConfig"]}
    assert out["HostnamePath"] == out["HostsPath"] == out["ResolvConfPath"] == ""
    assert out["Config"] == {"Hostname": "", "Domainname": "", "Image": "busybox"}
    assert out["NetworkSettings"] == {
        "IPAddress": "",
        "IPPrefixLen": 0,
        "HairpinMode": False,
        "SecondaryIPAddresses": None,
        "Ports": {},
        "Networks": {},
    }
    assert HIDDEN[:12] not in repr(out) and "theirs" not in repr(out)


@pytest.mark.parametrize("ref", [SEEN, "mine", "/mine"])
def test_inspect_keeps_namespace_modes_that_name_a_visible_container(ref: str) -> None:
    doc = {
        "Id": "e" * 64,
        "HostnamePath": f"/var/lib/docker/containers/{SEEN}/hostname",
        "Config": {"Hostname": SEEN[:12]},
        "HostConfig": {"NetworkMode": f"container:{ref}", "PidMode": f"container:{ref}"},
    }
    assert INSPECT_FILTER.rewrite(VISIBLE_POLICY, doc, CONTAINERS) == doc


def test_inspect_drops_volumes_from_and_links_to_hidden_containers() -> None:
    doc = {
        "Id": "e" * 64,
        "Config": {"Hostname": "e" * 12},
        "HostConfig": {
            "NetworkMode": "bridge",
            "VolumesFrom": [f"{HIDDEN}:ro", "theirs", "mine:rw", SEEN, "gone"],
            "Links": ["/theirs:/mine-linker/secret", "/mine:/mine-linker/ok", "/other:/x"],
        },
    }
    out = INSPECT_FILTER.rewrite(VISIBLE_POLICY, doc, LINKED)
    assert out["HostConfig"] == {
        "NetworkMode": "bridge",
        "VolumesFrom": ["mine:rw", SEEN],
        "Links": ["/mine:/mine-linker/ok"],
    }
    assert out["Config"] == doc["Config"]  # the network namespace is its own


def test_a_ref_two_containers_answer_to_counts_as_hidden() -> None:
    twin = [*CONTAINERS, {"Id": "1" * 64, "Names": ["/" + HIDDEN], "Labels": {"team": "ci"}}]
    doc = {"HostConfig": {"PidMode": f"container:{HIDDEN}"}}
    assert INSPECT_FILTER.rewrite(VISIBLE_POLICY, doc, twin)["HostConfig"]["PidMode"] == (
        "container:"
    )


def test_inspect_references_pass_without_visibility() -> None:
    policy = compiled({"rules": [{"preset": "read-only"}], "visibility": {"redactEnv": True}})
    doc = {"Config": {"Env": []}, "HostConfig": {"NetworkMode": f"container:{HIDDEN}"}}
    assert INSPECT_FILTER.rewrite(policy, doc, [])["HostConfig"] == doc["HostConfig"]


def test_container_list_blanks_a_network_mode_naming_a_hidden_container() -> None:
    items: list[Any] = [
        {"Id": SEEN, "Names": ["/mine"], "Labels": {"team": "ci"},
         "HostConfig": {"NetworkMode": f"container:{HIDDEN}"}},
        {"Id": "e" * 64, "Names": ["/mine-linker"], "Labels": {"team": "ci"},
         "HostConfig": {"NetworkMode": f"container:{SEEN}"}},
        {"Id": "f" * 64, "Names": ["/plain"], "Labels": {"team": "ci"},
         "HostConfig": {"NetworkMode": "bridge"}},
        {"Id": HIDDEN, "Names": ["/theirs"], "Labels": {"team": "web"},
         "HostConfig": {"NetworkMode": "default"}},
    ]  # fmt: skip
    assert list_refers(items) and not list_refers(items[2:]) and not list_refers({})
    out = LIST_FILTER.rewrite(VISIBLE_POLICY, items, LINKED)
    assert [i["HostConfig"]["NetworkMode"] for i in out] == [
        "container:",
        f"container:{SEEN}",
        "bridge",
    ]
    assert HIDDEN not in repr(out)


def _podman_item(cid: str, alias: str) -> dict[str, Any]:
    network = {"Aliases": [alias], "IPAddress": "10.88.0.5", "IPPrefixLen": 16}
    return {
        "Id": cid,
        "Names": ["/x"],
        "Labels": {"team": "ci"},
        "NetworkSettings": {"Networks": {"podman": network}},
    }


def test_podman_list_items_in_a_hidden_containers_network_namespace_show_no_network() -> None:
    own = _podman_item(SEEN, SEEN[:12])
    assert not list_refers([own])  # its own short ID: nothing borrowed
    assert LIST_FILTER.rewrite(VISIBLE_POLICY, [own], LINKED) == [own]
    shared = _podman_item("e" * 64, HIDDEN[:12])
    assert list_refers([own, shared])
    out = LIST_FILTER.rewrite(VISIBLE_POLICY, [own, shared], LINKED)
    assert out[0] == own and out[1]["NetworkSettings"] == {"Networks": {}}
    gone = _podman_item("e" * 64, "0" * 12)  # its owner is not in the list: fail closed
    assert LIST_FILTER.rewrite(VISIBLE_POLICY, [gone], LINKED)[0]["NetworkSettings"] == {
        "Networks": {}
    }
    friend = _podman_item("e" * 64, SEEN[:12])  # shares a visible container's namespace
    assert LIST_FILTER.rewrite(VISIBLE_POLICY, [friend], LINKED) == [friend]


# -- container list filters that name a container (F1) --------------------------------------


def test_list_filter_refs_reads_since_and_before_in_both_forms() -> None:
    assert list_filter_refs(None) == [] and list_filter_refs("") == []
    assert list_filter_refs('{"status": ["running"], "label": ["a=b"]}') == []
    assert list_filter_refs('{"since": ["a", "b", "a"], "before": ["c"]}') == ["a", "b", "c"]
    assert list_filter_refs('{"since": {"a": true}, "before": {"b": false}}') == ["a", "b"]
    assert list_filter_refs('{"since": null, "before": []}') == []
    for bad in ("[", "[]", '{"since": "a"}', '{"since": ["a"], "label": {"x": true}}',
                '{"since": {"a": 1}}', '{"since": [1]}'):  # fmt: skip
        with pytest.raises(BadBody):
            list_filter_refs(bad)


def test_list_filters_are_forwarded_with_the_resolved_ids_in_the_form_sent() -> None:
    ids = {"a": SEEN, "b": SEEN, "c": "e" * 64}
    legacy = resolved_list_filters(
        '{"since": ["a", "b"], "before": ["c"], "status": ["exited"]}', ids
    )
    assert legacy == f'{{"since":["{SEEN}"],"before":["{"e" * 64}"],"status":["exited"]}}'
    current = resolved_list_filters('{"since": {"a": false}, "label": {"x=y": true}}', ids)
    assert current == f'{{"since":{{"{SEEN}":true}},"label":{{"x=y":true}}}}'
    target = parse_target('/v1.43/containers/json?all=1&filters={"since":["a"]}')
    query = {"all": "1", "filters": '{"since":["a"]}'}
    out = list_target_with_ids(target, query, {"a": SEEN})
    assert out.api_path == target.api_path and out.version == target.version
    assert parse_qs(out.query) == {"all": ["1"], "filters": [f'{{"since":["{SEEN}"]}}']}
    assert list_target_with_ids(target, query, {}) is target
    assert ANSWER_FILTERS["images.inspect"].rewrite(VISIBLE_POLICY, [], CONTAINERS) == []


def test_under_an_owned_events_rule_network_and_volume_events_are_the_owned_ones() -> None:
    policy = compiled(
        {
            "ownership": {"owner": "ci"},
            "rules": [{"allow": ["system.events"], "owned": True}],
        }
    )
    mine = {"dockersocket.io/owner": "ci"}
    owned = owned_objects(
        "ci",
        [
            {"Id": "1" * 64, "Name": "ci-net", "Labels": mine},
            {"Id": "2" * 64, "Name": "other-net", "Labels": {"dockersocket.io/owner": "web"}},
            {"Id": "3" * 64, "Name": "bridge", "Labels": {}},
        ],
        {
            "Volumes": [
                {"Name": "ci-vol", "Labels": mine},
                {"Name": "other-vol", "Labels": None},
            ],
            "Warnings": None,
        },
    )
    assert {k for k, v in owned.networks.items() if v} == {"1" * 64, "ci-net"}
    assert {k for k, v in owned.volumes.items() if v} == {"ci-vol"}
    visible = EventVisibility(policy, [], owned)

    def ev(kind: str, actor: str, **attrs: str) -> dict[str, Any]:
        return {"Type": kind, "Action": "create", "Actor": {"ID": actor, "Attributes": attrs}}

    assert visible(ev("network", "1" * 64, name="ci-net", type="bridge"))
    assert visible(ev("volume", "ci-vol", driver="local"))
    assert visible(ev("volume", "", name="ci-vol"))  # Podman's shape
    assert not visible(ev("network", "2" * 64, name="other-net", type="bridge"))
    assert not visible(ev("network", "3" * 64, name="bridge", type="bridge"))
    assert not visible(ev("volume", "other-vol", driver="local"))
    assert not visible(ev("volume", "", name="other-vol"))
    # Known at the stream's start, owned or not: nothing to look up.
    assert visible.lookups(ev("network", "2" * 64, name="other-net")) == []
    assert visible.lookups(ev("volume", "ci-vol")) == []
    # Not known yet: hidden until looked up (its event carries no labels).
    later = ev("network", "4" * 64, name="created-later")
    assert not visible(later)
    assert visible.lookups(later) == [("network", "4" * 64), ("network", "created-later")]
    # Created later by this owner: learnt from its inspect, then shown.
    visible.learn("network", "4" * 64, {"Id": "4" * 64, "Name": "created-later", "Labels": mine})
    assert visible.lookups(later) == [] and visible(later)
    # Created later by someone else, or gone before the lookup: hidden.
    theirs = ev("volume", "their-vol")
    assert visible.lookups(theirs) == [("volume", "their-vol")]
    visible.learn("volume", "their-vol", {"Name": "their-vol", "Labels": {}})
    assert visible.lookups(theirs) == [] and not visible(theirs)
    # No answer (gone, or the daemon failed): hidden, and looked up again at its next event,
    # so that an owned volume that takes the name later is shown.
    gone = ev("volume", "gone-vol")
    visible.learn("volume", "gone-vol", None)
    assert not visible(gone) and visible.lookups(gone) == [("volume", "gone-vol")]
    visible.learn("volume", "gone-vol", {"Name": "gone-vol", "Labels": mine})
    assert visible(gone)
    # An answer about another object than the one named (dockerd also finds a network by an
    # ID prefix) teaches nothing about the name: hidden, and looked up again.
    visible.learn("network", "4444", {"Id": "4" * 64, "Name": "created-later", "Labels": mine})
    assert not visible(ev("network", "4444"))
    assert visible.lookups(ev("network", "4444")) == [("network", "4444")]
    # A name is forgotten when its object goes: the next one of that name is looked up anew.
    assert visible(ev("volume", "ci-vol") | {"Action": "destroy"})
    assert visible.lookups(ev("volume", "ci-vol")) == [("volume", "ci-vol")]
    visible.learn("volume", "ci-vol", {"Name": "ci-vol", "Labels": {}})
    assert not visible(ev("volume", "ci-vol"))
    # Without an owned rule the same events are not the ownership filter's to hide.
    assert EventVisibility(policy, [])(ev("network", "2" * 64, name="other-net"))
    assert EventVisibility(policy, []).lookups(later) == []
