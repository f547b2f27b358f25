"""`make bench`, operator half: the operator against a real control plane (etcd,
kube-apiserver, controller manager, scheduler, kwok nodes).

Measures, and prints next to each target:
1. policy created -> Ready=True, p50/p95 over sequential policies (target p50 <= 1 s);
2. N policies created while the operator is stopped, cold operator start -> all Ready
   (target <= 60 s for 200);
3. API writes by the operator in the steady state after everything is Ready (target 0;
   the leader Lease renewals are expected and counted apart);
4. operator RSS with N policies (target <= 150 MB).

Writes bench/results-operator.json. Env: BENCH_POLICIES (200), BENCH_SEQUENTIAL (20),
BENCH_STEADY_SECONDS (60), BENCH_NODES (3), BENCH_KEEP=1 keeps the work directory.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import shutil
import ssl
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.controlplane import COMPONENTS, ControlPlane, default_bindir  # noqa: E402
from tests.support.operatorproc import OperatorProcess, install_crds  # noqa: E402

POLICIES = int(os.environ.get("BENCH_POLICIES", "200"))
SEQUENTIAL = int(os.environ.get("BENCH_SEQUENTIAL", "20"))
STEADY_SECONDS = float(os.environ.get("BENCH_STEADY_SECONDS", "60"))
NODES = int(os.environ.get("BENCH_NODES", "3"))
KEEP = os.environ.get("BENCH_KEEP") == "1"

NS = "dso-system"
GROUP_VERSION = "dockersocket.io/v1alpha1"
POLICIES_PATH = f"/apis/{GROUP_VERSION}/dockersocketpolicies"
# managedFields managers of the other writers; every other manager is the operator's
# (its server-side applies, kopf's annotation patches, aiohttp's "Python" status patches).
OTHER_MANAGERS = frozenset(
    {"kube-controller-manager", "kube-scheduler", "kwok", "bench", "Python-urllib", "kubectl",
     "kube-apiserver",  # its identity Leases, beside ours in kube-system
     "kubectl-client-side-apply", "kubectl-create", "kubectl-patch"}
)  # fmt: skip
# The operator's default Lease: one per controller name, in kube-system.
LEASE_NAME = "dso-dockersocket.io-operator"
LEASE_NS = "kube-system"
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"})
# (resource, subresource) pairs nobody but the operator writes in this cluster, so
# apiserver_request_total on them counts the operator's write *requests* (no-op ones too).
# Leases and events are shared with the other components; the Lease is counted apart.
OPERATOR_ONLY = {
    ("dockersocketpolicies", ""),
    ("dockersocketpolicies", "status"),
    ("daemonsets", ""),  # the DaemonSet controller writes only daemonsets/status
    ("services", ""),
    ("networkpolicies", ""),
    ("configmaps", ""),  # the root CA publisher writes once per new namespace
}
# Children live in NS; the Lease in LEASE_NS. Policies are cluster-scoped.
WATCHED = {
    "DockerSocketPolicy": POLICIES_PATH,
    "ConfigMap": f"/api/v1/namespaces/{NS}/configmaps",
    "DaemonSet": f"/apis/apps/v1/namespaces/{NS}/daemonsets",
    "Service": f"/api/v1/namespaces/{NS}/services",
    "NetworkPolicy": f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies",
    "Lease": f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases",
}


class Api:
    """Just enough of a Kubernetes client on urllib: the admin token, the cluster CA."""

    def __init__(self, cp: ControlPlane) -> None:
        self.server = cp.server
        self.headers = {"Authorization": f"Bearer {cp.token}", "Accept": "application/json"}
        self.ssl = ssl.create_default_context(cafile=str(cp.ca_file))

    def open(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.server + path, data, headers, method=method)
        return urllib.request.urlopen(req, timeout=timeout, context=self.ssl)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        with self.open(method, path, body) as resp:
            raw = resp.read()
        return json.loads(raw) if raw.startswith(b"{") else raw.decode()


class Watch(threading.Thread):
    """A LIST then a WATCH from its resourceVersion, re-opened when the server ends it;
    each event goes to `on_event(type, obj, monotonic time)` as it arrives."""

    def __init__(self, api: Api, path: str, on_event: Callable[[str, Any, float], None]) -> None:
        super().__init__(daemon=True)
        self.api, self.path, self.on_event = api, path, on_event
        self.stopping = threading.Event()
        self.listed = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        failing_since: float | None = None
        while not self.stopping.is_set():
            try:
                self._list_and_watch()
                failing_since = None
            except (OSError, ValueError, RuntimeError) as exc:
                # 429 while a new CRD's storage starts, 410 Gone: list again, briefly.
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > 30:
                    self.error = exc
                    self.listed.set()
                    return
                time.sleep(0.2)

    def _list_and_watch(self) -> None:
        listing = self.api.call("GET", self.path)
        now = time.monotonic()
        for item in listing["items"]:
            self.on_event("LISTED", item, now)
        rv = listing["metadata"]["resourceVersion"]
        self.listed.set()
        while not self.stopping.is_set():
            query = urllib.parse.urlencode(
                {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true",
                 "timeoutSeconds": "5"}
            )  # fmt: skip
            with self.api.open("GET", f"{self.path}?{query}", timeout=30) as resp:
                for line in resp:
                    event = json.loads(line)
                    now = time.monotonic()
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        raise RuntimeError(f"watch {self.path}: {obj.get('message')}")
                    rv = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self.on_event(event["type"], obj, now)
                    if self.stopping.is_set():
                        return

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


def is_ready(policy: dict[str, Any]) -> bool:
    status = policy.get("status") or {}
    if status.get("observedGeneration") != policy["metadata"].get("generation"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


class PolicyTracker:
    """When each policy (by name) was first seen reconciled (status for its generation)
    and first seen Ready=True, on the watch's clock."""

    def __init__(self) -> None:
        self.reconciled: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.cond = threading.Condition()

    def on_event(self, kind: str, obj: Any, now: float) -> None:
        name = obj["metadata"]["name"]
        with self.cond:
            if kind == "DELETED":
                self.reconciled.pop(name, None)
                self.ready.pop(name, None)
            else:
                status = obj.get("status") or {}
                if status.get("observedGeneration") == obj["metadata"].get("generation"):
                    self.reconciled.setdefault(name, now)
                if is_ready(obj):
                    self.ready.setdefault(name, now)
            self.cond.notify_all()

    def wait_ready(self, names: Iterable[str], timeout: float) -> bool:
        wanted = set(names)
        with self.cond:
            return self.cond.wait_for(lambda: wanted <= self.ready.keys(), timeout)


