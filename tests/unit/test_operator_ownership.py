"""Fields other managers added to a child are found in managedFields and taken over."""

from __future__ import annotations

from typing import Any

from docker_socket_operator.controller.ownership import field_paths, foreign_fields, take_over

OURS: dict[str, Any] = {
    "manager": "docker-socket-operator",
    "operation": "Apply",
    "apiVersion": "apps/v1",
    "fieldsType": "FieldsV1",
    "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {}}}}},
}
STATUS: dict[str, Any] = {
    "manager": "kube-controller-manager",
    "operation": "Update",
    "subresource": "status",
    "fieldsV1": {"f:status": {"f:numberReady": {}}},
}
EDIT: dict[str, Any] = {
    "manager": "kubectl-edit",
    "operation": "Update",
    "fieldsV1": {
        "f:spec": {
            "f:template": {
                "f:spec": {
                    "f:hostPID": {},
                    "f:volumes": {'k:{"name":"root"}': {".": {}, "f:hostPath": {"f:path": {}}}},
                }
            }
        }
    },
}


def _obj(*entries: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "metadata": {"resourceVersion": "42", "managedFields": list(entries)},
    }


def test_only_our_apply_and_status_entries_is_no_drift() -> None:
    assert foreign_fields(_obj(OURS, STATUS)) is None


def test_fields_of_another_manager_are_drift() -> None:
    foreign = foreign_fields(_obj(OURS, STATUS, EDIT))
    assert foreign is not None
    assert field_paths(foreign) == [
        "spec.template.spec.hostPID",
        "spec.template.spec.volumes[name=root]",
    ]


def test_reset_managed_fields_are_drift() -> None:
    assert foreign_fields(_obj()) == {}
    assert foreign_fields(_obj(STATUS)) == {}


def test_take_over_gives_our_entry_every_main_field_and_keeps_status() -> None:
    patch = take_over(_obj(OURS, STATUS, EDIT))
    meta = patch["metadata"]
    assert meta["resourceVersion"] == "42"
    ours, status = meta["managedFields"]
    assert status == STATUS
    assert ours["manager"] == "docker-socket-operator" and ours["operation"] == "Apply"
    pod = ours["fieldsV1"]["f:spec"]["f:template"]["f:spec"]
    assert set(pod) == {"f:containers", "f:hostPID", "f:volumes"}


def test_fields_we_own_too_are_not_drift() -> None:
    # A GitOps tool applied a rendered child: it co-owns our fields with the same values.
    gitops = {**OURS, "manager": "argocd", "fieldsV1": OURS["fieldsV1"]}
    assert foreign_fields(_obj(OURS, STATUS, gitops)) is None
    foreign = foreign_fields(_obj(OURS, gitops, EDIT))
    assert foreign is not None and "f:containers" not in str(foreign)
