"""The stack's configuration as one validated model.

`load(raw, secret_keys)` takes the `kubehop:*` config exactly as Pulumi holds
it (strings, objects as JSON text) and either returns a `StackConfig` or raises
`ConfigErrors` listing every problem at once, each naming the full key, the bad
value and the fix. The program calls it before it registers any resource.
"""
from __future__ import annotations

import ipaddress
import json
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from kubehop import catalog, impact
from kubehop.catalog import Version

NS = "kubehop"
SECRET_KEYS = ("sshPrivateKey", "kubeconfig", "siblingKubeconfig", "trafficToken", "mysqlPassword")
_HOST_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_AMI_RE = re.compile(r"^ami-[0-9a-f]{8,17}$")


class ConfigProblem(BaseModel):
    key: str
    value: Any = None
    message: str
    fix: str

    def __str__(self) -> str:
        shown = "(missing)" if self.value is None else json.dumps(self.value) if not isinstance(self.value, str) else repr(self.value)
        return f"{self.key}: {self.message} (got {shown}). Fix: {self.fix}"


class ConfigErrors(Exception):
    """Every problem found in a stack's config; nothing may be registered."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _check_host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not _HOST_RE.match(value):
        raise ValueError("must be a DNS name or IP address|use the address sshd listens on, e.g. 10.20.1.10")
    return value


def _check_version(value: str) -> str:
    try:
        return str(catalog.resolve(value))
    except (ValueError, catalog.CatalogError) as exc:
        raise ValueError(f"{exc}|use a minor from the catalog ({', '.join(catalog.known_minors())}), e.g. \"1.27\"") from None


Host = Annotated[str, AfterValidator(_check_host)]
KubeVersion = Annotated[str, AfterValidator(_check_version)]


class Bastion(Model):
    host: Host
    user: str = "ubuntu"
    port: int = Field(22, ge=1, le=65535)
    host_key: str | None = Field(None, alias="hostKey")
    """The bastion's public host key (`ssh-keyscan`): pinned, so no one can stand in for it."""


class Ssh(Model):
    user: str = "ubuntu"
    port: int = Field(22, ge=1, le=65535)
    bastion: Bastion | None = None


class Cluster(Model):
    name: str
    region: str
    environment: str = "prod"
    production: bool = False
    imds: Literal["v2", "v1"] = "v2"
    dedicated_namespaces: list[str] = Field(default_factory=list, alias="dedicatedNamespaces")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError("must be a lowercase DNS label|use the cluster's name, e.g. aws-uswest2-prod-b")
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not re.match(r"^[a-z]{2}(-gov)?-[a-z]+-\d$", v):
            raise ValueError("is not an AWS region|use a region such as us-west-2")
        return v


