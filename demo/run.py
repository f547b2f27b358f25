"""`make demo`: what the product does, on real parts.

1. A private dockerd, the proxy in front of it with a sample policy, and docker CLI calls that
   are allowed and denied.
2. When the control plane binaries are built (`make controlplane`): a real kube-apiserver with
   fake kwok nodes, the operator, a DockerSocketPolicy, its children and status — and the
   ConfigMap the operator rendered, fed to the proxy, giving the decisions the policy promises.
3. When the node binaries are built too (`make node-bins`): the same policy on a real node
   (containerd, kubelet, kube-proxy, kube-router's NetworkPolicy firewall): the proxy pod runs
   for real, a labelled pod's docker calls are allowed and denied, an unlabelled pod is
   refused at the network.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from tests.support.daemons import Daemon, start_dockerd  # noqa: E402
from tests.support.proxyproc import ProxyProcess  # noqa: E402

BOLD, GREEN, RED, DIM, END = "\033[1m", "\033[32m", "\033[31m", "\033[2m", "\033[0m"
if not sys.stdout.isatty():
    BOLD = GREEN = RED = DIM = END = ""

DEMO_POLICY = """\
apiVersion: dockersocket.io/v1alpha1
kind: DockerSocketPolicy
metadata: {name: demo}
spec:
  rules:
    - preset: discovery                     # what Traefik/Caddy need: ping, version, events, list, inspect
    - allow: [containers.restart]
      containers: {names: [web]}            # restart one container, by name
    - allow: [containers.create, containers.start, containers.wait, containers.delete, containers.attach]
      create: {images: ["bb:*"]}            # run throwaway containers, with no host power
  visibility: {redactEnv: true}
  audit: all
