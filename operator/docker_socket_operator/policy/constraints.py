"""The checks on request bodies with host power: container create and update, exec create,
volume create, and the old-API start body. Bodies arrive decoded by body.decode_docker_json
(keys folded as Go folds them), so every lookup here uses folded, lower-case keys."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from docker_socket_operator.api.models import CreateConstraints, ExecConstraints
from docker_socket_operator.policy.body import DockerObject
from docker_socket_operator.policy.selectors import compile_globs

DEFAULT_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
        "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    }
)  # fmt: skip


def normalise_capability(cap: str) -> str:
    """'cap_sys_admin', 'SYS_ADMIN', 'CAP_SYS_ADMIN' -> 'SYS_ADMIN' (dockerd accepts them all)."""
    upper = cap.strip().upper()
    return upper[4:] if upper.startswith("CAP_") else upper


def normalise_security_opt(opt: str) -> str:
    """dockerd accepts the legacy 'label:disable' spelling of 'label=disable'."""
    if "=" not in opt and ":" in opt:
        key, _, value = opt.partition(":")
        return f"{key}={value}"
    return opt


_NO_NEW_PRIVILEGES = frozenset({"no-new-privileges", "no-new-privileges=true"})


def clean_host_path(path: str) -> str | None:
    """An absolute host path with '.' and '//' collapsed, or None when it has '..' or is relative."""
    if not path.startswith("/"):
        return None
    parts = path.split("/")
    if ".." in parts:
        return None
    return "/" + "/".join(p for p in parts if p not in ("", "."))


@dataclass(frozen=True, slots=True)
class CreateLimits:
    """CreateConstraints compiled for the hot path."""

    privileged: bool = False
    bind_prefixes: tuple[str, ...] = ()
    host_namespaces: bool = False
    capabilities: frozenset[str] = frozenset()
    devices: bool = False
    images: re.Pattern[str] | None = None
    volumes_from: bool = False
    sysctls: bool = False
    security_opt: frozenset[str] = frozenset()
    runtimes: frozenset[str] = frozenset()
    cgroup_parent: bool = False

    @classmethod
    def from_model(cls, c: CreateConstraints | None) -> CreateLimits:
        if c is None:
            return cls()
        prefixes = []
        for prefix in c.bindPrefixes:
            clean = clean_host_path(prefix)
            if clean is None:
                raise ValueError(f"bindPrefixes entry {prefix!r} has '..'")
            prefixes.append(clean)
        return cls(
            privileged=c.privileged,
            bind_prefixes=tuple(prefixes),
            host_namespaces=c.hostNamespaces,
            capabilities=frozenset(normalise_capability(x) for x in c.capabilities),
            devices=c.devices,
            images=compile_globs(c.images),
            volumes_from=c.volumesFrom,
            sysctls=c.sysctls,
            security_opt=frozenset(normalise_security_opt(x) for x in c.securityOpt),
            runtimes=frozenset(c.runtimes),
            cgroup_parent=c.cgroupParent,
        )

    def host_path_allowed(self, path: str) -> bool:
        clean = clean_host_path(path)
        if clean is None:
            return False
        return any(
            prefix == "/" or clean == prefix or clean.startswith(prefix + "/")
            for prefix in self.bind_prefixes
        )


@dataclass(frozen=True, slots=True)
class ExecLimits:
    privileged: bool = False
    users: frozenset[str] = frozenset()

    @classmethod
    def from_model(cls, c: ExecConstraints | None) -> ExecLimits:
        if c is None:
            return cls()
        return cls(privileged=c.privileged, users=frozenset(c.users))


# --- checks: each returns None (fine) or the reason it is refused ---------------------------


def _is_set(value: Any) -> bool:
    """Whether a field would change anything in dockerd (Go zero values and null do not)."""
    return (
        value is not None
        and value is not False
        and value != ""
        and value != 0
        and (not isinstance(value, (list, dict)) or len(value) > 0)
    )


def _items(value: Any, field: str) -> tuple[list[Any], str | None]:
    if value is None:
        return [], None
    if not isinstance(value, list):
        return [], f"{field} must be a list"
    return value, None


_NAMESPACE_FIELDS = (
    ("networkmode", "NetworkMode"),
    ("pidmode", "PidMode"),
    ("ipcmode", "IpcMode"),
    ("utsmode", "UTSMode"),
    ("usernsmode", "UsernsMode"),
    ("cgroupnsmode", "CgroupnsMode"),
    ("cgroup", "Cgroup"),
)
_DEVICE_FIELDS = (
    ("devices", "Devices"),
    ("devicerequests", "DeviceRequests"),
    ("devicecgrouprules", "DeviceCgroupRules"),
)
_SHARED_PROPAGATION = frozenset({"shared", "rshared"})
_BIND_MODES = frozenset({"ro", "rw", "z", "Z", "nocopy"})


def _bind_reason(entry: Any, field: str, limits: CreateLimits) -> str | None:
    if not isinstance(entry, str):
        return f"{field} entries must be strings"
    parts = entry.split(":")
    # "vol:/dst[:opts]" is a named volume; "/dst" alone is an anonymous one. Any "/src:..." is
    # read as a host path, even "/dst:ro" (an anonymous volume): refusing that is harmless.
    if len(parts) >= 2 and parts[0].startswith("/") and not limits.host_path_allowed(parts[0]):
        return f"{field} host path {parts[0]!r} is not under an allowed bindPrefix"
    for opts in parts[2:]:
        if _SHARED_PROPAGATION & set(opts.split(",")):
            return f"{field} entry {entry!r}: shared mount propagation is not allowed"
    return None


def _volume_options_reason(
    driver: Any, options: Any, field: str, limits: CreateLimits
) -> str | None:
    """The local volume driver mounts what its options say: o=bind (a host path), a block device,
    an NFS/CIFS share, overlay lowerdirs... Only tmpfs and binds under bindPrefixes pass."""
    if options is None:
        return None
    if not isinstance(options, DockerObject):
        return f"{field} must be an object"
    if not options:
        return None
    if driver is not None and not isinstance(driver, str):
        return f"{field}: volume driver must be a string"
    if driver and driver.lower() != "local":
        return None  # a plugin driver installed by the node's admin decides what its options mean
    kind = str(options.get("type") or "").lower()
    mount_opts = {o.strip().lower() for o in str(options.get("o") or "").split(",")}
    device = options.get("device")
    if mount_opts & {"bind", "rbind"} or kind == "none":
        if not isinstance(device, str) or not limits.host_path_allowed(device):
            return (
                f"{field}: local volume binds host path {device!r}, not under an allowed bindPrefix"
            )
        return None
    if kind == "tmpfs":
        return None
    return f"{field}: local volume options {sorted(options.as_map())} mount a host device or share"


def _mount_reason(mount: Any, field: str, limits: CreateLimits) -> str | None:
    if not isinstance(mount, DockerObject):
        return f"{field} entries must be objects"
    kind = mount.get("type")
    kind = kind.lower() if isinstance(kind, str) else ""
    if kind == "volume":
        opts = mount.get("volumeoptions")
        config = opts.get("driverconfig") if isinstance(opts, DockerObject) else None
        if isinstance(config, DockerObject):
            return _volume_options_reason(config.get("name"), config.get("options"), field, limits)
        return None
    if kind in ("tmpfs", "npipe", "cluster", "image"):
        return None
    # "bind", and anything dockerd might one day read as one: the source is a host path.
    source = mount.get("source")
    if not isinstance(source, str) or not limits.host_path_allowed(source):
        return f"{field} bind source {source!r} is not under an allowed bindPrefix"
    bind_opts = mount.get("bindoptions")
    if isinstance(bind_opts, DockerObject):
        propagation = bind_opts.get("propagation")
        if isinstance(propagation, str) and propagation.lower() in _SHARED_PROPAGATION:
            return f"{field} bind with {propagation} propagation is not allowed"
    return None


def _capability_reason(value: Any, field: str, limits: CreateLimits) -> str | None:
    caps, bad = _items(value, field)
    if bad:
        return bad
    for cap in caps:
        if not isinstance(cap, str):
            return f"{field} entries must be strings"
        name = normalise_capability(cap)
        if name in limits.capabilities:
            continue
        if name == "ALL" or name not in DEFAULT_CAPABILITIES:
            return f"{field} {cap!r} is not allowed"
    return None


def _resources_reason(hc: DockerObject, prefix: str, limits: CreateLimits) -> str | None:
    """Fields of container.Resources (create HostConfig and the update body)."""
    if not limits.devices:
        for key, name in _DEVICE_FIELDS:
            if _is_set(hc.get(key)):
                return f"{prefix}{name} is not allowed"
    if not limits.cgroup_parent and _is_set(hc.get("cgroupparent")):
        return f"{prefix}CgroupParent is not allowed"
    return None


def _host_config_reason(hc: DockerObject, prefix: str, limits: CreateLimits) -> str | None:
    if not limits.privileged and hc.get("privileged") not in (None, False):
        return f"{prefix}Privileged is not allowed"
    binds, bad = _items(hc.get("binds"), f"{prefix}Binds")
    for entry in binds:
        bad = bad or _bind_reason(entry, f"{prefix}Binds", limits)
    mounts, bad_mounts = _items(hc.get("mounts"), f"{prefix}Mounts")
    bad = bad or bad_mounts
    for mount in mounts:
        bad = bad or _mount_reason(mount, f"{prefix}Mounts", limits)
    if bad:
        return bad
    # VolumesFrom takes another container's volumes; legacy Links copy its environment.
    if not limits.volumes_from:
        for key, name in (("volumesfrom", "VolumesFrom"), ("links", "Links")):
            if _is_set(hc.get(key)):
                return f"{prefix}{name} is not allowed"
    if not limits.host_namespaces:
        for key, name in _NAMESPACE_FIELDS:
            mode = hc.get(key)
            if mode is None or mode == "":
                continue
            if not isinstance(mode, str):
                return f"{prefix}{name} must be a string"
            if mode.lower() == "host" or mode.lower().startswith("container:"):
                return f"{prefix}{name}={mode} is not allowed"
    bad = _capability_reason(hc.get("capadd"), f"{prefix}CapAdd", limits)
    # API 1.40's Capabilities replaces the whole set: same rule as CapAdd.
    bad = bad or _capability_reason(hc.get("capabilities"), f"{prefix}Capabilities", limits)
    bad = bad or _resources_reason(hc, prefix, limits)
    if bad:
        return bad
    opts, bad = _items(hc.get("securityopt"), f"{prefix}SecurityOpt")
    for opt in opts:
        if not isinstance(opt, str):
            return f"{prefix}SecurityOpt entries must be strings"
        norm = normalise_security_opt(opt)
        if norm not in _NO_NEW_PRIVILEGES and norm not in limits.security_opt:
            return f"{prefix}SecurityOpt {opt!r} is not allowed"
    if bad:
        return bad
    # Empty MaskedPaths/ReadonlyPaths is what `--security-opt systempaths=unconfined` sends:
    # /proc/sys and friends become writable.
    if "systempaths=unconfined" not in limits.security_opt:
        for key, name in (("maskedpaths", "MaskedPaths"), ("readonlypaths", "ReadonlyPaths")):
            if hc.get(key) is not None:
                return f"{prefix}{name} is not allowed (it is systempaths=unconfined)"
    if not limits.sysctls and _is_set(hc.get("sysctls")):
        return f"{prefix}Sysctls is not allowed"
    runtime = hc.get("runtime")
    if _is_set(runtime) and runtime != "runc" and runtime not in limits.runtimes:
        return f"{prefix}Runtime {runtime!r} is not allowed"
    return None


def normalise_image(ref: str) -> str:
    """'alpine' -> 'docker.io/library/alpine:latest', as dockerd resolves a short reference."""
    first, slash, _ = ref.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"):
        ref = ("docker.io/" if slash else "docker.io/library/") + ref
    elif first == "index.docker.io":
        ref = "docker.io/" + ref[len(first) + 1 :]
    last = ref.rsplit("/", 1)[-1]
    if "@" not in last and ":" not in last:
        ref += ":latest"
    return ref


def check_create_body(body: Any, limits: CreateLimits) -> str | None:
    """POST /containers/create. dockerd up to 20.10 also reads HostConfig fields from the top level
    of the body (a deprecated embedded HostConfig), so both places are checked."""
    if body is None:
        body = DockerObject()
    if not isinstance(body, DockerObject):
        return "container config must be a JSON object"
    bad = _host_config_reason(body, "", limits)
    inner = body.get("hostconfig")
    if bad is None and inner is not None:
        if not isinstance(inner, DockerObject):
            return "HostConfig must be an object"
        bad = _host_config_reason(inner, "HostConfig.", limits)
    if bad is None and limits.images is not None:
        image = body.get("image")
        if not isinstance(image, str) or not (
            limits.images.match(image) or limits.images.match(normalise_image(image))
        ):
            bad = f"image {image!r} is not allowed"
    return bad


def check_update_body(body: Any, limits: CreateLimits) -> str | None:
    """POST /containers/{id}/update: container.Resources fields at the top level."""
    if body is None:
        return None
    if not isinstance(body, DockerObject):
        return "update config must be a JSON object"
    return _resources_reason(body, "", limits)


def check_exec_body(body: Any, limits: ExecLimits) -> str | None:
    """POST /containers/{id}/exec."""
    if body is None:
        return None
    if not isinstance(body, DockerObject):
        return "exec config must be a JSON object"
    if not limits.privileged and body.get("privileged") not in (None, False):
        return "exec Privileged is not allowed"
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        return "exec User must be a string"
    # An exec with no User runs as the container's own user; any other user must be listed,
    # or `docker exec -u 0` would turn a non-root container into a root shell.
    if user and user not in limits.users:
        return f"exec as user {user!r} is not allowed (exec.users)"
    return None


def check_volume_create_body(body: Any, limits: CreateLimits) -> str | None:
    """POST /volumes/create: local-driver options that mount host paths, devices or shares."""
    if body is None:
        return None
    if not isinstance(body, DockerObject):
        return "volume config must be a JSON object"
    return _volume_options_reason(body.get("driver"), body.get("driveropts"), "DriverOpts", limits)


def check_start_body(body: Any) -> str | None:
    """POST /containers/{id}/start: API versions before 1.24 (still served by dockerd 20.10) apply a
    HostConfig sent here, unchecked by anything else. Only an empty body, `{}` or `null` pass."""
    if body is None or (isinstance(body, dict) and not body):
        return None
    return "a container start body (HostConfig) is not allowed"