class RolloutTracker:
    """When each DaemonSet was first seen, and first seen fully rolled out (status written
    by the DaemonSet controller): the control plane's share of create -> Ready."""

    def __init__(self) -> None:
        self.created: dict[str, float] = {}
        self.rolled_out: dict[str, float] = {}
        self.lock = threading.Lock()

    def on_event(self, kind: str, obj: Any, now: float) -> None:
        name, st = obj["metadata"]["name"], obj.get("status") or {}
        desired = st.get("desiredNumberScheduled", 0)
        done = (
            st.get("observedGeneration", 0) >= obj["metadata"].get("generation", 1)
            and desired > 0
            and desired == st.get("numberReady") == st.get("updatedNumberScheduled")
        )
        with self.lock:
            if kind == "DELETED":
                self.created.pop(name, None)
                self.rolled_out.pop(name, None)
                return
            self.created.setdefault(name, now)
            if done:
                self.rolled_out.setdefault(name, now)


def _field_owners(obj: dict[str, Any]) -> dict[tuple[str, str, str], str]:
    """(manager, operation, subresource) -> time + fields, to spot who changed what."""
    return {
        (m.get("manager", ""), m.get("operation", ""), m.get("subresource", "")): json.dumps(
            [m.get("time"), m.get("fieldsV1")], sort_keys=True
        )
        for m in obj["metadata"].get("managedFields") or []
    }