"""


def say(text: str) -> None:
    print(f"\n{BOLD}{text}{END}")


def docker(proxy: ProxyProcess, *args: str, expect_ok: bool) -> None:
    cmd = ["docker", *args]
    shown = " ".join(a if " " not in a else repr(a) for a in cmd)
    env = {**os.environ, "DOCKER_HOST": proxy.docker_host}
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    ok = r.returncode == 0
    tag = f"{GREEN}allowed{END}" if ok else f"{RED}denied {END}"
    print(f"  [{tag}] $ {shown}")
    out = (r.stdout if ok else r.stderr).strip()
    for line in out.splitlines()[:6]:
        print(f"            {DIM}{line}{END}")
    if ok != expect_ok:
        raise SystemExit(f"demo: expected {'success' if expect_ok else 'a denial'} for: {shown}")


def proxy_part(d: Daemon, work: Path) -> None:
    say("1. The proxy in front of a real dockerd")
    d.create("web", labels={"app": "web"})
    d.create("db", labels={"app": "db"})
    d.api(
        "POST",
        "/containers/create",
        {"Image": d.image, "Cmd": ["true"], "Env": ["DB_PASSWORD=hunter2"]},
        query={"name": "with-secret"},
    )
    print(textwrap.indent(DEMO_POLICY, "    "))
    with ProxyProcess(d.socket_path, work / "proxy", policy=DEMO_POLICY) as proxy:
        print(f"  proxy listening on {proxy.docker_host}, daemon at unix://{d.socket_path}\n")
        docker(proxy, "version", "--format", "server API {{.Server.APIVersion}}", expect_ok=True)
        docker(proxy, "ps", "--format", "{{.Names}} {{.Status}}", expect_ok=True)
        docker(proxy, "restart", "web", expect_ok=True)
        docker(proxy, "restart", "db", expect_ok=False)
        docker(
            proxy,
            "run",
            "--rm",
            "--network",
            "none",
            "bb:latest",
            "echo",
            "hello from a sandbox",
            expect_ok=True,
        )
        docker(
            proxy,
            "run",
            "--rm",
            "--privileged",
            "--network",
            "none",
            "bb:latest",
            "true",
            expect_ok=False,
        )
        docker(
            proxy,
            "run",
            "--rm",
            "-v",
            "/:/host",
            "--network",
            "none",
            "bb:latest",
            "ls",
            "/host",
            expect_ok=False,
        )
        docker(proxy, "exec", "web", "sh", "-c", "id", expect_ok=False)
        docker(proxy, "inspect", "--format", "{{.Config.Env}}", "with-secret", expect_ok=True)
        docker(proxy, "image", "rm", "bb:latest", expect_ok=False)
        say("   The audit log (JSON lines), last four:")
        for line in proxy.audit_lines()[-4:]:
            keep = {
                k: line.get(k)
                for k in ("method", "path", "operation", "decision", "rule", "status")
            }
            print(f"    {DIM}{keep}{END}")


def operator_part(d: Daemon, work: Path) -> None:
    bindir = Path(os.environ.get("DSO_CACHE", "/var/cache/docker-socket-operator")) / "bin"
    if not (bindir / "kube-apiserver").exists():
        say(
            "2. Operator: skipped — control plane not built (`make controlplane` needs Go 1.26; ~40 min once, cached)"
        )
        return
    from tests.support.controlplane import ControlPlane
    from tests.support.operatorproc import OperatorProcess, install_crds

    say(
        "2. The operator on a real control plane (kube-apiserver, etcd, controller-manager, kwok nodes)"
    )
    labels = {"kwok-node-0": {"docker": "true"}, "kwok-node-1": {"docker": "true"}}
    ns = "docker-socket-operator"
    with ControlPlane(bindir, work / "cp", nodes=3, node_labels=labels) as cp:
        kubectl = cp.kubectl
        install_crds(cp)
        kubectl("create", "namespace", ns)
        (work / "op").mkdir(exist_ok=True)
        op = OperatorProcess(cp.kubeconfig, work / "op", ns)
        op.start()
        try:
            op.wait_ready()
            policy = yaml.safe_load((ROOT / "examples/policies/restart-one.yaml").read_text())
            policy["spec"]["nodeSelector"] = {"docker": "true"}
            path = work / "restart-one.yaml"
            path.write_text(yaml.safe_dump(policy))
            print(
                "  $ kubectl apply -f restart-one.yaml   (examples/policies, on nodes labelled docker=true)"
            )
            t0 = time.monotonic()
            kubectl("apply", "-f", str(path))
            kubectl("wait", "--for=condition=Ready", "dsp/restart-one", "--timeout=60s")
            print(f"  Ready after {time.monotonic() - t0:.1f}s (2 of 3 fake nodes match)")
            for args in (
                ["get", "dsp"],
                ["-n", ns, "get", "configmap,daemonset,service,networkpolicy,pods",
                 "-l", "dockersocket.io/policy=restart-one"],
            ):  # fmt: skip
                print(f"  $ kubectl {' '.join(args)}")
                print(textwrap.indent(kubectl(*args).stdout, "    "))
            cms = yaml.safe_load(
                kubectl("-n", ns, "get", "configmap", "-l", "dockersocket.io/policy=restart-one",
                        "-o", "yaml").stdout
            )  # fmt: skip
            rendered = cms["items"][0]["data"]["policy.yaml"]
            say(
                "   The ConfigMap the operator rendered, fed to the proxy in front of the real dockerd:"
            )
            d.create("mcp-gateway")
            with ProxyProcess(d.socket_path, work / "proxy2", policy=rendered) as proxy:
                docker(proxy, "restart", "mcp-gateway", expect_ok=True)
                docker(proxy, "restart", "web", expect_ok=False)
                docker(proxy, "exec", "mcp-gateway", "true", expect_ok=False)
            kubectl("delete", "-f", str(path), "--wait=true")
            left = "?"
            for _ in range(60):  # kube-controller-manager's garbage collector removes the children
                left = kubectl("-n", ns, "get", "daemonset,configmap,service,networkpolicy", "-l",
                               "dockersocket.io/policy=restart-one", "-o", "name").stdout.strip()  # fmt: skip
                if not left:
                    break
                time.sleep(0.5)
            print(f"  policy deleted; children left: {left or 'none'}")
        finally:
            op.stop()


def node_part(work: Path) -> None:
    import contextlib

    from tests.support.node import NodeUnavailable
    from tests.support.nodecluster import start_node_cluster

    say(
        "3. The same policy on a real node: containerd, kubelet, kube-proxy, kube-router's firewall"
    )
    with contextlib.ExitStack() as stack:
        try:
            c = start_node_cluster(stack, work / "node")
        except NodeUnavailable as exc:
            print(f"  skipped: {exc}")
            return
        for what, seconds in c.results.items():
            print(f"  {DIM}{what}: {seconds}{END}")
        policy = yaml.safe_load((ROOT / "examples/policies/restart-one.yaml").read_text())
        policy["spec"]["socket"] = {"path": c.dockerd.socket_path, "group": c.socket_gid}
        print("  $ kubectl apply -f restart-one.yaml   (socket: the node's dockerd)")
        t0 = time.monotonic()
        c.kube.apply(policy)
        ready = c.kube.wait_ready("restart-one", 1, timeout=180)
        print(f"  Ready after {time.monotonic() - t0:.1f}s: the proxy pod passed its real probe")
        print(textwrap.indent(c.cp.kubectl("get", "dsp").stdout, "    "))
        print(textwrap.indent(c.cp.kubectl("get", "pods", "-A", "-o", "wide").stdout, "    "))
        c.dockerd.create("mcp-gateway")
        endpoint = ready["status"]["endpoint"]
        watchdog = c.clients.start("watchdog", "ops", {"app": "watchdog"}, endpoint)
        intruder = c.clients.start("intruder", "ops", {}, endpoint)
        c.clients.wait_running(watchdog, intruder)
        for pod, args, note in (
            (watchdog, ("restart", "mcp-gateway"), "labelled pod, allowed call"),
            (watchdog, ("ps",), "labelled pod, a call the policy does not allow"),
            (intruder, ("version",), "unlabelled pod: the NetworkPolicy refuses the connection"),
        ):
            r = c.clients.docker(pod, endpoint, *args, timeout=10)
            tag = f"{GREEN}allowed{END}" if r.returncode == 0 else f"{RED}denied {END}"
            print(f"  [{tag}] {pod[0]}/{pod[1]}$ docker -H {endpoint} {' '.join(args)}   # {note}")
            text = (r.stdout if r.returncode == 0 else r.stderr or r.stdout).strip()
            for line in text.splitlines()[:3]:
                print(f"      {DIM}{line}{END}")


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="dso-demo-"))
    d = start_dockerd()
    try:
        proxy_part(d, work)
        operator_part(d, work)
    finally:
        d.stop()
    node_part(work)
    say("Done. Next: README.md (quick starts), docs/presets.md, examples/policies/.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
