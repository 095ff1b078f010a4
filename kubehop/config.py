"""The stack's configuration as one validated model.

`load(raw, secret_keys)` takes the `kubehop:*` config exactly as Pulumi holds
it (strings, objects as JSON text) and either returns a `StackConfig` or raises
`ConfigErrors` listing every problem at once, each naming the full key, the bad
value and the fix. The program calls it before it registers any resource.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import posixpath
import re
import shlex
from typing import Annotated, Any, Callable, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from kubehop import catalog, impact, node_labels
from kubehop.gates import traffic as traffic_control
from kubehop.catalog import Version
from kubehop.problems import Problem, Problems

NS = "kubehop"
SECRET_KEYS = ("sshPrivateKey", "kubeconfig", "siblingKubeconfig", "trafficToken", "mysqlPassword")
_HOST_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_KMS_KEY_RE = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|alias/[A-Za-z0-9/_-]+|"
                         r"arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key/[A-Za-z0-9-]+|alias/[A-Za-z0-9/_-]+))$")
_AMI_RE = re.compile(r"^ami-[0-9a-f]{8,17}$")
# DNS-1123 label (namespaces) and subdomain (object names), as the API server
# validates them: k8s.io/apimachinery pkg/util/validation/validation.go
# (IsDNS1123Label: 63 chars; IsDNS1123Subdomain: 253 chars, dot-separated labels).
_RELEASE_RE = re.compile(r"^v?\d+\.\d+\.\d+$")
_HOST_KEY_RE = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+={0,3}$")
TRAFFIC_PLACEHOLDERS = ("{cluster}", "{state}", "{share}")


def _gate_parser(parse: Callable[[str], Any], fix: str) -> Callable[[Any], Any]:
    """A validator that runs the very parser the gate will run on this value,
    so what the gate would refuse inside `pulumi up` is refused at preview."""

    def check(value: Any) -> Any:
        if value is None:
            return value
        try:
            parse(value)
        except (ValueError, argparse.ArgumentTypeError) as exc:
            raise ValueError(f"{str(exc).rstrip('.')}|{fix}") from None
        return value

    return check


def check_url(value: str) -> str:
    """An http(s) URL with a host, as the HTTP gates and traffic control require."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise ValueError("must be an http:// or https:// URL with a host")
    parts.port  # noqa: B018 - raises ValueError on a bad port
    return value


def _dns_label(value: str) -> str:
    if not node_labels.LABEL_RE.match(value):
        raise ValueError("must be a DNS-1123 label (lowercase letters, digits, '-', at most 63)|use the namespace as "
                         "`kubectl get ns` shows it")
    return value


def _is_dns_subdomain(value: str) -> bool:
    return len(value) <= node_labels.SUBDOMAIN_MAX and node_labels.SUBDOMAIN_RE.match(value) is not None


def _dns_name(value: str) -> str:
    if not _is_dns_subdomain(value):
        raise ValueError("must be a DNS-1123 name (lowercase letters, digits, '-', '.')|use the object's name as "
                         "`kubectl get` shows it")
    return value


def _ns_name_parse(text: str) -> None:
    from kubehop.gates.kube import parse_ns_name

    ns, name = parse_ns_name(text, "value")
    _dns_label(ns)
    _dns_name(name)


def _pod_port_parse(text: str) -> None:
    from kubehop.gates.kube import parse_pod_target

    ns, pod, port = parse_pod_target(text)
    _dns_label(ns)
    _dns_name(pod)
    if port is None:
        raise ValueError("needs a port: NAMESPACE/POD:PORT")


def _url_check_parse(text: str) -> None:
    from kubehop.gates.http_check import parse_url_check

    check_url(parse_url_check(text).url)


