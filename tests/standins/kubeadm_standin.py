"""Stand-ins for kubeadm, systemd-run and systemctl on a fake master whose
cluster is a real loopback API server (tests/helpers/kube_api.py), and a
`kubectl` that answers `version --client` from the installed package and
hands everything else to the REAL kubectl.

Called like tests/standins/cp_standin.py (`python -S standin.py RIG TOOL ARGS`),
sharing its RIG/state.json (packages, holds, apt index; "root": the node's
KUBEHOP_ROOT, "node_name", "api": the API server URL) and RIG/calls.jsonl.
apt-get, apt-mark, kubelet, curl and gpg stay with cp_standin.py.

kubeadm follows kubehop/kubeadm_upgrade.py for the minor of the installed
kubeadm package (the one home of per-minor behaviour, with its sources):
- `upgrade apply vX`: the version policy of cmd/kubeadm/app/phases/upgrade/
  policy.go (one minor at a time, never above kubeadm's own minor, a higher
  patch than kubeadm's only with --force), then the static pods one at a time in
  MANIFEST_ORDER (etcd, kube-apiserver, kube-controller-manager, kube-scheduler;
  an equal manifest is skipped: "Current and new manifests of ... are equal"),
  each followed by its mirror pod in the API (what the kubelet does), then the
  kubeadm-config upload, the kubelet config (/var/lib/kubelet/config.yaml), and
  the addons: before 1.28 always; from 1.28 only when every kube-apiserver pod
  runs this node's image (UnupgradedControlPlaneInstances), else the 1.28+
  skip line and exit 0.
- `upgrade node`: the same static pods and kubelet config to the kubeadm-config
  version (refused when kubeadm's minor is older), and from 1.28 the addons when
  this is the last master to move; before 1.28 never the addons.
- `config images list`: CoreDNS at the tag of kubeadm's own minor.
state["kubeadm_die_after"] = COMPONENT makes the next upgrade stop dead (exit
137, like SIGKILL) right after writing that manifest; state["kubeadm_sleep"]
makes it pause after etcd (a dropped connection meanwhile).

systemd-run (systemd-run(1), systemd.service(5), src/run/run.c): --unit NAME
--collect --wait --quiet --service-type=exec and -p/--property RuntimeMaxSec=,
StandardInput=null, StandardOutput=/StandardError=append:PATH. The command must
be absolute; it runs in a new session with a clean environment, so killing the
caller leaves it running; a second start of a loaded unit fails with "Unit
NAME.service already exists."; --wait returns the exit status (success 0,
exit-code its status, a timeout or signal 1) once the unit is no longer active;
--collect unloads it when it ends.
systemctl: daemon-reload, restart/is-active kubelet (restart: the node reports
the installed kubelet, NotReady for a moment), is-active of kubehop units.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))  # the checkout, for kubehop/
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cp_standin as base  # noqa: E402  (same argv: RIG TOOL ARGS)

# Every call of every tool starts this program afresh (about 120 per stage run), so what only
# one tool needs is imported there: urllib.request alone costs more than the interpreter's start.


def model():
    """kubehop's kubeadm model (kubehop/kubeadm_upgrade.py); only kubeadm needs it."""
    from kubehop import kubeadm_upgrade

    return kubeadm_upgrade

RIG, TOOL, ARGV = base.RIG, base.TOOL, base.ARGV
UNITS = Path(RIG) / "units"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # systemd's default PATH for services


def state() -> dict:
    return base.load()