class WriteRecorder:
    """Every change to a watched object, attributed to the managers whose managedFields
    entry moved (the API server stamps the writer's entry on every effective write)."""

    def __init__(self) -> None:
        self.owners: dict[str, dict[tuple[str, str, str], str]] = {}
        self.changes: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.closed = False  # the window is over; watches still draining are ignored

    def watcher(self, kind: str) -> Callable[[str, Any, float], None]:
        def on_event(event: str, obj: Any, now: float) -> None:
            key = f"{kind}/{obj['metadata']['name']}"
            owners = _field_owners(obj)
            with self.lock:
                before = self.owners.get(key, {})
                self.owners[key] = owners
                if event == "LISTED" or self.closed:
                    return
                moved = sorted({k[0] for k, v in owners.items() if before.get(k) != v})
                self.changes.append(
                    {"object": key, "event": event, "managers": moved or ["?"],
                     "resourceVersion": obj["metadata"]["resourceVersion"]}
                )  # fmt: skip

        return on_event


def write_counts(api: Api) -> Counter[tuple[str, str, str]]:
    """apiserver_request_total for write verbs, summed by (resource, subresource, verb)."""
    text = api.call("GET", "/metrics")
    out: Counter[tuple[str, str, str]] = Counter()
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels_text, _, value = line[len("apiserver_request_total{") :].rpartition("} ")
        labels = dict(part.split("=", 1) for part in labels_text.split('",') if "=" in part)
        labels = {k: v.strip('"') for k, v in labels.items()}
        if labels.get("verb") in WRITE_VERBS:
            key = (labels.get("resource", ""), labels.get("subresource", ""), labels["verb"])
            out[key] += int(float(value))
    return out


def seed_specs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((ROOT / "examples" / "policies").glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return [d["spec"] for d in docs if d.get("kind") == "DockerSocketPolicy"]


def bench_policy(name: str, spec: dict[str, Any], group: str) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "DockerSocketPolicy",
        "metadata": {"name": name, "labels": {"bench": group}},
        "spec": copy.deepcopy(spec),
    }


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of the samples at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def rss_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0])
    return out


def raise_pod_capacity(cp: ControlPlane, pods: int) -> None:
    """kwok nodes advertise 110 pods; N policies on every node need N pods per node."""
    capacity = {"cpu": "32", "memory": "256Gi", "pods": str(pods)}
    patch = json.dumps({"status": {"capacity": capacity, "allocatable": capacity}})
    for node in cp.node_names():
        cp.kubectl("patch", "node", node, "--subresource=status", "--type=merge", "-p", patch)


def pods_in(api: Api, namespace: str) -> int:
    return len(api.call("GET", f"/api/v1/namespaces/{namespace}/pods")["items"])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)


def measure_latency(
    api: Api, tracker: PolicyTracker, specs: list[dict[str, Any]]
) -> dict[str, Any]:
    """Sequential creates: from just before the POST to the watch event showing Ready."""
    ready_s, status_s, post_s = [], [], []
    for i in range(SEQUENTIAL):
        name = f"lat-{i:03d}"
        t0 = time.monotonic()
        api.call("POST", POLICIES_PATH, bench_policy(name, specs[i % len(specs)], "latency"))
        post_s.append(time.monotonic() - t0)
        if not tracker.wait_ready([name], 60):
            raise TimeoutError(f"{name} not Ready within 60 s")
        ready_s.append(tracker.ready[name] - t0)
        status_s.append(tracker.reconciled[name] - t0)
    return {
        "samples": len(ready_s),
        "ready_s": ready_s,
        "p50_s": statistics.median(ready_s),
        "p95_s": percentile(ready_s, 0.95),
        "max_s": max(ready_s),
        "first_status_p50_s": statistics.median(status_s),
        "create_call_p50_s": statistics.median(post_s),
    }