class Node(Model):
    name: str
    host: Host
    port: int | None = Field(None, ge=1, le=65535)
    host_key: str | None = Field(None, alias="hostKey")
    """The master's public host key (`ssh-keyscan -t ed25519 HOST`); unpinned keys are not checked."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError("must be the Kubernetes node name (lowercase, digits, '-')|use the name `kubectl get nodes` shows")
        return v


class Etcd(Model):
    snapshot_dir: str = Field("/var/backups/kubehop/etcd", alias="snapshotDir")
    keep: int = Field(5, ge=1, le=100)
    s3_uri: str | None = Field(None, alias="s3Uri")
    endpoints: str = "https://127.0.0.1:2379"

    @field_validator("s3_uri")
    @classmethod
    def _s3(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", v):
            raise ValueError("is not an S3 URI|use s3://bucket/prefix or remove the key")
        return v

    @field_validator("endpoints")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if "," in v or not re.match(r"^https?://[^/\s]+$", v):
            raise ValueError("must be one etcd client URL|use the first master's local endpoint, e.g. https://127.0.0.1:2379")
        return v

    @field_validator("snapshot_dir")
    @classmethod
    def _dir(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("must be an absolute path|use e.g. /var/backups/kubehop/etcd")
        return v


class ControlPlane(Model):
    nodes: list[Node] = Field(min_length=1)
    etcd: Etcd = Field(default_factory=Etcd)
    force_apply: bool = Field(False, alias="forceApply")
    join_token_ttl_hours: int = Field(24, ge=2, le=720, alias="joinTokenTtlHours")
    """Lifetime of the bootstrap token new workers join with (published in SSM before pools roll)."""
    kube_proxy: bool = Field(True, alias="kubeProxy")
    """False when a CNI replaces kube-proxy: kubeadm-apply then judges by the manifest alone."""
    drain_timeout_seconds: int = Field(900, ge=30, le=7200, alias="drainTimeoutSeconds")
    ready_timeout_seconds: int = Field(300, ge=30, le=3600, alias="readyTimeoutSeconds")
    apply_timeout_seconds: int = Field(900, ge=60, le=3600, alias="applyTimeoutSeconds")

    @model_validator(mode="after")
    def _unique(self) -> "ControlPlane":
        names = [n.name for n in self.nodes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"node names repeat: {', '.join(dupes)}|give every master its own node name")
        if len(self.nodes) % 2 == 0:
            raise ValueError(f"{len(self.nodes)} masters cannot keep etcd quorum through a rolling upgrade|use an odd number of masters (1, 3, 5)")
        return self


class Adopt(Model):
    """What the cluster runs when kubehop first manages it (before any output exists)."""

    kubernetes_version: KubeVersion = Field(alias="kubernetesVersion")
    worker_version: KubeVersion | None = Field(None, alias="workerVersion")
    amis: dict[str, str] = Field(default_factory=dict)
    launch_templates: dict[str, "AdoptedTemplate"] = Field(default_factory=dict, alias="launchTemplates")
    addons: dict[Literal[catalog.ADDON_ORDER], AdoptedAddon] = Field(default_factory=dict)

    @field_validator("kubernetes_version", "worker_version", mode="before")
    @classmethod
    def _exact(cls, v: str | None) -> str | None:
        if v is not None and len(str(v).lstrip("v").split(".")) != 3:
            raise ValueError("must be the exact patch the cluster runs (a minor would adopt the catalog's "
                             "last patch and upgrade to it)|use `kubectl version` / `kubeadm version`, e.g. \"1.26.15\"")
        return v

    @field_validator("amis")
    @classmethod
    def _amis(cls, v: dict[str, str]) -> dict[str, str]:
        for role, ami in v.items():
            if not _AMI_RE.match(ami):
                raise ValueError(f"amis.{role} {ami!r} is not an AMI id|use the id of the AMI the pool runs now, e.g. ami-0abc12345def67890")
        return v


class AdoptedTemplate(Model):
    """The launch template an adopted Auto Scaling group uses today: the group is
    imported unchanged and moves to kubehop's template on its first rollout."""

    id: str
    version: str

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not re.match(r"^lt-[0-9a-f]{8,17}$", v):
            raise ValueError("is not a launch template id|use the id the group shows, e.g. lt-0abc12345def67890")
        return v

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not str(v).isdigit():
            raise ValueError("must be a version number, not $Latest or $Default|use the number the group runs")
        return str(v)


class AddonConfig(Model):
    enabled: bool = True
    chart_version: str | None = Field(None, alias="chartVersion")
    image_tag: str | None = Field(None, alias="imageTag")
    release_name: str | None = Field(None, alias="releaseName")
    namespace: str | None = None
    values: dict[str, Any] = Field(default_factory=dict)
    check_urls: list[str] = Field(default_factory=list, alias="checkUrls")
    prometheus_url: str | None = Field(None, alias="prometheusUrl")
    probe_from: str | None = Field(None, alias="probeFrom")
    probe_to: str | None = Field(None, alias="probeTo")


class _AddonsBase(Model):
    timeout_seconds: int = Field(600, ge=60, le=3600, alias="timeoutSeconds")

    def get(self, name: str) -> AddonConfig:
        return getattr(self, name.replace("-", "_"))


# One entry per addon module (kubehop/addons/): the only addon names kubehop knows.
Addons = create_model(
    "Addons", __base__=_AddonsBase,
    **{name.replace("-", "_"): (AddonConfig, Field(default_factory=AddonConfig, alias=name)) for name in catalog.ADDON_ORDER},
)


class AdoptedAddon(Model):
    """An addon that is a Helm release when kubehop adopts the cluster: imported
    on the adoption run with this chart version and exactly these values
    (`helm get values RELEASE -n NAMESPACE -o yaml`: the user-supplied values,
    which is what an import reads back). An enabled addon not listed is installed."""

    chart_version: str | None = Field(None, alias="chartVersion")
    values: dict[str, Any] = Field(default_factory=dict)


class Spark(Model):
    jdk_package: str = Field("openjdk-17-jre-headless", alias="jdkPackage")
    hadoop_version: str = Field(alias="hadoopVersion")
    hadoop_mirror: str = Field("https://archive.apache.org/dist/hadoop/common", alias="hadoopMirror")
    hadoop_sha512: str = Field(alias="hadoopSha512", pattern=r"^[0-9a-fA-F]{128}$")


