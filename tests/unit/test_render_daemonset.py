"""The proxy DaemonSet: every hardening field, the mounts, probes and placement."""

from __future__ import annotations

from typing import Any

import pytest

from docker_socket_operator.controller.render import RenderOptions, render
from tests.support.operatorproc import policy, seed_policies

NS = "docker-socket-operator"
IMAGE = "registry.example/dso:1.0"


def _with_uid(doc: dict[str, Any]) -> dict[str, Any]:
    doc["metadata"]["uid"] = "0b9c2a4e-0000-4000-8000-000000000001"
    return doc


def daemonset(spec: dict[str, Any], **opts: Any) -> dict[str, Any]:
    objs = render(_with_uid(policy("traefik", spec)), NS, IMAGE, RenderOptions(**opts))
    (ds,) = [o for o in objs if o["kind"] == "DaemonSet"]
    return ds


def pod(spec: dict[str, Any]) -> dict[str, Any]:
    pod_spec: dict[str, Any] = daemonset(spec)["spec"]["template"]["spec"]
    return pod_spec


def test_container_hardening() -> None:
    (container,) = pod({})["containers"]
    ctx = container["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["privileged"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert "add" not in ctx["capabilities"]


def test_pod_hardening() -> None:
    spec = pod({})
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    ctx = spec["securityContext"]
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    # Non-root by default: the image's uid, the socket reached through its group.
    assert ctx["runAsUser"] == 65532 and ctx["runAsGroup"] == 65532
    assert ctx["runAsNonRoot"] is True
    assert "supplementalGroups" not in ctx
    assert "seLinuxOptions" not in ctx
    assert "hostNetwork" not in spec and "hostPID" not in spec


def test_selinux_type() -> None:
    ctx = pod({"seLinuxType": "spc_t"})["securityContext"]
    assert ctx["seLinuxOptions"] == {"type": "spc_t"}


def test_socket_is_mounted_read_only_from_the_host_path() -> None:
    spec = pod({"socket": {"path": "/run/podman/podman.sock"}})
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["docker-socket"]["hostPath"] == {
        "path": "/run/podman/podman.sock",
        "type": "Socket",
    }
    (container,) = spec["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    sock = mounts["docker-socket"]
    assert sock["readOnly"] is True
    args = container["args"]
    assert args[args.index("--socket") + 1] == sock["mountPath"]
    assert sock["mountPath"].endswith("/podman.sock")


def test_policy_configmap_is_mounted_as_a_directory() -> None:
    spec = pod({})
    (container,) = spec["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    policy_mount = mounts["policy"]
    assert "subPath" not in policy_mount  # subPath mounts never see ConfigMap updates
    assert policy_mount["readOnly"] is True
    args = container["args"]
    assert args[args.index("--policy") + 1] == policy_mount["mountPath"] + "/policy.yaml"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["policy"]["configMap"]["name"] == "dsp-traefik"


def test_proxy_command_line_and_probes() -> None:
    (container,) = pod({})["containers"]
    assert container["image"] == IMAGE
    args = container["args"]
    assert args[0] == "proxy"
    assert args[args.index("--listen") + 1] == "0.0.0.0:2375"
    assert args[args.index("--metrics-listen") + 1] == "0.0.0.0:9102"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"docker": 2375, "metrics": 9102}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}


def test_resources_default_and_custom() -> None:
    (container,) = pod({})["containers"]
    assert container["resources"] == {
        "requests": {"cpu": "10m", "memory": "32Mi"},
        "limits": {"memory": "128Mi"},
    }
    custom = {"requests": {"cpu": "50m"}, "limits": {"cpu": "1", "memory": "256Mi"}}
    (container,) = pod({"resources": custom})["containers"]
    assert container["resources"] == custom


def test_node_selector_and_tolerations() -> None:
    spec = pod(
        {
            "nodeSelector": {"dockersocket.io/docker": "true"},
            "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        }
    )
    assert spec["nodeSelector"] == {"dockersocket.io/docker": "true"}
    assert spec["tolerations"] == [
        {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert "nodeSelector" not in pod({})


def test_rule_changes_do_not_roll_pods_but_pod_changes_do() -> None:
    base = daemonset({"rules": [{"preset": "read-only"}]})
    rules_changed = daemonset({"rules": [{"allow": ["containers.restart"]}], "audit": "all"})
    assert base["spec"]["template"] == rules_changed["spec"]["template"]
    socket_changed = daemonset({"socket": {"path": "/run/podman/podman.sock"}})
    key = "dockersocket.io/config-hash"
    before = base["spec"]["template"]["metadata"]["annotations"][key]
    after = socket_changed["spec"]["template"]["metadata"]["annotations"][key]
    assert before != after


def test_selector_is_stable_and_matches_the_pods() -> None:
    ds = daemonset({})
    selector = ds["spec"]["selector"]["matchLabels"]
    assert selector == {
        "app.kubernetes.io/name": "docker-socket-proxy",
        "dockersocket.io/policy": "traefik",
    }
    assert selector.items() <= ds["spec"]["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize("name", sorted(seed_policies()))
def test_seed_policies_render(name: str) -> None:
    objs = render(_with_uid(seed_policies()[name]), NS, IMAGE)
    assert [o["kind"] for o in objs] == ["ConfigMap", "DaemonSet", "Service", "NetworkPolicy"]
    assert {o["metadata"]["name"] for o in objs} == {f"dsp-{name}"}


def test_socket_group_is_the_only_supplemental_group() -> None:
    ctx = pod({"socket": {"group": 998}})["securityContext"]
    assert ctx["runAsUser"] == 65532 and ctx["runAsNonRoot"] is True
    assert ctx["supplementalGroups"] == [998]


def test_root_only_when_the_policy_says_so() -> None:
    spec = pod({"runAsRoot": True, "socket": {"group": 998}})
    ctx = spec["securityContext"]
    assert ctx["runAsUser"] == 0 and ctx["runAsNonRoot"] is False
    assert "supplementalGroups" not in ctx
    (container,) = spec["containers"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_changing_the_socket_group_rolls_the_pods() -> None:
    def pod_hash(spec: dict[str, Any]) -> str:
        value: str = daemonset(spec)["spec"]["template"]["metadata"]["annotations"][
            "dockersocket.io/config-hash"
        ]
        return value

    assert pod_hash({"socket": {"group": 998}}) != pod_hash({"socket": {"group": 999}})
    assert pod_hash({}) != pod_hash({"runAsRoot": True})
