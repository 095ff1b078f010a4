"""A corpus of bad configs, files and arguments: each exits 2 at plan time
(before the program registers anything), names the key, shows the value (or
hides it, for a secret or unknown key) and gives a fix. None is a traceback."""
from __future__ import annotations

import copy
import os

import pytest
import yaml

from kubehop.plan import cli
from tests.plan_helpers import prod_b

SECRET = "s3cr3t-Value-nobody-may-see"


class Hidden(str):
    """The value must NOT appear anywhere in the output."""


def c(cfg):  # the config map
    return cfg


def setk(path: str, value):
    """Mutation: set a nested key, e.g. setk('kubehop:cluster.region', 'x')."""
    def mutate(cfg):
        top, *rest = path.split(".")
        if not rest:
            cfg[top] = value
            return
        cursor = cfg[top]
        for part in rest[:-1]:
            cursor = cursor[int(part)] if part.isdigit() else cursor.setdefault(part, {})
        last = rest[-1]
        if last.isdigit():
            cursor[int(last)] = value
        else:
            cursor[last] = value
    return mutate


def delk(path: str):
    def mutate(cfg):
        top, *rest = path.split(".")
        if not rest:
            cfg.pop(top)
            return
        cursor = cfg[top]
        for part in rest[:-1]:
            cursor = cursor[int(part)] if part.isdigit() else cursor[part]
        cursor.pop(rest[-1])
    return mutate


def both(*mutations):
    def mutate(cfg):
        for m in mutations:
            m(cfg)
    return mutate


