#!/usr/bin/env bash
# kubehop step "kubeadm-apply": `kubeadm upgrade apply v<version>` on the FIRST
# control-plane node (runbook 1.5). The other masters use kubeadm_node.sh.
#
# Run as root with this text on stdin: `sudo env K=V ... bash -s`.
# Every input is an environment variable:
#   KUBEHOP_NODE           required  node name, e.g. master0
#   KUBEHOP_VERSION        required  exact target version without "v", e.g. 1.27.16
#   KUBEHOP_MINOR          optional  e.g. 1.27; must agree with KUBEHOP_VERSION
#   KUBEHOP_FORCE          optional  1 adds --force (the runbook uses it); default 0
#   KUBEHOP_APPLY_TIMEOUT  optional  seconds before kubeadm is stopped; default 900
#   KUBEHOP_KUBECONFIG     optional  default /etc/kubernetes/admin.conf
#   KUBEHOP_ROOT           optional  prefix for /etc and /var paths (tests); default empty
# Already done when $KUBEHOP_ROOT/etc/kubernetes/manifests/kube-apiserver.yaml
# runs image .../kube-apiserver:v<version>. Refuses to downgrade.
# Exit: 0 done or already done; 1 failed (reason on stderr); 2 bad input.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
if ! declare -F kubehop_lib_loaded >/dev/null; then source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"; fi

STEP=kubeadm-apply

main() {
  validate_common
  validate_root
  use_kubeconfig
  local force=${KUBEHOP_FORCE:-0} limit=${KUBEHOP_APPLY_TIMEOUT:-900} rc=0
  [[ $force == 0 || $force == 1 ]] || bad "KUBEHOP_FORCE must be 0 or 1 (got '$force')"
  seconds KUBEHOP_APPLY_TIMEOUT "$limit"

  read_apiserver_manifest "downgrade"
  if [[ $CURRENT == "v$KUBEHOP_VERSION" ]]; then
    say "already done (kube-apiserver manifest runs $CURRENT), skipping"
    return 0
  fi
  kubeadm_at_target

  local -a args=(upgrade apply "v$KUBEHOP_VERSION" --yes --kubeconfig "$KCFG")
  if [[ $force == 1 ]]; then args+=(--force); fi
  say "kube-apiserver runs ${CURRENT:-an unknown version}; running kubeadm ${args[*]} (timeout ${limit}s)"
  timeout --kill-after=30 "$limit" kubeadm "${args[@]}" || rc=$?
  if ((rc == 124 || rc == 137)); then
    fail "kubeadm upgrade apply did not finish within ${limit}s and was stopped; kubeadm rolls back a static pod that does not come up and keeps backups in /etc/kubernetes/tmp; check 'crictl ps -a' and 'journalctl -u kubelet', then re-run pulumi up"
  elif ((rc != 0)); then
    fail "kubeadm upgrade apply v$KUBEHOP_VERSION exited $rc (its output above says why: preflight, etcd health, image pull or a static pod that did not come up); fix that and re-run pulumi up"
  fi
  CURRENT=$(manifest_version)
  [[ $CURRENT == "v$KUBEHOP_VERSION" ]] || fail "kubeadm reported success but the kube-apiserver manifest runs ${CURRENT:-no recognisable version}, not v$KUBEHOP_VERSION; inspect $MANIFEST"
  say "done: kube-apiserver manifest now runs v$KUBEHOP_VERSION"
}

# Everything runs from main with stdin closed: this text arrives on stdin
# (`bash -s`), so no command may read the rest of it, and a truncated
# transfer never reaches this line.
main "$@" </dev/null
