#!/usr/bin/env bash
# kubehop control-plane step library: the helpers the step scripts in this
# folder share (messages, input checks, version reads, held apt installs),
# kept once here instead of copied into every step.
#
# Not a step itself. components/steps.py sends this text ahead of the step
# script on the same stdin (`sudo env K=V ... bash -s`), so a master receives
# one self-contained text; a step run from its file sources this file instead.
# It only defines functions: each caller sets STEP first, and documents in its
# own header every variable the helpers it calls read.
set -euo pipefail

# A step sources this file only when this is not defined yet.
kubehop_lib_loaded() { :; }

# say: progress on stdout. fail: exit 1 with the reason (what happened, what
# was left, what to do) on stderr. bad: bad input, exit 2 before touching anything.
say() { printf 'kubehop: %s on %s: %s\n' "$STEP" "$KUBEHOP_NODE" "$*"; }
fail() { printf 'kubehop: %s on %s: FAILED: %s\n' "$STEP" "$KUBEHOP_NODE" "$*" >&2; exit 1; }
bad() { printf 'kubehop: %s\n' "$*" >&2; exit 2; }

seconds() { # NAME VALUE
  [[ $2 =~ ^[1-9][0-9]*$ ]] || bad "$1 must be a whole number of seconds (got '$2')"
}

validate_node() {
  [[ -n ${KUBEHOP_NODE:-} ]] || bad "KUBEHOP_NODE is required (e.g. master0)"
  [[ $KUBEHOP_NODE =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] || bad "KUBEHOP_NODE must be a Kubernetes node name (got '$KUBEHOP_NODE')"
}

validate_common() { # KUBEHOP_NODE, KUBEHOP_VERSION and KUBEHOP_MINOR, taken by every step of a hop
  validate_node
  [[ -n ${KUBEHOP_VERSION:-} ]] || bad "KUBEHOP_VERSION is required (e.g. 1.27.16)"
  [[ $KUBEHOP_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || bad "KUBEHOP_VERSION must be an exact version without 'v', e.g. 1.27.16 (got '$KUBEHOP_VERSION')"
  if [[ -n ${KUBEHOP_MINOR:-} && $KUBEHOP_MINOR != "${KUBEHOP_VERSION%.*}" ]]; then
    bad "KUBEHOP_MINOR=$KUBEHOP_MINOR does not match KUBEHOP_VERSION=$KUBEHOP_VERSION"
  fi
}

validate_root() { # sets ROOT, the prefix of every /etc and /var path (empty on a real node)
  ROOT=${KUBEHOP_ROOT:-}
  ROOT=${ROOT%/}
  [[ -z $ROOT || $ROOT == /* ]] || bad "KUBEHOP_ROOT must be an absolute path (got '$ROOT')"
}

use_kubeconfig() { # sets KCFG, the kubeconfig every kubectl and kubeadm call is given
  KCFG=${KUBEHOP_KUBECONFIG:-/etc/kubernetes/admin.conf}
}

older() { # A B: true when version A sorts before version B
  [[ $1 != "$2" && $(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1) == "$1" ]]
}

manifest_version() { # prints e.g. v1.27.16, or nothing
  local line
  line=$(grep -E '^[[:space:]]*(-[[:space:]]+)?image:' "$MANIFEST" | grep -m1 -E 'kube-apiserver:v[0-9]' || true)
  if [[ $line =~ kube-apiserver:(v[0-9]+\.[0-9]+\.[0-9]+[^[:space:]\"\'@]*) ]]; then
    printf '%s' "${BASH_REMATCH[1]}"
  fi
}

# This node's kube-apiserver static pod manifest: sets MANIFEST and CURRENT
# (the version it runs, or empty). Fails when there is none (not a kubeadm
# control-plane node) or it runs a version newer than the target, naming
# what is refused: WHAT is e.g. "downgrade".
read_apiserver_manifest() { # WHAT
  MANIFEST=$ROOT/etc/kubernetes/manifests/kube-apiserver.yaml
  [[ -f $MANIFEST ]] || fail "$MANIFEST does not exist; this is not a kubeadm control-plane node (check the SSH target of $KUBEHOP_NODE)"
  CURRENT=$(manifest_version)
  if [[ -n $CURRENT ]] && older "v$KUBEHOP_VERSION" "$CURRENT"; then
    fail "kube-apiserver already runs $CURRENT, newer than v$KUBEHOP_VERSION; refusing to $1; check the hop this stack is applying"
  fi
}

kubeadm_at_target() {
  local got
  got=$(timeout 60 kubeadm version -o short 2>&1) || fail "'kubeadm version' failed: $got; is kubeadm installed? run the kubeadm-install step first"
  [[ $got == "v$KUBEHOP_VERSION" ]] || fail "kubeadm on this node is $got, not v$KUBEHOP_VERSION; run the kubeadm-install step first"
}

node_get() { # JSONPATH: prints those fields of this node as the API server knows it
  timeout 60 kubectl --kubeconfig "$KCFG" --request-timeout=30s get node "$KUBEHOP_NODE" -o "jsonpath=$1"
}

node_kubelet_version() { # prints what the node's kubelet reports, e.g. v1.27.16
  node_get '{.status.nodeInfo.kubeletVersion}'
}

# apt-get install PACKAGE=<version>-* (any Debian revision) for each PACKAGE,
# within LIMIT seconds, its output also in $OUT. The packages are unheld only
# for the install and held again whatever happened, so none can drift with a
# later apt-get upgrade. Returns apt-get's exit status (124 or 137: timed out).
apt_install_held() { # LIMIT PACKAGE...
  local limit=$1 rc=0 pkg
  shift
  local -a wanted=() apt_opts=(-o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  for pkg in "$@"; do wanted+=("$pkg=$KUBEHOP_VERSION-*"); done
  local which=they
  if (($# == 1)); then which=$1; fi
  export DEBIAN_FRONTEND=noninteractive
  timeout 120 apt-mark unhold "$@" || fail "apt-mark unhold $* failed (see above); is dpkg busy or broken? ('dpkg --audit')"
  timeout --kill-after=30 "$limit" apt-get "${apt_opts[@]}" install -y --allow-change-held-packages "${wanted[@]}" 2>&1 | tee "$OUT" || rc=$?
  timeout 120 apt-mark hold "$@" || fail "apt-mark hold $* failed (see above); run it by hand so $which cannot drift"
  return "$rc"
}
