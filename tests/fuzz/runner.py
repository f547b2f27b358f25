"""Run fuzz cases through the real proxy process in front of the recording fake daemon.

    python -m tests.fuzz.runner --seconds 600 --seed 1234      (what `make fuzz` runs)
    python -m tests.fuzz.runner --cases 500 --seed 1234        (replay a bounded run)

Each (engine, policy) pair gets its own fake daemon and proxy; case i of a seed is the same bytes
on every run, so `--seed S --only-case I` replays one failing case. A failure prints the case's
raw bytes, shrunk (connections, then requests, lines and JSON members) while the same kind of
violation persists.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docker_socket_operator.api.models import DockerSocketPolicySpec
from docker_socket_operator.policy.compile import CompiledPolicy, compile_policy
from docker_socket_operator.policy.tecnativa import spec_from_tecnativa_env
from tests.fuzz.fakedaemon import FakeDaemon
from tests.fuzz.generator import Case, make_case
from tests.fuzz.goreading import Engine, Flavour
from tests.fuzz.oracle import Violation, check_record
from tests.fuzz.world import CONTAINERS, POLICIES, SECRET, TECNATIVA_ENV
from tests.support.proxyproc import ProxyProcess, policy_document

READ_TIMEOUT = 10.0
_STATUS = re.compile(rb"HTTP/1\.[01] ([0-9]{3}) ")
_REQUEST_START = re.compile(rb"(?=(?:GET|POST|PUT|DELETE|HEAD) /)")
SHRINK_BUDGET = 150


@dataclass
class Target:
    """One fake daemon and one proxy process in front of it."""

    engine: Flavour
    policy_name: str
    policy: CompiledPolicy
    daemon: FakeDaemon
    proxy: ProxyProcess
    seen: int = 0  # daemon records already checked
    stderr_seen: int = 0
    startup: list[Violation] = field(default_factory=list)


@dataclass
class Report:
    seed: int
    cases: int = 0
    requests_recorded: int = 0  # everything the fake daemons received, the proxy's lookups too
    forwarded: int = 0  # client requests among them
    statuses: Counter[str] = field(default_factory=Counter)  # the proxy's answers to clients
    violations: list[tuple[Violation, str]] = field(default_factory=list)  # (violation, reproducer)

    workdir: Path | None = None  # kept when something was found
    repeats: int = 0  # violations like one already reported (not shrunk or listed again)
    _signatures: set[str] = field(default_factory=set)

    def seen_before(self, v: Violation) -> bool:
        """Whether a violation of the same kind and message (digits aside) was reported."""
        first = re.sub(r'"(ts|path|method)": "[^"]*"', "", v.detail.split("\n")[0])
        signature = v.kind + re.sub(r"[0-9a-f]{12,}|[0-9]+", "#", first)[:160]
        if signature in self._signatures:
            self.repeats += 1
            return True
        self._signatures.add(signature)
        return False

    def summary(self) -> str:
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        head = (
            f"fuzz seed={self.seed}: {self.cases} cases, {self.requests_recorded} requests reached "
            f"the fake daemons ({self.forwarded} from clients), {len(self.violations)} "
            f"violation(s) ({self.repeats} more like them)\n  proxy answers by status: {answers}"
        )
        if self.workdir is not None:
            head += f"\n  proxy logs kept in {self.workdir}"
        return "\n".join([head, *(f"{v}\n{repro}" for v, repro in self.violations)])


def _hidden_ids(policy: CompiledPolicy) -> list[str]:
    """IDs (their 12-character short form) of the containers the client must never see."""
    return [c.id[:12] for c in CONTAINERS if not policy.container_visible(c.facts)]


@contextmanager
def target(engine: Flavour, policy_name: str, workdir: Path) -> Iterator[Target]:
    """A fake daemon and the proxy in front of it, with a policy file or (for "tecnativa") the
    Tecnativa environment variables, compiled for the oracle the way the proxy compiles them."""
    sock = str(workdir / f"{engine}-{policy_name}.sock")
    work = workdir / f"proxy-{engine}-{policy_name}"
    daemon = FakeDaemon(sock, engine).start()
    if policy_name == "tecnativa":
        compiled = compile_policy(spec_from_tecnativa_env(TECNATIVA_ENV))
        proxy = ProxyProcess(sock, work, env=TECNATIVA_ENV)
    else:
        spec = POLICIES[policy_name]
        compiled = compile_policy(DockerSocketPolicySpec.model_validate(spec))
        proxy = ProxyProcess(sock, work, policy=policy_document(spec))
    try:
        proxy.start()
        t = Target(engine, policy_name, compiled, daemon, proxy)
        t.stderr_seen = len(proxy.stderr_text())
        detected = proxy.ready_info.get("engine")
        if detected != engine:
            t.startup.append(Violation("engine", f"proxy took the {engine} fake for {detected!r}"))
        yield t
    finally:
        proxy.stop()
        daemon.stop()


def send_case(t: Target, case: Case, timeout: float = READ_TIMEOUT) -> list[bytes]:
    """Send every connection's bytes in the case's fragment order, half-close, read to EOF."""
    socks = [socket.create_connection(t.proxy.addr, timeout=timeout) for _ in case.streams]
    out = [b""] * len(socks)
    try:
        pos = [0] * len(socks)
        for i, n in case.fragments:
            # the proxy may close early (a refusal): what it answered is still read
            with suppress(OSError):
                socks[i].sendall(case.streams[i][pos[i] : pos[i] + n])
            pos[i] += n
        for s in socks:
            with suppress(OSError):
                s.shutdown(socket.SHUT_WR)
        for i, s in enumerate(socks):
            out[i] = _read_all(s)
    finally:
        for s in socks:
            s.close()
    return out


def send_direct(daemon: FakeDaemon, data: bytes) -> bytes:
    """Bytes straight to the fake daemon, no proxy (to show that the oracle does see holes)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(READ_TIMEOUT)
        s.connect(daemon.socket_path)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return _read_all(s)