def _traffic_template(text: str) -> None:
    """Split as the traffic gate splits it; only the known placeholders may appear."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"cannot be split into words ({exc})") from None
    if not words:
        raise ValueError("is empty")
    unknown = set(re.findall(r"\{[^{}]*\}", text)) - set(TRAFFIC_PLACEHOLDERS)
    if unknown:
        raise ValueError(f"has unknown placeholders {', '.join(sorted(unknown))}")


def _json_object_parse(value: Any) -> None:
    from kubehop.gates.cutover import _json_object

    _json_object(json.dumps(value))


Url = Annotated[str, AfterValidator(_gate_parser(check_url, "use a full URL, e.g. https://host.example:9090"))]
NsName = Annotated[str, AfterValidator(_gate_parser(_ns_name_parse, "use NAMESPACE/NAME, e.g. prod/dcluster-mysql"))]
PodPort = Annotated[str, AfterValidator(_gate_parser(_pod_port_parse, "use NAMESPACE/POD:PORT, e.g. prod/dcluster-mysql-0:3306"))]
DnsLabel = Annotated[str, AfterValidator(_dns_label)]
DnsName = Annotated[str, AfterValidator(_dns_name)]


ConfigProblem = Problem  # one shape for config, hop and plan problems (kubehop.problems)


AWS_REGION = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"

class ConfigErrors(Problems):
    """Every problem found in a stack's config; nothing may be registered."""


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


def _check_host_key(value: str) -> str:
    if not _HOST_KEY_RE.match(value.strip()):
        raise ValueError("is not a public host key line|paste the `TYPE BASE64` part of `ssh-keyscan -t ed25519 HOST`, "
                         "e.g. ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA...")
    return value.strip()


Host = Annotated[str, AfterValidator(_check_host)]
HostKey = Annotated[str, AfterValidator(_check_host_key)]
KubeVersion = Annotated[str, AfterValidator(_check_version)]


class Bastion(Model):
    host: Host
    user: str = "ubuntu"
    port: int = Field(22, ge=1, le=65535)
    host_key: HostKey | None = Field(None, alias="hostKey")
    """The bastion's public host key (`ssh-keyscan`): pinned, so no one can stand in for it."""


class Ssh(Model):
    user: str = "ubuntu"
    port: int = Field(22, ge=1, le=65535)
    bastion: Bastion | None = None
    allow_unpinned_host_keys: bool = Field(False, alias="allowUnpinnedHostKeys")
    """Production only: run with unpinned host keys anyway (the plan warns, `plan --strict` exits 3)."""


class Cluster(Model):
    name: str
    region: str
    environment: str = "prod"
    production: bool = False
    imds: Literal["v2", "v1"] = "v2"
    dedicated_namespaces: list[DnsLabel] = Field(default_factory=list, alias="dedicatedNamespaces")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError("must be a lowercase DNS label|use the cluster's name, e.g. aws-uswest2-prod-b")
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not re.match(AWS_REGION, v):
            raise ValueError("is not an AWS region|use a region such as us-west-2")
        return v