# Drift a hand edit causes, and how to tell it is still there. Additive cases (fields the
# operator does not render) and an edit of a rendered field.
DRIFTS: list[tuple[str, str, dict[str, Any], Callable[[dict[str, Any]], Any]]] = [
    ("add hostPID", "daemonsets", {"spec": {"template": {"spec": {"hostPID": True}}}},
     lambda o: o["spec"]["template"]["spec"].get("hostPID")),
    ("add hostPath volume /", "daemonsets",
     {"spec": {"template": {"spec": {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}}}},
     lambda o: any(v["name"] == "root" for v in o["spec"]["template"]["spec"]["volumes"])),
    ("add nodeSelector key", "daemonsets",
     {"spec": {"template": {"spec": {"nodeSelector": {"bench-extra": "x"}}}}},
     lambda o: "bench-extra" in (o["spec"]["template"]["spec"].get("nodeSelector") or {})),
    ("add egress [{}]", "networkpolicies", {"spec": {"egress": [{}]}},
     lambda o: "egress" in o["spec"]),
    ("edit ConfigMap data", "configmaps", {"data": {"policy.yaml": "spec: {}"}},
     lambda o: o["data"]["policy.yaml"] == "spec: {}"),
]  # fmt: skip
CHILD_PATHS = {
    "daemonsets": f"/apis/apps/v1/namespaces/{NS}/daemonsets",
    "networkpolicies": f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies",
    "configmaps": f"/api/v1/namespaces/{NS}/configmaps",
}


def measure_drift(api: Api, child: str) -> dict[str, float]:
    """A strategic merge patch by another field manager, then GETs every 10 ms until the
    operator has put the child back: the drift-repair time as a client sees it."""
    out = {}
    for case, resource, patch, drifted in DRIFTS:
        path = f"{CHILD_PATHS[resource]}/{child}?fieldManager=bench-intruder"
        req = urllib.request.Request(
            api.server + path, json.dumps(patch).encode(),
            {**api.headers, "Content-Type": "application/strategic-merge-patch+json"},
            method="PATCH",
        )  # fmt: skip
        t0 = time.monotonic()
        with urllib.request.urlopen(req, timeout=30, context=api.ssl) as resp:
            resp.read()
        deadline = t0 + 60
        while drifted(api.call("GET", f"{CHILD_PATHS[resource]}/{child}")):
            if time.monotonic() > deadline:
                raise TimeoutError(f"drift {case!r} not repaired within 60 s")
            time.sleep(0.01)
        out[case] = time.monotonic() - t0
    return out