URL_CHECK = "kubehop:addons.ingress-nginx.checkUrls"
T = "kubehop:traffic"
CASES = [
    # --- cluster
    ("cluster name upper", setk("kubehop:cluster.name", "Prod_B"), "kubehop:cluster.name", "Prod_B"),
    ("cluster region", setk("kubehop:cluster.region", "uswest2"), "kubehop:cluster.region", "uswest2"),
    ("aws region differs", setk("aws:region", "eu-west-1"), "aws:region", "eu-west-1"),
    ("imds", setk("kubehop:cluster.imds", "v3"), "kubehop:cluster.imds", "v3"),
    ("production not bool", setk("kubehop:cluster.production", "maybe"), "kubehop:cluster.production", "maybe"),
    ("namespace not dns", setk("kubehop:cluster.dedicatedNamespaces", ["Automation"]), "kubehop:cluster.dedicatedNamespaces[0]", "Automation"),
    ("namespace underscore", setk("kubehop:cluster.dedicatedNamespaces", ["qa_auto"]), "kubehop:cluster.dedicatedNamespaces[0]", "qa_auto"),
    ("namespace too long", setk("kubehop:cluster.dedicatedNamespaces", ["a" * 64]), "kubehop:cluster.dedicatedNamespaces[0]", "a" * 64),
    ("missing cluster", delk("kubehop:cluster"), "kubehop:cluster", None),
    ("unknown cluster key", setk("kubehop:cluster.zone", SECRET), "kubehop:cluster.zone", Hidden(SECRET)),
    # --- versions and policy
    ("version unknown minor", setk("kubehop:kubernetesVersion", "1.99"), "kubehop:kubernetesVersion", "1.99"),
    ("version prerelease", setk("kubehop:kubernetesVersion", "1.27.0-rc.1"), "kubehop:kubernetesVersion", "1.27.0-rc.1"),
    ("version garbage", setk("kubehop:kubernetesVersion", "latest"), "kubehop:kubernetesVersion", "latest"),
    ("version empty", setk("kubehop:kubernetesVersion", ""), "kubehop:kubernetesVersion", None),
    ("target prerelease", setk("kubehop:targetVersion", "1.29.0-beta.0"), "kubehop:targetVersion", "1.29.0-beta.0"),
    ("target below", setk("kubehop:targetVersion", "1.25"), "kubehop:targetVersion", "1.25"),
    ("version skips", setk("kubehop:kubernetesVersion", "1.28"), "kubehop:kubernetesVersion", "1.28"),
    ("policy", setk("kubehop:workerPolicy", "fast"), "kubehop:workerPolicy", "fast"),
    ("adopt minor", setk("kubehop:adopt.kubernetesVersion", "1.26"), "kubehop:adopt.kubernetesVersion", "1.26"),
    ("adopt workers newer", setk("kubehop:adopt.workerVersion", "1.27.16"), "kubehop:adopt", "1.27.16"),
    ("adopt worker minor", setk("kubehop:adopt.workerVersion", "1.25"), "kubehop:adopt.workerVersion", "1.25"),
    ("adopt ami", setk("kubehop:adopt.amis.worker", "ami-xyz"), "kubehop:adopt.amis", None),
    ("adopt ami missing", delk("kubehop:adopt.amis.spark"), "kubehop:adopt.amis.spark", None),
    ("adopt lt id", setk("kubehop:adopt.launchTemplates.workers.id", "template-1"), "kubehop:adopt.launchTemplates.workers.id", "template-1"),
    ("adopt lt version", setk("kubehop:adopt.launchTemplates.workers.version", "$Latest"), "kubehop:adopt.launchTemplates.workers.version", "$Latest"),
    ("adopt lt missing", delk("kubehop:adopt.launchTemplates.spark"), "kubehop:adopt.launchTemplates.spark", None),
    # --- ssh and masters
    ("ssh port", setk("kubehop:ssh.port", 70000), "kubehop:ssh.port", "70000"),
    ("ssh port text", setk("kubehop:ssh.port", "ssh"), "kubehop:ssh.port", "ssh"),
    ("bastion host", setk("kubehop:ssh.bastion.host", "bastion host"), "kubehop:ssh.bastion.host", "bastion host"),
    ("bastion host key", setk("kubehop:ssh.bastion.hostKey", "not-a-key"), "kubehop:ssh.bastion.hostKey", "not-a-key"),
    ("unpinned production", delk("kubehop:ssh.allowUnpinnedHostKeys"), "kubehop:controlPlane.nodes[].hostKey", "master0"),
    ("optout not bool", setk("kubehop:ssh.allowUnpinnedHostKeys", "sure"), "kubehop:ssh.allowUnpinnedHostKeys", "sure"),
    ("master host", setk("kubehop:controlPlane.nodes.1.host", "bad host"), "kubehop:controlPlane.nodes[1].host", "bad host"),
    ("master host shell", setk("kubehop:controlPlane.nodes.1.host", "10.0.0.1;reboot"), "kubehop:controlPlane.nodes[1].host", "10.0.0.1;reboot"),
    ("master name", setk("kubehop:controlPlane.nodes.0.name", "Master_0"), "kubehop:controlPlane.nodes[0].name", "Master_0"),
    ("master host key", setk("kubehop:controlPlane.nodes.0.hostKey", "ssh-dss AAAA"), "kubehop:controlPlane.nodes[0].hostKey", "ssh-dss AAAA"),
    ("master port", setk("kubehop:controlPlane.nodes.0.port", 0), "kubehop:controlPlane.nodes[0].port", "0"),
    ("same master host", setk("kubehop:controlPlane.nodes.1.host", "10.42.1.10"), "kubehop:controlPlane", "master0"),
    ("same master name", setk("kubehop:controlPlane.nodes.2.name", "master0"), "kubehop:controlPlane", "master0"),
    ("even masters", lambda cfg: cfg["kubehop:controlPlane"]["nodes"].pop(), "kubehop:controlPlane", None),
    ("no masters", setk("kubehop:controlPlane.nodes", []), "kubehop:controlPlane.nodes", None),
    ("drain timeout", setk("kubehop:controlPlane.drainTimeoutSeconds", 1), "kubehop:controlPlane.drainTimeoutSeconds", "1"),
    ("join ttl", setk("kubehop:controlPlane.joinTokenTtlHours", 1), "kubehop:controlPlane.joinTokenTtlHours", "1"),
    ("cp typo", setk("kubehop:controlPlane.drainTimeout", 5), "kubehop:controlPlane.drainTimeout", None),
    ("snapshot root", setk("kubehop:controlPlane.etcd.snapshotDir", "/"), "kubehop:controlPlane.etcd.snapshotDir", "/"),
    ("snapshot etc", setk("kubehop:controlPlane.etcd.snapshotDir", "/etc"), "kubehop:controlPlane.etcd.snapshotDir", "/etc"),
    ("snapshot dotdot", setk("kubehop:controlPlane.etcd.snapshotDir", "/var/backups/../../"), "kubehop:controlPlane.etcd.snapshotDir", "/var/backups/../../"),
    ("snapshot relative", setk("kubehop:controlPlane.etcd.snapshotDir", "backups"), "kubehop:controlPlane.etcd.snapshotDir", "backups"),
    ("snapshot shell", setk("kubehop:controlPlane.etcd.snapshotDir", "/var/b/$(reboot)"), "kubehop:controlPlane.etcd.snapshotDir", "/var/b/$(reboot)"),
    ("etcd keep", setk("kubehop:controlPlane.etcd.keep", 0), "kubehop:controlPlane.etcd.keep", "0"),
    ("s3", setk("kubehop:controlPlane.etcd.s3Uri", "bucket/x"), "kubehop:controlPlane.etcd.s3Uri", "bucket/x"),
    ("master name dot edge", setk("kubehop:controlPlane.nodes.0.name", "ip-10-42-1-10.us-west-2."),
     "kubehop:controlPlane.nodes[0].name", "ip-10-42-1-10.us-west-2."),
    ("master name too long", setk("kubehop:controlPlane.nodes.0.name", "a" * 254), "kubehop:controlPlane.nodes[0].name", None),
    ("etcd endpoints list", setk("kubehop:controlPlane.etcd.endpoints", "https://a:2379,https://b:2379"), "kubehop:controlPlane.etcd.endpoints", "https://a:2379,https://b:2379"),
    # --- addons (values the addon gates parse)
    ("unknown addon", setk("kubehop:addons.traefik", {}), "kubehop:addons.traefik", None),
    ("check url no status", setk(URL_CHECK, ["grafana=https://grafana.example/health"]), URL_CHECK + "[0]", "grafana=https://grafana.example/health"),
    ("check url no scheme", setk(URL_CHECK, ["grafana=grafana.example/health=200"]), URL_CHECK + "[0]", "grafana=grafana.example/health=200"),
    ("check url bad status", setk(URL_CHECK, ["g=https://g.example/=ok"]), URL_CHECK + "[0]", "g=https://g.example/=ok"),
    ("check url status range", setk(URL_CHECK, ["g=https://g.example/=999"]), URL_CHECK + "[0]", "g=https://g.example/=999"),
    ("check url no name", setk(URL_CHECK, ["=https://g.example/=200"]), URL_CHECK + "[0]", "=https://g.example/=200"),
    ("probeTo no port", setk("kubehop:addons.calico.probeTo", "prod/dcluster-mysql-0"), "kubehop:addons.calico.probeTo", "prod/dcluster-mysql-0"),
    ("probeTo bad port", setk("kubehop:addons.calico.probeTo", "prod/dcluster-mysql-0:99999"), "kubehop:addons.calico.probeTo", "prod/dcluster-mysql-0:99999"),
    ("probeTo no ns", setk("kubehop:addons.calico.probeTo", "dcluster-mysql-0:3306"), "kubehop:addons.calico.probeTo", "dcluster-mysql-0:3306"),
    ("probeFrom no ns", setk("kubehop:addons.calico.probeFrom", "chi-0"), "kubehop:addons.calico.probeFrom", "chi-0"),
    ("probeFrom flag", setk("kubehop:addons.calico.probeFrom", "prod/--server=evil"), "kubehop:addons.calico.probeFrom", "prod/--server=evil"),
    ("calico probes missing", delk("kubehop:addons.calico.probeFrom"), "kubehop:addons.calico.probeFrom", None),
    ("ksm url scheme", setk("kubehop:addons.kube-state-metrics.prometheusUrl", "kube-state-metrics:8080/metrics"), "kubehop:addons.kube-state-metrics.prometheusUrl", "kube-state-metrics:8080/metrics"),
    ("chart prerelease", setk("kubehop:addons.ingress-nginx.chartVersion", "4.11.8-beta.1"), "kubehop:addons.ingress-nginx.chartVersion", "4.11.8-beta.1"),
    ("chart minor only", setk("kubehop:addons.ingress-nginx.chartVersion", "4.11"), "kubehop:addons.ingress-nginx.chartVersion", "4.11"),
    ("chart incompatible", setk("kubehop:addons.cluster-autoscaler.chartVersion", "9.20.0"), "kubehop:addons.cluster-autoscaler.chartVersion", "9.20.0"),
    ("image tag prerelease", setk("kubehop:addons.cluster-autoscaler.imageTag", "v1.26.0-rc.0"), "kubehop:addons.cluster-autoscaler.imageTag", "v1.26.0-rc.0"),
    ("image tag minor", setk("kubehop:addons.aws-cloud-controller-manager.imageTag", "v1.28.1"), "kubehop:addons.aws-cloud-controller-manager.imageTag", "v1.28.1"),
    ("addon namespace", setk("kubehop:addons.ingress-nginx.namespace", "Ingress"), "kubehop:addons.ingress-nginx.namespace", "Ingress"),
    ("release name", setk("kubehop:addons.ingress-nginx.releaseName", "-x"), "kubehop:addons.ingress-nginx.releaseName", "-x"),
    ("addon enabled", setk("kubehop:addons.calico.enabled", "on-ish"), "kubehop:addons.calico.enabled", "on-ish"),
    ("addon timeout", setk("kubehop:addons.timeoutSeconds", 5), "kubehop:addons.timeoutSeconds", "5"),
    # --- images and pools
    ("cni sha", setk("kubehop:nodeImages.cniPluginsSha256", "abc"), "kubehop:nodeImages.cniPluginsSha256", "abc"),
    ("hadoop sha", setk("kubehop:nodeImages.spark.hadoopSha512", "xyz"), "kubehop:nodeImages.spark.hadoopSha512", "xyz"),
    ("pinned ami", setk("kubehop:nodeImages.pinned", {"worker": "ami-1"}), "kubehop:nodeImages.pinned", None),
    ("images missing", delk("kubehop:nodeImages"), "kubehop:nodeImages", None),
    ("pool name", setk("kubehop:nodePools.0.name", "Workers"), "kubehop:nodePools[0].name", "Workers"),
    ("pool same name", setk("kubehop:nodePools.1.name", "workers"), "kubehop:nodePools[1].name", "workers"),
    ("pool same asg", setk("kubehop:nodePools.1.asgName", "aws-uswest2-prod-b-workers"), "kubehop:nodePools[1].asgName", "aws-uswest2-prod-b-workers"),
    ("asg name shell", setk("kubehop:nodePools.1.asgName", "db;rm -rf"), "kubehop:nodePools[1].asgName", "db;rm -rf"),
    ("pool sizes", both(setk("kubehop:nodePools.0.minSize", 9), setk("kubehop:nodePools.0.maxSize", 3)), "kubehop:nodePools[0]", None),
    ("pool role", setk("kubehop:nodePools.0.role", "gpu"), "kubehop:nodePools[0].role", "gpu"),
    ("pool subnets", setk("kubehop:nodePools.0.subnetIds", []), "kubehop:nodePools[0].subnetIds", None),
    ("pool healthy", setk("kubehop:nodePools.0.minHealthyPercentage", 150), "kubehop:nodePools[0].minHealthyPercentage", "150"),
    ("taint effect", setk("kubehop:nodePools.2.taints.0.effect", "Sometimes"), "kubehop:nodePools[2].taints[0].effect", "Sometimes"),
    ("pool typo", setk("kubehop:nodePools.0.asg", "x"), "kubehop:nodePools[0].asg", None),
    # --- traffic
    ("traffic state", setk(f"{T}.state", "paused"), f"{T}.state", "paused"),
    ("traffic state available", setk(f"{T}.state", "available"), f"{T}.state", "available"),
    ("traffic url no scheme", setk(f"{T}.control.url", "dapp-admin.dv-api.com/api/{cluster}"), f"{T}.control.url", "dapp-admin.dv-api.com/api/{cluster}"),
    ("traffic url ftp", setk(f"{T}.control.url", "ftp://dapp/{cluster}"), f"{T}.control.url", "ftp://dapp/{cluster}"),
    ("traffic url no cluster", setk(f"{T}.control.url", "https://dapp.example/state"), f"{T}.control.url", "https://dapp.example/state"),
    ("traffic http no url", delk(f"{T}.control.url"), f"{T}.control", None),
    ("traffic kind", setk(f"{T}.control.kind", "grpc"), f"{T}.control.kind", "grpc"),
    ("command no status", setk(f"{T}.control", {"kind": "command", "command": "dapp set {cluster} {state} {share}"}), f"{T}.control", None),
    ("command quote", setk(f"{T}.control", {"kind": "command", "command": "dapp set '{cluster}", "statusCommand": "dapp get {cluster}"}),
     f"{T}.control.command", "dapp set '{cluster}"),
    ("command placeholder", setk(f"{T}.control", {"kind": "command", "command": "dapp set {cluster} {mode}", "statusCommand": "dapp get {cluster}"}),
     f"{T}.control.command", "dapp set {cluster} {mode}"),
    ("status command empty", setk(f"{T}.control", {"kind": "command", "command": "dapp set {cluster} {state} {share}", "statusCommand": "  "}),
     f"{T}.control.statusCommand", None),
    ("canary share", setk(f"{T}.canary.share", 0), f"{T}.canary.share", "0"),
    ("canary window", setk(f"{T}.canary.windowSeconds", 5), f"{T}.canary.windowSeconds", "5"),
    ("canary prometheus", setk(f"{T}.canary.prometheusUrl", "prometheus:9090"), f"{T}.canary.prometheusUrl", "prometheus:9090"),
    ("no traffic in prod", delk(T), T, None),
    ("traffic typo", setk(f"{T}.sate", "maintaining"), f"{T}.sate", None),
    # --- sibling, mysql, kafka
    ("sibling is self", setk("kubehop:sibling.name", "aws-uswest2-prod-b"), "kubehop:sibling.name", "aws-uswest2-prod-b"),
    ("sibling name", setk("kubehop:sibling.name", "Prod A"), "kubehop:sibling.name", "Prod A"),
    ("sibling stack", setk("kubehop:sibling.stack", "prod-a"), "kubehop:sibling.stack", "prod-a"),
    ("sibling region", setk("kubehop:sibling.region", "uswest2"), "kubehop:sibling.region", "uswest2"),
    ("pool rollout word", setk("kubehop:nodePools.0.rollout", "later"), "kubehop:nodePools[0].rollout", "later"),
    ("database pool after serving", setk("kubehop:nodePools.1.rollout", "after-serving"), "kubehop:nodePools[1].rollout", "after-serving"),
    ("kafka needs sibling", delk("kubehop:sibling"), "kubehop:sibling", None),
    ("standby empty", setk("kubehop:mysql.serviceSwitch.standbySpec", {}), "kubehop:mysql.serviceSwitch.standbySpec", None),
    ("standby not object", setk("kubehop:mysql.serviceSwitch.standbySpec", "prod-a"), "kubehop:mysql.serviceSwitch.standbySpec", "prod-a"),
    ("switch namespace", setk("kubehop:mysql.serviceSwitch.namespace", "Prod"), "kubehop:mysql.serviceSwitch.namespace", "Prod"),
    ("switch name", setk("kubehop:mysql.serviceSwitch.name", "--all"), "kubehop:mysql.serviceSwitch.name", "--all"),
    ("switch resource", setk("kubehop:mysql.serviceSwitch.resource", "-A"), "kubehop:mysql.serviceSwitch.resource", "-A"),
    ("replication host", setk("kubehop:mysql.replication.host", "db host"), "kubehop:mysql.replication.host", "db host"),
    ("replication port", setk("kubehop:mysql.replication.port", 0), "kubehop:mysql.replication.port", "0"),
    ("kafka prometheus", setk("kubehop:kafka.prometheusUrl", "prometheus.monitoring:9090"), "kubehop:kafka.prometheusUrl", "prometheus.monitoring:9090"),
    ("kafka threshold", setk("kubehop:kafka.threshold", 0), "kubehop:kafka.threshold", "0"),
    ("kafka group comma", setk("kubehop:kafka.keyGroups", ["a,b"]), "kubehop:kafka.keyGroups[0]", "a,b"),
    ("kafka groups empty", setk("kubehop:kafka.keyGroups", []), "kubehop:kafka.keyGroups", None),
    ("kafka topics empty", delk("kubehop:kafka.keyTopics"), "kubehop:kafka.keyTopics", None),
    ("workload", setk("kubehop:kafka.mirrorMaker.workload", "mirrormaker"), "kubehop:kafka.mirrorMaker.workload", "mirrormaker"),
    ("workload namespace", setk("kubehop:kafka.siblingMirrorMaker.namespace", "--kubeconfig=/x"), "kubehop:kafka.siblingMirrorMaker.namespace", "--kubeconfig=/x"),
    # --- verify (values the verification gates parse)
    ("endpoint flag", setk("kubehop:verify.endpoints", ["prod/--server=https://evil"]), "kubehop:verify.endpoints[0]", "prod/--server=https://evil"),
    ("endpoint no ns", setk("kubehop:verify.endpoints", ["dcluster-mysql"]), "kubehop:verify.endpoints[0]", "dcluster-mysql"),
    ("path to no port", setk("kubehop:verify.networkPaths.0.to", "prod/dcluster-mysql-0:x"), "kubehop:verify.networkPaths[0]", "prod/dcluster-mysql-0:x"),
    ("path external no port", setk("kubehop:verify.networkPaths.1.to", "www.amazon.com"), "kubehop:verify.networkPaths[1]", "www.amazon.com"),
    ("path from no ns", setk("kubehop:verify.networkPaths.0.from", "chi-0"), "kubehop:verify.networkPaths[0]", "chi-0"),
    ("path name", setk("kubehop:verify.networkPaths.0.name", "chi=mysql"), "kubehop:verify.networkPaths[0].name", "chi=mysql"),
    ("node path from pod", setk("kubehop:verify.nodePaths.0.from", "prod/pod"), "kubehop:verify.nodePaths[0]", "prod/pod"),
    ("node probe pods", setk("kubehop:verify.nodeProbePods", "app=netcheck"), "kubehop:verify.nodeProbePods", "app=netcheck"),
    ("node probe missing", delk("kubehop:verify.nodeProbePods"), "kubehop:verify.nodeProbePods", None),
    ("verify url", setk("kubehop:verify.urls.0.url", "grafana-mgt.dv-api.com/api/health"), "kubehop:verify.urls[0].url", "grafana-mgt.dv-api.com/api/health"),
    ("verify url status", setk("kubehop:verify.urls.0.status", 42), "kubehop:verify.urls[0].status", "42"),
    ("slo name", setk("kubehop:verify.slo.0.name", "error rate"), "kubehop:verify.slo[0].name", "error rate"),
    ("slo empty query", setk("kubehop:verify.slo.0.query", ""), "kubehop:verify.slo[0].query", None),
    ("slo max", setk("kubehop:verify.slo.0.max", "low"), "kubehop:verify.slo[0].max", "low"),
    ("slo missing", delk("kubehop:verify.slo"), "kubehop:verify.slo", None),
    ("pdb flag", setk("kubehop:verify.ignorePdbs", ["kube-system/-A"]), "kubehop:verify.ignorePdbs[0]", "kube-system/-A"),
    ("pending", setk("kubehop:verify.maxPending", -1), "kubehop:verify.maxPending", "-1"),
    # --- keys, namespaces and secrets
    ("namespace typo", setk("kubhop:targetVersion", "1.29"), "kubhop:targetVersion", Hidden("1.29")),
    ("namespace case", setk("Kubehop:targetVersion", "1.29"), "Kubehop:targetVersion", Hidden("1.29")),
    ("namespace typo secret", setk("kubehopp:mysqlPassword", SECRET), "kubehopp:mysqlPassword", Hidden(SECRET)),
    ("unknown top key", setk("kubehop:targetVersoin", "1.29"), "kubehop:targetVersoin", Hidden("1.29")),
    ("misspelled secret", setk("kubehop:mysqlPasword", SECRET), "kubehop:mysqlPasword", Hidden(SECRET)),
    ("dotted secret", setk("kubehop:mysql.password", SECRET), "kubehop:mysql.password", Hidden(SECRET)),
    ("secret under object", setk("kubehop:mysql.replication.password", SECRET), "kubehop:mysql.replication.password", Hidden(SECRET)),
    ("plain secret", setk("kubehop:sshPrivateKey", SECRET), "kubehop:sshPrivateKey", Hidden(SECRET)),
    ("plain token", setk("kubehop:trafficToken", SECRET), "kubehop:trafficToken", Hidden(SECRET)),
    ("missing secret", delk("kubehop:sshPrivateKey"), "kubehop:sshPrivateKey", None),
    ("missing mysql secret", delk("kubehop:mysqlPassword"), "kubehop:mysqlPassword", None),
    ("no namespace", setk("targetVersion", SECRET), "config.targetVersion", Hidden(SECRET)),
    ("bad json", setk("kubehop:verify", "{not json"), "kubehop:verify", None),
]

