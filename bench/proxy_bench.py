"""`make bench`, proxy half: the direct socket, our proxy and (when it starts) HAProxy with
Tecnativa's rules, measured side by side in one run by one load client (bench/loadgen, Go).

Prints a table and the ratios against the issue's targets; writes bench/results-proxy.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.daemons import Daemon, start_dockerd  # noqa: E402
from tests.support.proxyproc import ProxyProcess, policy_document  # noqa: E402

CACHE = Path(os.environ.get("DSO_CACHE", "/var/cache/docker-socket-operator"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
LOG_BYTES = int(os.environ.get("BENCH_LOG_BYTES", str(200 * 1000 * 1000)))


def build_loadgen() -> Path:
    src = ROOT / "bench" / "loadgen"
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(src.glob("*.go")))).hexdigest()
    out = CACHE / "bin" / f"loadgen-{digest[:12]}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
        subprocess.run(["go", "build", "-o", str(out), "."], cwd=src, env=env, check=True)
    return out


def load(loadgen: Path, target: list[str], path: str, conc: int, **kw: Any) -> dict[str, Any]:
    args = [str(loadgen), *target, "-path", path, "-c", str(conc)]
    if "n" in kw:
        args += ["-n", str(kw["n"]), "-warmup", "0s"]
    else:
        args += ["-d", f"{SECONDS}s"]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=600)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def start_haproxy(sock: str, work: Path) -> tuple[subprocess.Popen[bytes] | None, int, str]:
    if shutil.which("haproxy") is None:
        return None, 0, "haproxy not installed (apt-get install haproxy)"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "SOCKET_PATH": sock, "LISTEN": f"127.0.0.1:{port}"}
    cfg = ROOT / "bench" / "haproxy-tecnativa.cfg"
    proc = subprocess.Popen(
        ["haproxy", "-f", str(cfg), "-db"],
        env=env,
        stdout=(work / "haproxy.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port, ""
        except OSError:
            time.sleep(0.05)
    proc.kill()
    return None, 0, "haproxy did not start: " + (work / "haproxy.log").read_text()[-500:]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def idle_connections_rss(proxy: ProxyProcess, count: int) -> dict[str, Any]:
    assert proxy.proc is not None
    before = rss_kib(proxy.proc.pid)
    conns = []
    try:
        for _ in range(count):
            conns.append(socket.create_connection((proxy.host, proxy.port), timeout=5))
        time.sleep(1.0)
        # Each idle connection must still be served afterwards: prove they are live.
        conns[-1].sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
        answered = conns[-1].recv(100).startswith(b"HTTP/1.1 200")
        after = rss_kib(proxy.proc.pid)
    finally:
        for c in conns:
            c.close()
    return {
        "connections": count,
        "rss_before_mib": before / 1024,
        "rss_mib": after / 1024,
        "last_connection_served": answered,
    }


def make_log_container(d: Daemon) -> str:
    line = "0123456789abcdefghijklmnopqrstuvwxyz" * 3  # 108 bytes + newline per log line
    cid = d.create(
        "bench-logs",
        ["sh", "-c", f"yes {line} | head -c {LOG_BYTES}"],
        labels={"bench": "1"},
    )
    d.api("POST", f"/containers/{cid}/wait", timeout=600)
    return cid


def main() -> int:
    loadgen = build_loadgen()
    work = Path(tempfile.mkdtemp(prefix="dso-bench-"))
    d = start_dockerd()
    hap: subprocess.Popen[bytes] | None = None
    results: dict[str, Any] = {"seconds_per_run": SECONDS, "rounds": ROUNDS}
    try:
        for i in range(50):
            d.create(f"bench-{i:02d}", start=False, labels={"bench": "1"})
        policy = policy_document([{"preset": "read-only"}], audit="none")
        proxy = ProxyProcess(d.socket_path, work / "proxy", policy=policy, audit=False).start()
        hap, hport, why = start_haproxy(d.socket_path, work)
        targets: dict[str, list[str]] = {
            "direct": ["-unix", d.socket_path],
            "proxy": ["-tcp", f"{proxy.host}:{proxy.port}"],
        }
        if hap is not None:
            targets["haproxy"] = ["-tcp", f"127.0.0.1:{hport}"]
        else:
            results["haproxy_skipped"] = why
            print(f"haproxy peer skipped: {why}")

        scenarios = [
            ("list_c1", "/v1.41/containers/json?all=1", 1),
            ("list_c16", "/v1.41/containers/json?all=1", 16),
            ("ping_c1", "/_ping", 1),
        ]
        for key, path, conc in scenarios:
            runs: dict[str, list[dict[str, Any]]] = {t: [] for t in targets}
            for _ in range(ROUNDS):  # interleaved so drift hits every target alike
                for t, args in targets.items():
                    runs[t].append(load(loadgen, args, path, conc))
            results[key] = {
                t: {
                    "rps": statistics.median(r["rps"] for r in rs),
                    "p50_us": statistics.median(r["p50_us"] for r in rs),
                    "errors": sum(r["errors"] for r in rs),
                    "status": sorted({s for r in rs for s in r["status_seen"]}),
                }
                for t, rs in runs.items()
            }

        cid = make_log_container(d)
        logs_path = f"/v1.41/containers/{cid}/logs?stdout=1&stderr=1"
        lruns: dict[str, list[float]] = {t: [] for t in ("direct", "proxy")}
        for _ in range(ROUNDS):
            for t in lruns:
                r = load(loadgen, targets[t], logs_path, 1, n=1)
                lruns[t].append(r["mb_per_s"])
                results.setdefault("logs_bytes", r["bytes"])
        results["logs"] = {t: {"mb_per_s": statistics.median(v)} for t, v in lruns.items()}
        results["idle"] = idle_connections_rss(proxy, 1000)
        proxy.stop()
    finally:
        if hap is not None:
            hap.kill()
        d.stop()
        shutil.rmtree(work, ignore_errors=True)

    report(results)
    (ROOT / "bench" / "results-proxy.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


def report(r: dict[str, Any]) -> None:
    print(
        f"\n== proxy benchmark (median of {r['rounds']} interleaved runs,"
        f" {r['seconds_per_run']:.0f}s each)"
    )
    for key in ("list_c1", "list_c16", "ping_c1"):
        row = r[key]
        cells = "  ".join(
            f"{t}: {v['rps']:8.0f} req/s p50 {v['p50_us']:6.0f}us" for t, v in row.items()
        )
        print(f"{key:9s} {cells}")
    for key, goal in (("list_c1", 0.95), ("list_c16", 0.95)):
        ratio = r[key]["proxy"]["rps"] / r[key]["direct"]["rps"]
        line = f"{key}: proxy/direct = {ratio:.3f} (goal >= {goal})"
        if "haproxy" in r[key]:
            line += f"; haproxy/direct = {r[key]['haproxy']['rps'] / r[key]['direct']['rps']:.3f}"
        print(line)
    extra = r["ping_c1"]["proxy"]["p50_us"] - r["ping_c1"]["direct"]["p50_us"]
    print(f"ping_c1: proxy p50 - direct p50 = {extra:.0f}us (goal <= 100us)")
    lg = r["logs"]
    print(
        f"logs ({r['logs_bytes'] / 1e6:.0f} MB): direct {lg['direct']['mb_per_s']:.0f} MB/s, "
        f"proxy {lg['proxy']['mb_per_s']:.0f} MB/s, ratio {lg['proxy']['mb_per_s'] / lg['direct']['mb_per_s']:.3f} (goal >= 0.9)"
    )
    idle = r["idle"]
    print(
        f"idle: {idle['connections']} connections, proxy RSS {idle['rss_mib']:.1f} MiB "
        f"(before {idle['rss_before_mib']:.1f}; goal <= 60), last one served: {idle['last_connection_served']}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
