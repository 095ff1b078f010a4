"""Packer templates, node settings, provisioning scripts and image hashes.

No packer binary and no network here: the templates are checked by parsing
them with python-hcl2, the scripts with shellcheck and by running them in a
sandbox (NODE_ROOT) with stand-ins for every system command they call.
"""
from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import hcl2
import pytest
import yaml

from kubehop import imagehash

REPO = Path(__file__).resolve().parents[2]
PACKER = REPO / "packer"
SCRIPTS = PACKER / "scripts"
FILES = PACKER / "files"
SETTINGS = FILES / "node-settings.yaml"
SCRIPT_NAMES = ["base.sh", "containerd.sh", "kubernetes.sh", "cleanup.sh", "spark.sh"]
LIB = SCRIPTS / "lib.sh"

EXPECTED_REQUIRED = {
    "worker": {
        "region",
        "kubernetes_version",
        "kubernetes_minor",
        "containerd_version",
        "pause_image",
        "cni_plugins_version",
        "cni_plugins_sha256",
        "content_hash",
        "manifest_path",
    },
    "spark": {
        "region",
        "worker_ami_id",
        "kubernetes_version",
        "content_hash",
        "jdk_package",
        "hadoop_version",
        "hadoop_sha512",
        "manifest_path",
    },
}
EXPECTED_OPTIONAL = {
    "worker": {
        "source_ami_id",
        "source_ami_filter_name",
        "source_ami_owner",
        "instance_type",
        "subnet_id",
        "root_volume_size",
        "kms_key_id",
        "ami_name_prefix",
        "tags",
    },
    "spark": {
        "hadoop_mirror",
        "instance_type",
        "subnet_id",
        "root_volume_size",
        "kms_key_id",
        "ami_name_prefix",
        "tags",
    },
}


@functools.lru_cache(maxsize=None)
def load_template(role: str) -> dict:
    """Parsed template; cached (parsing is the slow part), so do not mutate."""
    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
    with imagehash.template_path(role).open() as handle:
        return hcl2.load(handle, serialization_options=options)


def source_block(role: str) -> dict:
    (block,) = load_template(role)["source"]
    return block["amazon-ebs"][role]


def build_block(role: str) -> dict:
    (block,) = load_template(role)["build"]
    return block


def settings() -> dict:
    return yaml.safe_load(SETTINGS.read_text())


# --- templates ---------------------------------------------------------------


@pytest.mark.parametrize("role", imagehash.ROLES)
def test_template_parses_and_pins_amazon_plugin(role):
    (packer_block,) = load_template(role)["packer"]
    (plugins,) = packer_block["required_plugins"]
    assert plugins["amazon"] == {"source": "github.com/hashicorp/amazon", "version": "~> 1.3"}
    assert packer_block["required_version"] == ">= 1.7.0"  # older Packer fails obscurely on HCL2 plugins


@pytest.mark.parametrize("role", imagehash.ROLES)
def test_required_and_optional_variables(role):
    declared = imagehash.declared_variables(role)
    assert imagehash.required_variables(role) == EXPECTED_REQUIRED[role]
    assert set(declared) == EXPECTED_REQUIRED[role] | EXPECTED_OPTIONAL[role]
    for var in declared.values():
        assert var.type in {"string", "number", "map(string)"}, var
        assert len(var.description) > 20, f"{var.name} needs a description"


@pytest.mark.parametrize("role", imagehash.ROLES)
def test_every_variable_used_and_every_use_declared(role):
    text = imagehash.template_path(role).read_text()
    used = set(re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_]*)", text))
    assert used == set(imagehash.declared_variables(role))


@pytest.mark.parametrize("role", imagehash.ROLES)
def test_image_inputs_are_declared_variables(role):
    assert imagehash.IMAGE_INPUTS[role] <= set(imagehash.declared_variables(role))


@pytest.mark.parametrize("role", imagehash.ROLES)
def test_imdsv2_on_build_instance_and_image(role):
    source = source_block(role)
    (metadata,) = source["metadata_options"]
    assert metadata == {
        "http_endpoint": "enabled",
        "http_tokens": "required",
        "http_put_response_hop_limit": 1,
    }
    assert source["imds_support"] == "v2.0"


@pytest.mark.parametrize("role", imagehash.ROLES)
def test_ami_name_is_prefix_version_content_hash(role):
    source = source_block(role)
    name = "${var.ami_name_prefix}-${var.kubernetes_version}-${var.content_hash}"
    # the spark image also names the worker AMI it is built on (a new worker AMI, a new spark AMI)
    if role == "spark":
        (local,) = [b for b in load_template(role)["locals"] if "ami_name" in b]
        assert source["ami_name"] == "${local.ami_name}" and local["ami_name"] == name + "-${var.worker_ami_id}"
    else:
        assert source["ami_name"] == name
    assert imagehash.declared_variables(role)["ami_name_prefix"].required is False


@pytest.mark.parametrize("role", imagehash.ROLES)
def test_root_volume_encrypted(role):
    (mapping,) = source_block(role)["launch_block_device_mappings"]
    assert mapping["encrypted"] is True
    assert mapping["device_name"] == "/dev/sda1"


@pytest.mark.parametrize("role", imagehash.ROLES)
def test_tags_carry_role_version_and_hash(role):
    text = imagehash.template_path(role).read_text()
    assert f'"kubehop:role"               = "{role}"' in text
    assert '"kubehop:kubernetes-version" = var.kubernetes_version' in text
    assert '"kubehop:content-hash"       = var.content_hash' in text
    source = source_block(role)
    for key in ("tags", "snapshot_tags"):
        assert source[key] == "${local.image_tags}"