FILES = [
    ("yaml list", b"- a\n- b\n", "--config", "list"),
    ("yaml scalar", b"just text\n", "--config", "str"),
    ("empty file", b"", "kubehop:cluster", None),
    ("config list", b"config: [1, 2]\n", "config", None),
    ("non utf8", b"config:\n  kubehop:kubernetesVersion: \"1.26\xff\"\n", "--config", None),
    ("duplicate key", b"config:\n  kubehop:workerPolicy: each-hop\n  kubehop:workerPolicy: efficient\n", "--config", None),
    ("invalid yaml", b"config: {a: [\n", "--config", None),
    ("alias bomb", b"a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                   b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                   b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n", "--config", None),
    ("oversized", b"config: {}\n# " + b"x" * (2 << 20) + b"\n", "--config", None),
]


def plan(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def check_refusal(code, out, err, key, value):
    assert code == 2, err
    assert out == "" and "Traceback" not in err
    assert key in err, err
    assert "Fix:" in err
    if isinstance(value, Hidden):
        assert value not in err and "(not shown)" in err, err
    elif value is not None:
        assert value in err, err


@pytest.mark.parametrize("label, mutate, key, value", CASES, ids=[x[0] for x in CASES])
def test_bad_config_exits_2_with_key_value_and_fix(label, mutate, key, value, tmp_path, capsys):
    data = copy.deepcopy(prod_b())
    mutate(data["config"])
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    code, out, err = plan(["--stack", "prod-b", "--config", str(path)], capsys)
    check_refusal(code, out, err, key, value)


@pytest.mark.parametrize("label, content, key, value", FILES, ids=[x[0] for x in FILES])
def test_bad_file_exits_2(label, content, key, value, tmp_path, capsys):
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_bytes(content)
    code, out, err = plan(["--stack", "prod-b", "--config", str(path)], capsys)
    check_refusal(code, out, err, key, value)


def test_directory_and_unreadable_files_exit_2(tmp_path, capsys):
    check_refusal(*plan(["--stack", "prod-b", "--config", str(tmp_path)], capsys), "--config", None)
    check_refusal(*plan(["--stack", "prod-b", "--config", str(tmp_path / "nope.yaml")], capsys), "--config", None)
    locked = tmp_path / "locked.yaml"
    locked.write_text("config: {}\n")
    locked.chmod(0)
    if os.geteuid() != 0:  # root reads anything
        check_refusal(*plan(["--stack", "prod-b", "--config", str(locked)], capsys), "--config", None)


ARGS = [
    ("empty to", ["--to", ""], "--to"),
    ("empty stack", ["--stack", ""], "--stack"),
    ("empty config", ["--config", ""], "--config"),
    ("empty policy", ["--worker-policy", ""], "--worker-policy"),
    ("empty outputs", ["--outputs", ""], "--outputs"),
    ("unknown to", ["--to", "1.99"], "--to"),
    ("prerelease to", ["--to", "1.29.0-rc.1"], "--to"),
    ("older to", ["--to", "1.25"], "--to"),
    ("bad policy", ["--worker-policy", "fast"], "--worker-policy"),
    ("bad sibling state", ["--sibling-state", "switching"], "--sibling-state"),
]


@pytest.mark.parametrize("label, extra, key", ARGS, ids=[x[0] for x in ARGS])
def test_bad_arguments_exit_2(label, extra, key, capsys):
    argv = ["--stack", "prod-b", *extra]
    if extra[0] == "--stack":
        argv = extra
    code, out, err = plan(argv, capsys)
    assert code == 2 and out == "" and "Traceback" not in err
    assert key in err and "Fix:" in err, err


def test_the_corpus_is_large_enough():
    assert len(CASES) + len(FILES) + len(ARGS) + 3 >= 100


def test_strict_exits_3_on_warnings(capsys):
    code, out, err = plan(["--stack", "prod-b", "--to", "1.27", "--strict"], capsys)
    assert code == 3 and "--strict" in err and out  # the plan is still printed
    code, _, _ = plan(["--stack", "prod-b", "--to", "1.27"], capsys)
    assert code == 0