class Node(Model):
    name: str
    host: Host
    port: int | None = Field(None, ge=1, le=65535)
    host_key: HostKey | None = Field(None, alias="hostKey")
    """The master's public host key (`ssh-keyscan -t ed25519 HOST`); unpinned keys are not checked."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        # Node names are DNS-1123 subdomains (apimachinery ValidateNodeName = NameIsDNSSubdomain), e.g.
        # ip-10-42-1-10.us-west-2.compute.internal, what AWS clusters with the cloud controller have.
        if not _is_dns_subdomain(v):
            raise ValueError("must be the Kubernetes node name, a DNS-1123 subdomain (lowercase letters, digits, '-' "
                             "and '.', at most 253 characters)|use the name `kubectl get nodes` shows")
        return v


class Etcd(Model):
    snapshot_dir: str = Field("/var/backups/kubehop/etcd", alias="snapshotDir")
    keep: int = Field(5, ge=1, le=100)
    s3_uri: str | None = Field(None, alias="s3Uri")
    s3_kms_key_id: str | None = Field(None, alias="s3KmsKeyId")
    """Encrypt the S3 copy with this KMS key (`aws s3 cp --sse aws:kms --sse-kms-key-id`)."""
    endpoints: str = "https://127.0.0.1:2379"

    @field_validator("s3_kms_key_id")
    @classmethod
    def _kms(cls, v: str | None) -> str | None:
        # The forms `--sse-kms-key-id` takes: key id, multi-Region key id, alias, key or alias ARN
        # (AWS CLI `s3 cp` reference; KMS developer guide, key identifiers).
        if v is not None and not _KMS_KEY_RE.match(v):
            raise ValueError("is not a KMS key id, key ARN, alias/NAME or alias ARN|use e.g. alias/etcd-backups or "
                             "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab")
        return v

    @model_validator(mode="after")
    def _kms_needs_s3(self) -> "Etcd":
        if self.s3_kms_key_id and not self.s3_uri:
            raise ValueError("s3KmsKeyId is set but s3Uri is not|set etcd.s3Uri (the copy it encrypts) or remove s3KmsKeyId")
        return self

    @field_validator("s3_uri")
    @classmethod
    def _s3(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9._/-]*)?$", v):
            raise ValueError("is not an S3 URI (letters, digits, '.', '_', '-' and '/' in the prefix)|use s3://bucket/prefix or remove the key")
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
        # The snapshot step prunes old snapshots in this directory: never a
        # system directory or a path that climbs out of one.
        norm = posixpath.normpath(v)
        if norm != v.rstrip("/") or norm.count("/") < 2 or any(c.isspace() or c in "'\"$`\\;&|<>*?" for c in v):
            raise ValueError("must be a dedicated directory at least two levels deep, without '..' or shell "
                             "characters|use e.g. /var/backups/kubehop/etcd")
        return v


class ControlPlane(Model):
    nodes: list[Node] = Field(min_length=1)
    etcd: Etcd = Field(default_factory=Etcd)
    force_apply: bool = Field(False, alias="forceApply")
    join_token_ttl_hours: int = Field(24, ge=2, le=720, alias="joinTokenTtlHours")
    """Lifetime of the bootstrap token new workers join with (published in SSM before pools roll)."""
    join_token_margin_minutes: int = Field(60, ge=5, le=7200, alias="joinTokenMarginMinutes")
    """The least the published token may have left when a stage is verified: a check that the
    first master's renewal timer keeps it valid (it never lets it fall below a sixth of its TTL)."""
    kube_proxy: bool = Field(True, alias="kubeProxy")
    """False when a CNI replaces kube-proxy: the step where kubeadm upgrades the addons checks CoreDNS only."""
    drain_timeout_seconds: int = Field(900, ge=30, le=7200, alias="drainTimeoutSeconds")
    ready_timeout_seconds: int = Field(300, ge=30, le=3600, alias="readyTimeoutSeconds")
    apply_timeout_seconds: int = Field(900, ge=60, le=3600, alias="applyTimeoutSeconds")

    @model_validator(mode="after")
    def _unique(self) -> "ControlPlane":
        names = [n.name for n in self.nodes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"node names repeat: {', '.join(dupes)}|give every master its own node name")
        hosts = [(n.host.lower(), n.port) for n in self.nodes]
        dupes = sorted({self.nodes[i].name for i, h in enumerate(hosts) if hosts.count(h) > 1})
        if dupes:
            raise ValueError(f"masters {', '.join(dupes)} share a host (one master's steps would run on another)|"
                             "give every master its own host (or port)")
        if self.join_token_margin_minutes * 6 > self.join_token_ttl_hours * 60:
            raise ValueError(f"joinTokenMarginMinutes {self.join_token_margin_minutes} is more than a sixth of "
                             f"joinTokenTtlHours {self.join_token_ttl_hours} (the renewal timer keeps at least a sixth "
                             f"left, so the check would fail on a healthy cluster)|set joinTokenMarginMinutes to at most "
                             f"{self.join_token_ttl_hours * 10} or raise joinTokenTtlHours")
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

    @model_validator(mode="after")
    def _skew(self) -> "Adopt":
        if self.worker_version and Version.parse(self.worker_version) > Version.parse(self.kubernetes_version):
            raise ValueError(f"workerVersion {self.worker_version} is newer than kubernetesVersion {self.kubernetes_version}: "
                             "kubelets are never newer than the apiserver|set workerVersion to what the workers run "
                             "(at most the control plane's version)")
        return self


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
    release_name: DnsLabel | None = Field(None, alias="releaseName")
    namespace: DnsLabel | None = None
    values: dict[str, Any] = Field(default_factory=dict)
    check_urls: list[Annotated[str, AfterValidator(_gate_parser(
        _url_check_parse, "use NAME=URL=STATUS, e.g. grafana=https://grafana.example/api/health=200"))]] = Field(
        default_factory=list, alias="checkUrls")
    prometheus_url: Url | None = Field(None, alias="prometheusUrl")
    probe_from: NsName | None = Field(None, alias="probeFrom")
    probe_to: PodPort | None = Field(None, alias="probeTo")

    @field_validator("chart_version", "image_tag")
    @classmethod
    def _release(cls, v: str | None) -> str | None:
        # The catalog compares pins as MAJOR.MINOR.PATCH; a prerelease is never a production pin.
        if v is not None and not _RELEASE_RE.match(v):
            raise ValueError("must be a release version MAJOR.MINOR.PATCH (no prerelease or build suffix)|pin a "
                             "released version, e.g. 4.11.3, or remove the pin to use the catalog's")
        return v


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
    worker_drain_timeout_seconds: int = Field(900, ge=60, le=7080, alias="workerDrainTimeoutSeconds")
    """How long NTH drains a terminating worker (its nodeTerminationGracePeriod, the drain
    timeout in NTH v1.25.6 pkg/node/node.go); each pool's termination hook waits 120 s
    longer, and AWS caps a hook's HeartbeatTimeout at 7200 s (PutLifecycleHook)."""
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
    asg_name: str = Field(alias="asgName", pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,254}$")
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


