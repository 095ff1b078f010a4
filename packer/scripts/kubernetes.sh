#!/usr/bin/env bash
# kubernetes.sh: install kubelet, kubeadm and kubectl at exactly
# KUBERNETES_VERSION from the pkgs.k8s.io repository of KUBERNETES_MINOR
# (one repository per minor; the legacy apt.kubernetes.io is gone), hold
# them, install the CNI plugins at CNI_PLUGINS_VERSION from the
# containernetworking GitHub release (sha256-verified), write the kubelet's
# extra args from node-settings.yaml, and enable the systemd units listed
# there without starting the kubelet (`kubeadm join` does that at boot).
#
# Environment:
#   KUBERNETES_VERSION  required: x.y.z (from the catalog); pinned as <pkg>=x.y.z-*
#   KUBERNETES_MINOR    required: x.y, and KUBERNETES_VERSION must be in it
#   CNI_PLUGINS_VERSION required: x.y.z (a leading v is accepted)
#   CNI_PLUGINS_SHA256  required: sha256 of cni-plugins-linux-<arch>-v<version>.tgz
#   KUBEHOP_FILES_DIR   required: directory holding node-settings.yaml and
#                       nodesettings.py
#   NODE_ROOT           optional: absolute path prefixed to every file this
#                       script writes (tests); empty on a real build
#
# Idempotent: repository, packages, CNI plugins and files are touched only
# when they differ from what is wanted.
set -euo pipefail

readonly SELF="kubernetes.sh"
readonly PACKAGES=(kubelet kubeadm kubectl)

die() { echo "${SELF}: error: $*" >&2; exit 1; }
log() { echo "${SELF}: $*" >&2; }

require_env() {
  local name
  for name in "$@"; do
    [[ -n "${!name:-}" ]] || die "required environment variable ${name} is not set (Packer passes it; see packer/worker.pkr.hcl)"
  done
}

