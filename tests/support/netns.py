"""Network namespaces for test nodes, and a TCP relay from inside one to the host's loopback.

A node lives in a network namespace of its own, joined to the host by a veth pair: its
iptables chains, ipsets, bridge and pod interfaces all live (and die) with the namespace,
so nothing a node does touches the host's own network configuration.

The control plane listens on the host's 127.0.0.1 only. :class:`LoopbackRelay` listens on
the same 127.0.0.1:port *inside* the node's namespace and forwards each connection to the
host's, so the node's components use the very kubeconfig (and certificate names) the tests
use. Linux's ``setns`` moves only the calling thread: the listening socket is created on a
thread that enters the namespace, and a socket keeps the namespace it was made in.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")


class NetnsError(RuntimeError):
    pass


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsError(f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


class LoopbackRelay:
    """127.0.0.1:port in the namespace ``name`` -> 127.0.0.1:port on the host."""

    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self.port = port
        self._listener: socket.socket | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopped = False

    def start(self) -> None:
        threading.Thread(target=self._serve, name=f"relay-{self.name}", daemon=True).start()
        self._ready.wait(10)
        if self._error is not None:
            raise NetnsError(f"relay into {self.name}: {self._error}")

    def _serve(self) -> None:
        host_ns = f"/proc/{os.getpid()}/task/{threading.get_native_id()}/ns/net"
        host_fd = os.open(host_ns, os.O_RDONLY)
        try:
            _setns(str(NETNS_DIR / self.name))
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            _setns(f"/proc/self/fd/{host_fd}")  # back home: upstream connects from the host
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        finally:
            os.close(host_fd)
        self._listener = listener
        self._ready.set()
        while not self._stopped:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                upstream.settimeout(None)
            except OSError:
                conn.close()
                continue
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def stop(self) -> None:
        self._stopped = True
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()


def create_namespace(name: str, host_if: str, host_ip: str, node_ip: str, prefix: int) -> None:
    """A namespace ``name`` with loopback up and ``eth0`` (node_ip) paired to the host's
    ``host_if`` (host_ip); the host side is the namespace's default gateway."""
    ip("netns", "add", name)
    try:
        ip("link", "add", host_if, "type", "veth", "peer", "name", f"{host_if}p")
        ip("link", "set", f"{host_if}p", "netns", name)
        ip("addr", "add", f"{host_ip}/{prefix}", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "link", "set", f"{host_if}p", "name", "eth0")
        ip("-n", name, "addr", "add", f"{node_ip}/{prefix}", "dev", "eth0")
        ip("-n", name, "link", "set", "eth0", "up")
        ip("-n", name, "route", "add", "default", "via", host_ip)
    except NetnsError:
        delete_namespace(name, host_if)
        raise


def delete_namespace(name: str, host_if: str) -> None:
    """Everything a node set up in its namespace (chains, ipsets, bridge, pod links) goes
    with it; the host end of the veth pair goes with its peer."""
    ip("netns", "delete", name, check=False)
    ip("link", "delete", host_if, check=False)


def nsenter(name: str) -> list[str]:
    """Command prefix running a program in the namespace's network only: unlike `ip netns
    exec` it keeps the host's mount namespace, which kubelet and containerd must share."""
    return ["nsenter", f"--net={NETNS_DIR / name}", "--"]