@pytest.mark.parametrize("role", imagehash.ROLES)
def test_manifest_post_processor(role):
    (post,) = build_block(role)["post-processor"]
    manifest = post["manifest"]
    assert manifest["output"] == "${var.manifest_path}"
    assert manifest["strip_path"] is True


def test_worker_source_ami_id_or_newest_canonical_jammy():
    source = source_block("worker")
    assert source["source_ami"] == "${var.source_ami_id}"
    (dynamic,) = source["dynamic"]
    block = dynamic["source_ami_filter"]
    assert block["for_each"] == '${var.source_ami_id == "" ? [1] : []}'
    (content,) = block["content"]
    assert content["most_recent"] is True
    assert content["owners"] == ["${var.source_ami_owner}"]
    assert content["filters"]["name"] == "${var.source_ami_filter_name}"
    variables = load_template("worker")["variable"]
    defaults = {name: body.get("default") for block in variables for name, body in block.items()}
    assert defaults["source_ami_owner"] == "099720109477"
    assert re.fullmatch(r"ubuntu/images/hvm-ssd/ubuntu-jammy-22\.04-amd64-server-\*", defaults["source_ami_filter_name"])
    assert defaults["ami_name_prefix"] == "kubehop-worker"


def test_spark_builds_on_worker_ami():
    source = source_block("spark")
    assert source["source_ami"] == "${var.worker_ami_id}"
    assert "source_ami_filter" not in source and "dynamic" not in source


def _provisioner_scripts(role: str) -> list[tuple[set[str], list[str]]]:
    """(env var names, script basenames) of each shell provisioner with scripts."""
    result = []
    for prov in build_block(role)["provisioner"]:
        shell = prov.get("shell")
        if not shell or "scripts" not in shell:
            continue
        env = {item.split("=", 1)[0] for item in shell.get("environment_vars", [])}
        names = [s.removeprefix("${path.root}/scripts/") for s in shell["scripts"]]
        result.append((env, names))
    return result


def _script_required_env(name: str) -> set[str]:
    text = (SCRIPTS / name).read_text()
    found = re.findall(r"^require_env ([A-Z0-9_ ]+)$", text, flags=re.M)
    return set(" ".join(found).split())


@pytest.mark.parametrize("role", imagehash.ROLES)
def test_provisioners_pass_every_env_the_scripts_require(role):
    provisioners = _provisioner_scripts(role)
    assert provisioners
    for env, names in provisioners:
        for name in names:
            missing = _script_required_env(name) - env
            assert not missing, f"{role}: {name} requires {missing} but the provisioner does not pass them"
    ran = [name for _, names in provisioners for name in names]
    assert ran[-1] == "cleanup.sh", "cleanup.sh must run last"
    expected = ["base.sh", "containerd.sh", "kubernetes.sh", "cleanup.sh"] if role == "worker" else ["spark.sh", "cleanup.sh"]
    assert ran == expected


@pytest.mark.parametrize("role", imagehash.ROLES)
def test_hash_covers_every_file_the_template_uses(role):
    text = imagehash.template_path(role).read_text()
    referenced = set(re.findall(r"\$\{path\.root\}/([\w./-]+)", text))
    hashed = {p.relative_to(PACKER).as_posix() for p in imagehash.role_files(role)}
    assert referenced <= hashed
    assert imagehash.template_path(role).relative_to(PACKER).as_posix() in hashed


def test_worker_uploads_the_settings_file_and_its_reader():
    (upload,) = [p["file"] for p in build_block("worker")["provisioner"] if "file" in p]
    assert sorted(upload["sources"]) == [
        "${path.root}/files/node-settings.yaml",
        "${path.root}/files/nodesettings.py",
        "${path.root}/scripts/lib.sh",
    ]
    assert upload["destination"] == "${local.remote_dir}/"


@pytest.mark.parametrize("role", imagehash.ROLES)
def test_lib_sh_is_uploaded_before_the_scripts_and_passed_to_them(role):
    provisioners = build_block(role)["provisioner"]
    kinds = [next(iter(p)) for p in provisioners]
    (upload_at,) = [
        i for i, p in enumerate(provisioners) if "${path.root}/scripts/lib.sh" in p.get("file", {}).get("sources", [])
    ]
    assert provisioners[upload_at]["file"]["destination"] == "${local.remote_dir}/"
    assert kinds[:upload_at] == ["shell"] and "inline" in provisioners[0]["shell"], "only the mkdir may come first"
    assert 'remote_dir = "/tmp/kubehop"' in imagehash.template_path(role).read_text()
    scripted = [i for i, p in enumerate(provisioners) if "scripts" in p.get("shell", {})]
    assert scripted and min(scripted) > upload_at
    for i in scripted:
        env = provisioners[i]["shell"]["environment_vars"]
        assert "KUBEHOP_LIB=${local.remote_dir}/lib.sh" in env
    # cleanup.sh removes the upload directory, lib.sh included.
    (cleanup,) = [
        p["shell"] for p in provisioners if p.get("shell", {}).get("scripts") == ["${path.root}/scripts/cleanup.sh"]
    ]
    assert "KUBEHOP_FILES_DIR=${local.remote_dir}" in cleanup["environment_vars"]


