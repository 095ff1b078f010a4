#!/usr/bin/env bash
# containerd.sh: install containerd at exactly CONTAINERD_VERSION from
# Docker's Ubuntu apt repository (package containerd.io, which also carries
# runc), hold it, and write its config with the cgroup driver taken from
# node-settings.yaml (containerd.systemd_cgroup) and the CRI sandbox image set
# to the pause image of the minor's kubeadm, pulled into the image.
#
# Why Docker's repository: Ubuntu's own `containerd` package offers one
# version per release, so the catalog's containerd version could not be
# pinned. Why a fresh `containerd config default`: the containerd.io package
# ships a config.toml that disables the CRI plugin, which the kubelet needs.
# Why the sandbox image: containerd 1.7's default is registry.k8s.io/pause:3.8
# (`sandbox_image` under [plugins."io.containerd.grpc.v1.cri"], containerd
# pkg/cri/config/config_unix.go), while kubeadm 1.26-1.30 expects pause:3.9 and
# 1.31+ pause:3.10 (kubehop/catalog.py SOURCES["pause"]); kubeadm's preflight
# warns on the mismatch and every pod sandbox would need a pull at boot. The
# pull goes into containerd's `k8s.io` namespace, the one its CRI plugin serves.
#
# Environment:
#   CONTAINERD_VERSION  required: upstream version, x.y.z (from the catalog);
#                       pinned as containerd.io=<version>-*
#   PAUSE_IMAGE         required: registry/repository:tag of the pause image
#                       (catalog Release.pause_image)
#   KUBEHOP_FILES_DIR   required: directory holding node-settings.yaml and
#                       nodesettings.py
#   NODE_ROOT           optional: absolute path prefixed to every file this
#                       script writes (tests); empty on a real build
#   KUBEHOP_LIB         optional: path of lib.sh, the shared helpers (Packer
#                       passes the uploaded copy); default: next to this script
#
# Idempotent: the repository, package and config are touched only when they
# differ from what is wanted.
set -euo pipefail

readonly SELF="containerd.sh" TEMPLATE="packer/worker.pkr.hcl"
readonly DOCKER_REPO_URL="https://download.docker.com/linux/ubuntu"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${KUBEHOP_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

require_env CONTAINERD_VERSION PAUSE_IMAGE KUBEHOP_FILES_DIR
[[ "${CONTAINERD_VERSION}" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] \
  || die "CONTAINERD_VERSION must look like x.y.z (no leading v, no package revision), got '${CONTAINERD_VERSION}'"
[[ "${PAUSE_IMAGE}" =~ ^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+:[A-Za-z0-9._-]+$ ]] \
  || die "PAUSE_IMAGE must be registry/repository:tag, got '${PAUSE_IMAGE}'"
resolve_root
locate_settings

systemd_cgroup="$(settings get containerd.systemd_cgroup)"
config_rel="$(settings get paths.containerd_config)"
config_path="${ROOT}${config_rel}"

# --- apt repository ---------------------------------------------------------
arch="$(dpkg --print-architecture)"
codename="$(sed -n 's/^VERSION_CODENAME=//p' "${ROOT}/etc/os-release" | tr -d '"')"
[[ -n "${codename}" ]] || die "cannot read VERSION_CODENAME from ${ROOT}/etc/os-release"
keyring_rel="/etc/apt/keyrings/docker.asc"
keyring="${ROOT}${keyring_rel}"
need_update=0
if [[ ! -s "${keyring}" ]]; then
  log "fetching Docker's apt signing key"
  tmp_key="$(mktemp)"
  download "${DOCKER_REPO_URL}/gpg" "${tmp_key}"
  install_file 0644 "${tmp_key}" "${keyring}"
  rm -f "${tmp_key}"
  need_update=1
fi
install_content "${ROOT}/etc/apt/sources.list.d/docker.list" 0644 \
  "deb [arch=${arch} signed-by=${keyring_rel}] ${DOCKER_REPO_URL} ${codename} stable"
((CHANGED)) && need_update=1

# --- package ----------------------------------------------------------------
installed="$(package_version containerd.io)"
if [[ "${installed}" != "${CONTAINERD_VERSION}"-* ]]; then
  log "installing containerd.io=${CONTAINERD_VERSION}-* (installed: ${installed:-none})"
  apt_install_pinned "containerd.io=${CONTAINERD_VERSION}-*"
elif ((need_update)); then
  apt_get update
fi
apt-mark hold containerd.io >/dev/null
installed="$(dpkg-query -W -f='${Version}' containerd.io)"
[[ "${installed}" == "${CONTAINERD_VERSION}"-* ]] \
  || die "containerd.io ${installed} is installed, wanted ${CONTAINERD_VERSION}-*"

# --- config -----------------------------------------------------------------
default_config="$(containerd config default)"
grep -Eq '^[[:space:]]*SystemdCgroup[[:space:]]*=' <<<"${default_config}" \
  || die "containerd ${CONTAINERD_VERSION}'s default config has no SystemdCgroup option; cannot apply containerd.systemd_cgroup"
grep -Eq '^[[:space:]]*sandbox_image[[:space:]]*=' <<<"${default_config}" \
  || die "containerd ${CONTAINERD_VERSION}'s default config has no sandbox_image option; cannot set the pause image ${PAUSE_IMAGE}"
config="$(sed -E -e "s/^([[:space:]]*SystemdCgroup[[:space:]]*=[[:space:]]*).*/\\1${systemd_cgroup}/" \
  -e "s|^([[:space:]]*sandbox_image[[:space:]]*=[[:space:]]*).*|\\1\"${PAUSE_IMAGE}\"|" <<<"${default_config}")"
install_content "${config_path}" 0644 "${config}"
config_changed="${CHANGED}"
containerd --config "${config_path}" config dump >/dev/null \
  || die "containerd rejects the generated ${config_path}"
if ((config_changed)) || ! systemctl is-active --quiet containerd; then
  log "restarting containerd for the new config"
  systemctl restart containerd
fi

# --- pause image --------------------------------------------------------------
if ctr --namespace k8s.io images list --quiet | grep -Fxq "${PAUSE_IMAGE}"; then
  log "pause image ${PAUSE_IMAGE} already in containerd's k8s.io namespace"
else
  log "pulling the pause image ${PAUSE_IMAGE}"
  ctr --namespace k8s.io images pull "${PAUSE_IMAGE}" >/dev/null
  ctr --namespace k8s.io images list --quiet | grep -Fxq "${PAUSE_IMAGE}" \
    || die "${PAUSE_IMAGE} is not in containerd's k8s.io namespace after the pull"
fi

log "done: containerd.io ${installed}, SystemdCgroup = ${systemd_cgroup}, sandbox_image = ${PAUSE_IMAGE}"
