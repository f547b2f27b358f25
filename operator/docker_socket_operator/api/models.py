"""The DockerSocketPolicy resource: the one source of truth for the CRD schema,
the proxy's policy file and the operator's rendering.

The proxy reads the same document the operator reads (a whole DockerSocketPolicy
YAML); only `spec.rules`, `spec.visibility`, `spec.ownership`, `spec.mode`, `spec.audit` and
`spec.limits` matter to it, the rest is for the operator.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

GROUP = "dockersocket.io"
VERSION = "v1alpha1"
KIND: Final = "DockerSocketPolicy"
PLURAL = "dockersocketpolicies"
API_VERSION: Final = "dockersocket.io/v1alpha1"

PresetName = Literal["read-only", "discovery", "restart-only", "compose-admin", "ci-runner", "logs"]
AuditMode = Literal["none", "denied", "all"]
PolicyMode = Literal["enforce", "audit"]

# Operation names look like "containers.restart"; a trailing "*" or "group.*" glob is allowed,
# and "libpod:METHOD /libpod/path-glob" names a Podman libpod route.
OperationPattern = Annotated[
    str,
    Field(
        pattern=r"^([a-z*][a-z0-9*-]*(\.[a-z0-9*-]+)?|libpod:(GET|HEAD|POST|PUT|DELETE|\*) /libpod/\S*)$"
    ),
]


class Model(BaseModel):
    """Strict base: unknown fields are an error, so a typo never silently widens access."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SocketSpec(Model):
    path: str = Field(
        default="/var/run/docker.sock",
        pattern=r"^/\S+$",
        description="Host path of the Docker or Podman API socket.",
    )
    group: int | None = Field(
        default=None,
        ge=1,
        le=2147483647,
        description=(
            "Group id that owns the socket on the nodes (`stat -c %g /var/run/docker.sock`): "
            "the non-root proxy gets it as a supplemental group to open the socket."
        ),
    )


class LabelSelectorRequirement(Model):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)


class LabelSelector(Model):
    """A Kubernetes label selector (matchLabels AND matchExpressions)."""

    matchLabels: dict[str, str] = Field(default_factory=dict)
    matchExpressions: list[LabelSelectorRequirement] = Field(default_factory=list)


DNS_LABEL = r"^[a-z0-9]$|^[a-z0-9][-a-z0-9]*[a-z0-9]$"


def _selects(selector: LabelSelector | None) -> bool:
    return selector is not None and bool(selector.matchLabels or selector.matchExpressions)


class ClientPeer(Model):
    """One NetworkPolicy peer: the pods a client runs as, in the namespace(s) it runs in.

    Both halves are explicit: exactly one of `namespace`, `namespaces` or a non-empty
    `namespaceSelector`, and a non-empty `podSelector` (or `allPods: true` to admit every
    pod of those namespaces). They render as ONE peer, never two (AND, not OR).
    """

    namespace: str | None = Field(
        default=None, pattern=DNS_LABEL, description="The one namespace of the client."
    )
    namespaces: list[Annotated[str, Field(pattern=DNS_LABEL)]] = Field(
        default_factory=list, max_length=64, description="Namespaces of the client."
    )
    namespaceSelector: LabelSelector | None = Field(
        default=None, description="Namespaces by label (must select something: not {})."
    )
    podSelector: LabelSelector | None = Field(
        default=None, description="The client pods' labels (must select something: not {})."
    )
    allPods: bool = Field(
        default=False, description="Admit every pod of the namespace(s) instead of a podSelector."
    )

    @model_validator(mode="after")
    def _explicit(self) -> ClientPeer:
        named = [
            self.namespace is not None,
            bool(self.namespaces),
            _selects(self.namespaceSelector),
        ]
        if sum(named) != 1:
            raise ValueError(CLIENT_NAMESPACE_MESSAGE)
        if self.allPods == _selects(self.podSelector):
            raise ValueError(CLIENT_PODS_MESSAGE)
        return self


CLIENT_NAMESPACE_MESSAGE = (
    "a client names its namespace(s) with exactly one of namespace: NAME, namespaces: [NAMES] "
    "or a non-empty namespaceSelector (an empty one no longer means every namespace)"
)
CLIENT_PODS_MESSAGE = (
    "a client selects its pods with a non-empty podSelector (matchLabels or matchExpressions), "
    "or allPods: true to admit every pod of its namespace(s); not both"
)


class Toleration(Model):
    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    tolerationSeconds: int | None = None


class ContainerSelector(Model):
    """Which containers a rule (or visibility) covers. Every field given must match (AND);
    within `names` any one glob may match. Names are compared without the leading '/'."""

    names: list[str] = Field(default_factory=list, description="Container name globs.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels the container must carry ('*' = any value)."
    )
    composeProject: str | None = Field(
        default=None, description="Shorthand for the label com.docker.compose.project."
    )


class CreateConstraints(Model):
    """What a container create (and update) body may ask for. Everything with host power is
    refused unless opened here."""

    privileged: bool = False
    bindPrefixes: list[Annotated[str, Field(pattern=r"^/")]] = Field(
        default_factory=list,
        description="Host paths (and below) that binds and bind mounts may use.",
    )
    hostNamespaces: bool = Field(
        default=False,
        description="Allow network/pid/ipc/uts/userns/cgroupns = host or container:<id>.",
    )
    capabilities: list[str] = Field(
        default_factory=list, description="Capabilities CapAdd may name."
    )
    devices: bool = Field(
        default=False, description="Allow Devices, DeviceRequests, DeviceCgroupRules."
    )
    images: list[str] = Field(
        default_factory=list, description="Image reference globs a container may use; empty = any."
    )
    volumesFrom: bool = False
    sysctls: bool = False
    securityOpt: list[str] = Field(
        default_factory=list,
        description="SecurityOpt entries allowed besides no-new-privileges (e.g. 'seccomp=unconfined').",
    )
    runtimes: list[str] = Field(
        default_factory=list, description="OCI runtimes besides the default."
    )
    cgroupParent: bool = False
    logDrivers: list[str] = Field(
        default_factory=list,
        description=(
            "Log drivers besides the engine's local ones (json-file, local, journald, none;"
            " k8s-file on Podman), with any options; `*` any driver. Remote drivers dial"
            " addresses from the node, and Podman's k8s-file `path` writes a host file."
        ),
    )


