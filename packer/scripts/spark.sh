#!/usr/bin/env bash
# spark.sh: turn a kubehop worker image into a Spark worker image (runbook
# section 4.1): a JDK from Ubuntu's archive and the Hadoop libraries from an
# Apache release tarball, verified against a sha512 from the caller. The
# worker's kubelet/containerd/CNI are left exactly as the worker AMI has them.
#
# Layout: /opt/hadoop-<version> with /opt/hadoop pointing at it,
# /etc/profile.d/kubehop-hadoop.sh (JAVA_HOME, HADOOP_HOME, PATH) and
# /etc/ld.so.conf.d/kubehop-hadoop.conf (Hadoop native libraries).
#
# Environment:
#   KUBERNETES_VERSION required: x.y.z the AMI is named after; the worker
#                   image's kubelet must be exactly that version (a Spark AMI
#                   on the wrong worker AMI would lie in its name)
#   JDK_PACKAGE     required: apt package name, e.g. a *-jre-headless package
#   HADOOP_VERSION  required: x.y.z
#   HADOOP_MIRROR   required: https base URL holding hadoop-<v>/hadoop-<v>.tar.gz
#                   (Apache's layout, e.g. the archive.apache.org common/ dir)
#   HADOOP_SHA512   required: sha512 of hadoop-<v>.tar.gz (128 hex digits)
#   NODE_ROOT       optional: absolute path prefixed to every file this
#                   script writes (tests); empty on a real build
#   KUBEHOP_LIB     optional: path of lib.sh, the shared helpers (Packer
#                   passes the uploaded copy); default: next to this script
#
# Idempotent: the JDK is installed only when missing, the tarball is fetched
# only when /opt/hadoop-<version> is absent or was unpacked from another
# tarball, files are rewritten only when their content differs.
set -euo pipefail

readonly SELF="spark.sh" TEMPLATE="packer/spark.pkr.hcl"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${KUBEHOP_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

require_env KUBERNETES_VERSION JDK_PACKAGE HADOOP_VERSION HADOOP_MIRROR HADOOP_SHA512
[[ "${KUBERNETES_VERSION}" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "KUBERNETES_VERSION must look like x.y.z, got '${KUBERNETES_VERSION}'"
[[ "${JDK_PACKAGE}" =~ ^[a-z0-9][a-z0-9.+-]+$ ]] || die "JDK_PACKAGE is not an apt package name: '${JDK_PACKAGE}'"
[[ "${HADOOP_VERSION}" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "HADOOP_VERSION must look like x.y.z, got '${HADOOP_VERSION}'"
[[ "${HADOOP_MIRROR}" == https://* ]] || die "HADOOP_MIRROR must be an https:// URL, got '${HADOOP_MIRROR}'"
HADOOP_SHA512="${HADOOP_SHA512,,}"
[[ "${HADOOP_SHA512}" =~ ^[0-9a-f]{128}$ ]] || die "HADOOP_SHA512 must be 128 hex digits, got '${HADOOP_SHA512}'"
resolve_root
make_work_dir

# --- the worker image underneath ---------------------------------------------------
kubelet_version="$(package_version kubelet)"
[[ "${kubelet_version}" == "${KUBERNETES_VERSION}"-* ]] \
  || die "the source AMI has kubelet '${kubelet_version:-none}', not ${KUBERNETES_VERSION}: is worker_ami_id the kubehop worker AMI of this version?"

# --- JDK ------------------------------------------------------------------------
status="$(dpkg-query -W -f='${db:Status-Status}' "${JDK_PACKAGE}" 2>/dev/null || true)"
if [[ "${status}" != "installed" ]]; then
  log "installing ${JDK_PACKAGE}"
  # The worker image's cleanup.sh removed the apt lists: update first.
  apt_install --no-install-recommends "${JDK_PACKAGE}"
fi
java_bin="$(dpkg-query -L "${JDK_PACKAGE}" | grep -E '/bin/java$' | head -n 1 || true)"
[[ -n "${java_bin}" ]] || die "package ${JDK_PACKAGE} does not ship a bin/java; is it a JDK/JRE package?"
java_home="${java_bin%/bin/java}"

# --- Hadoop -----------------------------------------------------------------------
hadoop_rel="/opt/hadoop-${HADOOP_VERSION}"
hadoop_dir="${ROOT}${hadoop_rel}"
marker="${hadoop_dir}/.kubehop-sha512"
if [[ "$(cat "${marker}" 2>/dev/null || true)" != "${HADOOP_SHA512}" ]]; then
  tarball="hadoop-${HADOOP_VERSION}.tar.gz"
  url="${HADOOP_MIRROR%/}/hadoop-${HADOOP_VERSION}/${tarball}"
  log "installing Hadoop ${HADOOP_VERSION} from ${url}"
  download "${url}" "${WORK_DIR}/${tarball}"
  checksum_ok sha512 "${HADOOP_SHA512}" "${WORK_DIR}/${tarball}" \
    || die "sha512 of ${tarball} does not match HADOOP_SHA512"
  mkdir -p "${WORK_DIR}/unpack"
  # The documentation is most of the tarball and useless on a node.
  tar -xzf "${WORK_DIR}/${tarball}" -C "${WORK_DIR}/unpack" --no-same-owner \
    --exclude="hadoop-${HADOOP_VERSION}/share/doc"
  [[ -x "${WORK_DIR}/unpack/hadoop-${HADOOP_VERSION}/bin/hadoop" ]] \
    || die "${tarball} has no hadoop-${HADOOP_VERSION}/bin/hadoop"
  mkdir -p "$(dirname "${hadoop_dir}")"
  rm -rf "${hadoop_dir}"
  mv "${WORK_DIR}/unpack/hadoop-${HADOOP_VERSION}" "${hadoop_dir}"
  printf '%s\n' "${HADOOP_SHA512}" >"${marker}"
fi
if [[ "$(readlink "${ROOT}/opt/hadoop" 2>/dev/null || true)" != "hadoop-${HADOOP_VERSION}" ]]; then
  ln -sfn "hadoop-${HADOOP_VERSION}" "${ROOT}/opt/hadoop"
fi

install_content "${ROOT}/etc/profile.d/kubehop-hadoop.sh" 0644 "# Managed by kubehop (spark.sh).
export JAVA_HOME=${java_home}
export HADOOP_HOME=/opt/hadoop
export HADOOP_CONF_DIR=/opt/hadoop/etc/hadoop
export PATH=\"\${PATH}:/opt/hadoop/bin\""
install_content "${ROOT}/etc/ld.so.conf.d/kubehop-hadoop.conf" 0644 "/opt/hadoop/lib/native"
if ((CHANGED)) && [[ -z "${ROOT}" ]]; then
  ldconfig
fi

hadoop_out="$(JAVA_HOME="${ROOT}${java_home}" "${ROOT}/opt/hadoop/bin/hadoop" version)" \
  || die "${ROOT}/opt/hadoop/bin/hadoop version failed"
hadoop_says="${hadoop_out%%$'\n'*}"
[[ "${hadoop_says}" == "Hadoop ${HADOOP_VERSION}" ]] \
  || die "hadoop version reports '${hadoop_says}', wanted 'Hadoop ${HADOOP_VERSION}'"

log "done: ${JDK_PACKAGE} (JAVA_HOME=${java_home}), Hadoop ${HADOOP_VERSION}"