TrafficTemplate = Annotated[str, AfterValidator(_gate_parser(
    _traffic_template, "write one command line with only {cluster}, {state} and {share}, e.g. dappctl set {cluster} {state} {share}"))]


class TrafficControl(Model):
    """The stack's traffic control; the gates run the one it builds (`runtime`), so a
    control the config accepts is one the gates accept."""

    kind: Literal[traffic_control.KINDS]
    url: Url | None = None
    command: TrafficTemplate | None = None
    status_command: TrafficTemplate | None = Field(None, alias="statusCommand")
    """For kind command: prints the cluster's state, so a change is checked first and verified after."""

    @model_validator(mode="after")
    def _one(self) -> "TrafficControl":
        if self.kind == "http" and not self.url:
            raise ValueError("kind http needs url|set traffic.control.url to the DAPP state endpoint")
        if self.kind == "command" and not (self.command and self.status_command):
            raise ValueError("kind command needs command and statusCommand|set traffic.control.command (with {cluster} "
                             "{state} {share}) and statusCommand (prints the state), so each change is verified")
        try:
            self.runtime()
        except traffic_control.TrafficError as exc:
            raise ValueError(f"{exc}|correct traffic.control as the message says") from None
        return self

    def runtime(self) -> traffic_control.TrafficConfig:
        """The gates' model of this control (kubehop/gates/traffic.py)."""
        return traffic_control.TrafficConfig(kind=self.kind, url=self.url, command=self.command, status_command=self.status_command)

    def argv(self) -> list[str]:
        """The gate flags that rebuild `runtime()` in the gate's process (traffic_control.add_traffic_arguments)."""
        control = self.runtime()
        if control.kind == "http":
            return ["--traffic-kind", "http", "--traffic-url", control.url]
        return ["--traffic-kind", "command", "--traffic-command", control.command,
                "--traffic-status-command", control.status_command]


class Canary(Model):
    prometheus_url: Url | None = Field(None, alias="prometheusUrl")
    share: int = Field(10, ge=1, le=100)
    window_seconds: int = Field(600, ge=60, le=3600, alias="windowSeconds")
    final_share: int = Field(50, ge=0, le=100, alias="finalShare")


class Traffic(Model):
    state: Literal[tuple(traffic_control.CONTROL_STATE)] = "serving"
    """kubehop's spelling; traffic_control.CONTROL_STATE translates it for the traffic control."""
    control: TrafficControl
    canary: Canary = Field(default_factory=Canary)


