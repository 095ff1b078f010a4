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
#   KUBEHOP_KUBE_PROXY     optional  0 when the cluster runs without kube-proxy (a CNI
#                                    replaces it): judge by the manifest alone; default 1
#   KUBEHOP_KUBECONFIG     optional  default /etc/kubernetes/admin.conf
#   KUBEHOP_ROOT           optional  prefix for /etc and /var paths (tests); default empty
# Already done only when BOTH $KUBEHOP_ROOT/etc/kubernetes/manifests/kube-apiserver.yaml
# runs image .../kube-apiserver:v<version> AND the cluster's kube-proxy DaemonSet
# (kube-system, read with kubectl and the kubeconfig) runs image .../kube-proxy:v<version>.
# kubeadm rewrites the manifests early, then still runs upload-config,
# kubelet-config, bootstrap-token and last the addons (CoreDNS, kube-proxy): a
# manifest at v<version> with kube-proxy older is an apply that stopped before
# its addon phase, and it is applied again (kubeadm accepts re-applying the
# same version). When kube-proxy cannot be read it is applied again as well.
# After an apply, both must be at v<version>, else it fails. Refuses to downgrade.
# Exit: 0 done or already done; 1 failed (reason on stderr); 2 bad input.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
if ! declare -F kubehop_lib_loaded >/dev/null; then source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"; fi

STEP=kubeadm-apply

# The cluster's kube-proxy DaemonSet, which kubeadm's addon phase (its last)
# updates: sets PROXY to its image tag (e.g. v1.27.16; empty when the image
# names none) and PROXY_OUT to what kubectl printed, on one line (the image,
# or why it could not be read, in which case it returns kubectl's exit status).
read_kube_proxy() {
  local rc=0
  PROXY=
  PROXY_OUT=$(timeout 60 kubectl --kubeconfig "$KCFG" --request-timeout=30s -n kube-system get daemonset kube-proxy \
    -o 'jsonpath={.spec.template.spec.containers[0].image}' 2>&1) || rc=$?
  PROXY_OUT=${PROXY_OUT//$'\n'/ }
  if ((rc == 124 || rc == 137)); then
    PROXY_OUT="kubectl did not answer within 60s${PROXY_OUT:+: $PROXY_OUT}"
    return "$rc"
  elif ((rc != 0)); then
    PROXY_OUT="kubectl exited $rc: ${PROXY_OUT:-no output}"
    return "$rc"
  fi
  if [[ $PROXY_OUT =~ kube-proxy:(v[0-9]+\.[0-9]+\.[0-9]+[^[:space:]@\"\']*) ]]; then
    PROXY=${BASH_REMATCH[1]}
  fi
}

main() {
  validate_common
  validate_root
  use_kubeconfig
  local force=${KUBEHOP_FORCE:-0} limit=${KUBEHOP_APPLY_TIMEOUT:-900} proxy=${KUBEHOP_KUBE_PROXY:-1} rc=0
  [[ $force == 0 || $force == 1 ]] || bad "KUBEHOP_FORCE must be 0 or 1 (got '$force')"
  [[ $proxy == 0 || $proxy == 1 ]] || bad "KUBEHOP_KUBE_PROXY must be 0 or 1 (got '$proxy')"
  seconds KUBEHOP_APPLY_TIMEOUT "$limit"

  read_apiserver_manifest "downgrade"
  if [[ $CURRENT == "v$KUBEHOP_VERSION" && $proxy == 0 ]]; then
    say "already done (kube-apiserver manifest runs $CURRENT; no kube-proxy in this cluster), skipping"
    return 0
  elif [[ $CURRENT == "v$KUBEHOP_VERSION" ]]; then
    if ! read_kube_proxy; then
      say "kube-apiserver runs $CURRENT but the kube-proxy DaemonSet could not be read ($PROXY_OUT), so whether a previous apply finished its addon phase is unknown; not skipping: running kubeadm upgrade apply $CURRENT again (re-applying the same version is safe)"
    elif [[ $PROXY == "$CURRENT" ]]; then
      say "already done (kube-apiserver manifest runs $CURRENT, kube-proxy DaemonSet runs $PROXY), skipping"
      return 0
    else
      say "kube-apiserver runs $CURRENT but kube-proxy still runs ${PROXY:-an image with no version tag ($PROXY_OUT)}: a previous apply stopped before its addon phase; running kubeadm upgrade apply $CURRENT again"
    fi
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
  if [[ $proxy == 0 ]]; then
    say "done: kube-apiserver manifest now runs v$KUBEHOP_VERSION (no kube-proxy in this cluster)"
    return 0
  fi
  read_kube_proxy || fail "kubeadm reported success and the kube-apiserver manifest runs v$KUBEHOP_VERSION, but the kube-proxy DaemonSet could not be read to confirm the addon phase ($PROXY_OUT); check 'kubectl -n kube-system get daemonset kube-proxy', then re-run pulumi up"
  [[ $PROXY == "v$KUBEHOP_VERSION" ]] || fail "kubeadm reported success but the kube-proxy DaemonSet runs ${PROXY:-an image with no version tag ($PROXY_OUT)}, not v$KUBEHOP_VERSION, so its addon phase did not finish; check 'kubectl -n kube-system get daemonset kube-proxy -o yaml' and the kubeadm output above, then re-run pulumi up"
  say "done: kube-apiserver manifest now runs v$KUBEHOP_VERSION, kube-proxy DaemonSet runs $PROXY"
}

# Everything runs from main with stdin closed: this text arrives on stdin
# (`bash -s`), so no command may read the rest of it, and a truncated
# transfer never reaches this line.
main "$@" </dev/null