class NodeImages(Model):
    source_ami_id: str | None = Field(None, alias="sourceAmiId")
    instance_type: str = Field("t3.large", alias="instanceType")
    subnet_id: str | None = Field(None, alias="subnetId")
    pinned: dict[Literal["worker", "spark"], str] = Field(default_factory=dict)
    cni_plugins_sha256: str = Field(alias="cniPluginsSha256", pattern=r"^[0-9a-fA-F]{64}$")
    spark: Spark | None = None

    @field_validator("pinned")
    @classmethod
    def _pins(cls, v: dict[str, str]) -> dict[str, str]:
        for role, ami in v.items():
            if not _AMI_RE.match(ami):
                raise ValueError(f"pinned.{role} {ami!r} is not an AMI id|use ami-… or remove the pin to build the image")
        return v


def _check_estimates(value: dict[str, float]) -> dict[str, float]:
    unknown = sorted(set(value) - set(impact.ACTIONS))
    if unknown:
        raise ValueError(f"names no step action: {', '.join(unknown)}|use action names from the plan's action column, "
                         f"e.g. rollout-wait, kubeadm-apply, drain")
    return value


Estimates = Annotated[dict[str, Annotated[float, Field(ge=0, le=24 * 60)]], AfterValidator(_check_estimates)]
"""Minutes per step action, overriding the plan's duration model."""


class Rollout(Model):
    """How many pools roll side by side (database pools always one at a time)."""

    max_parallel_pools: int = Field(3, ge=1, le=50, alias="maxParallelPools")
    max_unavailable_nodes: int = Field(20, ge=1, alias="maxUnavailableNodes")
    """Capacity budget: the nodes that may be out of service at once across the
    non-database pools rolling side by side (each pool counts the batch its
    instance refresh takes down: maxSize x (100 - minHealthyPercentage) %)."""


class Taint(Model):
    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class NodePool(Model):
    name: str
    role: Literal["worker", "spark"] = "worker"
    asg_name: str = Field(alias="asgName")
    instance_type: str = Field(alias="instanceType")
    min_size: int = Field(alias="minSize", ge=0)
    max_size: int = Field(alias="maxSize", ge=1)
    subnet_ids: list[str] = Field(alias="subnetIds", min_length=1)
    database: bool = False
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)
    security_group_ids: list[str] = Field(default_factory=list, alias="securityGroupIds")
    iam_instance_profile: str | None = Field(None, alias="iamInstanceProfile")
    imdsv2_required: bool | None = Field(None, alias="imdsv2Required")
    """Default: required when cluster.imds is v2."""
    min_healthy_percentage: int = Field(90, ge=0, le=100, alias="minHealthyPercentage")
    instance_warmup_seconds: int = Field(300, ge=0, le=3600, alias="instanceWarmupSeconds")
    rollout_timeout_seconds: int = Field(3600, ge=60, le=6 * 3600, alias="rolloutTimeoutSeconds")
    rollout: Literal["in-window", "after-serving"] = "in-window"
    """after-serving: a stateless pool rolls once users are back, when the kubelet skew policy allows."""
    estimates: Estimates = Field(default_factory=dict)
    """Minutes per action for this pool's steps (e.g. rollout-wait from a previous run)."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError("must be lowercase letters, digits and '-'|use a short pool name, e.g. workers")
        return v

    @model_validator(mode="after")
    def _sizes(self) -> "NodePool":
        if self.min_size > self.max_size:
            raise ValueError(f"minSize {self.min_size} is above maxSize {self.max_size}|make minSize <= maxSize")
        return self


class TrafficControl(Model):
    kind: Literal["http", "command"]
    url: str | None = None
    command: str | None = None
    status_command: str | None = Field(None, alias="statusCommand")
    """For kind command: prints the cluster's state, so a change is checked first and verified after."""

    @model_validator(mode="after")
    def _one(self) -> "TrafficControl":
        if self.kind == "http" and not self.url:
            raise ValueError("kind http needs url|set traffic.control.url to the DAPP state endpoint")
        if self.kind == "command" and not (self.command and self.status_command):
            raise ValueError("kind command needs command and statusCommand|set traffic.control.command (with {cluster} "
                             "{state} {share}) and statusCommand (prints the state), so each change is verified")
        return self