class Sibling(Model):
    name: str
    stack: str
    region: str | None = None
    """Where the sibling's cutover record is (default: this cluster's region)."""

    @field_validator("region")
    @classmethod
    def _region(cls, v: str | None) -> str | None:
        if v is not None and not re.match(AWS_REGION, v):
            raise ValueError("is not an AWS region|use the sibling's region, such as us-west-2")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError("must be a lowercase DNS label|use the sibling cluster's name, e.g. aws-uswest2-prod-a")
        return v

    @field_validator("stack")
    @classmethod
    def _stack(cls, v: str) -> str:
        # A StackReference name is org/project/stack (Pulumi docs: stack references).
        if not re.match(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", v):
            raise ValueError("must be a fully qualified stack name|use ORG/PROJECT/STACK, e.g. dv-platform/kubehop/prod-a")
        return v


class ServiceSwitch(Model):
    namespace: DnsLabel = "prod"
    name: DnsName
    resource: str = Field("serviceswitch", pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    standby_spec: Annotated[dict[str, Any], AfterValidator(_gate_parser(
        _json_object_parse, "set the spec fields that make the standby serve, e.g. {active: aws-uswest2-prod-a}"))] = Field(
        alias="standbySpec")


class Replication(Model):
    host: Host
    port: int = Field(3306, ge=1, le=65535)
    user: str = "kubehop"
    max_lag_seconds: int = Field(30, ge=0, le=3600, alias="maxLagSeconds")


class Mysql(Model):
    service_switch: ServiceSwitch = Field(alias="serviceSwitch")
    replication: Replication


class Workload(Model):
    namespace: DnsLabel
    workload: str

    @field_validator("workload")
    @classmethod
    def _wl(cls, v: str) -> str:
        if not re.match(r"^(deployment|statefulset)/[a-z0-9][-a-z0-9.]*$", v):
            raise ValueError("must be kind/name|use e.g. deployment/mirrormaker")
        return v


class Kafka(Model):
    prometheus_url: Url = Field(alias="prometheusUrl")
    consumer_lag_query: str = Field("sum by (consumergroup) (kafka_consumergroup_lag)", alias="consumerLagQuery")
    mirror_lag_query: str = Field('sum by (topic) (kafka_consumergroup_lag{consumergroup=~".*mirror.*"})', alias="mirrorLagQuery")
    threshold: int = Field(1000, ge=1)
    key_groups: list[Annotated[str, Field(min_length=1, pattern=r"^[^,\s]+$")]] = Field(default_factory=list, alias="keyGroups")
    key_topics: list[Annotated[str, Field(min_length=1, pattern=r"^[^,\s]+$")]] = Field(default_factory=list, alias="keyTopics")
    """Topics MirrorMaker copies: the mirror-lag gate fails when any of them reports no lag."""
    lag_timeout_seconds: int = Field(3600, ge=60, alias="lagTimeoutSeconds")
    mirror_maker: Workload = Field(alias="mirrorMaker")
    sibling_mirror_maker: Workload = Field(alias="siblingMirrorMaker")


def _objective_parse(text: str) -> None:
    from kubehop.gates.prometheus import parse_objective

    parse_objective(text)


class SloQuery(Model):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    query: str = Field(min_length=1)
    max: float

    @model_validator(mode="after")
    def _as_gate_reads_it(self) -> "SloQuery":
        _gate_parser(_objective_parse, "write one PromQL expression and a finite max")(self.objective)
        return self

    @property
    def objective(self) -> str:
        """The `NAME=PROMQL<=MAX` argument the canary gate parses."""
        return f"{self.name}={self.query}<={self.max:g}"


class NetworkPath(Model):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    source: str = Field(alias="from")
    to: str

    @property
    def spec(self) -> str:
        """The `NAME=from:...,to:...` argument the connectivity gates parse."""
        return f"{self.name}=from:{self.source},to:{self.to}"

    @model_validator(mode="after")
    def _as_gate_reads_it(self) -> "NetworkPath":
        from kubehop.gates import cluster

        parse = cluster.parse_node_path if isinstance(self, NodePath) else cluster.parse_path
        try:
            parse(self.spec)
        except ValueError as exc:
            raise ValueError(f"{self.spec!r}: {exc}|use from: NAMESPACE/POD (nodePaths: a node name) and "
                             "to: NAMESPACE/POD:PORT (networkPaths also HOST:PORT)") from None
        return self


class NodePath(NetworkPath):
    """A path from a node (its hostNetwork probe pod) to a pod."""


class UrlCheck(Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]*$")
    url: Url
    status: int = Field(200, ge=100, le=599)


class Verify(Model):
    network_paths: list[NetworkPath] = Field(default_factory=list, alias="networkPaths")
    node_paths: list[NodePath] = Field(default_factory=list, alias="nodePaths")
    node_probe_pods: str | None = Field(None, alias="nodeProbePods", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[^\s/]+$")
    urls: list[UrlCheck] = Field(default_factory=list)
    endpoints: list[NsName] = Field(default_factory=list)
    pending_grace_seconds: int = Field(300, ge=0, alias="pendingGraceSeconds")
    max_pending: int = Field(0, ge=0, alias="maxPending")
    slo: list[SloQuery] = Field(default_factory=list)
    ignore_pdbs: list[NsName] = Field(default_factory=list, alias="ignorePdbs")



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


def _problems(exc: ValidationError, secret_keys: set[str] | frozenset[str] = frozenset()) -> list[ConfigProblem]:
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
        if isinstance(value, (dict, list)):
            value = "{…}" if isinstance(value, dict) else "[…]"
        key = _key(loc)
        # An unknown key may be a misspelled secret: its value is never shown.
        hidden = err["type"] == "extra_forbidden" or _under_secret(key, secret_keys)
        if err["type"] == "extra_forbidden":
            msg = "is not a kubehop setting"
            near = _near(str(loc[-1]), _known_fields(loc[:-1]))
            fix = f"did you mean {near!r}? " + fix if near else fix
        problems.append(ConfigProblem(key=key, value=value, message=msg, fix=fix, secret=hidden))
    return problems


def _under_secret(key: str, secret_keys: set[str] | frozenset[str]) -> bool:
    return any(key == s or key.startswith(s + ".") or key.startswith(s + "[") for s in secret_keys) or \
        any(key == f"{NS}:{name}" for name in SECRET_KEYS)


def _known_fields(loc: tuple) -> list[str]:
    """The aliases allowed at `loc` (for a did-you-mean hint)."""
    model: Any = StackConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return []
        model = _inner_model(field.annotation)
    if model is None:
        return []
    names = [f.alias or n for n, f in model.model_fields.items()]
    return names + (list(SECRET_KEYS) if model is StackConfig else [])


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (small strings: config keys)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _near(word: str, candidates: list[str]) -> str | None:
    scored = sorted((_distance(word.lower(), c.lower()), c) for c in candidates)
    return scored[0][1] if scored and scored[0][0] <= max(1, len(word) // 4) else None


def _decode(raw: dict[str, Any]) -> tuple[dict[str, Any], list[ConfigProblem]]:
    """Strip the `kubehop:` prefix and parse JSON objects Pulumi hands over as text.

    A key in a namespace one or two edits from `kubehop` (`kubhop:`, `Kubehop:`)
    is a typo that would be silently ignored: refused, its value not shown.
    """
    out: dict[str, Any] = {}
    problems: list[ConfigProblem] = []
    for full, value in raw.items():
        ns, sep, key = full.partition(":")
        if ns != NS:
            if sep and ns.lower() != NS and _distance(ns.lower(), NS) <= 2 or ns.lower() == NS and ns != NS:
                problems.append(ConfigProblem(key=full, secret=True, message=f"is in namespace {ns!r}, not {NS!r}: it would be ignored",
                                              fix=f"rename it to {NS}:{key}"))
            continue
        if key not in SECRET_KEYS and isinstance(value, str) and value[:1] in "[{":
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                problems.append(ConfigProblem(key=full, value=value[:40], message=f"is not valid JSON ({exc.msg})", fix="quote it as YAML in Pulumi.<stack>.yaml"))
                continue
        out[key] = value
    return out, problems


def load(raw: dict[str, Any], secret_keys: set[str] | frozenset[str] = frozenset()) -> StackConfig:
    """Validate a stack's config (every namespace, as Pulumi holds it); raise
    ConfigErrors with every problem. `aws:region` is compared with cluster.region."""
    data, problems = _decode(raw)
    present = set()
    for name in SECRET_KEYS:
        full = f"{NS}:{name}"
        if name in data:
            if full not in secret_keys:
                problems.append(ConfigProblem(key=full, secret=True, message="is a secret but is stored in plain text",
                                              fix=f"run `pulumi config set --secret {full} ...` (for files: `cat FILE | pulumi config set --secret {full}`)"))
            present.add(name)
            data.pop(name)
    data["secretsPresent"] = frozenset(present)
    try:
        cfg = StackConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigErrors(problems + _problems(exc, secret_keys)) from None
    problems += _cross_checks(cfg)
    region = raw.get("aws:region")
    if region is not None and region != cfg.cluster.region:
        problems.append(ConfigProblem(key="aws:region", value=region, message=f"differs from {NS}:cluster.region ({cfg.cluster.region}): "
                                      "resources would be created in another region than the cluster's",
                                      fix="set aws:region and kubehop:cluster.region to the cluster's region"))
    if problems:
        raise ConfigErrors(problems)
    return cfg


def _cross_checks(cfg: StackConfig) -> list[ConfigProblem]:
    """Rules that span keys: secrets the features need, addon pins, pools vs images."""
    return _needed_secrets(cfg) + _addon_checks(cfg) + _pool_checks(cfg) + _production_checks(cfg)


def _needed_secrets(cfg: StackConfig) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
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
    return problems


def _addon_checks(cfg: StackConfig) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
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
    return problems


def _pool_checks(cfg: StackConfig) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
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
    for i, pool in enumerate(cfg.node_pools):
        problems += _label_checks(i, pool)
        if pool.rollout == "after-serving" and pool.database:
            problems.append(ConfigProblem(key=f"{NS}:nodePools[{i}].rollout", value=pool.rollout,
                                          message=f"is for stateless pools; {pool.name} is a database pool",
                                          fix="remove rollout (database pools roll in the window, one node at a time)"))
        if pool.rollout == "after-serving" and cfg.traffic is None:
            problems.append(ConfigProblem(key=f"{NS}:nodePools[{i}].rollout", value=pool.rollout,
                                          message="needs kubehop:traffic: without users moving there is no window to roll after",
                                          fix="remove rollout, or configure kubehop:traffic"))
        if pool.name not in cfg.adopt.launch_templates:
            problems.append(ConfigProblem(key=f"{NS}:adopt.launchTemplates.{pool.name}", message=f"is required: the group {pool.asg_name} is imported with the launch template it runs today",
                                          fix="set {id: lt-..., version: N} from `aws autoscaling describe-auto-scaling-groups`"))
    asgs = [p.asg_name for p in cfg.node_pools]
    for i, asg in enumerate(asgs):
        if asgs.index(asg) != i:
            problems.append(ConfigProblem(key=f"{NS}:nodePools[{i}].asgName", value=asg, message="repeats another pool's Auto Scaling group",
                                          fix="give every pool its own asgName"))
    return problems


def _label_checks(i: int, pool: NodePool) -> list[ConfigProblem]:
    """Labels and taints with the Kubernetes syntax kubelet enforces (kubehop/node_labels.py)."""
    problems = [ConfigProblem(key=f"{NS}:nodePools[{i}].labels.{key}", value=shown, message=message, fix=fix)
                for key, shown, message, fix in node_labels.label_problems(pool.labels)]
    for j, taint in enumerate(pool.taints):
        why = node_labels.key_problem(taint.key)
        if why:
            problems.append(ConfigProblem(key=f"{NS}:nodePools[{i}].taints[{j}].key", value=taint.key, message=f"taint key {why}",
                                          fix="use a key like dv.io/database"))
        why = node_labels.value_problem(taint.value)
        if why:
            problems.append(ConfigProblem(key=f"{NS}:nodePools[{i}].taints[{j}].value", value=taint.value, message=f"taint value {why}",
                                          fix='use e.g. "true"'))
    return problems


def _production_checks(cfg: StackConfig) -> list[ConfigProblem]:
    """Verification, traffic, sibling and Kafka rules of a production choreography."""
    problems: list[ConfigProblem] = []
    if cfg.verify.node_paths and not cfg.verify.node_probe_pods:
        problems.append(ConfigProblem(key=f"{NS}:verify.nodeProbePods", message="is required for nodePaths",
                                      fix="set it to ns/selector of a hostNetwork DaemonSet, e.g. kube-system/app=kubehop-netcheck"))
    if cfg.traffic and not (cfg.traffic.canary.prometheus_url or cfg.kafka):
        problems.append(ConfigProblem(key=f"{NS}:traffic.canary.prometheusUrl", message="is required to watch the SLO queries during the canary",
                                      fix="set the Prometheus URL the SLO queries run against"))
    if cfg.kafka and cfg.sibling is None:
        problems.append(ConfigProblem(key=f"{NS}:sibling", message="is required with kafka: MirrorMaker stops and starts on both clusters",
                                      fix="set kubehop:sibling (name, stack)"))
    if cfg.traffic and not cfg.verify.slo:
        problems.append(ConfigProblem(key=f"{NS}:verify.slo", message="needs at least one query: the canary watches them before users return",
                                      fix="add verify.slo entries (name, query, max), e.g. the error rate and p99 latency"))
    if cfg.sibling and cfg.sibling.name == cfg.cluster.name:
        problems.append(ConfigProblem(key=f"{NS}:sibling.name", value=cfg.sibling.name, message="is this cluster's own name",
                                      fix="set it to the other cluster users move to, e.g. aws-uswest2-prod-a"))
    if cfg.cluster.production and unpinned_host_keys(cfg) and not cfg.ssh.allow_unpinned_host_keys:
        problems.append(ConfigProblem(key=f"{NS}:controlPlane.nodes[].hostKey", value=", ".join(unpinned_host_keys(cfg)),
                                      message="is not pinned on a production cluster: anyone answering on a master's address would get root sessions",
                                      fix="set hostKey from `ssh-keyscan -t ed25519 HOST` for every master (and ssh.bastion.hostKey), "
                                          "or set kubehop:ssh.allowUnpinnedHostKeys: true to accept the risk (the plan warns)"))
    if cfg.traffic and cfg.sibling:
        control = cfg.traffic.control
        field, template = ("url", control.url) if control.kind == "http" else ("statusCommand", control.status_command)
        if template and "{cluster}" not in template:
            problems.append(ConfigProblem(key=f"{NS}:traffic.control.{field}", value=template,
                                          message="has no {cluster} placeholder: the sibling's live state cannot be read before traffic moves",
                                          fix="put {cluster} where the cluster's name goes, e.g. https://dapp.example/api/v1/clusters/{cluster}/state"))
    if cfg.kafka and not cfg.kafka.key_topics:
        problems.append(ConfigProblem(key=f"{NS}:kafka.keyTopics", message="needs at least one topic: the mirror-lag gate must know which topics MirrorMaker copies",
                                      fix="list the mirrored topics, e.g. keyTopics: [events, transactions]"))
    if cfg.kafka and not cfg.kafka.key_groups:
        problems.append(ConfigProblem(key=f"{NS}:kafka.keyGroups", message="needs at least one consumer group: the lag gate must know which groups to wait for",
                                      fix="list the consumer groups, e.g. keyGroups: [velocity-consumer]"))
    if cfg.cluster.production and cfg.traffic is None:
        problems.append(ConfigProblem(key=f"{NS}:traffic", message="is required on a production cluster",
                                      fix="add traffic (state, control) so kubehop can move users off the cluster"))
    return problems


def unpinned_host_keys(cfg: StackConfig) -> list[str]:
    """Machines kubehop would SSH to without checking who answers."""
    out = [n.name for n in cfg.control_plane.nodes if not n.host_key]
    if cfg.ssh.bastion and not cfg.ssh.bastion.host_key:
        out.append("bastion")
    return out


def _catalog_chart(name: str, minor: str) -> str:
    pin = catalog.ADDONS[name].per_minor.get(minor)
    return pin.chart_version if pin else "(none)"
