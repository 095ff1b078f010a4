#!/usr/bin/env bash
# containerd.sh: install containerd at exactly CONTAINERD_VERSION from
# Docker's Ubuntu apt repository (package containerd.io, which also carries
# runc), hold it, and write its config with the cgroup driver taken from
# node-settings.yaml (containerd.systemd_cgroup).
#
# Why Docker's repository: Ubuntu's own `containerd` package offers one
# version per release, so the catalog's containerd version could not be
# pinned. Why a fresh `containerd config default`: the containerd.io package
# ships a config.toml that disables the CRI plugin, which the kubelet needs.
#
# Environment:
#   CONTAINERD_VERSION  required: upstream version, x.y.z (from the catalog);
#                       pinned as containerd.io=<version>-*
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

require_env CONTAINERD_VERSION KUBEHOP_FILES_DIR
[[ "${CONTAINERD_VERSION}" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] \
  || die "CONTAINERD_VERSION must look like x.y.z (no leading v, no package revision), got '${CONTAINERD_VERSION}'"
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
config="$(sed -E "s/^([[:space:]]*SystemdCgroup[[:space:]]*=[[:space:]]*).*/\\1${systemd_cgroup}/" <<<"${default_config}")"
install_content "${config_path}" 0644 "${config}"
config_changed="${CHANGED}"
containerd --config "${config_path}" config dump >/dev/null \
  || die "containerd rejects the generated ${config_path}"
if ((config_changed)) && systemctl is-active --quiet containerd; then
  log "restarting containerd for the new config"
  systemctl restart containerd
fi

log "done: containerd.io ${installed}, SystemdCgroup = ${systemd_cgroup}"
