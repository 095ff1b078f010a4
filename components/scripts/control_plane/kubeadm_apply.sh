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

STEP=kubeadm-apply

say() { printf 'kubehop: %s on %s: %s\n' "$STEP" "$KUBEHOP_NODE" "$*"; }
fail() { printf 'kubehop: %s on %s: FAILED: %s\n' "$STEP" "$KUBEHOP_NODE" "$*" >&2; exit 1; }
bad() { printf 'kubehop: %s\n' "$*" >&2; exit 2; }

validate_common() {
  [[ -n ${KUBEHOP_NODE:-} ]] || bad "KUBEHOP_NODE is required (e.g. master0)"
  [[ $KUBEHOP_NODE =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] || bad "KUBEHOP_NODE must be a Kubernetes node name (got '$KUBEHOP_NODE')"
  [[ -n ${KUBEHOP_VERSION:-} ]] || bad "KUBEHOP_VERSION is required (e.g. 1.27.16)"
  [[ $KUBEHOP_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || bad "KUBEHOP_VERSION must be an exact version without 'v', e.g. 1.27.16 (got '$KUBEHOP_VERSION')"
  if [[ -n ${KUBEHOP_MINOR:-} && $KUBEHOP_MINOR != "${KUBEHOP_VERSION%.*}" ]]; then
    bad "KUBEHOP_MINOR=$KUBEHOP_MINOR does not match KUBEHOP_VERSION=$KUBEHOP_VERSION"
  fi
  ROOT=${KUBEHOP_ROOT:-}
  ROOT=${ROOT%/}
  [[ -z $ROOT || $ROOT == /* ]] || bad "KUBEHOP_ROOT must be an absolute path (got '$ROOT')"
  KCFG=${KUBEHOP_KUBECONFIG:-/etc/kubernetes/admin.conf}
}

seconds() { # NAME VALUE
  [[ $2 =~ ^[1-9][0-9]*$ ]] || bad "$1 must be a whole number of seconds (got '$2')"
}

manifest_version() { # prints e.g. v1.27.16, or nothing
  local line
  line=$(grep -E '^[[:space:]]*(-[[:space:]]+)?image:' "$MANIFEST" | grep -m1 -E 'kube-apiserver:v[0-9]' || true)
  if [[ $line =~ kube-apiserver:(v[0-9]+\.[0-9]+\.[0-9]+[^[:space:]\"\'@]*) ]]; then
    printf '%s' "${BASH_REMATCH[1]}"
  fi
}

older() { # A B: true when version A sorts before version B
  [[ $1 != "$2" && $(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1) == "$1" ]]
}

kubeadm_at_target() {
  local got
  got=$(timeout 60 kubeadm version -o short 2>&1) || fail "'kubeadm version' failed: $got; is kubeadm installed? run the kubeadm-install step first"
  [[ $got == "v$KUBEHOP_VERSION" ]] || fail "kubeadm on this node is $got, not v$KUBEHOP_VERSION; run the kubeadm-install step first"
}

main() {
  validate_common
  local force=${KUBEHOP_FORCE:-0} limit=${KUBEHOP_APPLY_TIMEOUT:-900} current rc=0
  [[ $force == 0 || $force == 1 ]] || bad "KUBEHOP_FORCE must be 0 or 1 (got '$force')"
  seconds KUBEHOP_APPLY_TIMEOUT "$limit"
  MANIFEST=$ROOT/etc/kubernetes/manifests/kube-apiserver.yaml

  [[ -f $MANIFEST ]] || fail "$MANIFEST does not exist; this is not a kubeadm control-plane node (check the SSH target of $KUBEHOP_NODE)"
  current=$(manifest_version)
  if [[ $current == "v$KUBEHOP_VERSION" ]]; then
    say "already done (kube-apiserver manifest runs $current), skipping"
    return 0
  fi
  if [[ -n $current ]] && older "v$KUBEHOP_VERSION" "$current"; then
    fail "kube-apiserver already runs $current, newer than v$KUBEHOP_VERSION; refusing to downgrade; check the hop this stack is applying"
  fi
  kubeadm_at_target

  local -a args=(upgrade apply "v$KUBEHOP_VERSION" --yes --kubeconfig "$KCFG")
  if [[ $force == 1 ]]; then args+=(--force); fi
  say "kube-apiserver runs ${current:-an unknown version}; running kubeadm ${args[*]} (timeout ${limit}s)"
  timeout --kill-after=30 "$limit" kubeadm "${args[@]}" || rc=$?
  if ((rc == 124 || rc == 137)); then
    fail "kubeadm upgrade apply did not finish within ${limit}s and was stopped; kubeadm rolls back a static pod that does not come up and keeps backups in /etc/kubernetes/tmp; check 'crictl ps -a' and 'journalctl -u kubelet', then re-run pulumi up"
  elif ((rc != 0)); then
    fail "kubeadm upgrade apply v$KUBEHOP_VERSION exited $rc (its output above says why: preflight, etcd health, image pull or a static pod that did not come up); fix that and re-run pulumi up"
  fi
  current=$(manifest_version)
  [[ $current == "v$KUBEHOP_VERSION" ]] || fail "kubeadm reported success but the kube-apiserver manifest runs ${current:-no recognisable version}, not v$KUBEHOP_VERSION; inspect $MANIFEST"
  say "done: kube-apiserver manifest now runs v$KUBEHOP_VERSION"
}

# Everything runs from main with stdin closed: this text arrives on stdin
# (`bash -s`), so no command may read the rest of it, and a truncated
# transfer never reaches this line.
main "$@" </dev/null
