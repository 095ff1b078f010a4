#!/usr/bin/env bash
# base.sh: apply the OS part of node-settings.yaml to a kubehop worker image:
# apt prerequisites, kernel modules (now and at boot), sysctls (now and at
# boot), swap off (now and in fstab), and a copy of the settings file on the
# node. Every value comes from node-settings.yaml via nodesettings.py; this
# script holds none of them. The one package named here is awscli (the AWS
# CLI): the node's boot script (components/scripts/node_pool/user_data.sh)
# reads its join parameters with `aws ssm get-parameter`, so every kubehop
# image needs it whatever the settings say.
#
# Environment:
#   KUBEHOP_FILES_DIR  required: directory holding node-settings.yaml and
#                      nodesettings.py (uploaded by the Packer file provisioner)
#   NODE_ROOT          optional: absolute path prefixed to every file this
#                      script writes (tests run it against a sandbox); empty
#                      on a real build
#   KUBEHOP_LIB        optional: path of lib.sh, the shared helpers (Packer
#                      passes the uploaded copy); default: next to this script
#
# Idempotent: files are rewritten only when their content differs, packages
# are installed only when missing, swap is turned off only when on.
set -euo pipefail

readonly SELF="base.sh" TEMPLATE="packer/worker.pkr.hcl"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${KUBEHOP_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

require_env KUBEHOP_FILES_DIR
resolve_root
locate_settings
command -v python3 >/dev/null || die "python3 is required to read ${SETTINGS}"

# A Packer SSH session can start while cloud-init is still running apt on
# first boot; wait so apt/dpkg locks are free (real builds only).
if [[ -z "${ROOT}" ]] && command -v cloud-init >/dev/null; then
  cloud-init status --wait >/dev/null || log "warning: cloud-init status exited $? (continuing)"
fi

# --- apt prerequisites ------------------------------------------------------
# The settings' list, then what the boot script needs (unless listed already).
readonly BOOT_PACKAGES=(awscli)
prereq_text="$(settings get packages.prerequisites)"
prereqs=()
missing=()
if [[ -n "${prereq_text}" ]]; then
  mapfile -t prereqs <<<"${prereq_text}"
fi
for pkg in "${BOOT_PACKAGES[@]}"; do
  [[ " ${prereqs[*]} " == *" ${pkg} "* ]] || prereqs+=("${pkg}")
done
# One query for all of them; unknown packages are simply not listed.
installed_text="$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${prereqs[@]}" 2>/dev/null || true)"
for pkg in "${prereqs[@]}"; do
  grep -qxF "${pkg} installed" <<<"${installed_text}" || missing+=("${pkg}")
done
if ((${#missing[@]} > 0)); then
  log "installing prerequisites: ${missing[*]}"
  apt_install --no-install-recommends "${missing[@]}"
fi

# --- kernel modules ---------------------------------------------------------
modules_path="${ROOT}$(settings get paths.modules_load)"
modules_conf="$(settings modules-load)"
modules_text="$(settings get kernel_modules)"
install_content "${modules_path}" 0644 "${modules_conf}"
mapfile -t modules <<<"${modules_text}"
for module in "${modules[@]}"; do
  modprobe "${module}" || die "cannot load kernel module ${module}"
done

# --- sysctls (after the modules: the net.bridge.* keys need the bridge netfilter module)
sysctl_path="${ROOT}$(settings get paths.sysctl)"
sysctl_conf="$(settings sysctl-conf)"
install_content "${sysctl_path}" 0644 "${sysctl_conf}"
sysctl -q -p "${sysctl_path}" >/dev/null || die "cannot apply ${sysctl_path}"

# --- swap -------------------------------------------------------------------
swap_disabled="$(settings get swap.disabled)"
if [[ "${swap_disabled}" == "true" ]]; then
  active_swap="$(swapon --noheadings --show 2>/dev/null || true)"
  if [[ -n "${active_swap}" ]]; then
    log "turning swap off"
    swapoff -a
  fi
  fstab="${ROOT}/etc/fstab"
  if [[ -f "${fstab}" ]] && awk '$1 !~ /^#/ && $3 == "swap" { found = 1 } END { exit !found }' "${fstab}"; then
    fstab_new="$(awk '$1 !~ /^#/ && $3 == "swap" { print "# disabled by kubehop (swap.disabled): " $0; next } { print }' "${fstab}")"
    install_content "${fstab}" 0644 "${fstab_new}"
  fi
fi

# --- the settings themselves, for operators and later audits --------------
installed_path="${ROOT}$(settings get paths.installed_settings)"
if ! cmp -s "${SETTINGS}" "${installed_path}"; then
  install_file 0644 "${SETTINGS}" "${installed_path}"
  log "wrote ${installed_path}"
fi

log "done"