class Canary(Model):
    prometheus_url: str | None = Field(None, alias="prometheusUrl")
    share: int = Field(10, ge=1, le=100)
    window_seconds: int = Field(600, ge=60, le=3600, alias="windowSeconds")
    final_share: int = Field(50, ge=0, le=100, alias="finalShare")


class Traffic(Model):
    state: Literal["serving", "maintaining"] = "serving"
    control: TrafficControl
    canary: Canary = Field(default_factory=Canary)


class Sibling(Model):
    name: str
    stack: str


class ServiceSwitch(Model):
    namespace: str = "prod"
    name: str
    resource: str = "serviceswitch"
    standby_spec: dict[str, Any] = Field(alias="standbySpec")


class Replication(Model):
    host: Host
    port: int = Field(3306, ge=1, le=65535)
    user: str = "kubehop"
    max_lag_seconds: int = Field(30, ge=0, le=3600, alias="maxLagSeconds")


class Mysql(Model):
    service_switch: ServiceSwitch = Field(alias="serviceSwitch")
    replication: Replication


class Workload(Model):
    namespace: str
    workload: str

    @field_validator("workload")
    @classmethod
    def _wl(cls, v: str) -> str:
        if not re.match(r"^(deployment|statefulset)/[a-z0-9][-a-z0-9.]*$", v):
            raise ValueError("must be kind/name|use e.g. deployment/mirrormaker")
        return v


class Kafka(Model):
    prometheus_url: str = Field(alias="prometheusUrl")
    consumer_lag_query: str = Field("sum by (consumergroup) (kafka_consumergroup_lag)", alias="consumerLagQuery")
    mirror_lag_query: str = Field('sum by (topic) (kafka_consumergroup_lag{consumergroup=~".*mirror.*"})', alias="mirrorLagQuery")
    threshold: int = Field(1000, ge=1)
    key_groups: list[str] = Field(default_factory=list, alias="keyGroups")
    lag_timeout_seconds: int = Field(3600, ge=60, alias="lagTimeoutSeconds")
    mirror_maker: Workload = Field(alias="mirrorMaker")
    sibling_mirror_maker: Workload = Field(alias="siblingMirrorMaker")


class SloQuery(Model):
    name: str
    query: str
    max: float


class NetworkPath(Model):
    name: str
    source: str = Field(alias="from")
    to: str


class UrlCheck(Model):
    name: str
    url: str
    status: int = Field(200, ge=100, le=599)


class Verify(Model):
    network_paths: list[NetworkPath] = Field(default_factory=list, alias="networkPaths")
    node_paths: list[NetworkPath] = Field(default_factory=list, alias="nodePaths")
    node_probe_pods: str | None = Field(None, alias="nodeProbePods")
    urls: list[UrlCheck] = Field(default_factory=list)
    endpoints: list[str] = Field(default_factory=list)
    pending_grace_seconds: int = Field(300, ge=0, alias="pendingGraceSeconds")
    max_pending: int = Field(0, ge=0, alias="maxPending")
    slo: list[SloQuery] = Field(default_factory=list)
    ignore_pdbs: list[str] = Field(default_factory=list, alias="ignorePdbs")


Adopt.model_rebuild()


class StackConfig(Model):
    """Everything under the `kubehop:` namespace of one stack."""

    cluster: Cluster
    kubernetes_version: KubeVersion = Field(alias="kubernetesVersion")
    target_version: KubeVersion | None = Field(None, alias="targetVersion")
    worker_policy: Literal["each-hop", "efficient"] = Field("each-hop", alias="workerPolicy")
    adopt: Adopt
    ssh: Ssh = Field(default_factory=Ssh)
    control_plane: ControlPlane = Field(alias="controlPlane")
    addons: Addons = Field(default_factory=Addons)
    node_images: NodeImages | None = Field(None, alias="nodeImages")
    node_pools: list[NodePool] = Field(default_factory=list, alias="nodePools")
    traffic: Traffic | None = None
    sibling: Sibling | None = None
    mysql: Mysql | None = None
    kafka: Kafka | None = None
    verify: Verify = Field(default_factory=Verify)
    rollout: Rollout = Field(default_factory=Rollout)
    estimates: Estimates = Field(default_factory=dict)
    # Secrets: the values never live in the model, only whether they are set.
    secrets_present: frozenset[str] = Field(default_factory=frozenset, alias="secretsPresent")

    @property
    def version(self) -> Version:
        return Version.parse(self.kubernetes_version)

    @property
    def target(self) -> Version:
        return Version.parse(self.target_version or self.kubernetes_version)


