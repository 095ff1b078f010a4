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
#   KUBEHOP_ADDONS         optional  1 when this apply is where kubeadm upgrades CoreDNS and
#                                    kube-proxy (one master, or kubeadm < 1.28), so they are
#                                    checked here; 0 when the last master's `kubeadm upgrade
#                                    node` does it (kubehop/kubeadm_upgrade.py); default 1
#   KUBEHOP_KUBE_PROXY     optional  0 when the cluster runs without kube-proxy (a CNI
#                                    replaces it); default 1
#   KUBEHOP_POLL_INTERVAL  optional  seconds between looks at a still-running earlier apply; default 5
#   KUBEHOP_KUBECONFIG     optional  default /etc/kubernetes/admin.conf
#   KUBEHOP_ROOT           optional  prefix for /etc and /var paths (tests); default empty
# Already done only when the kubeadm-config ConfigMap's ClusterConfiguration says
# kubernetesVersion v<version> (kubeadm uploads it after the static pods), the
# kube-apiserver, kube-controller-manager and kube-scheduler manifests all run
# v<version>, the kubelet config was written after them, and, with
# KUBEHOP_ADDONS=1, kube-proxy runs v<version> and CoreDNS the image this kubeadm
# deploys. Anything less (a run killed between manifests, before its upload or
# addon phase) is applied again: kubeadm accepts re-applying the version and
# skips every manifest that is already equal. Since kubeadm 1.28 an apply with
# other masters still on the old kube-apiserver prints "[upgrade/addons] skip
# upgrade addons because control plane instances [...] have not been upgraded"
# and exits 0: that is success here (KUBEHOP_ADDONS=0). Refuses to downgrade.
#
# Detached: kubeadm runs as the transient service kubehop-kubeadm-apply, started
# with `systemd-run --wait` (systemd-run(1): a transient service "will run in a
# clean and detached execution environment, with the service manager as its
# parent process"; with --wait systemd-run waits for it and returns its exit
# status). A dropped SSH connection then only ends the waiting systemd-run, never
# kubeadm mid-phase: a child of the session would get SIGHUP, and even a
# nohup/setsid one stays in the session's scope, which logind stops with the
# session when KillUserProcesses=yes (logind.conf(5)). Not --pipe: it hands the
# session's own pipes to the service, so kubeadm would still die of SIGPIPE when
# they close. A unit name is unique (systemd-run refuses a second
# kubehop-kubeadm-apply while one is loaded), and a re-run first waits for a
# running one, then judges what it left. RuntimeMaxSec (systemd.service(5))
# bounds it even with nobody waiting; --collect unloads it when it ends
# (systemd-run(1)). Its output is kept in $KUBEHOP_ROOT/var/log/kubehop/.
# Exit: 0 done or already done; 1 failed (reason on stderr); 2 bad input.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
if ! declare -F kubehop_lib_loaded >/dev/null; then source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"; fi

STEP=kubeadm-apply

# What is still missing (empty: the whole apply is done), one phrase per gap.
missing() {
  local gaps=()
  read_components
  [[ -z $BEHIND ]] || gaps+=("manifests not at v$KUBEHOP_VERSION: $BEHIND")
  if ! read_cluster_version; then
    gaps+=("the kubeadm-config ConfigMap could not be read ($CLUSTER_ERROR)")
  elif [[ $CLUSTER != "v$KUBEHOP_VERSION" ]]; then
    gaps+=("kubeadm-config says kubernetesVersion ${CLUSTER:-nothing}")
  fi
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
  local force=${KUBEHOP_FORCE:-0} limit=${KUBEHOP_APPLY_TIMEOUT:-900} rc=0 gaps
  ADDONS=${KUBEHOP_ADDONS:-1}
  [[ $force == 0 || $force == 1 ]] || bad "KUBEHOP_FORCE must be 0 or 1 (got '$force')"
  [[ $ADDONS == 0 || $ADDONS == 1 ]] || bad "KUBEHOP_ADDONS must be 0 or 1 (got '$ADDONS')"
  [[ ${KUBEHOP_KUBE_PROXY:-1} == [01] ]] || bad "KUBEHOP_KUBE_PROXY must be 0 or 1 (got '$KUBEHOP_KUBE_PROXY')"
  seconds KUBEHOP_APPLY_TIMEOUT "$limit"

  read_apiserver_manifest "downgrade"
  wait_for_previous kubeadm-apply "$limit"
  gaps=$(missing)
  if [[ -z $gaps ]]; then
    say "already done (kubeadm-config and the kube-apiserver, kube-controller-manager and kube-scheduler manifests say v$KUBEHOP_VERSION$([[ $ADDONS == 1 ]] && echo ", CoreDNS and kube-proxy upgraded")), skipping"
    return 0
  fi
  say "not done yet (${gaps//;/; }); running kubeadm upgrade apply v$KUBEHOP_VERSION"
  kubeadm_at_target

  local -a args=(upgrade apply "v$KUBEHOP_VERSION" --yes --kubeconfig "$KCFG")
  if [[ $force == 1 ]]; then args+=(--force); fi
  run_detached kubeadm-apply "$limit" kubeadm "${args[@]}" || rc=$?
  if ((rc == 124)); then
    fail "kubeadm upgrade apply did not finish within ${limit}s and was stopped; kubeadm rolls back a static pod that does not come up and keeps backups in /etc/kubernetes/tmp; check 'crictl ps -a' and 'journalctl -u kubelet', then re-run pulumi up"
  elif ((rc != 0)); then
    fail "kubeadm upgrade apply v$KUBEHOP_VERSION exited $rc (its output above says why: preflight, version policy, etcd health, image pull or a static pod that did not come up); fix that and re-run pulumi up"
  fi
  gaps=$(missing)
  [[ -z $gaps ]] || fail "kubeadm upgrade apply reported success but ${gaps//;/; }; see its output above and $(detached_log kubeadm-apply), then re-run pulumi up"
  say "done: kubeadm-config and all three control-plane manifests run v$KUBEHOP_VERSION$([[ $ADDONS == 1 ]] && echo ", CoreDNS and kube-proxy upgraded" || echo "; CoreDNS and kube-proxy follow with the last master's kubeadm upgrade node")"
}

# Everything runs from main with stdin closed: this text arrives on stdin
# (`bash -s`), so no command may read the rest of it, and a truncated
# transfer never reaches this line.
main "$@" </dev/null