def measure_cold_start(
    cp: ControlPlane, api: Api, tracker: PolicyTracker, specs: list[dict[str, Any]], work: Path
) -> tuple[dict[str, Any], OperatorProcess]:
    docs = [bench_policy(f"bulk-{i:04d}", specs[i % len(specs)], "bulk") for i in range(POLICIES)]
    manifest = work / "bulk-policies.yaml"
    manifest.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    t0 = time.monotonic()
    cp.kubectl("apply", "--server-side", "--field-manager=bench", "-f", str(manifest), timeout=300)
    apply_s = time.monotonic() - t0

    rollouts = RolloutTracker()
    ds_watch = Watch(api, WATCHED["DaemonSet"], rollouts.on_event)
    ds_watch.start()
    ds_watch.listed.wait(30)
    op = OperatorProcess(cp.kubeconfig, work, NS)
    names = [d["metadata"]["name"] for d in docs]
    start = time.monotonic()
    op.start()
    op.wait_ready(60)
    op_ready_s = time.monotonic() - start
    all_ready = tracker.wait_ready(names, 600)
    ds_watch.stop()
    with tracker.cond, rollouts.lock:
        ready = [tracker.ready[n] - start for n in names if n in tracker.ready]
        reconciled = [tracker.reconciled[n] - start for n in names if n in tracker.reconciled]
        created = [
            rollouts.created[f"dsp-{n}"] - start for n in names if f"dsp-{n}" in rollouts.created
        ]
        rolled = [t - start for t in rollouts.rolled_out.values()]
        # How long after its DaemonSet rolled out did the policy say Ready: the operator's
        # reaction to the DaemonSet status, apart from the control plane's rollout work.
        lag = [
            tracker.ready[n] - rollouts.rolled_out[f"dsp-{n}"]
            for n in names
            if n in tracker.ready and f"dsp-{n}" in rollouts.rolled_out
        ]
    return {
        "policies": POLICIES,
        "kubectl_apply_s": apply_s,
        "operator_readyz_s": op_ready_s,
        "all_reconciled_s": max(reconciled) if len(reconciled) == POLICIES else None,
        "all_ready_s": max(ready) if all_ready else None,
        "ready_count": len(ready),
        "all_daemonsets_created_s": max(created) if len(created) == POLICIES else None,
        "all_daemonsets_rolled_out_s": max(rolled) if len(rolled) == POLICIES else None,
        "ready_after_rollout_p50_s": statistics.median(lag) if lag else None,
        "ready_after_rollout_max_s": max(lag) if lag else None,
        "pods": pods_in(api, NS),
    }, op


def measure_steady(api: Api, op: OperatorProcess) -> dict[str, Any]:
    recorder = WriteRecorder()
    watches = [Watch(api, path, recorder.watcher(kind)) for kind, path in WATCHED.items()]
    for w in watches:
        w.start()
    for w in watches:
        w.listed.wait(30)
    before = write_counts(api)
    time.sleep(STEADY_SECONDS)
    after = write_counts(api)
    with recorder.lock:
        recorder.closed = True
    for w in watches:
        w.stop()
        if w.error is not None:
            raise RuntimeError(f"watch {w.path} failed") from w.error
    requests = {
        f"{r}{'/' + s if s else ''} {v}": n
        for (r, s, v), n in sorted((after - before).items())
        if (r, s) in OPERATOR_ONLY and n
    }
    lease_key = f"Lease/{LEASE_NAME}"
    ours = [c for c in recorder.changes if not OTHER_MANAGERS.issuperset(c["managers"])]
    return {
        "seconds": STEADY_SECONDS,
        "operator_write_requests": sum(requests.values()),
        "operator_write_requests_by_resource": requests,
        "object_changes_by_operator": [c for c in ours if c["object"] != lease_key],
        "lease_renewals": sum(1 for c in recorder.changes if c["object"] == lease_key),
        "object_changes_by_others": dict(
            Counter(m for c in recorder.changes if c not in ours for m in c["managers"])
        ),
        "rss_kib_after": rss_kib(op.proc.pid) if op.proc else {},
    }