def _packer_files() -> list[Path]:
    return sorted(p for p in PACKER.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def test_no_kubernetes_version_literal_under_packer():
    pattern = re.compile(r"(?<![\w.])v?1\.\d\d\.\d+")
    offenders = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in _packer_files()
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, "versions belong in kubehop/catalog.py:\n" + "\n".join(offenders)


def test_no_version_literal_at_all_in_scripts_and_files():
    pattern = re.compile(r"\b\d+\.\d+\.\d+\b")
    for path in [*SCRIPTS.glob("*.sh"), *FILES.iterdir()]:
        if path.is_file():
            assert not pattern.search(path.read_text()), f"{path} hard-codes a version"


# --- node settings -------------------------------------------------------------


def test_node_settings_have_what_kubeadm_needs():
    data = settings()
    assert {"overlay", "br_netfilter"} <= set(data["kernel_modules"])
    sysctls = data["sysctls"]
    for key in ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables", "net.ipv4.ip_forward"):
        assert sysctls[key] == 1, key
    assert sysctls["fs.inotify.max_user_watches"] >= 524288
    assert sysctls["fs.inotify.max_user_instances"] >= 512
    assert data["swap"]["disabled"] is True
    assert data["containerd"]["systemd_cgroup"] is True
    assert data["kubelet"]["extra_args"]["cloud-provider"] == "external"
    assert {"containerd", "kubelet"} <= set(data["systemd"]["enable"])
    assert "python3-yaml" in data["packages"]["prerequisites"]


@pytest.mark.parametrize(
    "token",
    [
        "ip_forward",
        "bridge-nf-call",
        "br_netfilter",
        "overlay",
        "inotify",
        "cloud-provider",
        "/etc/sysctl.d",
        "/etc/modules-load.d",
        "/etc/default/kubelet",
        "/etc/containerd/config.toml",
        "conntrack",
        "socat",
    ],
)
def test_settings_live_only_in_the_settings_file(token):
    assert token in SETTINGS.read_text()
    for name in [*SCRIPT_NAMES, LIB.name]:
        assert token not in (SCRIPTS / name).read_text(), f"{name} duplicates setting {token!r}"


def run_reader(path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-B", str(FILES / "nodesettings.py"), str(path), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_reader_renders_the_settings():
    data = settings()
    out = run_reader(SETTINGS, "sysctl-conf")
    assert out.returncode == 0, out.stderr
    assert parse_sysctl(out.stdout) == {k: str(v) for k, v in data["sysctls"].items()}
    out = run_reader(SETTINGS, "get", "kernel_modules")
    assert out.stdout.split() == data["kernel_modules"]
    out = run_reader(SETTINGS, "get", "containerd.systemd_cgroup")
    assert out.stdout == "true\n"
    out = run_reader(SETTINGS, "kubelet-env")
    assert out.stdout.splitlines()[-1] == 'KUBELET_EXTRA_ARGS="--cloud-provider=external"'


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["sysctls"].update({"net.ipv4.ip_forward": "1; reboot"}), "sysctls.net.ipv4.ip_forward"),
        (lambda d: d["swap"].update({"disabled": "yes"}), "swap.disabled"),
        (lambda d: d["paths"].update({"sysctl": "etc/sysctl.d/x.conf"}), "paths.sysctl"),
        (lambda d: d["kubelet"]["extra_args"].update({"--node-ip": "1"}), "kubelet.extra_args"),
        (lambda d: d.pop("containerd"), "containerd.systemd_cgroup"),
        (lambda d: d.update({"schema_version": 2}), "schema_version"),
    ],
)
def test_reader_rejects_bad_settings(tmp_path, mutate, message):
    data = settings()
    mutate(data)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    out = run_reader(bad, "check")
    assert out.returncode == 1
    assert message in out.stderr


def test_reader_refuses_unknown_keys_and_maps():
    assert run_reader(SETTINGS, "get", "nope").returncode == 1
    out = run_reader(SETTINGS, "get", "sysctls")
    assert out.returncode == 1 and "mapping" in out.stderr


# --- shellcheck -----------------------------------------------------------------


def test_scripts_exist_executable_strict():
    for name in SCRIPT_NAMES:
        path = SCRIPTS / name
        text = path.read_text()
        assert text.startswith("#!/usr/bin/env bash\n"), name
        assert "\nset -euo pipefail\n" in text, name
        assert os.access(path, os.X_OK), f"{name} is not executable"