def _read_all(s: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            data = s.recv(65536)
        except TimeoutError:
            chunks.append(b"<<fuzz: no EOF within the read timeout>>")
            break
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def _readings(flavour: Flavour) -> tuple[Engine, ...]:
    """The daemon readings a request must be safe under (both when the engine is unknown)."""
    return ("docker", "podman") if flavour == "unknown" else (flavour,)


def check(t: Target, case: Case, answers: list[bytes], sent: bytes) -> list[Violation]:
    """The oracle over what the daemon recorded since the last check, and the proxy's health."""
    found: list[Violation] = []
    records = t.daemon.snapshot(t.seen)
    t.seen += len(records)
    for rec in records:
        for reading in _readings(t.engine):
            found += check_record(t.policy, rec, reading)
    err = t.proxy.stderr_text()
    new_err, t.stderr_seen = err[t.stderr_seen :], len(err)
    if "internal error" in new_err or "Traceback" in new_err:
        found.append(Violation("internal-error", new_err[-1500:], case.number))
    if not t.proxy.alive():
        found.append(Violation("crash", f"proxy exited: {err[-1500:]}", case.number))
    for answer in answers:
        if b"<<fuzz: no EOF" in answer:
            found.append(
                Violation(
                    "hang", f"no answer/close after half-close: {answer[:300]!r}", case.number
                )
            )
        if t.policy.redact_env and SECRET.encode() in answer:
            found.append(Violation("leak", "redacted Env value in an answer", case.number))
        if t.policy.visibility is not None:
            for hidden in _hidden_ids(t.policy):
                if hidden.encode() in answer and hidden.encode() not in sent:
                    found.append(
                        Violation("leak", f"hidden container {hidden} in an answer", case.number)
                    )
    return found


def run_case(
    t: Target, case: Case, statuses: Counter[str] | None = None, timeout: float = READ_TIMEOUT
) -> list[Violation]:
    answers = send_case(t, case, timeout)
    if statuses is not None:
        for answer in answers:
            statuses.update(m.decode() for m in _STATUS.findall(answer))
    found = check(t, case, answers, b"".join(case.streams))
    # attribute each finding to the case whose marker the daemon saw (records may lag a case)
    return [v if v.case is not None else Violation(v.kind, v.detail, case.number) for v in found]


def shrink(t: Target, case: Case, kind: str) -> Case:
    """A smaller case that still shows a violation of `kind` (greedy, bounded)."""
    # a hang costs a read timeout per try: fewer, shorter tries
    budget = [SHRINK_BUDGET if kind != "hang" else 20]
    timeout = READ_TIMEOUT if kind != "hang" else 3.0

    def still_fails(c: Case) -> bool:
        if budget[0] <= 0 or not t.proxy.alive():
            return False
        budget[0] -= 1
        return any(v.kind == kind for v in run_case(t, c, timeout=timeout))

    def plain(streams: list[bytes]) -> Case:
        return Case(case.number, streams, [(i, len(s)) for i, s in enumerate(streams)])

    best = case
    if len(best.streams) > 1 or len(best.fragments) > len(best.streams):
        for i in range(len(best.streams)):
            candidate = plain([s for k, s in enumerate(best.streams) if k != i] or [b""])
            if still_fails(candidate):
                best = candidate
                break
        else:
            candidate = plain(best.streams)
            if still_fails(candidate):
                best = candidate
    for ci in range(len(best.streams)):
        pieces = _REQUEST_START.split(best.streams[ci])
        i = 0
        while len(pieces) > 1 and i < len(pieces) and budget[0] > 0:
            streams = list(best.streams)
            streams[ci] = b"".join(pieces[:i] + pieces[i + 1 :])
            candidate = plain(streams)
            if still_fails(candidate):
                best, pieces = candidate, pieces[:i] + pieces[i + 1 :]
            else:
                i += 1
        lines = best.streams[ci].split(b"\n")
        i = 0
        while i < len(lines) and budget[0] > 0:
            trial = lines[:i] + lines[i + 1 :]
            streams = list(best.streams)
            streams[ci] = b"\n".join(trial)
            candidate = plain(streams)
            if trial and still_fails(candidate):
                best, lines = candidate, trial
            else:
                i += 1
        shrunk = True
        while shrunk and budget[0] > 0:
            shrunk = False
            for smaller in _smaller_json_bodies(best.streams[ci]):
                streams = list(best.streams)
                streams[ci] = smaller
                if still_fails(plain(streams)):
                    best, shrunk = plain(streams), True
                    break
    return best


def _smaller_json_bodies(stream: bytes) -> Iterator[bytes]:
    """The same single Content-Length request with one JSON object member fewer, each in turn
    (only bodies that plain json reads, i.e. without repeated keys)."""
    head, sep, body = stream.partition(b"\r\n\r\n")
    m = re.search(rb"\r\nContent-Length: *([0-9]+)", head, re.IGNORECASE)
    if not sep or m is None or int(m.group(1)) != len(body):
        return
    try:
        doc = json.loads(body)
    except ValueError:
        return
    paths: list[list[str]] = []

    def walk(node: Any, path: list[str]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                paths.append([*path, key])
                walk(value, [*path, key])

    walk(doc, [])
    for path in paths:
        trimmed = json.loads(body)
        node = trimmed
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
        data = json.dumps(trimmed, separators=(",", ":"), ensure_ascii=False).encode()
        new_head = head[: m.start(1)] + str(len(data)).encode() + head[m.end(1) :]
        yield new_head + sep + data


def _fuzz_target(
    t: Target,
    report: Report,
    share: int | None,
    deadline: float | None,
    only_case: int | None,
    max_failures: int,
    log: bool,
) -> None:
    """Cases for one target until its share or its time is used up, then the health check."""
    rng = random.Random(f"{report.seed}/{t.engine}/{t.policy_name}")
    n = 0
    while (share is None or n < share) and (deadline is None or time.monotonic() < deadline):
        case = make_case(rng, n, "docker" if t.engine == "docker" else "podman")
        n += 1
        if only_case is not None and case.number != only_case:
            continue
        found = run_case(t, case, report.statuses)
        report.cases += 1
        for v in found:
            if report.seen_before(v):
                continue
            where = f"  engine={t.engine} policy={t.policy_name} seed={report.seed} case={v.case}"
            if log:
                print(f"{v}\n{where}\n  (shrinking...)", flush=True)
            small = shrink(t, case, v.kind) if v.case in (None, case.number) else None
            repro = where + "\n" + (small.reproducer() if small else "  (replay: --only-case)")
            report.violations.append((v, repro))
            if log:
                print(repro, flush=True)
        if len(report.violations) >= max_failures:
            break
    recorded = t.daemon.snapshot()
    report.requests_recorded += len(recorded)
    report.forwarded += sum(1 for r in recorded if r.case is not None)
    status, _ = t.proxy.get("/_ping")  # the end: still alive and answering
    if status != 200 or not t.proxy.alive():
        where = f"  engine={t.engine} policy={t.policy_name}"
        report.violations.append(
            (Violation("crash", f"/_ping answered {status} at the end"), where)
        )


def run(
    seed: int,
    *,
    cases: int | None = None,
    seconds: float | None = None,
    engines: tuple[Flavour, ...] = ("docker", "podman", "unknown"),
    policies: tuple[str, ...] = ("scoped", "broad", "tecnativa"),
    only_case: int | None = None,
    max_failures: int = 5,
    log: bool = True,
) -> Report:
    """Fuzz every (engine, policy) pair in turn; each gets an equal share of cases or time."""
    report = Report(seed)
    # the unknown engine behind the broad policy only: it is about the dialect of create bodies
    pairs = [(e, p) for e in engines for p in policies if e != "unknown" or p == "broad"]
    pairs = [(e, p) for e, p in pairs if p != "tecnativa" or e == "docker"]
    workroot = Path(tempfile.mkdtemp(prefix="dso-fuzz-", dir="/tmp"))
    if log:
        print(f"fuzz seed={seed} (replay: FUZZ_SEED={seed})", flush=True)
    for k, (engine, policy_name) in enumerate(pairs):
        with target(engine, policy_name, workroot) as t:
            report.violations += [(v, f"  engine={engine} policy={policy_name}") for v in t.startup]
            share = None if cases is None else cases // len(pairs) + (k < cases % len(pairs))
            deadline = time.monotonic() + seconds / len(pairs) if seconds else None
            _fuzz_target(t, report, share, deadline, only_case, max_failures, log)
        if len(report.violations) >= max_failures:
            break
    if report.violations:
        report.workdir = workroot  # the proxies' stderr and audit logs, kept for a look
    else:
        shutil.rmtree(workroot, ignore_errors=True)
    if log:
        print(report.summary(), flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seed", type=int, default=None, help="RNG seed (default: random, printed)")
    p.add_argument("--seconds", type=float, default=None, help="run this long in total")
    p.add_argument("--cases", type=int, default=None, help="run this many cases in total")
    p.add_argument("--engine", choices=["docker", "podman", "unknown"], action="append")
    p.add_argument("--policy", choices=[*sorted(POLICIES), "tecnativa"], action="append")
    p.add_argument("--only-case", type=int, default=None, help="replay one case number of the seed")
    p.add_argument("--max-failures", type=int, default=5)
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    if args.seconds is None and args.cases is None:
        args.seconds = 60.0
    report = run(
        seed,
        cases=args.cases,
        seconds=args.seconds,
        engines=tuple(args.engine or ["docker", "podman", "unknown"]),
        policies=tuple(args.policy or [*sorted(POLICIES), "tecnativa"]),
        only_case=args.only_case,
        max_failures=args.max_failures,
    )
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