def main() -> int:
    bindir = default_bindir()
    missing = [c for c in COMPONENTS if not (bindir / c).exists()]
    if missing:
        print(f"operator benchmark skipped: {missing} missing in {bindir} (make controlplane)")
        return 0
    work = Path(tempfile.mkdtemp(prefix="dso-opbench-"))
    specs = seed_specs()
    cp = ControlPlane(bindir, work / "cp", nodes=NODES)
    results: dict[str, Any] = {"nodes": NODES, "policies": POLICIES, "seed_specs": len(specs)}
    ok = False
    op: OperatorProcess | None = None
    tracker = PolicyTracker()
    try:
        cp.start()
        api = Api(cp)
        raise_pod_capacity(cp, max(110, SEQUENTIAL + POLICIES + 50))
        install_crds(cp)
        cp.kubectl("create", "namespace", NS)
        watch = Watch(api, POLICIES_PATH, tracker.on_event)
        watch.start()

        op = OperatorProcess(cp.kubeconfig, work, NS)
        op.start()
        op.wait_ready(60)
        results["latency"] = measure_latency(api, tracker, specs)
        results["drift_repair_s"] = measure_drift(api, "dsp-lat-000")
        # Start the bulk phase from an empty namespace: no leftover pods for kwok to churn.
        api.call("DELETE", f"{POLICIES_PATH}?labelSelector=bench%3Dlatency")
        wait_until(lambda: pods_in(api, NS) == 0, 120, "latency policies' pods to go")
        op.stop()

        results["cold_start"], op = measure_cold_start(cp, api, tracker, specs, work)
        assert op.proc is not None
        results["rss_kib"] = rss_kib(op.proc.pid)
        if results["cold_start"]["all_ready_s"] is not None:
            results["steady"] = measure_steady(api, op)
        if watch.error is not None:
            raise RuntimeError("policy watch failed") from watch.error
        watch.stopping.set()
        ok = True
    finally:
        if op is not None:
            op.stop()
        cp.stop()
        if ok and not KEEP:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work directory (logs) kept: {work}")

    report(results)
    (ROOT / "bench" / "results-operator.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(r: dict[str, Any]) -> None:
    print(f"\n== operator benchmark ({r['nodes']} kwok nodes, real control plane)")
    lat = r["latency"]
    print(
        f"create -> Ready ({lat['samples']} sequential): p50 {lat['p50_s'] * 1000:.0f} ms, "
        f"p95 {lat['p95_s'] * 1000:.0f} ms, max {lat['max_s'] * 1000:.0f} ms "
        f"(goal p50 <= 1000 ms: {_verdict(lat['p50_s'] <= 1.0)}); first status write "
        f"p50 {lat['first_status_p50_s'] * 1000:.0f} ms"
    )
    cs = r["cold_start"]
    all_ready = cs["all_ready_s"]
    goal = 60.0  # for 200 policies
    ready_text = "NOT ALL READY" if all_ready is None else f"{all_ready:.1f} s"
    print(
        f"cold start, {cs['policies']} policies ({cs['pods']} proxy pods): all Ready after "
        f"{ready_text} (goal <= {goal:.0f} s at 200: {_verdict(all_ready is not None and all_ready <= goal)}); "
        f"operator ready {cs['operator_readyz_s']:.1f} s, every policy reconciled "
        f"{_secs(cs['all_reconciled_s'])}; kubectl apply {cs['kubectl_apply_s']:.1f} s"
    )
    print(
        f"  of which: all DaemonSets applied {_secs(cs['all_daemonsets_created_s'])}, all rolled out "
        f"(controller manager, scheduler, kwok) {_secs(cs['all_daemonsets_rolled_out_s'])}; policy Ready "
        f"after its DaemonSet rolled out p50 {_ms(cs['ready_after_rollout_p50_s'])}, "
        f"max {_ms(cs['ready_after_rollout_max_s'])}"
    )
    rss = r["rss_kib"]
    print(
        f"operator RSS at {cs['policies']} policies: {rss['VmRSS'] / 1024:.1f} MiB "
        f"(peak {rss['VmHWM'] / 1024:.1f}; goal <= 150 MB: {_verdict(rss['VmRSS'] * 1024 <= 150e6)})"
    )
    for case, secs in (r.get("drift_repair_s") or {}).items():
        print(f"drift repaired ({case}): {secs * 1000:.0f} ms")
    st = r.get("steady")
    if st is None:
        print("steady state: skipped (not everything became Ready)")
        return
    changes = len(st["object_changes_by_operator"])
    print(
        f"steady state, {st['seconds']:.0f} s: operator write requests {st['operator_write_requests']} "
        f"{st['operator_write_requests_by_resource'] or ''}, objects changed by the operator {changes} "
        f"(goal 0 besides the leader Lease: "
        f"{_verdict(st['operator_write_requests'] == 0 and changes == 0)}); "
        f"leader Lease renewals {st['lease_renewals']}; RSS after {st['rss_kib_after'].get('VmRSS', 0) / 1024:.1f} MiB"
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
