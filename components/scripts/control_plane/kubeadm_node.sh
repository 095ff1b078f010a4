#!/usr/bin/env bash
# kubehop step "kubeadm-node": `kubeadm upgrade node` on a control-plane node
# other than the first (runbook 1.9), after kubeadm-apply ran on the first and
# before this node's drain and kubelet. It upgrades this node's static pods to
# the cluster's version (the one the first master's apply stored in the
# kubeadm-config ConfigMap) and its kubelet config; since kubeadm 1.28 the LAST
# master's run also upgrades CoreDNS and kube-proxy, once every kube-apiserver
# runs the new image (kubehop/kubeadm_upgrade.py).
#
# Run as root with this text on stdin: `sudo env K=V ... bash -s`.
# Every input is an environment variable:
#   KUBEHOP_NODE           required  node name, e.g. master1
#   KUBEHOP_VERSION        required  exact target version without "v", e.g. 1.27.16
#   KUBEHOP_MINOR          optional  e.g. 1.27; must agree with KUBEHOP_VERSION
#   KUBEHOP_APPLY_TIMEOUT  optional  seconds before kubeadm is stopped; default 900
#   KUBEHOP_ADDONS         optional  1 on the master whose run upgrades CoreDNS and kube-proxy
#                                    (the last one, kubeadm >= 1.28): they are checked too; default 0
#   KUBEHOP_KUBE_PROXY     optional  0 when the cluster runs without kube-proxy; default 1
#   KUBEHOP_POLL_INTERVAL  optional  seconds between looks at a still-running earlier run; default 5
#   KUBEHOP_KUBECONFIG     optional  default /etc/kubernetes/admin.conf
#   KUBEHOP_ROOT           optional  prefix for /etc and /var paths (tests); default empty
# Already done only when the kube-apiserver, kube-controller-manager and
# kube-scheduler manifests all run v<version>, the kubelet config was written
# after them and, with KUBEHOP_ADDONS=1, CoreDNS and kube-proxy are upgraded.
# Otherwise it runs `kubeadm upgrade node` whatever the kube-apiserver manifest
# says (kubeadm skips every manifest that is already equal and completes the
# rest), then verifies all of it. Runs detached from the SSH session like
# kubeadm_apply.sh (see its header), as the transient service kubehop-kubeadm-node.
# Refuses to downgrade.
# Exit: 0 done or already done; 1 failed (reason on stderr); 2 bad input.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
if ! declare -F kubehop_lib_loaded >/dev/null; then source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"; fi

STEP=kubeadm-node

# What is still missing on this node (empty: done), one phrase per gap.
missing() {
  local gaps=()
  read_components
  [[ -z $BEHIND ]] || gaps+=("manifests not at v$KUBEHOP_VERSION: $BEHIND")
  kubelet_config_current || gaps+=("the kubelet config is older than the manifests")
  if [[ $ADDONS == 1 ]] && { ! read_addons || [[ -n $ADDONS_BEHIND ]]; }; then
    gaps+=("addons not upgraded: $ADDONS_BEHIND")
  fi
  local IFS=';'
  printf '%s' "${gaps[*]}"
}

main() {
  validate_common
  validate_root
  use_kubeconfig
  local limit=${KUBEHOP_APPLY_TIMEOUT:-900} rc=0 gaps
  ADDONS=${KUBEHOP_ADDONS:-0}
  [[ $ADDONS == 0 || $ADDONS == 1 ]] || bad "KUBEHOP_ADDONS must be 0 or 1 (got '$ADDONS')"
  [[ ${KUBEHOP_KUBE_PROXY:-1} == [01] ]] || bad "KUBEHOP_KUBE_PROXY must be 0 or 1 (got '$KUBEHOP_KUBE_PROXY')"
  seconds KUBEHOP_APPLY_TIMEOUT "$limit"

  read_apiserver_manifest "downgrade"
  wait_for_previous kubeadm-node "$limit"
  gaps=$(missing)
  if [[ -z $gaps ]]; then
    say "already done (the kube-apiserver, kube-controller-manager and kube-scheduler manifests run v$KUBEHOP_VERSION, kubelet config written after them$([[ $ADDONS == 1 ]] && echo ", CoreDNS and kube-proxy upgraded")), skipping"
    return 0
  fi
  read_cluster_version || fail "cannot read the kubeadm-config ConfigMap ($CLUSTER_ERROR); check $KCFG and the API server; nothing was changed"
  [[ $CLUSTER == "v$KUBEHOP_VERSION" ]] || fail "the cluster's kubeadm-config says kubernetesVersion ${CLUSTER:-nothing}, not v$KUBEHOP_VERSION: kubeadm upgrade apply v$KUBEHOP_VERSION has not finished on the first master ('kubectl -n kube-system get cm kubeadm-config -o yaml'); nothing was changed"
  kubeadm_at_target

  say "not done yet (${gaps//;/; }); running kubeadm upgrade node"
  run_detached kubeadm-node "$limit" kubeadm upgrade node --kubeconfig "$KCFG" || rc=$?
  if ((rc == 124)); then
    fail "kubeadm upgrade node did not finish within ${limit}s and was stopped; kubeadm rolls back a static pod that does not come up and keeps backups in /etc/kubernetes/tmp; check 'crictl ps -a' and 'journalctl -u kubelet', then re-run pulumi up"
  elif ((rc != 0)); then
    fail "kubeadm upgrade node exited $rc (its output above says why); fix that and re-run pulumi up"
  fi
  gaps=$(missing)
  if [[ -n $gaps && $ADDONS == 1 ]] && grep -q "Skipping upgrade of addons because control plane instances" "$(detached_log kubeadm-node)"; then
    fail "kubeadm upgrade node left CoreDNS and kube-proxy alone because other control-plane instances still run another kube-apiserver image (its output above names them); they are not among this stack's masters or did not finish: upgrade them, then re-run pulumi up"
  fi
  [[ -z $gaps ]] || fail "kubeadm upgrade node reported success but ${gaps//;/; }; see $(detached_log kubeadm-node), then re-run pulumi up"
  say "done: all three control-plane manifests run v$KUBEHOP_VERSION and the kubelet config is rewritten$([[ $ADDONS == 1 ]] && echo "; CoreDNS and kube-proxy upgraded")"
}

# Everything runs from main with stdin closed: this text arrives on stdin
# (`bash -s`), so no command may read the rest of it, and a truncated
# transfer never reaches this line.
main "$@" </dev/null
