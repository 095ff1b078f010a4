"""Recording stand-ins for the tools the control-plane step scripts run.

One program plays kubeadm, kubectl, kubelet, apt-get, apt-mark, systemctl,
curl, gpg and aws (and wraps the real etcdctl). The test generates one tiny
wrapper per tool name into a bin dir put first on PATH:

    exec python -S standin.py RIG_DIR TOOL "$@"

RIG_DIR holds `state.json` (the fake machine: installed package versions,
holds, the node as the API server sees it, S3 objects, injected failures)
and `calls.jsonl`, one line per call: {"cmd", "argv", "stdin_bytes"}.

Behaviour is coupled the way the real tools are: `apt-get update` indexes
only the minor named in kubernetes.list, `apt-get install` changes what
`kubeadm version` / `kubelet --version` / `kubectl version` report,
`kubeadm upgrade plan vX` refuses a version above its own (`kubeadm upgrade
apply/node` and the cluster they change: tests/standins/kubeadm_standin.py),
`systemctl restart kubelet` makes the node report the installed kubelet
version (NotReady for a few looks).

Injected failures: state["fail"] is a list of {"cmd", "match", "rc",
"stderr", "sleep", "times"}; the first whose cmd equals the tool and whose
regex `match` is found in the space-joined argv makes the call print stderr
and exit rc (only for its first `times` matching calls when that is set).
Join parameters: `kubeadm token create/list/delete` keep bootstrap tokens in
state["tokens"] ({"token", "expires": epoch seconds or null, "description"});
`kubectl config view` shows state["api_server"] as the kubeconfig's server;
`aws ssm get-parameter/put-parameter` keep parameters in state["ssm"] (name ->
{"Value", "Type", "Version"}) and log every put in state["ssm_puts"]: how the
value came (argv or the --cli-input-json file) and that file's mode.
"""
from __future__ import annotations

import fcntl
import fnmatch
import json
import os
import re
import stat
from pathlib import Path
import sys
import time

# Every tool call starts this program afresh, so a module only one tool needs is imported there.

RIG = sys.argv[1]
TOOL = sys.argv[2]
ARGV = sys.argv[3:]
STATE_PATH = os.path.join(RIG, "state.json")
LOG_PATH = os.path.join(RIG, "calls.jsonl")

# Tools that legitimately read stdin (gpg reads the key from curl); the
# real etcdctl is exec'd untouched. Every other stand-in reads whatever
# stdin holds and records how much: a script sent with `bash -s` must never
# let a command eat the rest of its own text.
READS_STDIN = {"gpg", "etcdctl"}


def load() -> dict:
    with open(STATE_PATH) as fh:
        return json.load(fh)


def save(state: dict) -> None:
    tmp = STATE_PATH + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(state, fh, indent=1, sort_keys=True)
    os.replace(tmp, STATE_PATH)


