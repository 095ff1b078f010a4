#!/usr/bin/env bash
# kubehop step "kubeadm-node": `kubeadm upgrade node` on a control-plane node
# other than the first (runbook 1.9), after kubeadm-apply ran on the first.
# It upgrades this node's static pods to the cluster's version (the one the
# first master's `kubeadm upgrade apply` stored) and its kubelet config.
#
# Run as root with this text on stdin: `sudo env K=V ... bash -s`.
# Every input is an environment variable:
#   KUBEHOP_NODE           required  node name, e.g. master1
#   KUBEHOP_VERSION        required  exact target version without "v", e.g. 1.27.16
#   KUBEHOP_MINOR          optional  e.g. 1.27; must agree with KUBEHOP_VERSION
#   KUBEHOP_APPLY_TIMEOUT  optional  seconds before kubeadm is stopped; default 900
#   KUBEHOP_KUBECONFIG     optional  default /etc/kubernetes/admin.conf
#   KUBEHOP_ROOT           optional  prefix for /etc and /var paths (tests); default empty
# Already done when this node's $KUBEHOP_ROOT/etc/kubernetes/manifests/kube-apiserver.yaml
# runs image .../kube-apiserver:v<version>. Refuses to downgrade.
# Exit: 0 done or already done; 1 failed (reason on stderr); 2 bad input.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
if ! declare -F kubehop_lib_loaded >/dev/null; then source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"; fi

STEP=kubeadm-node

main() {
  validate_common
  validate_root
  use_kubeconfig
  local limit=${KUBEHOP_APPLY_TIMEOUT:-900} rc=0
  seconds KUBEHOP_APPLY_TIMEOUT "$limit"

  read_apiserver_manifest "downgrade"
  if [[ $CURRENT == "v$KUBEHOP_VERSION" ]]; then
    say "already done (kube-apiserver manifest runs $CURRENT), skipping"
    return 0
  fi
  kubeadm_at_target

  say "kube-apiserver runs ${CURRENT:-an unknown version}; running kubeadm upgrade node (timeout ${limit}s)"
  timeout --kill-after=30 "$limit" kubeadm upgrade node --kubeconfig "$KCFG" || rc=$?
  if ((rc == 124 || rc == 137)); then
    fail "kubeadm upgrade node did not finish within ${limit}s and was stopped; kubeadm rolls back a static pod that does not come up and keeps backups in /etc/kubernetes/tmp; check 'crictl ps -a' and 'journalctl -u kubelet', then re-run pulumi up"
  elif ((rc != 0)); then
    fail "kubeadm upgrade node exited $rc (its output above says why); fix that and re-run pulumi up"
  fi
  CURRENT=$(manifest_version)
  [[ $CURRENT == "v$KUBEHOP_VERSION" ]] || fail "kubeadm upgrade node succeeded but the kube-apiserver manifest runs ${CURRENT:-no recognisable version}, not v$KUBEHOP_VERSION; was kubeadm upgrade apply v$KUBEHOP_VERSION done on the first master? ('kubectl -n kube-system get cm kubeadm-config -o yaml' shows the cluster version)"
  say "done: kube-apiserver manifest now runs v$KUBEHOP_VERSION"
}

# Everything runs from main with stdin closed: this text arrives on stdin
# (`bash -s`), so no command may read the rest of it, and a truncated
# transfer never reaches this line.
main "$@" </dev/null