def test_shellcheck_clean():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck is not installed: install it (apt-get install shellcheck) to lint packer/scripts/*.sh")
    out = subprocess.run(
        [shellcheck, *[str(SCRIPTS / n) for n in SCRIPT_NAMES], str(LIB)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr


LIB_FUNCTION = re.compile(r"^([a-z_]+)\(\) \{", flags=re.M)


def test_lib_sh_is_strict_and_only_defines_functions():
    lines = LIB.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert lines[1].startswith("# lib.sh: ")
    code = [line for line in lines[1:] if line.strip() and not line.lstrip().startswith("#")]
    assert code[0] == "set -euo pipefail"
    # Sourcing it must leave no variable behind, only functions.
    probe = (
        'names() { compgen -v | grep -vxE "PIPESTATUS|_|before"; }; '
        'before="$(names)"; source "$1"; diff <(echo "${before}") <(names)'
    )
    out = subprocess.run(
        ["bash", "-c", probe, "probe", str(LIB)],
        capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, "lib.sh sets variables:\n" + out.stdout + out.stderr
    assert set(LIB_FUNCTION.findall(LIB.read_text())) >= {"die", "log", "require_env", "resolve_root", "install_content"}


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_scripts_source_lib_sh_and_do_not_redefine_its_functions(name):
    text = (SCRIPTS / name).read_text()
    assert '\nsource "${KUBEHOP_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"\n' in text
    redefined = set(LIB_FUNCTION.findall(text)) & set(LIB_FUNCTION.findall(LIB.read_text()))
    assert not redefined, f"{name} redefines lib.sh functions {redefined}"


def test_scripts_run_from_packers_upload_location_with_kubehop_lib(tmp_path):
    """Packer runs each script as /tmp/script_NNNN.sh: lib.sh is found only through KUBEHOP_LIB."""
    remote = tmp_path / "remote"
    uploads = tmp_path / "kubehop"
    remote.mkdir()
    uploads.mkdir()
    script = remote / "script_1234.sh"
    shutil.copy2(SCRIPTS / "cleanup.sh", script)
    shutil.copy2(LIB, uploads / "lib.sh")
    node = tmp_path / "node"
    node.mkdir()
    env = {"PATH": "/usr/bin:/bin", "NODE_ROOT": str(node)}
    out = subprocess.run(
        [str(script)], env={**env, "KUBEHOP_LIB": str(uploads / "lib.sh")}, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr.endswith("cleanup.sh: done\n")
    out = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "lib.sh" in out.stderr


# --- content hash -----------------------------------------------------------------


def copy_packer(tmp_path: Path) -> Path:
    dest = tmp_path / "packer"
    shutil.copytree(PACKER, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def test_content_hash_is_stable_short_hex_and_location_independent(tmp_path):
    for role in imagehash.ROLES:
        first = imagehash.content_hash(role)
        assert re.fullmatch(r"[0-9a-f]{12}", first)
        assert imagehash.content_hash(role) == first
        assert imagehash.content_hash(role, copy_packer(tmp_path / role)) == first
    assert imagehash.content_hash("worker") != imagehash.content_hash("spark")


def test_content_hash_changes_with_a_worker_script_and_spark_follows(tmp_path):
    root = copy_packer(tmp_path)
    before = {role: imagehash.content_hash(role, root) for role in imagehash.ROLES}
    with (root / "scripts" / "containerd.sh").open("a") as handle:
        handle.write("# edited\n")
    after = {role: imagehash.content_hash(role, root) for role in imagehash.ROLES}
    assert after["worker"] != before["worker"]
    assert after["spark"] != before["spark"]


def test_content_hash_changes_with_settings_file(tmp_path):
    root = copy_packer(tmp_path)
    before = imagehash.content_hash("worker", root)
    settings_copy = root / "files" / "node-settings.yaml"
    settings_copy.write_text(settings_copy.read_text().replace("524288", "1048576"))
    assert imagehash.content_hash("worker", root) != before


def test_content_hash_changes_with_lib_sh_for_both_roles(tmp_path):
    root = copy_packer(tmp_path)
    before = {role: imagehash.content_hash(role, root) for role in imagehash.ROLES}
    assert all(root / "scripts" / "lib.sh" in imagehash.role_files(role, root) for role in imagehash.ROLES)
    with (root / "scripts" / "lib.sh").open("a") as handle:
        handle.write("# edited\n")
    after = {role: imagehash.content_hash(role, root) for role in imagehash.ROLES}
    assert after["worker"] != before["worker"]
    assert after["spark"] != before["spark"]


def test_spark_only_edit_leaves_worker_hash(tmp_path):
    root = copy_packer(tmp_path)
    worker, spark = imagehash.content_hash("worker", root), imagehash.content_hash("spark", root)
    with (root / "scripts" / "spark.sh").open("a") as handle:
        handle.write("# edited\n")
    assert imagehash.content_hash("worker", root) == worker
    assert imagehash.content_hash("spark", root) != spark


def test_content_hash_ignores_bytecode_and_editor_leftovers(tmp_path):
    root = copy_packer(tmp_path)
    before = imagehash.content_hash("worker", root)
    (root / "files" / "__pycache__").mkdir()
    (root / "files" / "__pycache__" / "nodesettings.cpython-311.pyc").write_bytes(b"x")
    (root / "files" / ".node-settings.yaml.swp").write_bytes(b"x")
    assert imagehash.content_hash("worker", root) == before
    (root / "files" / "extra.conf").write_text("x\n")
    assert imagehash.content_hash("worker", root) != before


def test_content_hash_folds_in_image_variables_only():
    base = {"kubernetes_version": "9.8.7", "containerd_version": "4.5.6", "region": "us-west-2"}
    plain = imagehash.content_hash("worker")
    with_vars = imagehash.content_hash("worker", variables=base)
    assert with_vars != plain
    assert imagehash.content_hash("worker", variables={**base, "region": "eu-west-1", "tags": {"a": "b"}}) == with_vars
    assert imagehash.content_hash("worker", variables={**base, "containerd_version": "4.5.7"}) != with_vars
    spark = {"worker_ami_id": "ami-0123456789abcdef0", "kubernetes_version": "9.8.7"}
    assert imagehash.content_hash("spark", variables=spark) != imagehash.content_hash(
        "spark", variables={**spark, "worker_ami_id": "ami-0fedcba9876543210"}
    )


def test_spark_hash_follows_worker_variables_and_refuses_unresolved_values():
    worker = {"kubernetes_version": "9.8.7", "containerd_version": "4.5.6"}
    spark = {"kubernetes_version": "9.8.7", "hadoop_version": "3.2.1"}
    first = imagehash.content_hash("spark", variables=spark, worker_variables=worker)
    assert imagehash.content_hash("spark", variables=spark, worker_variables=worker) == first
    bumped = {**worker, "containerd_version": "4.5.7"}
    assert imagehash.content_hash("spark", variables=spark, worker_variables=bumped) != first

    class Unresolved:  # stands in for a pulumi.Output
        pass

    with pytest.raises(TypeError, match="worker_ami_id"):
        imagehash.content_hash("spark", variables={**spark, "worker_ami_id": Unresolved()})
    with pytest.raises(ValueError):
        imagehash.content_hash("worker", worker_variables=worker)


def test_content_hash_unknown_role_and_missing_file(tmp_path):
    with pytest.raises(ValueError):
        imagehash.content_hash("master")
    root = copy_packer(tmp_path)
    (root / "scripts" / "cleanup.sh").unlink()
    with pytest.raises(FileNotFoundError, match="cleanup.sh"):
        imagehash.content_hash("spark", root)


# --- scripts in a sandbox -----------------------------------------------------------

STUB = r'''#!/usr/bin/env bash
# Stand-in for system commands: logs argv (tab-separated), keeps state in $STUB_STATE.
name="${0##*/}"
{ printf '%s' "${name}"; printf '\t%s' "$@"; printf '\n'; } >>"${STUB_LOG}"
S="${STUB_STATE}"
case "${name}" in
  apt-get)
    cmd=""; skip=0; specs=()
    for a in "$@"; do
      if ((skip)); then skip=0; continue; fi
      case "${a}" in
        -o) skip=1 ;;
        -*) ;;
        *) if [[ -z "${cmd}" ]]; then cmd="${a}"; else specs+=("${a}"); fi ;;
      esac
    done
    if [[ "${cmd}" == install ]]; then
      for spec in "${specs[@]}"; do
        p="${spec%%=*}"; v=""
        [[ "${spec}" == *=* ]] && v="${spec#*=}"
        v="${v//\*/1.1}"
        printf '%s' "${v:-1.0}" >"${S}/pkg-${p}"
        if [[ "${p}" == kubelet ]]; then touch "${S}/active-kubelet"; fi
      done
    fi ;;
  dpkg-query)
    if [[ "$1" == -L ]]; then echo /usr/lib/jvm/fake-jre/bin/java; exit 0; fi
    fmt=""; names=()
    for a in "$@"; do
      case "${a}" in -f=*) fmt="${a#-f=}" ;; -*) ;; *) names+=("${a}") ;; esac
    done
    rc=0
    for p in "${names[@]}"; do
      if [[ -f "${S}/pkg-${p}" ]]; then
        line="${fmt//'${Package}'/${p}}"
        line="${line//'${db:Status-Status}'/installed}"
        line="${line//'${Version}'/$(<"${S}/pkg-${p}")}"
        printf '%b' "${line}"
      else
        rc=1
      fi
    done
    exit "${rc}" ;;
  dpkg) echo amd64 ;;
  swapon) [[ -e "${S}/swapoff" ]] || echo "/swapfile file 1024M 0B -2" ;;
  swapoff) touch "${S}/swapoff" ;;
  curl)
    out=""; url=""; prev=""
    for a in "$@"; do
      [[ "${prev}" == -o ]] && out="${a}"
      [[ "${a}" == https://* ]] && url="${a}"
      prev="${a}"
    done
    case "${url}" in
      *.tgz) cp "${STUB_CNI_TGZ}" "${out}" ;;
      *.tar.gz) cp "${STUB_HADOOP_TGZ}" "${out}" ;;
      *) echo "key from ${url}" >"${out}" ;;
    esac ;;
  gpg)
    out=""; prev=""
    for a in "$@"; do [[ "${prev}" == -o ]] && out="${a}"; prev="${a}"; done
    { printf 'dearmored '; cat "${@: -1}"; } >"${out}" ;;
  containerd)
    if [[ "$*" == "config default" ]]; then
      printf '%s' "${STUB_CONTAINERD_DEFAULT}"
    elif [[ "$1" == --config ]]; then
      [[ -f "$2" ]]
    fi ;;
  kubeadm) v="$(<"${S}/pkg-kubeadm")"; echo "v${v%%-*}" ;;
  systemctl)
    pos=()
    for a in "$@"; do [[ "${a}" == -* ]] || pos+=("${a}"); done
    unit="${pos[1]:-}"
    case "${pos[0]}" in
      is-active) [[ -e "${S}/active-${unit}" ]] ;;
      is-enabled) [[ -e "${S}/enabled-${unit}" ]] ;;
      enable) touch "${S}/enabled-${unit}" ;;
      stop) rm -f "${S}/active-${unit}" ;;
      restart) touch "${S}/active-${unit}" "${S}/restarted-${unit}" ;;
    esac ;;
  ctr)
    # ctr --namespace NS images list --quiet | images pull REF: one image ref per line in ctr-<NS>
    [[ "$1" == --namespace ]] || exit 2
    store="${S}/ctr-$2"; shift 2
    case "$1 $2" in
      "images list") [[ ! -f "${store}" ]] || cat "${store}" ;;
      "images pull") [[ -e "${S}/active-containerd" ]] || exit 1; echo "$3" >>"${store}" ;;
      *) exit 2 ;;
    esac ;;
