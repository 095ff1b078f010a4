#!/usr/bin/env bash
# kubehop step "kubeadm-plan": `kubeadm upgrade plan v<version>` on the first
# control-plane node (runbook 1.4). Read-only: checks etcd and API server
# health, component versions, config and images, and changes nothing.
#
# Run as root with this text on stdin: `sudo env K=V ... bash -s`.
# Every input is an environment variable:
#   KUBEHOP_NODE          required  node name, e.g. master0
#   KUBEHOP_VERSION       required  exact target version without "v", e.g. 1.27.16
#   KUBEHOP_MINOR         optional  e.g. 1.27; must agree with KUBEHOP_VERSION
#   KUBEHOP_PLAN_TIMEOUT  optional  seconds before kubeadm is stopped; default 300
#   KUBEHOP_KUBECONFIG    optional  default /etc/kubernetes/admin.conf
#   KUBEHOP_ROOT          optional  prefix for /etc and /var paths (tests); default empty
# Already done (nothing to plan) when $KUBEHOP_ROOT/etc/kubernetes/manifests/kube-apiserver.yaml
# runs image .../kube-apiserver:v<version>.
# Exit: 0 plan passed or already done; 1 failed (reason on stderr); 2 bad input.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
if ! declare -F kubehop_lib_loaded >/dev/null; then source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"; fi

STEP=kubeadm-plan

main() {
  validate_common
  validate_root
  use_kubeconfig
  local limit=${KUBEHOP_PLAN_TIMEOUT:-300} rc=0
  seconds KUBEHOP_PLAN_TIMEOUT "$limit"

  read_apiserver_manifest "plan a downgrade"
  if [[ $CURRENT == "v$KUBEHOP_VERSION" ]]; then
    say "already done (kube-apiserver manifest runs $CURRENT, nothing left to plan), skipping"
    return 0
  fi
  kubeadm_at_target

  say "kube-apiserver runs ${CURRENT:-an unknown version}; running kubeadm upgrade plan v$KUBEHOP_VERSION (read-only, timeout ${limit}s)"
  timeout --kill-after=10 "$limit" kubeadm upgrade plan "v$KUBEHOP_VERSION" --kubeconfig "$KCFG" || rc=$?
  if ((rc == 124 || rc == 137)); then
    fail "kubeadm upgrade plan did not finish within ${limit}s (API server or etcd slow or unreachable?); nothing was changed; check 'kubectl get --raw=/readyz?verbose' and re-run pulumi up"
  elif ((rc != 0)); then
    fail "kubeadm upgrade plan v$KUBEHOP_VERSION exited $rc; its output above names the failed check (etcd health, API server, version skew, config, images); nothing was changed; fix it and re-run pulumi up"
  fi
  say "done: kubeadm upgrade plan v$KUBEHOP_VERSION passed"
}

# Everything runs from main with stdin closed: this text arrives on stdin
# (`bash -s`), so no command may read the rest of it, and a truncated
# transfer never reaches this line.
main "$@" </dev/null
