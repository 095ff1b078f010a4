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
#   KUBEHOP_LIB         optional: path of lib.sh, the shared helpers (Packer
#                       passes the uploaded copy); default: next to this script
#
# Idempotent: repository, packages, CNI plugins and files are touched only
# when they differ from what is wanted.
set -euo pipefail

readonly SELF="kubernetes.sh" TEMPLATE="packer/worker.pkr.hcl"
readonly PACKAGES=(kubelet kubeadm kubectl)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${KUBEHOP_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

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
resolve_root
locate_settings
make_work_dir

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
  download "${repo_url}Release.key" "${WORK_DIR}/Release.key"
  gpg --batch --yes --dearmor -o "${WORK_DIR}/keyring.gpg" "${WORK_DIR}/Release.key" \
    || die "cannot dearmor ${repo_url}Release.key"
  install_file 0644 "${WORK_DIR}/keyring.gpg" "${keyring}"
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
  apt_install_pinned "${pinned[@]}"
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
  download "${url}" "${WORK_DIR}/${tarball}"
  checksum_ok sha256 "${CNI_PLUGINS_SHA256}" "${WORK_DIR}/${tarball}" \
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
