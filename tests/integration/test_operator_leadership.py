"""One owner per policy, on a real control plane: two installs (two controller names) split
the policies between them without flapping, a second install of the same name stands by
(one Lease per controller name), and a replica that loses the Lease mid-retry writes nothing."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.controlplane import ControlPlane
from tests.support.operatorproc import Kube, OperatorProcess, policy
from tests.support.waiting import holds_for, settled, wait_for

pytestmark = pytest.mark.kube

CLIENT = {"namespace": "ci", "podSelector": {"matchLabels": {"app": "runner"}}}
LEASE = "dso-dockersocket.io-operator"
CHILD_KINDS = {"ConfigMap", "DaemonSet", "Service", "NetworkPolicy"}


def _policy(name: str, **spec: object) -> dict[str, object]:
    return policy(name, {"clients": [CLIENT], "rules": [{"preset": "read-only"}], **spec})


@pytest.fixture
def operators(cluster: ControlPlane) -> Iterator[list[OperatorProcess]]:
    started: list[OperatorProcess] = []
    yield started
    for op in started:
        op.stop()


def _start(
    cluster: ControlPlane, started: list[OperatorProcess], ns: str, *args: str
) -> OperatorProcess:
    if cluster.kubectl("get", "namespace", ns, check=False).returncode != 0:
        cluster.kubectl("create", "namespace", ns)
    op = OperatorProcess(cluster.kubeconfig, cluster.workdir, ns, extra_args=args)
    started.append(op)
    op.start()
    op.wait_ready()
    return op


def _policy_versions(kube: Kube, *names: str) -> dict[str, str]:
    out = {}
    for name in names:
        obj = kube.policy(name)
        assert obj is not None
        out[name] = obj["metadata"]["resourceVersion"]
    return out


def test_two_installs_split_the_policies_without_flapping(
    cluster: ControlPlane, operators: list[OperatorProcess]
) -> None:
    a = _start(cluster, operators, "dso-a")
    b = _start(cluster, operators, "dso-b", "--controller-name=example.com/b",
               "--no-default-controller")  # fmt: skip
    wait_for(lambda: "became leader" in a.logs() and "became leader" in b.logs(), 30, "leaders")
    in_a, in_b = Kube(cluster, "dso-a"), Kube(cluster, "dso-b")
    in_a.apply(_policy("plain"), _policy("for-b", controllerName="example.com/b"))
    plain = in_a.wait_ready("plain", 3)
    for_b = in_b.wait_ready("for-b", 3)
    assert plain["status"]["endpoint"].startswith("tcp://dsp-plain.dso-a.svc")
    assert plain["status"]["controllerName"] == "dockersocket.io/operator"
    assert for_b["status"]["endpoint"].startswith("tcp://dsp-for-b.dso-b.svc")
    assert for_b["status"]["controllerName"] == "example.com/b"
    assert in_b.children("plain") == {} and in_a.children("for-b") == {}

    # A second install of the default name, elsewhere: it shares the Lease and stands by.
    c = _start(cluster, operators, "dso-c")
    versions = settled(
        lambda: _policy_versions(in_a, "plain", "for-b"),
        3,
        60,
        "the status writes of the first reconciles",
    )
    holds_for(
        lambda: (
            _policy_versions(in_a, "plain", "for-b") == versions and "became leader" not in c.logs()
        ),
        8,
        "the policies do not flap and dso-c stands by",
    )
    assert Kube(cluster, "dso-c").children("plain") == {}

    # Re-addressed: the old install removes its children, the new one serves it.
    in_a.apply(_policy("plain", controllerName="example.com/b"))
    in_b.wait_ready("plain", 3)
    wait_for(lambda: not CHILD_KINDS & set(in_a.children("plain")), 30, "old children removed")
    for name in ("plain", "for-b"):
        cluster.kubectl("delete", "dsp", name)


VAP = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-services}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [services]}
  validations:
    - {expression: "false", message: "services refused by the test"}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-services}
spec:
  policyName: no-services
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: dso-retry}}
"""


def _service_refused(cluster: ControlPlane) -> bool:
    probe = cluster.kubectl(
        "create", "service", "clusterip", "probe", "--tcp=1:1", "-n", "dso-retry",
        "--dry-run=server", check=False,
    )  # fmt: skip
    return "services refused by the test" in probe.stderr


def test_lease_lost_mid_retry_means_no_more_writes(
    cluster: ControlPlane, operators: list[OperatorProcess], tmp_path: Path
) -> None:
    op = _start(cluster, operators, "dso-retry", "--retry-delay=2")
    wait_for(lambda: "became leader" in op.logs(), 30, "leader")
    kube = Kube(cluster, "dso-retry")
    kube.apply(_policy("retried"))
    kube.wait_ready("retried", 3)

    cluster.kubectl("apply", "-f", "-", input=VAP)
    wait_for(lambda: _service_refused(cluster), 30, "admission policy in force")
    cluster.kubectl("delete", "service", "dsp-retried", "-n", "dso-retry")
    wait_for(lambda: op.logs().count("drift repair of retried failed") + op.logs().count(
        "retry for retried failed") >= 2, 30, "repair failing and being retried")  # fmt: skip

    # Someone else takes the Lease (and keeps it for an hour).
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    patch = {"spec": {"holderIdentity": "thief", "leaseDurationSeconds": 3600, "renewTime": now}}
    cluster.kubectl("patch", "lease", LEASE, "-n", "kube-system", "--type=merge",
                    "-p", json.dumps(patch))  # fmt: skip
    wait_for(lambda: "lost leadership" in op.logs(), 30, "operator steps down")
    lost_at = len(op.log_path.read_text(errors="replace"))
    versions = kube.resource_versions()

    # The repair would now succeed: nothing may try it.
    cluster.kubectl("delete", "-f", "-", input=VAP)
    wait_for(lambda: not _service_refused(cluster), 30, "admission policy gone")

    def since_lost() -> str:
        return op.log_path.read_text(errors="replace")[lost_at:]

    holds_for(  # three retry periods
        lambda: (
            kube.get("service", "dsp-retried") is None
            and kube.resource_versions() == versions
            and "applying" not in since_lost()
            and "retry for retried failed" not in since_lost()
        ),
        6,
        "a replica without the Lease writes nothing and retries nothing",
    )
    after = since_lost()
    assert "applying" not in after and "retry for retried failed" not in after, after

    # Leadership back: the repair happens.
    cluster.kubectl("delete", "lease", LEASE, "-n", "kube-system")
    wait_for(lambda: kube.get("service", "dsp-retried"), 60, "repaired by the new term")
    cluster.kubectl("delete", "dsp", "retried")
