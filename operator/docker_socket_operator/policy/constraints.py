"""The checks on request bodies with host power: container create and update, exec create,
volume create, and the old-API start body. Bodies arrive decoded by body.decode_docker_json
(keys folded as Go folds them), so every lookup here uses folded, lower-case keys."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from docker_socket_operator.api.models import CreateConstraints, ExecConstraints
from docker_socket_operator.policy.body import DockerObject
from docker_socket_operator.policy.engines import Dialect, dialect_for
from docker_socket_operator.policy.selectors import compile_globs
from docker_socket_operator.policy.sources import image_reference_reason
from docker_socket_operator.policy.types import BadBody, CreateContext

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


def canonical_host_path(path: str) -> str | None:
    """A host path as both engines read it without a working directory: absolute, and with no
    '.', '..' or empty segment (one trailing '/' is dropped). Anything else is None: a request
    is refused rather than cleaned, so the daemon never resolves a path the proxy did not see."""
    if not path.startswith("/") or "\x00" in path:
        return None
    if path == "/":
        return path
    parts = path.removesuffix("/").split("/")[1:]
    if any(p in ("", ".", "..") for p in parts):
        return None
    return "/" + "/".join(parts)


# Volume names both engines accept (moby's and Podman's name regex); anything else in a bind
# source that is not an absolute path ('.', '..', './x', '~', 'C:') is refused.
_VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# Network names: the same charset. '/', ':' and ',' would be Podman options or lists.
_NETWORK_NAME = _VOLUME_NAME
_HEX = re.compile(r"[0-9a-f]+")
# Names that are modes (or Podman keywords) on some engine, never plain networks.
_RESERVED_NETWORKS = frozenset(
    {"host", "none", "bridge", "default", "private", "container", "ns", "pod", "pasta",
     "slirp4netns", "null", "nat"}
)  # fmt: skip
_TMPFS_OPTIONS = frozenset(
    {"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "huge", "ro", "rw", "exec",
     "noexec", "suid", "nosuid", "dev", "nodev", "atime", "noatime", "relatime", "norelatime",
     "strictatime", "nostrictatime", "diratime", "nodiratime", "sync", "async", "defaults"}
)  # fmt: skip
# The local volume driver's option names, as both engines spell them (dockerd: type, device, o,
# size; Podman also uid, gid, inodes, noquota, copy, nocopy).
_LOCAL_VOLUME_OPTIONS = frozenset(
    {"type", "device", "o", "size", "uid", "gid", "inodes", "noquota", "copy", "nocopy"}
)
_LOG_OPTIONS = frozenset(
    {"max-size", "max-file", "compress", "mode", "max-buffer-size", "tag", "labels",
     "labels-regex", "env", "env-regex"}
)  # fmt: skip


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
    log_drivers: frozenset[str] = frozenset()

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
            log_drivers=frozenset(c.logDrivers),
        )

    def host_path_allowed(self, path: str) -> bool:
        clean = canonical_host_path(path)
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
_PROPAGATION = frozenset({"", "private", "rprivate", "slave", "rslave"})


def _volume_source_reason(source: Any, field: str) -> str | None:
    if source is None or source == "":
        return None
    if isinstance(source, str) and _VOLUME_NAME.fullmatch(source):
        return None
    return f"{field} volume source {source!r} is not a volume name"


def _host_path_reason(path: Any, field: str, limits: CreateLimits) -> str | None:
    if not isinstance(path, str) or canonical_host_path(path) is None:
        return f"{field} {path!r} is not a clean absolute path (no '.', '..' or '//')"
    if not limits.host_path_allowed(path):
        return f"{field} {path!r} is not under an allowed bindPrefix"
    return None


def _clean_relative(path: Any) -> bool:
    return isinstance(path, str) and canonical_host_path("/" + path) is not None


def _container_path_reason(path: Any, field: str) -> str | None:
    """A path inside the container: absolute and free of ':' (Podman reads 'a:b' as a bind)."""
    if isinstance(path, str) and path.startswith("/") and ":" not in path:
        return None
    return f"{field} {path!r} is not an absolute container path"


def _bind_reason(entry: Any, field: str, limits: CreateLimits, dialect: Dialect) -> str | None:
    """A `-v` string, "[src:]dst[:opts]": src is an absolute host path under a bindPrefix or a
    volume name; Podman also reads '.'-relative sources as host paths, so they never pass."""
    if not isinstance(entry, str):
        return f"{field} entries must be strings"
    parts = entry.split(":")
    if len(parts) > 3:
        return f"{field} entry {entry!r} is not [source:]destination[:options]"
    if len(parts) == 1:
        return _container_path_reason(entry, f"{field} anonymous volume")
    source, dest = parts[0], parts[1]
    if source.startswith("/"):
        bad = _host_path_reason(source, f"{field} host path", limits)
        if bad:
            return bad
    elif not _VOLUME_NAME.fullmatch(source):
        return f"{field} source {source!r} is neither an absolute host path nor a volume name"
    bad = _container_path_reason(dest, f"{field} destination")
    if bad:
        return bad
    for opt in parts[2].split(",") if len(parts) == 3 else ():
        if opt not in dialect.bind_options:
            return f"{field} entry {entry!r}: option {opt!r} is not allowed on {dialect.label}"
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
    # Options are a Go map: each engine reads its keys exactly as sent. Podman checks key names
    # case-insensitively but mounts by options["type"], so {"Type": "tmpfs"} would pass a folded
    # reading and mount the device with no type at all: keys are read as sent, and only the
    # local driver's own names pass.
    opts = options.as_map()
    for key, value in opts.items():
        if key not in _LOCAL_VOLUME_OPTIONS:
            allowed = ", ".join(sorted(_LOCAL_VOLUME_OPTIONS))
            return f"{field}: local volume option {key!r} is not allowed (allowed: {allowed})"
        if not isinstance(value, str):
            return f"{field}: local volume option {key!r} must be a string"
    kind = opts.get("type", "")
    mount_opts = {o.strip() for o in opts.get("o", "").split(",")}
    device = opts.get("device")
    if {o.lower() for o in mount_opts} & {"bind", "rbind"} or kind.lower() == "none":
        if not isinstance(device, str) or not limits.host_path_allowed(device):
            return (
                f"{field}: local volume binds host path {device!r}, not under an allowed bindPrefix"
            )
        return None
    if kind == "tmpfs":
        # Podman hands `o` to mount(8), whose libmount reads operations too (move, X-mount.*).
        for opt in mount_opts - {""}:
            if opt.split("=", 1)[0] not in _TMPFS_OPTIONS:
                return f"{field}: tmpfs volume option {opt!r} is not allowed"
        return None
    return f"{field}: local volume options {sorted(opts)} mount a host device or share"


def _mount_reason(mount: Any, field: str, limits: CreateLimits, dialect: Dialect) -> str | None:
    if not isinstance(mount, DockerObject):
        return f"{field} entries must be objects"
    kind = mount.get("type")
    if not isinstance(kind, str) or kind not in dialect.mount_types:
        allowed = ", ".join(sorted(dialect.mount_types))
        return f"{field} type {kind!r} is not allowed on {dialect.label} (allowed: {allowed})"
    source = mount.get("source")
    bind_opts = mount.get("bindoptions")
    vol_opts = mount.get("volumeoptions")
    if bind_opts is not None and not isinstance(bind_opts, DockerObject):
        return f"{field} BindOptions must be an object"
    if vol_opts is not None and not isinstance(vol_opts, DockerObject):
        return f"{field} VolumeOptions must be an object"
    propagation = bind_opts.get("propagation") if bind_opts else None
    subpath = vol_opts.get("subpath") if vol_opts else None
    if not dialect.mount_commas:
        texts = (source, mount.get("target"), mount.get("consistency"), propagation, subpath)
        if any(isinstance(t, str) and "," in t for t in texts):
            return f"{field} fields may not contain ',' on {dialect.label} (it adds mount options)"
    if kind == "bind":
        bad = _host_path_reason(source, f"{field} bind source", limits)
        if bad:
            return bad
        if propagation is not None and propagation not in _PROPAGATION:
            return f"{field} bind propagation {propagation!r} is not allowed"
        return None
    if kind == "volume":
        bad = _volume_source_reason(source, field)
        if bad is None and subpath not in (None, "") and not _clean_relative(subpath):
            bad = f"{field} volume subpath {subpath!r} is not a clean relative path"
        config = vol_opts.get("driverconfig") if vol_opts else None
        if bad is None and isinstance(config, DockerObject):
            bad = _volume_options_reason(config.get("name"), config.get("options"), field, limits)
        return bad
    if kind == "tmpfs" and source not in (None, ""):
        return f"{field} tmpfs mounts take no source"
    if kind == "image":
        # Podman makes a host directory at any absolute Source before it reads the type.
        image_opts = mount.get("imageoptions")
        image_subpath = image_opts.get("subpath") if isinstance(image_opts, DockerObject) else None
        if image_subpath not in (None, "") and not _clean_relative(image_subpath):
            return f"{field} image subpath {image_subpath!r} is not a clean relative path"
        return image_reference_reason(source, f"{field} image source")
    return None


def _namespace_reason(
    mode: Any, key: str, name: str, limits: CreateLimits, dialect: Dialect
) -> str | None:
    """Only the modes that give the container a private namespace on this engine pass; with
    hostNamespaces also 'host' and 'container:<id>'. Podman's ns:<path>, pod, pasta:/slirp4netns:
    and anything unknown are refused."""
    if not isinstance(mode, str):
        return f"{name} must be a string"
    if mode in dialect.namespace_modes[key]:
        return None
    if limits.host_namespaces and (
        (mode == "host" and key != "cgroup")
        or (
            mode.startswith("container:") and key in ("networkmode", "pidmode", "ipcmode", "cgroup")
        )
    ):
        return None
    allowed = ", ".join(repr(m) for m in sorted(dialect.namespace_modes[key]))
    if key == "networkmode":
        bad = network_name_reason(mode)
        if bad is None:
            return None
        return f"{name}: {bad} (allowed on {dialect.label}: {allowed} or a network name)"
    return f"{name}={mode!r} is not allowed on {dialect.label} (allowed: {allowed})"


def network_name_reason(name: str) -> str | None:
    """A user-defined network, named by name: the safe charset, no mode keyword in any case, and
    not all hex (dockerd also resolves network IDs and ID prefixes, the host network's too)."""
    if not _NETWORK_NAME.fullmatch(name):
        return f"network {name!r} is not a plain network name"
    if name.lower() in _RESERVED_NETWORKS:
        return f"network {name!r} is a mode keyword, not a network name"
    if _HEX.fullmatch(name):
        return f"network {name!r} looks like a network ID: name networks by name"
    return None


def _endpoints_reason(body: DockerObject, limits: CreateLimits, dialect: Dialect) -> str | None:
    """NetworkingConfig.EndpointsConfig keys are networks too (Podman joins each of them)."""
    net = body.get("networkingconfig")
    if net is None:
        return None
    if not isinstance(net, DockerObject):
        return "NetworkingConfig must be an object"
    endpoints = net.get("endpointsconfig")
    if endpoints is None:
        return None
    if not isinstance(endpoints, DockerObject):
        return "NetworkingConfig.EndpointsConfig must be an object"
    for key in endpoints.as_map():
        bad = _namespace_reason(
            key, "networkmode", "NetworkingConfig.EndpointsConfig", limits, dialect
        )
        if bad:
            return bad
    return None


def _paths_map_reason(value: Any, field: str) -> str | None:
    """Config.Volumes and HostConfig.Tmpfs: keys are container paths only (Podman turns each into
    a `-v`/`--tmpfs` string, where 'src:dst' would be a bind)."""
    if value is None:
        return None
    if not isinstance(value, DockerObject):
        return f"{field} must be an object"
    for key in value.as_map():
        bad = _container_path_reason(key, f"{field} key")
        if bad:
            return bad
    return None


def _log_config_reason(
    value: Any, prefix: str, dialect: Dialect, opened: frozenset[str]
) -> str | None:
    """Podman's k8s-file driver writes to any host file named by the `path` option; syslog and
    friends dial any address (unix sockets included). Only local drivers and options pass."""
    if value is None:
        return None
    if not isinstance(value, DockerObject):
        return f"{prefix}LogConfig must be an object"
    driver = value.get("type")
    if driver is not None and not isinstance(driver, str):
        return f"{prefix}LogConfig.Type must be a string"
    if "*" in opened or (driver is not None and driver in opened):
        return None  # the policy names this driver: its options are the policy's call too
    if driver is not None and driver not in dialect.log_drivers:
        allowed = ", ".join(repr(d) for d in sorted(dialect.log_drivers))
        return f"{prefix}LogConfig.Type {driver!r} is not allowed on {dialect.label} (allowed: {allowed})"
    config = value.get("config")
    if config is None:
        return None
    if not isinstance(config, DockerObject):
        return f"{prefix}LogConfig.Config must be an object"
    for key in config.as_map():
        if key not in _LOG_OPTIONS:
            return f"{prefix}LogConfig option {key!r} is not allowed"
    return None


def _engine_fields_reason(
    hc: DockerObject, prefix: str, dialect: Dialect, limits: CreateLimits
) -> str | None:
    """HostConfig fields one engine reads as host actions (see engines.py)."""
    bad = _paths_map_reason(hc.get("tmpfs"), f"{prefix}Tmpfs")
    bad = bad or _log_config_reason(hc.get("logconfig"), prefix, dialect, limits.log_drivers)
    if bad:
        return bad
    if not dialect.container_id_file and _is_set(hc.get("containeridfile")):
        return f"{prefix}ContainerIDFile is not allowed on {dialect.label} (it writes a host file)"
    groups, bad = _items(hc.get("groupadd"), f"{prefix}GroupAdd")
    if "keep-groups" in groups:
        return f"{prefix}GroupAdd 'keep-groups' is not allowed"
    if bad is None and _is_set(hc.get("annotations")):
        bad = f"{prefix}Annotations is not allowed (the OCI runtime acts on them)"
    return bad


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


def _host_config_reason(
    hc: DockerObject, prefix: str, limits: CreateLimits, dialect: Dialect
) -> str | None:
    if not limits.privileged and hc.get("privileged") not in (None, False):
        return f"{prefix}Privileged is not allowed"
    binds, bad = _items(hc.get("binds"), f"{prefix}Binds")
    for entry in binds:
        bad = bad or _bind_reason(entry, f"{prefix}Binds", limits, dialect)
    mounts, bad_mounts = _items(hc.get("mounts"), f"{prefix}Mounts")
    bad = bad or bad_mounts
    for mount in mounts:
        bad = bad or _mount_reason(mount, f"{prefix}Mounts", limits, dialect)
    if bad:
        return bad
    # VolumesFrom takes another container's volumes; legacy Links copy its environment.
    if not limits.volumes_from:
        for key, name in (("volumesfrom", "VolumesFrom"), ("links", "Links")):
            if _is_set(hc.get(key)):
                return f"{prefix}{name} is not allowed"
    for key, name in _NAMESPACE_FIELDS:
        mode = hc.get(key)
        if mode is not None:
            bad = _namespace_reason(mode, key, f"{prefix}{name}", limits, dialect)
            if bad:
                return bad
    bad = _engine_fields_reason(hc, prefix, dialect, limits)
    if bad:
        return bad
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


def is_volume_name(name: str) -> bool:
    """A name both engines take as a volume's (anything else is a path, or refused)."""
    return _VOLUME_NAME.fullmatch(name) is not None


def _existing_volume_reason(name: str, doc: Any, limits: CreateLimits) -> str | None:
    """A named volume that exists is mounted with the options it was made with (by an admin, or
    under a rule with other bindPrefixes): they pass this rule's checks, or the mount does not."""
    if not isinstance(doc, dict):
        return f"volume {name!r}: the daemon's inspect is not an object"
    options = doc.get("Options")
    if options is not None and not isinstance(options, dict):
        return f"volume {name!r}: its options are not an object"
    try:
        opts = DockerObject((options or {}).items())
    except BadBody:
        return f"volume {name!r}: its options repeat a name in another case"
    bad = _volume_options_reason(doc.get("Driver"), opts, "DriverOpts", limits)
    return None if bad is None else f"existing volume {name!r}: {bad}"


# Podman runs a container in systemd mode when its command is one of these or a `systemd`
# binary (pkg/specgen/generate/container_create.go), and then bind-mounts the host's cgroup
# tree (name=systemd on cgroup v1) read-write into it: no field of the body says so.
_SYSTEMD_COMMANDS = frozenset({"/sbin/init", "/usr/sbin/init", "/usr/local/sbin/init"})


def _words(value: Any) -> list[str]:
    """An Entrypoint or Cmd (a string or a list of strings, as strslice decodes it)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [w for w in value if isinstance(w, str)]
    return []


def _systemd_mode_reason(body: DockerObject, image: Mapping[str, Any] | None) -> str | None:
    """Whether Podman would pick systemd mode: its test is read on every command the body and
    the image could make (the body's or the image's Entrypoint, then Cmd), failing closed."""
    entry, cmd = _words(body.get("entrypoint")), _words(body.get("cmd"))
    image_entry = _words(image.get("Entrypoint")) if image is not None else []
    image_cmd = _words(image.get("Cmd")) if image is not None else []
    for words in (entry, cmd, image_entry, image_cmd, (entry or image_entry) + (cmd or image_cmd)):
        firsts = words[:1]
        if len(words) > 2 and words[0] == "/bin/sh" and words[1] == "-c":
            firsts.append(words[2])  # Podman looks past a build's `/bin/sh -c`
        for first in firsts:
            if first in _SYSTEMD_COMMANDS or first.rsplit("/", 1)[-1] == "systemd":
                return (
                    f"command {first!r} runs in Podman's systemd mode, which mounts the host's "
                    "cgroup tree into the container"
                )
    return None


def check_create_body(
    body: Any, limits: CreateLimits, engine: str = "unknown", context: CreateContext | None = None
) -> str | None:
    """POST /containers/create, as `engine` decodes it. dockerd up to 20.10 also reads HostConfig
    fields from the top level of the body (a deprecated embedded HostConfig), so both places are
    checked. `context`: the existing volumes the body mounts and the image's command, as the
    proxy looked them up."""
    bad = _create_body_reason(body, limits, engine)
    if bad is not None or not isinstance(body, DockerObject):
        return bad
    if context is not None:
        for name, doc in context.volumes.items():
            bad = bad or _existing_volume_reason(name, doc, limits)
    if bad is None and engine != "docker":
        bad = _systemd_mode_reason(body, None if context is None else context.image_config)
    return bad


def _create_body_reason(body: Any, limits: CreateLimits, engine: str) -> str | None:
    dialect = dialect_for(engine)
    if body is None:
        body = DockerObject()
    if not isinstance(body, DockerObject):
        return "container config must be a JSON object"
    bad = _host_config_reason(body, "", limits, dialect)
    inner = body.get("hostconfig")
    if bad is None and inner is not None:
        if not isinstance(inner, DockerObject):
            return "HostConfig must be an object"
        bad = _host_config_reason(inner, "HostConfig.", limits, dialect)
    bad = bad or _paths_map_reason(body.get("volumes"), "Config.Volumes")
    bad = bad or _endpoints_reason(body, limits, dialect)
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
    # An exec with no User runs as the container's own user; any other user must be listed
    # ("*": any), or `docker exec -u 0` would turn a non-root container into a root shell.
    # An empty list names no user.
    if user and user not in limits.users and "*" not in limits.users:
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