def update(change) -> None:
    import fcntl

    with open(os.path.join(RIG, "state.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = base.load()
        change(current)
        base.save(current)


# ---------------------------------------------------------------- the API server
def api(method: str, path: str, body: dict | None = None) -> dict:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(state()["api"] + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/merge-patch+json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise LookupError(path) from None
        base.die(1, f"error: {method} {path}: {exc.code} {exc.read().decode()}")


def cluster_config() -> str:
    return api("GET", "/api/v1/namespaces/kube-system/configmaps/kubeadm-config")["data"]["ClusterConfiguration"]


def cluster_version() -> str:
    match = re.search(r"^kubernetesVersion:\s*(v\S+)", cluster_config(), re.M)
    return match.group(1) if match else ""


# ---------------------------------------------------------------- kubeadm
def own() -> str:
    return "v" + base.plain(state()["packages"]["kubeadm"])


def minor_of(version: str) -> int:
    return int(version.lstrip("v").split(".")[1])


def manifest(component: str) -> Path:
    return Path(state()["root"]) / "etc/kubernetes/manifests" / f"{component}.yaml"


def write_component(component: str, version: str) -> None:
    """One static pod: the manifest, then (the kubelet's part) its mirror pod."""
    path = manifest(component)
    text = path.read_text()
    if component == "etcd":
        path.write_text(text)  # kubeadm rewrites it first; its etcd version is its own
        print("[upgrade/staticpods] Component \"etcd\" upgraded successfully!")
        return
    if f"{component}:{version}" in text:
        print(f"[upgrade/staticpods] Current and new manifests of {component} are equal, skipping upgrade")
        return
    path.write_text(re.sub(rf"({component}:)v[0-9][^\s\"']*", rf"\g<1>{version}", text))
    node = state()["node_name"]
    pod = f"/api/v1/namespaces/kube-system/pods/{component}-{node}"
    current = api("GET", pod)
    for c in current["spec"]["containers"]:
        if c["name"] == component:
            c["image"] = f"registry.k8s.io/{component}:{version}"
    api("PATCH", pod, {"spec": {"containers": current["spec"]["containers"]}})
    print(f"[upgrade/staticpods] Component \"{component}\" upgraded successfully!")


def control_plane(version: str) -> None:
    for component in model().MANIFEST_ORDER:
        write_component(component, version)
        st = state()
        if component == "etcd" and st.get("kubeadm_sleep"):
            update(lambda s: s.pop("kubeadm_sleep", None))
            time.sleep(st["kubeadm_sleep"])
        if st.get("kubeadm_die_after") == component:
            update(lambda s: s.pop("kubeadm_die_after", None))
            sys.stdout.flush()
            os._exit(137)


def write_kubelet_config(version: str) -> None:
    path = Path(state()["root"]) / "var/lib/kubelet/config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n# written by kubeadm {own()} for {version}\n")
    print("[upgrade] Backing up kubelet config file to /etc/kubernetes/tmp/kubeadm-kubelet-config/config.yaml\n"
          "[kubelet-start] Writing kubelet configuration to file \"/var/lib/kubelet/config.yaml\"")


def unupgraded() -> list[str]:
    """kube-apiserver pods whose image differs from this node's (UnupgradedControlPlaneInstances)."""
    pods = api("GET", "/api/v1/namespaces/kube-system/pods?labelSelector=component%3Dkube-apiserver")["items"]
    images = {p["spec"]["nodeName"]: next(c["image"] for c in p["spec"]["containers"] if c["name"] == "kube-apiserver")
              for p in pods}
    mine = images[state()["node_name"]]
    return sorted(n for n, image in images.items() if image != mine)


def addons(version: str, skip_line: str) -> None:
    behaviour = model().kubeadm_minor(minor_of(own()))
    if behaviour.addons_wait_for_all_masters:
        behind = unupgraded()
        if behind:
            print(skip_line.format(nodes="[" + " ".join(behind) + "]"))
            return
    for kind, name, image in (("daemonsets", "kube-proxy", f"registry.k8s.io/kube-proxy:{version}"),
                              ("deployments", "coredns", f"registry.k8s.io/coredns/coredns:{behaviour.coredns}")):
        path = f"/apis/apps/v1/namespaces/kube-system/{kind}/{name}"
        try:
            current = api("GET", path)
        except LookupError:
            continue
        containers = current["spec"]["template"]["spec"]["containers"]
        containers[0]["image"] = image
        api("PATCH", path, {"spec": {"template": {"spec": {"containers": containers}}}})
        print(f"[addons] Applied essential addon: {'CoreDNS' if name == 'coredns' else name}")


def version_policy(target: str, force: bool) -> None:
    """EnforceVersionPolicies (cmd/kubeadm/app/phases/upgrade/policy.go)."""
    cluster, mine = cluster_version(), own()
    print(f"[upgrade/versions] Cluster version: {cluster}\n[upgrade/versions] kubeadm version: {mine}")
    mandatory, skippable = [], []
    if minor_of(target) > minor_of(cluster) + 1:
        mandatory.append(f'Specified version to upgrade to "{target}" is too high; kubeadm can upgrade only 1 minor version at a time')
    if base.vkey(mine) < base.vkey(target):
        if minor_of(target) > minor_of(mine):
            mandatory.append(f'Specified version to upgrade to "{target}" is at least one minor release higher than the '
                             f'kubeadm minor release ({minor_of(target)} > {minor_of(mine)}). Such an upgrade is not supported')
        else:
            skippable.append(f'Specified version to upgrade to "{target}" is higher than the kubeadm version "{mine}". '
                             f'Upgrade kubeadm first using the tool you used to install kubeadm')
    if mandatory or (skippable and not force):
        lines = "\n".join(f"\t- {e}" for e in mandatory + skippable)
        hint = "" if mandatory else "\nCan be bypassed if you pass the --force flag"
        base.die(1, f"[upgrade/version] FATAL: the --version argument is invalid due to these errors:\n\n{lines}\n{hint}")


def upgrade_apply() -> None:
    target = next((a for a in ARGV[2:] if a.startswith("v")), None)
    if "--yes" not in ARGV and "-y" not in ARGV:
        base.die(1, "[upgrade/confirm] Are you sure you want to proceed? [y/N]: won't proceed; the user didn't answer (Y|n) in order to continue")
    version_policy(target, "--force" in ARGV)
    print(f'[upgrade/apply] Upgrading your Static Pod-hosted control plane to version "{target}"...')
    control_plane(target)
    config = re.sub(r"^kubernetesVersion:.*$", f"kubernetesVersion: {target}", cluster_config(), flags=re.M)
    api("PATCH", "/api/v1/namespaces/kube-system/configmaps/kubeadm-config", {"data": {"ClusterConfiguration": config}})
    print('[upload-config] Storing the configuration used in ConfigMap "kubeadm-config" in the "kube-system" Namespace')
    write_kubelet_config(target)
    addons(target, model().APPLY_SKIP_LINE)
    print(f'[upgrade/successful] SUCCESS! Your cluster was upgraded to "{target}". Enjoy!')


def upgrade_node() -> None:
    target, mine = cluster_version(), own()
    if minor_of(target) > minor_of(mine):
        base.die(1, f"[upgrade/version] FATAL: the cluster's kubernetesVersion {target} is newer than kubeadm {mine}")
    print(f'[upgrade] Upgrading your Static Pod-hosted control plane instance to version "{target}"...')
    control_plane(target)
    print("[upgrade] The control plane instance for this node was successfully updated!")
    write_kubelet_config(target)
    if model().kubeadm_minor(minor_of(mine)).addons_wait_for_all_masters:
        addons(target, model().NODE_SKIP_LINE)
    print("[upgrade] The configuration for this node was successfully updated!\n"
          "[upgrade] Now you should go ahead and upgrade the kubelet package using your package manager.")


def kubeadm() -> None:
    mine = own()
    if ARGV[:1] == ["version"]:
        print(mine if "short" in ARGV else f'kubeadm version: &version.Info{{GitVersion:"{mine}"}}')
    elif ARGV[:3] == ["config", "images", "list"]:
        version = ARGV[ARGV.index("--kubernetes-version") + 1] if "--kubernetes-version" in ARGV else mine
        for component in model().VERSIONED_MANIFESTS + ("kube-proxy",):
            print(f"registry.k8s.io/{component}:{version}")
        print(f"registry.k8s.io/coredns/coredns:{model().kubeadm_minor(minor_of(mine)).coredns}")
    elif ARGV[:2] == ["upgrade", "plan"]:
        target = next((a for a in ARGV[2:] if a.startswith("v")), mine)
        version_policy(target, False)
        print(f"You can now apply the upgrade by executing the following command:\n\n\tkubeadm upgrade apply {target}")
    elif ARGV[:2] == ["upgrade", "apply"]:
        upgrade_apply()
    elif ARGV[:2] == ["upgrade", "node"]:
        upgrade_node()
    else:
        base.die(1, f"stand-in kubeadm does not know {ARGV}")


# ---------------------------------------------------------------- systemd-run, systemctl
def unit_file(unit: str) -> Path:
    return UNITS / (unit if unit.endswith(".service") else unit + ".service")


def unit_active(unit: str) -> bool:
    path = unit_file(unit)
    if not path.exists():
        return False
    try:
        os.kill(json.loads(path.read_text())["pid"], 0)
        return True
    except ProcessLookupError:
        path.unlink(missing_ok=True)  # its supervisor died with it: nothing is loaded
        return False
    except FileNotFoundError:
        return False


def write_unit(service: str, pid: int, command: list[str]) -> None:
    """Atomically: a concurrent `unit_active` never reads a half-written file."""
    tmp = UNITS / f".{service}.{pid}.tmp"
    tmp.write_text(json.dumps({"pid": pid, "command": command, "started": time.time()}))
    os.replace(tmp, unit_file(service))


def systemd_run() -> None:
    import secrets
    import signal
    import subprocess

    opts, props, i = {}, {}, 0
    while i < len(ARGV) and ARGV[i] != "--":
        a = ARGV[i]
        if a in ("-p", "--property"):
            key, _, value = ARGV[i + 1].partition("=")
            props[key] = value
            i += 2
            continue
        if a.startswith("--property="):
            key, _, value = a.split("=", 1)[1].partition("=")
            props[key] = value
        elif a.startswith("--unit="):
            opts["unit"] = a.split("=", 1)[1]
        elif a.startswith("--service-type="):
            opts["type"] = a.split("=", 1)[1]
        elif a in ("--collect", "--wait", "--quiet"):
            opts[a] = True
        else:
            base.die(1, f"stand-in systemd-run does not model {a}")
        i += 1
    command = ARGV[i + 1:]
    if not command or not command[0].startswith("/"):
        base.die(1, f"stand-in systemd-run: kubehop passes an absolute command, got {command}")
    unit = opts.get("unit") or f"run-u{secrets.randbelow(10**6)}"
    service = unit if unit.endswith(".service") else unit + ".service"
    UNITS.mkdir(exist_ok=True)
    if unit_active(service):
        base.die(1, f"Failed to start transient service unit: Unit {service} already exists.")
    token = secrets.token_hex(4)
    result = UNITS / f"{service}.{token}.result"
    limit = float(props.get("RuntimeMaxSec", "0") or 0)
    out = props.get("StandardOutput", "")
    log = out.split(":", 1)[1] if out.startswith("append:") else os.devnull
    write_unit(service, os.getpid(), command)
    if os.fork() == 0:  # the service manager's side: a new session that outlives the caller
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # nothing of the caller's session: its pipes may close any time
            os.dup2(devnull, fd)
        write_unit(service, os.getpid(), command)
        with open(log, "ab") as fh:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=fh, stderr=fh,
                                    env={"PATH": SYSTEM_PATH, "LANG": "C"}, start_new_session=True)
            try:
                code = proc.wait(timeout=limit or None)
                outcome = "success" if code == 0 else "exit-code" if code > 0 else "signal"
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
                code, outcome = 1, "timeout"
        result.write_text(json.dumps({"result": outcome, "status": code}))
        unit_file(service).unlink(missing_ok=True)  # --collect: unloaded once it ended
        os._exit(0)
    if not opts.get("--wait"):
        return
    # --wait returns once the unit is inactive or failed with no job pending (src/run/run.c
    # run_context_check_done), so `systemctl is-active` right after it says not active: wait
    # for the result and for the unit to be gone (the service side writes one, then unlinks).
    while not result.exists() or unit_file(service).exists():
        if not unit_active(service) and not result.exists():
            base.die(1, f"Job for {service} failed: its supervisor died (stand-in)")
        time.sleep(0.05)
    done = json.loads(result.read_text())
    result.unlink()
    if not opts.get("--quiet"):
        print(f"Finished with result: {done['result']}", file=sys.stderr)
    sys.exit(0 if done["result"] == "success" else done["status"] if done["result"] == "exit-code" else 1)


def systemctl() -> None:
    words = [a for a in ARGV if not a.startswith("-")]
    quiet = "--quiet" in ARGV or "-q" in ARGV
    if words == ["daemon-reload"]:
        return
    if words == ["restart", "kubelet"]:
        st = state()
        kubelet = "v" + base.plain(st["packages"]["kubelet"])
        api("PATCH", f"/api/v1/nodes/{st['node_name']}/status", {
            "metadata": {"annotations": {"standin.test/ready-at": str(time.time() + st.get("ready_delay", 0.3))}},
            "status": {"nodeInfo": {"kubeletVersion": kubelet},
                       "conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]}})
        update(lambda s: s.update(kubelet_running=kubelet.lstrip("v"), kubelet_active=True))
        return
    if len(words) == 2 and words[0] == "is-active":
        active = state().get("kubelet_active", True) if words[1] == "kubelet" else unit_active(words[1])
        if not quiet:
            print("active" if active else "inactive")
        sys.exit(0 if active else 3)
    base.die(1, f"stand-in systemctl does not know {ARGV}")


def kubectl() -> None:
    if "version" in ARGV and "--client" in ARGV:
        version = "v" + base.plain(state()["packages"]["kubectl"])
        print(json.dumps({"clientVersion": {"major": "1", "gitVersion": version, "platform": "linux/amd64"}}, indent=2))
        return
    real = state()["real_kubectl"]
    os.execv(real, [real, *ARGV])


def injected() -> None:
    """The failures a test injected (cp_standin's state["fail"] format)."""
    joined = " ".join(ARGV)
    for f in state().get("fail", []):
        if f["cmd"] == TOOL and re.search(f["match"], joined) and f.get("times", 1) != 0:
            if f.get("times") is not None:
                update(lambda s, f=f: next(x for x in s["fail"] if x == f).update(times=f["times"] - 1))
            time.sleep(f.get("sleep", 0))
            base.die(f.get("rc", 1), f.get("stderr", f"{TOOL}: injected failure"))


def main() -> None:
    base.record(0)
    injected()
    {"kubeadm": kubeadm, "systemd-run": systemd_run, "systemctl": systemctl, "kubectl": kubectl}[TOOL]()


if __name__ == "__main__":
    main()