_FIX_BY_TYPE = {
    "missing": "set it in Pulumi.<stack>.yaml (see the README's config reference)",
    "extra_forbidden": "remove it or correct its spelling (see the README's config reference)",
    "literal_error": "use one of the allowed values",
    "bool_parsing": "use true or false",
    "int_parsing": "use a whole number",
    "greater_than_equal": "use a larger number",
    "less_than_equal": "use a smaller number",
    "too_short": "add at least one entry",
    "string_pattern_mismatch": "use the checksum published with the release (hex digits only)",
}


def _key(loc: tuple) -> str:
    out = NS + ":"
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("" if i == 0 else ".") + str(part)
    return out


def _problems(exc: ValidationError, raw: dict[str, Any]) -> list[ConfigProblem]:
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if p not in ("function-after",))
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        fix = _FIX_BY_TYPE.get(err["type"], "correct the value")
        if "|" in msg:
            msg, fix = msg.split("|", 1)
        value = None if err["type"] == "missing" else err.get("input")
        if isinstance(value, dict) and err["type"] != "extra_forbidden":
            value = None if not loc else value
            if value is not None:
                value = "{…}"
        problems.append(ConfigProblem(key=_key(loc), value=value, message=msg, fix=fix))
    return problems


def _decode(raw: dict[str, Any]) -> tuple[dict[str, Any], list[ConfigProblem]]:
    """Strip the `kubehop:` prefix and parse JSON objects Pulumi hands over as text."""
    out: dict[str, Any] = {}
    problems: list[ConfigProblem] = []
    for full, value in raw.items():
        if not full.startswith(NS + ":"):
            continue
        key = full[len(NS) + 1:]
        if key not in SECRET_KEYS and isinstance(value, str) and value[:1] in "[{":
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                problems.append(ConfigProblem(key=full, value=value[:40], message=f"is not valid JSON ({exc.msg})", fix="quote it as YAML in Pulumi.<stack>.yaml"))
                continue
        out[key] = value
    return out, problems


def load(raw: dict[str, Any], secret_keys: set[str] | frozenset[str] = frozenset()) -> StackConfig:
    """Validate a stack's `kubehop:*` config; raise ConfigErrors with every problem."""
    data, problems = _decode(raw)
    present = set()
    for name in SECRET_KEYS:
        full = f"{NS}:{name}"
        if name in data:
            if full not in secret_keys:
                problems.append(ConfigProblem(key=full, value="(plain text, not shown)", message="is a secret but is stored in plain text",
                                              fix=f"run `pulumi config set --secret {full} ...` (for files: `cat FILE | pulumi config set --secret {full}`)"))
            present.add(name)
            data.pop(name)
    data["secretsPresent"] = frozenset(present)
    try:
        cfg = StackConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigErrors(problems + _problems(exc, data)) from None
    problems += _cross_checks(cfg)
    if problems:
        raise ConfigErrors(problems)
    return cfg


