#!/usr/bin/env bash
# lib.sh: helpers shared by the kubehop Packer provisioning scripts (base.sh,
# containerd.sh, kubernetes.sh, cleanup.sh, spark.sh), so that each of them
# holds only its own steps.
#
# Why a separate file: Packer copies every shell provisioner script to the
# build instance and runs it as a process of its own, so code shared by the
# scripts cannot live in any one of them. The templates upload this file to
# the kubehop upload directory (/tmp/kubehop) together with
# node-settings.yaml and pass its path as KUBEHOP_LIB; in a checkout (the
# tests) a script finds it next to itself. Every script sources it right
# after naming itself:
#
#   readonly SELF="base.sh" TEMPLATE="packer/worker.pkr.hcl"
#   # shellcheck source-path=SCRIPTDIR source=lib.sh
#   source "${KUBEHOP_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"
#
# This file only defines functions. They read SELF (the script's name, the
# prefix of every message) and require_env reads TEMPLATE (the Packer
# template that passes the environment). The helpers documented as setting a
# variable set it for the sourcing script.
set -euo pipefail

die() { echo "${SELF}: error: $*" >&2; exit 1; }
log() { echo "${SELF}: $*" >&2; }

# require_env NAME...: die naming the first NAME that is unset or empty.
require_env() {
  local name
  for name in "$@"; do
    [[ -n "${!name:-}" ]] || die "required environment variable ${name} is not set (Packer passes it; see ${TEMPLATE})"
  done
}

# resolve_root: set ROOT from NODE_ROOT, the absolute path prefixed to every
# file a script touches (tests run the scripts against a sandbox), without a
# trailing slash; empty on a real build.
resolve_root() {
  ROOT="${NODE_ROOT:-}"
  if [[ -n "${ROOT}" ]]; then
    [[ "${ROOT}" == /* && -d "${ROOT}" ]] || die "NODE_ROOT must be an existing absolute directory, got '${ROOT}'"
    ROOT="${ROOT%/}"
  fi
}

# locate_settings: set SETTINGS and SETTINGS_TOOL to node-settings.yaml and
# nodesettings.py in KUBEHOP_FILES_DIR; die unless both exist.
locate_settings() {
  SETTINGS="${KUBEHOP_FILES_DIR}/node-settings.yaml"
  SETTINGS_TOOL="${KUBEHOP_FILES_DIR}/nodesettings.py"
  [[ -f "${SETTINGS}" ]] || die "settings file ${SETTINGS} not found (KUBEHOP_FILES_DIR=${KUBEHOP_FILES_DIR})"
  [[ -f "${SETTINGS_TOOL}" ]] || die "settings reader ${SETTINGS_TOOL} not found (KUBEHOP_FILES_DIR=${KUBEHOP_FILES_DIR})"
}

# settings ARG...: ask nodesettings.py about the settings file (after
# locate_settings). Every call validates the whole settings file first and
# exits non-zero with a message naming the bad key; call it only in plain
# assignments so that `set -e` sees a failure.
settings() { python3 "${SETTINGS_TOOL}" "${SETTINGS}" "$@"; }

# install_file MODE SRC DEST: install SRC as DEST with MODE, creating DEST's
# directory.
install_file() {
  mkdir -p "$(dirname "$3")"
  install -m "$1" "$2" "$3"
}

# install_content DEST MODE CONTENT: write CONTENT (plus a newline) to DEST
# unless it already holds exactly that; sets CHANGED=1 if it wrote, else 0.
# shellcheck disable=SC2034 # CHANGED is read by the sourcing script
install_content() {
  local dest="$1" mode="$2" content="$3" tmp
  CHANGED=0
  tmp="$(mktemp)"
  printf '%s\n' "${content}" >"${tmp}"
  if [[ -f "${dest}" ]] && cmp -s "${tmp}" "${dest}"; then
    rm -f "${tmp}"
    return 0
  fi
  install_file "${mode}" "${tmp}" "${dest}"
  rm -f "${tmp}"
  CHANGED=1
  log "wrote ${dest}"
}

# make_work_dir: set WORK_DIR to a new temporary directory that is removed
# when the script exits.
make_work_dir() {
  WORK_DIR="$(mktemp -d)"
  trap 'rm -rf "${WORK_DIR}"' EXIT
}

# download URL DEST: fetch URL (https only, with retries) to DEST, or die.
download() {
  curl -fsSL --proto '=https' --retry 5 "$1" -o "$2" || die "cannot download $1"
}

# checksum_ok ALGO HEX FILE: whether FILE's ALGO digest (sha256, sha512) is
# HEX; callers die with their own message.
checksum_ok() {
  echo "$2  $3" | "${1}sum" --check --status
}

# package_version PACKAGE: print PACKAGE's installed version (dpkg), or
# nothing when it is not installed.
package_version() {
  dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true
}

# apt_get ARG...: apt-get without questions, waiting for the dpkg lock.
apt_get() {
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q "$@"
}

# apt_install ARG...: refresh the package lists, then `apt-get install -y
# ARG...` (options, then packages).
apt_install() {
  apt_get update
  apt_get install -y "$@"
}

# apt_install_pinned SPEC...: apt_install exact name=version SPECs, moving
# held packages and downgrading when needed, keeping local config files.
apt_install_pinned() {
  apt_install --allow-change-held-packages --allow-downgrades -o Dpkg::Options::=--force-confold "$@"
}