def record(stdin_bytes: int) -> None:
    with open(LOG_PATH, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(json.dumps({"cmd": TOOL, "argv": ARGV, "stdin_bytes": stdin_bytes}) + "\n")


def die(rc: int, msg: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(msg.rstrip("\n") + "\n")
    sys.exit(rc)


def plain(version: str) -> str:
    """'1.27.16-1.1' -> '1.27.16'."""
    return version.split("-", 1)[0]


def vkey(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", plain(version).lstrip("v")))


# ---------------------------------------------------------------- apt
def apt_get(state: dict) -> None:
    args, i, opts = [], 0, []
    while i < len(ARGV):
        a = ARGV[i]
        if a == "-o":
            opts.append(ARGV[i + 1])
            i += 2
            continue
        args.append(a)
        i += 1
    flags = {a for a in args if a.startswith("-")}
    words = [a for a in args if not a.startswith("-")]
    if not words:
        die(100, "E: Invalid operation")
    op, rest = words[0], words[1:]
    if op == "update":
        lst = os.path.join(state["root"], "etc/apt/sources.list.d/kubernetes.list")
        line = open(lst).read().strip() if os.path.exists(lst) else ""
        m = re.search(r"/v(\d+\.\d+)/", line)
        state["apt_index_minor"] = m.group(1) if m else None
        url = line.split("] ", 1)[1].rsplit(" ", 1)[0].rstrip("/") if "] " in line else "?"
        state["apt_index_url"] = url
        state["apt_index_unseen"] = {}  # the index now holds everything the repo publishes
        print(f"Hit:1 http://deb.debian.org/debian bookworm InRelease\nGet:2 {url}  InRelease [1189 B]")
        print("Reading package lists...")
        save(state)
        return
    if op == "install":
        if "-y" not in flags:
            die(1, "Do you want to continue? [Y/n] Abort.")
        chosen = {}
        for spec in rest:
            pkg, _, pattern = spec.partition("=")
            candidates = index_versions(state, pkg)
            candidates.append(state["packages"].get(pkg, ""))
            hits = sorted((v for v in candidates if v and fnmatch.fnmatchcase(v, pattern or "*")), key=vkey)
            if not hits:
                die(100, f"Reading package lists...\nE: Version '{pattern}' for '{pkg}' was not found")
            chosen[pkg] = hits[-1]
        held = [p for p in chosen if p in state["holds"] and chosen[p] != state["packages"].get(p)]
        if held and "--allow-change-held-packages" not in flags:
            die(100, "E: Held packages were changed and -y was used without --allow-change-held-packages.")
        down = [p for p in chosen if state["packages"].get(p) and vkey(chosen[p]) < vkey(state["packages"][p])]
        if down and "--allow-downgrades" not in flags:
            die(100, "E: Packages were downgraded and -y was used without --allow-downgrades.")
        for pkg, ver in chosen.items():
            print(f"Setting up {pkg} ({ver}) ...")
            state["packages"][pkg] = ver
        save(state)
        return
    die(100, f"E: stand-in apt-get does not know '{op}'")


def index_versions(state: dict, pkg: str) -> list[str]:
    """What apt's cached index offers for pkg: the repo of the last update, minus what the repo
    published after it (state["apt_index_unseen"]), which only the next `apt-get update` fetches."""
    minor = state.get("apt_index_minor")
    unseen = set(state.get("apt_index_unseen", {}).get(pkg, []))
    return [v for v in state["repo_versions"].get(minor or "", {}).get(pkg, []) if v not in unseen]


def apt_cache(state: dict) -> None:
    """`apt-cache madison PKG...`: one line per version in the cached index, in apt's format
    (apt cmdline/apt-cache.cc Madison: setw(10) name " | " setw(10) version " | " index description;
    a flat pkgs.k8s.io repo describes itself as "<url>  Packages"). Reads no network."""
    if ARGV[:1] != ["madison"]:
        die(100, f"stand-in apt-cache does not know {ARGV[:1]}")
    minor = state.get("apt_index_minor")
    url = state.get("apt_index_url") or (f"https://pkgs.k8s.io/core:/stable:/v{minor}/deb" if minor else "")
    for pkg in ARGV[1:]:
        for version in sorted(index_versions(state, pkg), key=vkey, reverse=True):
            print(f"{pkg:>10} | {version:>10} | {url}  Packages")


def apt_mark(state: dict) -> None:
    op, pkgs = ARGV[0], ARGV[1:]
    if op == "hold":
        for p in pkgs:
            if p not in state["holds"]:
                state["holds"].append(p)
            print(f"{p} set on hold.")
    elif op == "unhold":
        for p in pkgs:
            if p in state["holds"]:
                state["holds"].remove(p)
                print(f"Canceled hold on {p}.")
            else:
                print(f"{p} was already not on hold.")
    elif op == "showhold":
        for p in sorted(state["holds"]):
            print(p)
        return
    else:
        die(1, f"stand-in apt-mark does not know '{op}'")
    save(state)


# ---------------------------------------------------------------- kubeadm
def go_duration(text: str) -> int:
    """Seconds of a Go duration made of h, m and s parts ('6h', '1h30m')."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not text or not parts:
        die(1, f'invalid argument "{text}" for "--ttl" flag: time: invalid duration "{text}"')
    h, m, s = (int(p or 0) for p in parts.groups())
    return h * 3600 + m * 60 + s


def rfc3339(epoch: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def kubeadm_token(state: dict) -> None:
    """`kubeadm token create --ttl D --description T` (prints the token), `list -o json`, `delete ID`."""
    import secrets
    import string

    tokens = state.setdefault("tokens", [])
    args = ARGV[1:]
    if args[:1] == ["create"]:
        ttl = go_duration(args[args.index("--ttl") + 1]) if "--ttl" in args else 86400
        description = args[args.index("--description") + 1] if "--description" in args else ""
        alphabet = string.ascii_lowercase + string.digits
        token = "".join(secrets.choice(alphabet) for _ in range(6)) + "." + \
            "".join(secrets.choice(alphabet) for _ in range(16))
        tokens.append({"token": token, "expires": time.time() + ttl if ttl else None, "description": description})
        save(state)
        print(token)
        return
    if args[:1] == ["list"]:
        if args[args.index("-o") + 1 if "-o" in args else 0] != "json":
            die(1, f"stand-in kubeadm token list only prints -o json, got {ARGV}")
        for t in tokens:  # one indented object per token, no list around them, like kubeadm's JSON printer
            obj = {"kind": "BootstrapToken", "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
                   "creationTimestamp": None, "token": t["token"], "description": t["description"]}
            if t["expires"] is not None:
                obj["expires"] = rfc3339(t["expires"])
            obj["usages"] = ["authentication", "signing"]
            obj["groups"] = ["system:bootstrappers:kubeadm:default-node-token"]
            print(json.dumps(obj, indent=4))
        return
    if args[:1] == ["delete"]:
        ids, skip = [], False
        for a in args[1:]:
            if skip:
                skip = False
            elif a == "--kubeconfig":
                skip = True
            elif not a.startswith("-"):
                ids.append(a)
        state["tokens"] = [t for t in tokens if t["token"].split(".")[0] not in ids]
        save(state)
        for i in ids:
            print(f'bootstrap token "{i}" deleted')
        return
    die(1, f"stand-in kubeadm does not know {ARGV}")


def kubeadm(state: dict) -> None:
    own = "v" + plain(state["packages"]["kubeadm"])
    if ARGV[:1] == ["token"]:
        kubeadm_token(state)
        return
    if ARGV[:1] == ["version"]:
        print(own if "short" in ARGV else f'kubeadm version: &version.Info{{GitVersion:"{own}"}}')
        return
    if ARGV[:2] == ["upgrade", "plan"]:
        target = next((a for a in ARGV[2:] if a.startswith("v")), own)
        if vkey(target) > vkey(own):
            die(1, f'[upgrade/version] FATAL: the --version argument is invalid due to these errors:\n\n'
                   f'\t- Specified version to upgrade to "{target}" is higher than the kubeadm version "{own}". '
                   f'Upgrade kubeadm first using the tool you used to install kubeadm')
        print(f"[upgrade/versions] Cluster version: {state['cluster_version']}\n"
              f"[upgrade/versions] kubeadm version: {own}\n"
              f"[upgrade/versions] Target version: {target}\n"
              f"You can now apply the upgrade by executing the following command:\n\n"
              f"\tkubeadm upgrade apply {target}")
        return
    die(1, f"stand-in kubeadm does not know {ARGV}")


def kubelet(state: dict) -> None:
    if ARGV == ["--version"]:
        print("Kubernetes v" + plain(state["packages"]["kubelet"]))
        return
    die(1, f"stand-in kubelet does not know {ARGV}")


def systemctl(state: dict) -> None:
    words = [a for a in ARGV if not a.startswith("-")]
    if words == ["daemon-reload"]:
        # systemd reads every unit file again (systemctl(1) daemon-reload)
        unit_dir = os.path.join(state["root"], "etc/systemd/system")
        state["loaded_units"] = {n: open(os.path.join(unit_dir, n)).read() for n in sorted(os.listdir(unit_dir))} \
            if os.path.isdir(unit_dir) else {}
        save(state)
        return
    if words == ["restart", "kubelet"]:
        state["kubelet_running"] = plain(state["packages"]["kubelet"])
        state["kubelet_active"] = True
        state["node"]["ready"] = False
        state["node"]["ready_in"] = state.get("ready_after_restart", 1)
        save(state)
        return
    if len(words) == 2 and words[1].startswith("kubehop-join-token."):
        unit_command(state, *words)
        return
    if len(words) == 2 and words[0] == "is-active" and words[1].startswith("kubehop-"):
        # a transient unit systemd-run (tests/standins/kubeadm_standin.py) started: loaded while it runs
        sys.exit(0 if os.path.exists(os.path.join(RIG, "units", words[1])) else 3)
    if words == ["is-active", "kubelet"]:
        active = state.get("kubelet_active", True)
        if "--quiet" not in ARGV:
            print("active" if active else "failed")
        sys.exit(0 if active else 3)
    die(1, f"stand-in systemctl does not know {ARGV}")


def unit_command(state: dict, verb: str, unit: str) -> None:
    """The installed units kubehop manages. systemd loads a unit it has never seen from disk on
    first use, but keeps using the definition it loaded for a unit whose file changed until
    `daemon-reload` (systemctl(1): "Warning: The unit file ... changed on disk"). `restart` of a
    timer starts it with the definition systemd holds; `is-enabled`/`is-active` exit 0 or non-zero
    (systemctl(1) exit status; --quiet prints nothing)."""
    units = state.setdefault("units", {})
    loaded = state.setdefault("loaded_units", {})
    path = os.path.join(state["root"], "etc/systemd/system", unit)
    on_disk = open(path).read() if os.path.exists(path) else None
    entry = units.setdefault(unit, {"enabled": False, "active": False, "running": None})
    if verb in ("enable", "restart"):
        if on_disk is None and unit not in loaded:
            die(5, f"Failed to {verb} unit: Unit {unit} not found.")
        held = loaded.setdefault(unit, on_disk)
        if on_disk is not None and held != on_disk:
            print(f"Warning: The unit file, source configuration file or drop-ins of {unit} changed on disk. "
                  "Run 'systemctl daemon-reload' to reload units.", file=sys.stderr)
        if verb == "enable":
            entry["enabled"] = True
        else:
            entry.update(active=True, running=held)
        save(state)
        return
    if verb == "is-enabled":
        sys.exit(0 if entry["enabled"] else 1)
    if verb == "is-active":
        sys.exit(0 if entry["active"] else 3)
    die(1, f"stand-in systemctl does not know {ARGV}")


# ---------------------------------------------------------------- kubectl
def node_object(state: dict) -> dict:
    node = state["node"]
    obj = {
        "metadata": {"name": node["name"], **({"annotations": node["annotations"]} if node.get("annotations") else {})},
        "spec": {"unschedulable": True} if node["unschedulable"] else {},
        "status": {
            "nodeInfo": {"kubeletVersion": "v" + state["kubelet_running"]},
            "conditions": [{"type": "MemoryPressure", "status": "False"},
                           {"type": "Ready", "status": "True" if node["ready"] else "False"}],
        },
    }
    return obj


def jsonpath(obj: dict, template: str) -> str:
    """The little of kubectl's JSONPath the scripts use: {.a.b}, {.a[?(@.k=="v")].b}, {.a[0].b}."""
    def walk(expr: str) -> str:
        cur: object = obj
        for part in re.findall(r'\.([A-Za-z]+)|\[\?\(@\.(\w+)=="([^"]*)"\)\]|\[(\d+)\]', expr):
            key, fkey, fval, index = part
            if key:
                cur = cur.get(key) if isinstance(cur, dict) else None
            elif index:
                cur = cur[int(index)] if isinstance(cur, list) and int(index) < len(cur) else None
            else:
                cur = next((x for x in (cur or []) if x.get(fkey) == fval), None)
            if cur is None:
                return ""  # kubectl get -o jsonpath allows missing keys
        if isinstance(cur, bool):
            return "true" if cur else "false"
        if isinstance(cur, (dict, list)):
            return json.dumps(cur, separators=(",", ":"))  # kubectl prints a map as JSON
        return str(cur)
    return re.sub(r"\{([^{}]*)\}", lambda m: walk(m.group(1)), template)


def jsonpath_format(args: list[str], what: str) -> str:
    fmt = next((a for a in args if a.startswith("jsonpath=")), None)
    if fmt is None and "-o" in args:
        fmt = args[args.index("-o") + 1]
    if fmt is None or not fmt.startswith("jsonpath="):
        die(1, f"stand-in kubectl get {what} needs -o jsonpath=...; got {args}")
    return fmt.split("=", 1)[1]


def patch_node(state: dict, args: list[str]) -> None:
    """`kubectl patch node NAME --type=merge -p JSON`: annotations and spec.unschedulable (null removes)."""
    node = state["node"]
    if args[2] != node["name"]:
        die(1, f'Error from server (NotFound): nodes "{args[2]}" not found')
    if "--type=merge" not in args:
        die(1, f"stand-in kubectl patch node only takes --type=merge, got {args}")
    patch = json.loads(args[args.index("-p") + 1])
    annotations = {**node.get("annotations", {}), **patch.get("metadata", {}).get("annotations", {})}
    node["annotations"] = {k: v for k, v in annotations.items() if v is not None}
    if "unschedulable" in patch.get("spec", {}):
        node["unschedulable"] = bool(patch["spec"]["unschedulable"])
    save(state)
    print(f"node/{node['name']} patched")


def kubectl(state: dict) -> None:
    args, i, kubeconfig = [], 0, None
    while i < len(ARGV):
        a = ARGV[i]
        if a in ("--kubeconfig", "-n", "--namespace"):  # the namespace: only cluster-scoped objects here
            kubeconfig = ARGV[i + 1] if a == "--kubeconfig" else kubeconfig
            i += 2
            continue
        if a.startswith("--kubeconfig="):
            kubeconfig = a.split("=", 1)[1]
        elif not a.startswith(("--request-timeout", "--namespace=")):
            args.append(a)
        i += 1
    if args[:1] == ["version"]:
        ver = "v" + plain(state["packages"]["kubectl"])
        print(json.dumps({"clientVersion": {"major": "1", "gitVersion": ver, "platform": "linux/amd64"},
                          "kustomizeVersion": "v5.0.1"}, indent=2))
        return
    if kubeconfig is None:
        die(1, "E1126 couldn't get current server API group list: dial tcp 127.0.0.1:8080: connect: connection refused\n"
               "The connection to the server localhost:8080 was refused - did you specify the right host or port?")
    if args[:2] == ["config", "view"]:
        config = {"clusters": [{"name": "kubernetes", "cluster": {"server": state.get("api_server", ""),
                                                                 "certificate-authority-data": "DATA+OMITTED"}}]}
        sys.stdout.write(jsonpath(config, jsonpath_format(args, "config")))
        return
    node = state["node"]
    if args[:2] == ["get", "node"] or args[:2] == ["get", "nodes"]:
        if args[2] != node["name"]:
            die(1, f'Error from server (NotFound): nodes "{args[2]}" not found')
        if not node["ready"]:  # NotReady for `ready_in` more looks, then Ready
            if node.get("ready_in", 0) <= 0:
                node["ready"] = True
            else:
                node["ready_in"] -= 1
            save(state)
        sys.stdout.write(jsonpath(node_object(state), jsonpath_format(args, "node")))
        return
    if args[:1] in (["drain"], ["uncordon"], ["cordon"]) and args[1] != node["name"]:
        die(1, f'Error from server (NotFound): nodes "{args[1]}" not found')
    if args[:1] == ["drain"]:
        if "--force" in args or "--disable-eviction" in args:
            die(99, "stand-in kubectl: kubehop must never drain with --force or --disable-eviction")
        node["unschedulable"] = True
        save(state)
        name = node["name"]
        print(f"node/{name} cordoned")
        mode = state.get("drain", "ok")
        if mode == "ok":
            print(f"Warning: ignoring DaemonSet-managed Pods: kube-system/calico-node-x, kube-system/kube-proxy-y\n"
                  f"evicting pod kube-system/coredns-5d78c9869d-abcde\n"
                  f"pod/coredns-5d78c9869d-abcde evicted\nnode/{name} drained")
            return
        if mode == "pdb":
            timeout = next((a.split("=", 1)[1] for a in args if a.startswith("--timeout=")), "0s")
            print("evicting pod prod/web-0\nevicting pod prod/web-1\n"
                  'error when evicting pods/"web-0" -n "prod" (will retry after 5s): Cannot evict pod as it would violate the pod\'s disruption budget.\n'
                  'error when evicting pods/"web-0" -n "prod" (will retry after 5s): Cannot evict pod as it would violate the pod\'s disruption budget.')
            die(1, f"There are pending nodes to be drained:\n {name}\n"
                   f'error: unable to drain node "{name}" due to error:[error when evicting pods/"web-0" -n "prod": '
                   f"global timeout reached: {timeout}], continuing command...")
        if mode == "bare":
            die(1, f"error: unable to drain node \"{name}\" due to error: cannot delete Pods that declare no controller "
                   f"(use --force to override): default/debug-shell, continuing command...")
        die(1, f"stand-in kubectl: unknown drain mode {mode}")
    if args[:2] == ["patch", "node"]:
        patch_node(state, args)
        return
    if args[:1] == ["uncordon"]:
        name = node["name"]
        if node["unschedulable"]:
            node["unschedulable"] = False
            save(state)
            print(f"node/{name} uncordoned")
        else:
            print(f"node/{name} already uncordoned")
        return
    die(1, f"stand-in kubectl does not know {args}")


# ---------------------------------------------------------------- curl, gpg, aws
def curl(state: dict) -> None:
    url = [a for a in ARGV if not a.startswith("-")][-1]
    if not url.startswith("https://"):
        die(1, f"curl: (1) stand-in only serves https, got {url}")
    sys.stdout.write("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQENBGMHoXcBCADukGOEQyleViOgtkMVa7hKifP6POCTh+98xNW4TfHK\n"
                     "-----END PGP PUBLIC KEY BLOCK-----\n")


def gpg(state: dict, data: bytes) -> None:
    if "--dearmor" not in ARGV:
        die(2, f"stand-in gpg only dearmors, got {ARGV}")
    if not data.startswith(b"-----BEGIN PGP"):
        die(2, "gpg: no valid OpenPGP data found.")
    out = b"\x99\x01\rfake-binary-keyring:" + data[40:80]
    if "-o" in ARGV:
        with open(ARGV[ARGV.index("-o") + 1], "wb") as fh:
            fh.write(out)
    else:
        sys.stdout.buffer.write(out)


AWS_FLAGS = {"--overwrite", "--no-overwrite", "--with-decryption", "--no-with-decryption"}


def aws_options(args: list[str]) -> tuple[dict[str, str], set[str]]:
    """--key value pairs and the boolean flags of an aws call."""
    options, flags, i = {}, set(), 0
    while i < len(args):
        if args[i] in AWS_FLAGS:
            flags.add(args[i])
            i += 1
        elif args[i].startswith("--"):
            options[args[i]] = args[i + 1]
            i += 2
        else:
            die(252, f"aws: error: unrecognized arguments: {args[i]}")
    return options, flags


def aws_error(code: str, operation: str, message: str = "") -> None:
    die(254, f"\nAn error occurred ({code}) when calling the {operation} operation: {message}")


def ssm(state: dict) -> None:
    options, flags = aws_options(ARGV[2:])
    params = state.setdefault("ssm", {})
    if "--region" not in options:
        die(253, "You must specify a region. You can also configure your region by running \"aws configure\".")
    if ARGV[1] == "get-parameter":
        param = params.get(options.get("--name", ""))
        if param is None:
            aws_error("ParameterNotFound", "GetParameter")
        value = param["Value"]
        if param["Type"] == "SecureString" and "--with-decryption" not in flags:
            value = "AQICAHhciphertext=="
        if options.get("--query") != "Parameter.Value" or options.get("--output") != "text":
            die(252, f"stand-in aws ssm get-parameter only answers --query Parameter.Value --output text, got {ARGV}")
        print(value)
        return
    if ARGV[1] == "put-parameter":
        request, via, mode = {}, "argv", None
        source = options.get("--cli-input-json")
        if source is not None:
            if not source.startswith("file://"):
                die(252, "stand-in aws: kubehop passes --cli-input-json only as file://")
            path = source[len("file://"):]
            mode = oct(stat.S_IMODE(os.stat(path).st_mode))
            with open(path) as fh:
                request = json.load(fh)
            via = "file"
        for key in ("Name", "Value", "Type"):
            if f"--{key.lower()}" in options:
                request[key] = options[f"--{key.lower()}"]
        if "Value" in request and "--value" in options:
            via = "argv"
        if "--overwrite" in flags:
            request["Overwrite"] = True
        name = request.get("Name")
        if not name or "Value" not in request:
            die(252, "aws: error: the following arguments are required: --name, --value")
        if name in params and not request.get("Overwrite"):
            aws_error("ParameterAlreadyExists", "PutParameter", "The parameter already exists. "
                      "To overwrite this value, set the overwrite option in the request to true.")
        kind = request.get("Type") or (params[name]["Type"] if name in params else None)
        if kind not in ("String", "StringList", "SecureString"):
            aws_error("ValidationException", "PutParameter", "Type is required when creating a parameter")
        version = params[name]["Version"] + 1 if name in params else 1
        params[name] = {"Value": request["Value"], "Type": kind, "Version": version}
        state.setdefault("ssm_puts", []).append({"name": name, "type": kind, "via": via, "file_mode": mode})
        save(state)
        print(json.dumps({"Version": version, "Tier": "Standard"}, indent=4))
        return
    die(252, f"stand-in aws does not know {ARGV}")


def aws(state: dict) -> None:
    if ARGV[:1] == ["ssm"]:
        ssm(state)
        return
    # aws s3 cp options that take a value (AWS CLI s3 cp reference): their values are not paths.
    valued = {"--sse", "--sse-kms-key-id", "--storage-class"}
    words = [a for i, a in enumerate(ARGV) if not a.startswith("--") and (i == 0 or ARGV[i - 1] not in valued)]
    if words[:2] == ["s3", "ls"]:
        uri = words[2]
        hits = {k: v for k, v in state["s3"].items() if k.startswith(uri)}
        if not hits:
            sys.exit(1)
        for key, size in sorted(hits.items()):
            print(f"2026-11-26 14:00:00 {size:>10} {key.rsplit('/', 1)[1]}")
        return
    if words[:2] == ["s3", "cp"]:
        src, dst = words[-2], words[-1]  # after the option values (--sse aws:kms --sse-kms-key-id KEY)
        state["s3"][dst] = os.path.getsize(src)
        if "--sse-kms-key-id" in ARGV:
            if ARGV[ARGV.index("--sse") + 1:ARGV.index("--sse") + 2] != ["aws:kms"]:
                die(252, "aws: error: --sse-kms-key-id requires --sse aws:kms")
            state.setdefault("s3_kms", {})[dst] = ARGV[ARGV.index("--sse-kms-key-id") + 1]
        save(state)
        if "--only-show-errors" not in ARGV:
            print(f"upload: {src} to {dst}")
        return
    die(252, f"stand-in aws does not know {ARGV}")


def containerd(state: dict) -> None:
    """`containerd --version` prints "<name> <package> <version> <revision>" (containerd
    cmd/containerd/command/main.go VersionPrinter; Docker's containerd.io package names
    itself and drops the v); `containerd config dump` prints the merged config.
    state["containerd"]: {"version", "config"}; a missing containerd is state["containerd"] = None."""
    info = state.get("containerd", {"version": "1.7.24", "config": DEFAULT_CONTAINERD_CONFIG})
    if info is None:
        die(127, "containerd: command not found")
    if ARGV == ["--version"]:
        print(f"containerd containerd.io {info['version']} 88bf19b2105c8b17560993bee28a01ddc2f97182")
    elif ARGV[:2] == ["config", "dump"]:
        sys.stdout.write(info["config"])
    else:
        die(2, f"stand-in containerd: unsupported {ARGV}")


# containerd 1.7's CRI section as `config dump` prints it (pkg/cri/config/config_unix.go default),
# the one copy the packer stand-in's `containerd config default` prints too
DEFAULT_CONTAINERD_CONFIG = (Path(__file__).resolve().parents[1] / "fixtures" / "containerd" / "config-1.7-default.toml").read_text()


def etcdctl() -> None:
    import shutil

    real = shutil.which("etcdctl", path="/usr/local/bin:/usr/bin:/bin")
    if real is None:
        die(127, "stand-in: the real etcdctl is not installed (Debian package etcd-client)")
    os.execv(real, [real, *ARGV])


def main() -> None:
    data = b""
    if TOOL not in READS_STDIN or TOOL == "gpg":
        if sys.stdin is not None and not sys.stdin.isatty():
            data = sys.stdin.buffer.read()
    record(len(data) if TOOL not in READS_STDIN else 0)
    if TOOL == "etcdctl":
        etcdctl()
    with open(os.path.join(RIG, "state.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one stand-in at a time touches the state
        state = load()
        joined = " ".join(ARGV)
        for f in state.get("fail", []):
            if f["cmd"] == TOOL and re.search(f["match"], joined) and f.get("times", 1) != 0:
                if f.get("times") is not None:
                    f["times"] -= 1  # a transient failure: only this many more times
                    save(state)
                time.sleep(f.get("sleep", 0))
                die(f.get("rc", 1), f.get("stderr", f"{TOOL}: injected failure"))
        handlers = {"apt-get": apt_get, "apt-cache": apt_cache, "apt-mark": apt_mark, "kubeadm": kubeadm, "kubelet": kubelet,
                    "systemctl": systemctl, "kubectl": kubectl, "curl": curl, "aws": aws,
                    "containerd": containerd}
        if TOOL == "gpg":
            gpg(state, data)
        else:
            handlers[TOOL](state)


if __name__ == "__main__":
    main()