require_env KUBERNETES_VERSION KUBERNETES_MINOR CNI_PLUGINS_VERSION CNI_PLUGINS_SHA256 KUBEHOP_FILES_DIR
[[ "${KUBERNETES_VERSION}" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] \
  || die "KUBERNETES_VERSION must look like x.y.z (no leading v, no package revision), got '${KUBERNETES_VERSION}'"
[[ "${KUBERNETES_MINOR}" =~ ^[0-9]+\.[0-9]+$ ]] \
  || die "KUBERNETES_MINOR must look like x.y (no leading v), got '${KUBERNETES_MINOR}'"
[[ "${KUBERNETES_VERSION}" == "${KUBERNETES_MINOR}".* ]] \
  || die "KUBERNETES_VERSION ${KUBERNETES_VERSION} is not in minor ${KUBERNETES_MINOR}"
CNI_PLUGINS_VERSION="${CNI_PLUGINS_VERSION#v}"
[[ "${CNI_PLUGINS_VERSION}" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] \
  || die "CNI_PLUGINS_VERSION must look like x.y.z, got '${CNI_PLUGINS_VERSION}'"
CNI_PLUGINS_SHA256="${CNI_PLUGINS_SHA256,,}"
[[ "${CNI_PLUGINS_SHA256}" =~ ^[0-9a-f]{64}$ ]] \
  || die "CNI_PLUGINS_SHA256 must be 64 hex digits, got '${CNI_PLUGINS_SHA256}'"
ROOT="${NODE_ROOT:-}"
if [[ -n "${ROOT}" ]]; then
  [[ "${ROOT}" == /* && -d "${ROOT}" ]] || die "NODE_ROOT must be an existing absolute directory, got '${ROOT}'"
  ROOT="${ROOT%/}"
fi
SETTINGS="${KUBEHOP_FILES_DIR}/node-settings.yaml"
SETTINGS_TOOL="${KUBEHOP_FILES_DIR}/nodesettings.py"
[[ -f "${SETTINGS}" ]] || die "settings file ${SETTINGS} not found (KUBEHOP_FILES_DIR=${KUBEHOP_FILES_DIR})"
[[ -f "${SETTINGS_TOOL}" ]] || die "settings reader ${SETTINGS_TOOL} not found (KUBEHOP_FILES_DIR=${KUBEHOP_FILES_DIR})"

# Every call validates the whole settings file first and exits non-zero with
# a message naming the bad key; call it only in plain assignments so that
# `set -e` sees a failure.
settings() { python3 "${SETTINGS_TOOL}" "${SETTINGS}" "$@"; }

# install_content DEST MODE CONTENT: write CONTENT (plus a newline) to DEST
# unless it already holds exactly that; sets CHANGED=1 if it wrote, else 0.
CHANGED=0
install_content() {
  local dest="$1" mode="$2" content="$3" tmp
  CHANGED=0
  tmp="$(mktemp)"
  printf '%s\n' "${content}" >"${tmp}"
  if [[ -f "${dest}" ]] && cmp -s "${tmp}" "${dest}"; then
    rm -f "${tmp}"
    return 0
  fi
  mkdir -p "$(dirname "${dest}")"
  install -m "${mode}" "${tmp}" "${dest}"
  rm -f "${tmp}"
  CHANGED=1
  log "wrote ${dest}"
}

apt_get() {
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q "$@"
}

WORK_DIR="$(mktemp -d)"
trap 'rm -rf "${WORK_DIR}"' EXIT

kubelet_env_path="${ROOT}$(settings get paths.kubelet_env)"
kubelet_env="$(settings kubelet-env)"
units_text="$(settings get systemd.enable)"

# --- apt repository for this minor ------------------------------------------
repo_url="https://pkgs.k8s.io/core:/stable:/v${KUBERNETES_MINOR}/deb/"
keyring_rel="/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
keyring="${ROOT}${keyring_rel}"
install_content "${ROOT}/etc/apt/sources.list.d/kubernetes.list" 0644 \
  "deb [signed-by=${keyring_rel}] ${repo_url} /"
need_update="${CHANGED}"
if ((need_update)) || [[ ! -s "${keyring}" ]]; then
  log "fetching the signing key of ${repo_url}"
  curl -fsSL --proto '=https' --retry 5 "${repo_url}Release.key" -o "${WORK_DIR}/Release.key" \
    || die "cannot download ${repo_url}Release.key"
  gpg --batch --yes --dearmor -o "${WORK_DIR}/keyring.gpg" "${WORK_DIR}/Release.key" \
    || die "cannot dearmor ${repo_url}Release.key"
  mkdir -p "$(dirname "${keyring}")"
  install -m 0644 "${WORK_DIR}/keyring.gpg" "${keyring}"
  need_update=1
fi

# --- kubelet, kubeadm, kubectl ----------------------------------------------
# installed_versions: "<package> <version>" lines for PACKAGES (missing ones omitted).
installed_versions() {
  dpkg-query -W -f='${Package} ${Version}\n' "${PACKAGES[@]}" 2>/dev/null || true
}
# all_pinned TEXT: whether every package in TEXT is at KUBERNETES_VERSION-*.
all_pinned() {
  local pkg line found
  for pkg in "${PACKAGES[@]}"; do
    found=0
    while IFS= read -r line; do
      if [[ "${line}" == "${pkg} ${KUBERNETES_VERSION}-"* ]]; then found=1; fi
    done <<<"$1"
    ((found)) || return 1
  done
  return 0
}
pinned=()
for pkg in "${PACKAGES[@]}"; do
  pinned+=("${pkg}=${KUBERNETES_VERSION}-*")
done
have="$(installed_versions)"
stale=0
all_pinned "${have}" || stale=1
if ((stale)); then
  log "installing ${pinned[*]}"
  apt_get update
  apt_get install -y --allow-change-held-packages --allow-downgrades \
    -o Dpkg::Options::=--force-confold "${pinned[@]}"
elif ((need_update)); then
  apt_get update
fi
apt-mark hold "${PACKAGES[@]}" >/dev/null
have="$(installed_versions)"
all_pinned "${have}" \
  || die "wanted ${PACKAGES[*]} at ${KUBERNETES_VERSION}-*, installed: $(tr '\n' ' ' <<<"${have}")"
kubeadm_says="$(kubeadm version -o short)"
[[ "${kubeadm_says}" == "v${KUBERNETES_VERSION}" ]] \
  || die "kubeadm reports ${kubeadm_says}, wanted v${KUBERNETES_VERSION}"

# --- CNI plugins --------------------------------------------------------------
# After the packages: if a package drops plugins into /opt/cni/bin, the
# pinned release tarball still wins.
arch="$(dpkg --print-architecture)"
cni_dir="${ROOT}/opt/cni/bin"
cni_marker="${cni_dir}/.kubehop-cni-plugins"
cni_want="v${CNI_PLUGINS_VERSION} ${arch} ${CNI_PLUGINS_SHA256}"
if [[ "$(cat "${cni_marker}" 2>/dev/null || true)" != "${cni_want}" ]]; then
  tarball="cni-plugins-linux-${arch}-v${CNI_PLUGINS_VERSION}.tgz"
  url="https://github.com/containernetworking/plugins/releases/download/v${CNI_PLUGINS_VERSION}/${tarball}"
  log "installing CNI plugins v${CNI_PLUGINS_VERSION} from ${url}"
  curl -fsSL --proto '=https' --retry 5 "${url}" -o "${WORK_DIR}/${tarball}" || die "cannot download ${url}"
  echo "${CNI_PLUGINS_SHA256}  ${WORK_DIR}/${tarball}" | sha256sum --check --status \
    || die "sha256 of ${tarball} is $(sha256sum "${WORK_DIR}/${tarball}" | cut -d' ' -f1), wanted ${CNI_PLUGINS_SHA256}"
  mkdir -p "${cni_dir}"
  tar -xzf "${WORK_DIR}/${tarball}" -C "${cni_dir}" --no-same-owner
  [[ -x "${cni_dir}/bridge" && -x "${cni_dir}/loopback" ]] \
    || die "${tarball} did not provide the expected plugins in ${cni_dir}"
  printf '%s\n' "${cni_want}" >"${cni_marker}"
fi

# --- kubelet extra args and systemd units -------------------------------------
install_content "${kubelet_env_path}" 0644 "${kubelet_env}"
if [[ -n "${units_text}" ]]; then
  mapfile -t units <<<"${units_text}"
  for unit in "${units[@]}"; do
    systemctl is-enabled --quiet "${unit}" 2>/dev/null || systemctl enable "${unit}"
  done
fi
# The kubelet package starts the kubelet, which crash-loops without a config;
# leave it stopped in the image and let `kubeadm join` start it.
if systemctl is-active --quiet kubelet; then
  systemctl stop kubelet
fi

log "done: ${PACKAGES[*]} ${KUBERNETES_VERSION}, CNI plugins v${CNI_PLUGINS_VERSION}"