class ExecConstraints(Model):
    privileged: bool = False
    users: list[str] = Field(
        default_factory=list,
        description=(
            "Users an exec may name (its User field, as sent: `0`, `app`, `1000:1000`); empty"
            " names none and `*` any. An exec without User runs as the container's own user."
        ),
    )


class Rule(Model):
    """One rule: exactly one of preset, allow or deny. Rules are tried in order; first match wins."""

    preset: PresetName | None = None
    allow: list[OperationPattern] = Field(default_factory=list)
    deny: list[OperationPattern] = Field(default_factory=list)
    containers: ContainerSelector | None = None
    create: CreateConstraints | None = None
    exec: ExecConstraints | None = None
    owned: bool = Field(
        default=False,
        description=(
            "Only objects this policy owns (spec.ownership): its containers and their execs,"
            " networks and volumes; lists and prunes are narrowed to them, creates are owned by"
            " construction. Other operations (images, system) never match an owned rule."
        ),
    )
    description: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Rule:
        kinds = [self.preset is not None, bool(self.allow), bool(self.deny)]
        if sum(kinds) != 1:
            raise ValueError("a rule needs exactly one of preset, allow or deny")
        return self


class Visibility(Model):
    containers: ContainerSelector | None = Field(
        default=None,
        description="Only these containers exist for the client: lists, events and every per-container call.",
    )
    redactEnv: bool = Field(
        default=True, description="Replace Config.Env values in inspect answers."
    )
    owned: bool = Field(
        default=False,
        description=(
            "Only the containers, networks and volumes this policy owns (spec.ownership) exist"
            " for the client."
        ),
    )


class Ownership(Model):
    """Objects created through the policy carry the owner label `dockersocket.io/owner`."""

    owner: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]$|^[a-z0-9][-a-z0-9.]*[a-z0-9]$",
        max_length=253,
        description="The owner label's value; default: the policy's name.",
    )


class Limits(Model):
    maxBodyBytes: int = Field(default=1 << 20, ge=1024, description="Largest JSON body inspected.")


class ResourceList(Model):
    cpu: str | None = None
    memory: str | None = None


class Resources(Model):
    requests: ResourceList = Field(default_factory=lambda: ResourceList(cpu="10m", memory="32Mi"))
    limits: ResourceList = Field(default_factory=lambda: ResourceList(memory="128Mi"))


class DockerSocketPolicySpec(Model):
    socket: SocketSpec = Field(default_factory=SocketSpec)
    nodeSelector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    clients: list[ClientPeer] = Field(default_factory=list, max_length=64)
    port: int = Field(default=2375, ge=1, le=65535)
    rules: list[Rule] = Field(default_factory=list, max_length=256)
    visibility: Visibility = Field(default_factory=Visibility)
    ownership: Ownership | None = Field(
        default=None,
        description=(
            "Label every container, network and volume created through this policy as owned by"
            " it (a client may not set the label itself); rules and visibility with `owned: true`"
            " then reach only those."
        ),
    )
    mode: PolicyMode = Field(
        default="enforce",
        description=(
            "enforce: denied requests are refused. audit: what enforce would deny is forwarded and"
            " logged as would-deny, except the floor (host power, hidden containers, unknown and"
            " libpod routes: docs/security.md), which stays denied."
        ),
    )
    audit: AuditMode = "denied"
    limits: Limits = Field(default_factory=Limits)
    resources: Resources = Field(default_factory=Resources)
    seLinuxType: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_]+$",
        description="SELinux type for the proxy pod (Podman sockets on SELinux hosts: spc_t).",
    )
    runAsRoot: bool = Field(
        default=False,
        description=(
            "Run the proxy as uid 0 (capabilities still dropped) instead of the non-root uid "
            "with socket.group; only for sockets no group can open. Reported as a warning."
        ),
    )
    controllerName: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9.-]*/[A-Za-z0-9][A-Za-z0-9._-]*$",
        max_length=253,
        description=(
            "The operator install that serves this policy (its controllerName); unset: the "
            "install that is the default."
        ),
    )


class Condition(Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    observedGeneration: int | None = None
    lastTransitionTime: str | None = None


class NodesStatus(Model):
    desired: int = 0
    ready: int = 0


class DockerSocketPolicyStatus(Model):
    observedGeneration: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    endpoint: str | None = None
    nodes: NodesStatus | None = None
    nodesReady: str | None = Field(
        default=None, description="Ready/desired proxy pods as text ('3/3'): the Nodes column."
    )
    warnings: list[str] = Field(
        default_factory=list, description="Things that work but deserve a look (root proxy)."
    )
    controllerName: str | None = Field(
        default=None, description="The operator install that reconciles this policy."
    )


class ObjectMeta(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = "policy"


class DockerSocketPolicy(Model):
    apiVersion: Literal["dockersocket.io/v1alpha1"] = API_VERSION
    kind: Literal["DockerSocketPolicy"] = KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: DockerSocketPolicySpec = Field(default_factory=DockerSocketPolicySpec)
    status: DockerSocketPolicyStatus | None = None