esac
'''

STUB_COMMANDS = [
    "apt-get", "apt-mark", "dpkg-query", "dpkg", "modprobe", "sysctl", "swapon", "swapoff",
    "curl", "gpg", "containerd", "ctr", "kubeadm", "systemctl", "ldconfig",
]  # fmt: skip

# containerd 1.7's `config default` (the file the control-plane stand-in's `config dump` prints too)
CONTAINERD_DEFAULT = (Path(__file__).resolve().parents[1] / "fixtures" / "containerd" / "config-1.7-default.toml").read_text()


def make_tgz(path: Path, members: dict[str, str]) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return path


class Sandbox:
    """A NODE_ROOT plus stand-in commands on PATH; runs one script at a time."""

    def __init__(self, tmp_path: Path):
        self.root = tmp_path / "root"
        self.state = tmp_path / "state"
        self.log = tmp_path / "calls.log"
        bindir = tmp_path / "bin"
        for d in (self.root / "etc", self.state, bindir):
            d.mkdir(parents=True)
        stub = bindir / "_stub"
        stub.write_text(STUB)
        stub.chmod(0o755)
        for name in STUB_COMMANDS:
            (bindir / name).symlink_to(stub)
        (self.root / "etc" / "os-release").write_text('NAME="Ubuntu"\nVERSION_CODENAME=jammy\n')
        self.cni_tgz = make_tgz(tmp_path / "cni.tgz", {"./bridge": "#!/bin/sh\n", "./loopback": "#!/bin/sh\n"})
        self.hadoop_tgz = make_tgz(
            tmp_path / "hadoop.tgz",
            {
                "hadoop-9.8.7/bin/hadoop": '#!/bin/sh\necho "Hadoop 9.8.7"\necho "Source code repository x"\n',
                "hadoop-9.8.7/lib/native/libhadoop.so": "",
                "hadoop-9.8.7/share/doc/huge.html": "docs",
            },
        )
        self.env = {
            "PATH": f"{bindir}:{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "TMPDIR": str(tmp_path),
            "NODE_ROOT": str(self.root),
            "KUBEHOP_FILES_DIR": str(FILES),
            "STUB_STATE": str(self.state),
            "STUB_LOG": str(self.log),
            "STUB_CNI_TGZ": str(self.cni_tgz),
            "STUB_HADOOP_TGZ": str(self.hadoop_tgz),
            "STUB_CONTAINERD_DEFAULT": CONTAINERD_DEFAULT,
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def run(self, script: str, **env: str) -> subprocess.CompletedProcess:
        self.log.write_text("")
        return subprocess.run(
            [str(SCRIPTS / script)], env={**self.env, **env}, capture_output=True, text=True, timeout=60
        )

    def calls(self) -> list[list[str]]:
        return [line.split("\t") for line in self.log.read_text().splitlines()]

    def snapshot(self) -> dict[str, tuple[bytes, int]]:
        return {
            str(p.relative_to(self.root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }

    def file(self, path: str) -> Path:
        return self.root / path.lstrip("/")


def parse_sysctl(text: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return {k.strip(): v.strip() for k, v in pairs}


def test_base_sh_applies_settings_and_second_run_is_noop(tmp_path):
    box = Sandbox(tmp_path)
    fstab = "UUID=abc / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n# /old none swap sw 0 0\n"
    box.file("/etc/fstab").write_text(fstab)
    (box.state / "pkg-curl").write_text("1.0")  # already installed: not reinstalled
    data = settings()

    out = box.run("base.sh")
    assert out.returncode == 0, out.stderr
    paths = data["paths"]
    assert parse_sysctl(box.file(paths["sysctl"]).read_text()) == {k: str(v) for k, v in data["sysctls"].items()}
    modules = [l for l in box.file(paths["modules_load"]).read_text().splitlines() if not l.startswith("#")]
    assert modules == data["kernel_modules"]
    assert box.file(paths["installed_settings"]).read_bytes() == SETTINGS.read_bytes()
    assert box.file("/etc/fstab").read_text().splitlines() == [
        "UUID=abc / ext4 defaults 0 1",
        "# disabled by kubehop (swap.disabled): /swapfile none swap sw 0 0",
        "# /old none swap sw 0 0",
    ]
    calls = box.calls()
    assert [c[1] for c in calls if c[0] == "modprobe"] == data["kernel_modules"]
    assert ["sysctl", "-q", "-p", str(box.file(paths["sysctl"]))] in calls
    assert ["swapoff", "-a"] in calls
    (install,) = [c for c in calls if c[0] == "apt-get" and "install" in c]
    # The settings' prerequisites, then the AWS CLI the boot script reads its join parameters with.
    wanted = [p for p in data["packages"]["prerequisites"] if p != "curl"] + ["awscli"]
    assert install[install.index("--no-install-recommends") + 1 :] == wanted
    assert (box.state / "pkg-awscli").exists()

    before = box.snapshot()
    out = box.run("base.sh")
    assert out.returncode == 0, out.stderr
    assert box.snapshot() == before
    names = [c[0] for c in box.calls()]
    assert "apt-get" not in names and "swapoff" not in names
    assert "wrote" not in out.stderr


@pytest.mark.parametrize("listed", [False, True])
def test_base_sh_installs_the_aws_cli_once(tmp_path, listed):
    """awscli (user_data.sh's `aws ssm get-parameter`) comes with every image, once, even when the
    settings list it too; an image that has it does not reinstall it."""
    box = Sandbox(tmp_path)
    files = FILES
    if listed:
        files = tmp_path / "files"
        shutil.copytree(FILES, files, ignore=shutil.ignore_patterns("__pycache__"))
        data = settings()
        data["packages"]["prerequisites"].insert(0, "awscli")
        (files / "node-settings.yaml").write_text(yaml.safe_dump(data))
    for pkg in settings()["packages"]["prerequisites"]:
        (box.state / f"pkg-{pkg}").write_text("1.0")  # everything but the AWS CLI is there already
    out = box.run("base.sh", KUBEHOP_FILES_DIR=str(files))
    assert out.returncode == 0, out.stderr
    (install,) = [c for c in box.calls() if c[0] == "apt-get" and "install" in c]
    assert install[install.index("--no-install-recommends") + 1 :] == ["awscli"]
    assert "installing prerequisites: awscli\n" in out.stderr
    out = box.run("base.sh", KUBEHOP_FILES_DIR=str(files))
    assert out.returncode == 0, out.stderr
    assert "apt-get" not in [c[0] for c in box.calls()]


PAUSE = "registry.k8s.io/pause:3.9"


def test_containerd_sh_pins_version_and_sets_cgroup_from_settings(tmp_path):
    box = Sandbox(tmp_path)
    out = box.run("containerd.sh", CONTAINERD_VERSION="4.5.6", PAUSE_IMAGE=PAUSE)
    assert out.returncode == 0, out.stderr
    config = box.file(settings()["paths"]["containerd_config"]).read_text()
    assert "      SystemdCgroup = true\n" in config
    assert "SystemdCgroup = false" not in config
    assert "    systemd_cgroup = false\n" in config  # the deprecated CRI option is left alone
    assert f'    sandbox_image = "{PAUSE}"\n' in config and "pause:3.8" not in config
    assert (box.state / "ctr-k8s.io").read_text() == f"{PAUSE}\n"  # pulled where the CRI plugin looks
    assert box.file("/etc/apt/sources.list.d/docker.list").read_text() == (
        "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/ubuntu jammy stable\n"
    )
    calls = box.calls()
    (install,) = [c for c in calls if c[0] == "apt-get" and "install" in c]
    assert install[-1] == "containerd.io=4.5.6-*"
    assert ["apt-mark", "hold", "containerd.io"] in calls

    before = box.snapshot()
    (box.state / "restarted-containerd").unlink()
    out = box.run("containerd.sh", CONTAINERD_VERSION="4.5.6", PAUSE_IMAGE=PAUSE)
    assert out.returncode == 0, out.stderr
    assert box.snapshot() == before
    assert not [c for c in box.calls() if c[0] in {"apt-get", "curl"}]
    assert not (box.state / "restarted-containerd").exists()
    assert not [c for c in box.calls() if c[:3] == ["ctr", "--namespace", "k8s.io"] and "pull" in c]


def test_containerd_sh_moves_the_sandbox_image_with_the_minor(tmp_path):
    box = Sandbox(tmp_path)
    assert box.run("containerd.sh", CONTAINERD_VERSION="4.5.6", PAUSE_IMAGE=PAUSE).returncode == 0
    out = box.run("containerd.sh", CONTAINERD_VERSION="4.5.6", PAUSE_IMAGE="registry.k8s.io/pause:3.10")
    assert out.returncode == 0, out.stderr
    config = box.file(settings()["paths"]["containerd_config"]).read_text()
    assert '    sandbox_image = "registry.k8s.io/pause:3.10"\n' in config
    assert (box.state / "ctr-k8s.io").read_text().splitlines() == [PAUSE, "registry.k8s.io/pause:3.10"]


@pytest.mark.parametrize("value", ["pause:3.9", 'registry.k8s.io/pause:3.9";touch /x;"', "registry.k8s.io/pause:3.9|x"])
def test_containerd_sh_refuses_a_pause_image_that_is_not_a_reference(tmp_path, value):
    box = Sandbox(tmp_path)
    out = box.run("containerd.sh", CONTAINERD_VERSION="4.5.6", PAUSE_IMAGE=value)
    assert out.returncode != 0 and "PAUSE_IMAGE must be registry/repository:tag" in out.stderr
    assert not box.file(settings()["paths"]["containerd_config"]).exists()


def _k8s_env(box: Sandbox, **override: str) -> dict[str, str]:
    env = {
        "KUBERNETES_VERSION": "9.8.7",
        "KUBERNETES_MINOR": "9.8",
        "CNI_PLUGINS_VERSION": "v3.2.1",
        "CNI_PLUGINS_SHA256": hashlib.sha256(box.cni_tgz.read_bytes()).hexdigest(),
    }
    env.update(override)
    return env


def test_kubernetes_sh_installs_pinned_packages_cni_and_kubelet_args(tmp_path):
    box = Sandbox(tmp_path)
    out = box.run("kubernetes.sh", **_k8s_env(box))
    assert out.returncode == 0, out.stderr
    assert box.file("/etc/apt/sources.list.d/kubernetes.list").read_text() == (
        "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v9.8/deb/ /\n"
    )
    assert box.file("/etc/apt/keyrings/kubernetes-apt-keyring.gpg").read_text().startswith("dearmored key from")
    calls = box.calls()
    (install,) = [c for c in calls if c[0] == "apt-get" and "install" in c]
    assert install[-3:] == ["kubelet=9.8.7-*", "kubeadm=9.8.7-*", "kubectl=9.8.7-*"]
    assert ["apt-mark", "hold", "kubelet", "kubeadm", "kubectl"] in calls
    curls = [next(a for a in c if a.startswith("https://")) for c in calls if c[0] == "curl"]
    assert "https://github.com/containernetworking/plugins/releases/download/v3.2.1/cni-plugins-linux-amd64-v3.2.1.tgz" in curls
    assert os.access(box.file("/opt/cni/bin/bridge"), os.X_OK)
    expected_env = run_reader(SETTINGS, "kubelet-env").stdout
    assert box.file(settings()["paths"]["kubelet_env"]).read_text() == expected_env
    for unit in settings()["systemd"]["enable"]:
        assert ["systemctl", "enable", unit] in calls
    assert ["systemctl", "stop", "kubelet"] in calls  # enabled, not left running

    before = box.snapshot()
    out = box.run("kubernetes.sh", **_k8s_env(box))
    assert out.returncode == 0, out.stderr
    assert box.snapshot() == before
    assert not [c for c in box.calls() if c[0] in {"apt-get", "curl", "gpg"} or c[:2] == ["systemctl", "enable"]]


def test_kubernetes_sh_refuses_bad_checksum_and_wrong_minor(tmp_path):
    box = Sandbox(tmp_path)
    out = box.run("kubernetes.sh", **_k8s_env(box, CNI_PLUGINS_SHA256="0" * 64))
    assert out.returncode != 0
    assert "sha256 of cni-plugins-linux-amd64-v3.2.1.tgz is" in out.stderr
    assert not box.file("/opt/cni/bin/bridge").exists()
    out = box.run("kubernetes.sh", **_k8s_env(box, KUBERNETES_MINOR="9.9"))
    assert out.returncode != 0 and "is not in minor 9.9" in out.stderr


def test_spark_sh_installs_verified_hadoop(tmp_path):
    box = Sandbox(tmp_path)
    env = {
        "KUBERNETES_VERSION": "9.8.7",
        "JDK_PACKAGE": "fake-jre-headless",
        "HADOOP_VERSION": "9.8.7",
        "HADOOP_MIRROR": "https://mirror.invalid/hadoop/common/",
        "HADOOP_SHA512": hashlib.sha512(box.hadoop_tgz.read_bytes()).hexdigest(),
    }
    out = box.run("spark.sh", **env)
    assert out.returncode != 0 and "not 9.8.7: is worker_ami_id the kubehop worker AMI" in out.stderr
    (box.state / "pkg-kubelet").write_text("9.8.7-1.1")  # what the worker AMI carries
    out = box.run("spark.sh", **env)
    assert out.returncode == 0, out.stderr
    assert os.readlink(box.file("/opt/hadoop")) == "hadoop-9.8.7"
    assert box.file("/opt/hadoop-9.8.7/lib/native/libhadoop.so").exists()
    assert not box.file("/opt/hadoop-9.8.7/share/doc").exists()
    profile = box.file("/etc/profile.d/kubehop-hadoop.sh").read_text()
    assert "export JAVA_HOME=/usr/lib/jvm/fake-jre\n" in profile
    calls = box.calls()
    assert [c for c in calls if c[0] == "apt-get" and "install" in c][0][-1] == "fake-jre-headless"
    assert any("https://mirror.invalid/hadoop/common/hadoop-9.8.7/hadoop-9.8.7.tar.gz" in c for c in calls)

    before = box.snapshot()
    out = box.run("spark.sh", **env)
    assert out.returncode == 0, out.stderr
    assert box.snapshot() == before
    assert not [c for c in box.calls() if c[0] in {"apt-get", "curl"}]

    out = box.run("spark.sh", **{**env, "HADOOP_VERSION": "9.8.8", "HADOOP_SHA512": "a" * 128})
    assert out.returncode != 0 and "sha512" in out.stderr


def test_cleanup_sh_removes_instance_identity(tmp_path):
    box = Sandbox(tmp_path)
    files = {
        "/etc/machine-id": "abc\n",
        "/etc/ssh/ssh_host_ed25519_key": "k",
        "/etc/ssh/sshd_config": "keep",
        "/home/ubuntu/.ssh/authorized_keys": "packer key",
        "/var/lib/apt/lists/some_Packages": "x",
        "/var/lib/cloud/instances/i-123/x": "x",
        "/tmp/kubehop/node-settings.yaml": "x",
    }
    for path, content in files.items():
        box.file(path).parent.mkdir(parents=True, exist_ok=True)
        box.file(path).write_text(content)
    for _attempt in range(2):  # idempotent
        out = box.run("cleanup.sh", KUBEHOP_FILES_DIR="/tmp/kubehop")
        assert out.returncode == 0, out.stderr
    assert box.file("/etc/machine-id").read_text() == ""
    assert box.file("/etc/ssh/sshd_config").exists()
    for gone in list(files)[1:2] + list(files)[3:]:
        assert not box.file(gone).exists(), gone
    out = box.run("cleanup.sh", KUBEHOP_FILES_DIR="/etc")
    assert out.returncode != 0 and "refusing" in out.stderr


@pytest.mark.parametrize(
    "script, variable",
    [
        ("base.sh", "KUBEHOP_FILES_DIR"),
        ("containerd.sh", "CONTAINERD_VERSION"),
        ("kubernetes.sh", "KUBERNETES_VERSION"),
        ("spark.sh", "KUBERNETES_VERSION"),
    ],
)
def test_scripts_name_the_missing_environment_variable(tmp_path, script, variable):
    out = subprocess.run(
        [str(SCRIPTS / script)], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 1
    assert f"required environment variable {variable} is not set" in out.stderr