def _cross_checks(cfg: StackConfig) -> list[ConfigProblem]:
    """Rules that span keys: secrets the features need, addon pins, pools vs images."""
    problems: list[ConfigProblem] = []
    need = {"sshPrivateKey": "the control-plane steps SSH to every master", "kubeconfig": "addons and gates talk to the cluster"}
    if cfg.traffic and cfg.traffic.control.kind == "http":
        need["trafficToken"] = "traffic.control is an HTTP endpoint"
    if cfg.mysql:
        need["mysqlPassword"] = "mysql.replication is checked before the switch"
    if cfg.kafka:
        need["siblingKubeconfig"] = "MirrorMaker is stopped on the sibling cluster too"
    for name, why in need.items():
        if name not in cfg.secrets_present:
            problems.append(ConfigProblem(key=f"{NS}:{name}", message=f"is required because {why}",
                                          fix=f"run `pulumi config set --secret {NS}:{name} ...`"))
    minors = {Version.parse(v).minor_str for v in (cfg.kubernetes_version, cfg.target_version) if v}
    for name in catalog.ADDON_ORDER:
        addon = cfg.addons.get(name)
        for minor in sorted(minors):
            if addon.chart_version and not catalog.pin_is_compatible(name, minor, addon.chart_version):
                problems.append(ConfigProblem(
                    key=f"{NS}:addons.{name}.chartVersion", value=addon.chart_version,
                    message=f"is not compatible with Kubernetes {minor}",
                    fix=f"remove the pin to use the catalog's {_catalog_chart(name, minor)} or pick a compatible chart"))
            pin = catalog.ADDONS[name].per_minor.get(minor)
            if addon.image_tag and pin and pin.image_minor_must_match and not addon.image_tag.lstrip("v").startswith(minor + "."):
                problems.append(ConfigProblem(
                    key=f"{NS}:addons.{name}.imageTag", value=addon.image_tag,
                    message=f"must have the same minor as Kubernetes ({minor})",
                    fix=f"remove the pin to use the catalog's {pin.image_tag}"))
    for name, spec in catalog.ADDONS.items():
        addon = cfg.addons.get(name)
        for field, message, fix in spec.requires(addon) if addon.enabled else ():
            problems.append(ConfigProblem(key=f"{NS}:addons.{name}.{field}", message=message, fix=fix))
    if cfg.verify.node_paths and not cfg.verify.node_probe_pods:
        problems.append(ConfigProblem(key=f"{NS}:verify.nodeProbePods", message="is required for nodePaths",
                                      fix="set it to ns/selector of a hostNetwork DaemonSet, e.g. kube-system/app=kubehop-netcheck"))
    if cfg.traffic and not (cfg.traffic.canary.prometheus_url or cfg.kafka):
        problems.append(ConfigProblem(key=f"{NS}:traffic.canary.prometheusUrl", message="is required to watch the SLO queries during the canary",
                                      fix="set the Prometheus URL the SLO queries run against"))
    roles = {p.role for p in cfg.node_pools}
    if roles and cfg.node_images is None:
        problems.append(ConfigProblem(key=f"{NS}:nodeImages", message="is required when nodePools are set",
                                      fix="add nodeImages (see the README's config reference)"))
    if "spark" in roles and cfg.node_images and cfg.node_images.spark is None and "spark" not in cfg.node_images.pinned:
        problems.append(ConfigProblem(key=f"{NS}:nodeImages.spark", message="is required for a spark pool",
                                      fix="add nodeImages.spark (jdkPackage, hadoopVersion, hadoopSha512) or pin nodeImages.pinned.spark"))
    names = [p.name for p in cfg.node_pools]
    for i, name in enumerate(names):
        if names.index(name) != i:
            problems.append(ConfigProblem(key=f"{NS}:nodePools[{i}].name", value=name, message="repeats another pool's name", fix="give every pool its own name"))
    for role in sorted(roles):
        if role not in cfg.adopt.amis:
            problems.append(ConfigProblem(key=f"{NS}:adopt.amis.{role}", message=f"is required: the {role} pools keep this AMI until they roll",
                                          fix="set it to the AMI the pool's launch template uses today"))
    if cfg.kafka and cfg.sibling is None:
        problems.append(ConfigProblem(key=f"{NS}:sibling", message="is required with kafka: MirrorMaker stops and starts on both clusters",
                                      fix="set kubehop:sibling (name, stack)"))
    if cfg.traffic and not cfg.verify.slo:
        problems.append(ConfigProblem(key=f"{NS}:verify.slo", message="needs at least one query: the canary watches them before users return",
                                      fix="add verify.slo entries (name, query, max), e.g. the error rate and p99 latency"))
    for pool in cfg.node_pools:
        if pool.name not in cfg.adopt.launch_templates:
            problems.append(ConfigProblem(key=f"{NS}:adopt.launchTemplates.{pool.name}", message=f"is required: the group {pool.asg_name} is imported with the launch template it runs today",
                                          fix="set {id: lt-..., version: N} from `aws autoscaling describe-auto-scaling-groups`"))
    if cfg.cluster.production and cfg.traffic is None:
        problems.append(ConfigProblem(key=f"{NS}:traffic", message="is required on a production cluster",
                                      fix="add traffic (state, control) so kubehop can move users off the cluster"))
    return problems


def check_region(cfg: StackConfig, aws_region: str | None) -> None:
    """`aws:region` (the default AWS provider's) must not contradict the cluster's:
    kubehop puts every AWS resource in `cluster.region` through its own provider,
    and a different default would mean the stack was set up for another place."""
    if aws_region and aws_region != cfg.cluster.region:
        raise ConfigErrors([ConfigProblem(
            key="aws:region", value=aws_region, message=f"differs from {NS}:cluster.region ({cfg.cluster.region!r})",
            fix=f"set `pulumi config set aws:region {cfg.cluster.region}` or correct {NS}:cluster.region")])


def _catalog_chart(name: str, minor: str) -> str:
    pin = catalog.ADDONS[name].per_minor.get(minor)
    return pin.chart_version if pin else "(none)"
