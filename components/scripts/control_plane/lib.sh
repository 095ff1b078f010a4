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
  [[ ${#KUBEHOP_NODE} -le 253 && $KUBEHOP_NODE =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$ ]] \
    || bad "KUBEHOP_NODE must be a Kubernetes node name, a DNS-1123 subdomain of at most 253 characters (got '$KUBEHOP_NODE')"
}

validate_common() { # KUBEHOP_NODE, KUBEHOP_VERSION and KUBEHOP_MINOR, taken by every step of a hop
  validate_node
  [[ -n ${KUBEHOP_VERSION:-} ]] || bad "KUBEHOP_VERSION is required (e.g. 1.27.16)"
  [[ $KUBEHOP_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || bad "KUBEHOP_VERSION must be an exact version without 'v', e.g. 1.27.16 (got '$KUBEHOP_VERSION')"
  if [[ -n ${KUBEHOP_MINOR:-} && $KUBEHOP_MINOR != "${KUBEHOP_VERSION%.*}" ]]; then
    bad "KUBEHOP_MINOR=$KUBEHOP_MINOR does not match KUBEHOP_VERSION=$KUBEHOP_VERSION"
  fi
}

ttl_seconds() { # DURATION: prints the seconds of a kubeadm duration such as 6h, 90m or 1h30m
  [[ -n $1 && $1 =~ ^([0-9]{1,4}h)?([0-9]{1,6}m)?([0-9]{1,8}s)?$ ]] || return 1
  local h=${BASH_REMATCH[1]%h} m=${BASH_REMATCH[2]%m} s=${BASH_REMATCH[3]%s}
  printf '%d' $((10#${h:-0} * 3600 + 10#${m:-0} * 60 + 10#${s:-0}))
}

validate_join_inputs() { # KUBEHOP_CLUSTER, KUBEHOP_REGION, KUBEHOP_TOKEN_TTL (default 6h) of the join steps; sets TTL_SECONDS
  [[ -n ${KUBEHOP_CLUSTER:-} ]] || bad "KUBEHOP_CLUSTER is required (e.g. prod-b)"
  [[ $KUBEHOP_CLUSTER =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || bad "KUBEHOP_CLUSTER must be letters, digits, '-', '_' or '.' (it names the SSM path /kubehop/<cluster>/; got '$KUBEHOP_CLUSTER')"
  [[ -n ${KUBEHOP_REGION:-} ]] || bad "KUBEHOP_REGION is required (e.g. eu-west-1)"
  [[ $KUBEHOP_REGION =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]] || bad "KUBEHOP_REGION must be an AWS region such as eu-west-1 (got '$KUBEHOP_REGION')"
  TTL_SECONDS=$(ttl_seconds "${KUBEHOP_TOKEN_TTL:-6h}") || TTL_SECONDS=0
  ((TTL_SECONDS >= 3600)) || bad "KUBEHOP_TOKEN_TTL must be a duration of at least 1h such as 6h, 90m or 1h30m (got '${KUBEHOP_TOKEN_TTL:-}')"
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

manifest_version() { # [COMPONENT]: the version the static pod manifest of COMPONENT
  # (default kube-apiserver) runs, e.g. v1.27.16, or nothing
  local component=${1:-kube-apiserver} file line
  file=$ROOT/etc/kubernetes/manifests/$component.yaml
  [[ -f $file ]] || return 0
  line=$(grep -E '^[[:space:]]*(-[[:space:]]+)?image:' "$file" | grep -m1 -E "$component:v[0-9]" || true)
  if [[ $line =~ $component:(v[0-9]+\.[0-9]+\.[0-9]+[^[:space:]\"\'@]*) ]]; then
    printf '%s' "${BASH_REMATCH[1]}"
  fi
}

# The control-plane manifests that run the Kubernetes version, in the order
# kubeadm writes them after etcd's (kubehop/kubeadm_upgrade.py MANIFEST_ORDER).
control_plane_components() { printf '%s\n' kube-apiserver kube-controller-manager kube-scheduler; }

# Sets BEHIND to the components whose manifest does not run v<version> yet, as
# "name@version" words (empty: all three run it).
read_components() {
  local component got
  BEHIND=
  while read -r component; do
    got=$(manifest_version "$component")
    [[ $got == "v$KUBEHOP_VERSION" ]] || BEHIND+="${BEHIND:+ }$component@${got:-missing}"
  done < <(control_plane_components)
}

# True when kubeadm wrote this node's kubelet config after its control-plane
# manifests: it writes /var/lib/kubelet/config.yaml only once the static pods
# are done (WriteKubeletConfigFiles after the control-plane phase), so a run
# killed in between leaves a config older than the newest manifest.
kubelet_config_current() {
  local config=$ROOT/var/lib/kubelet/config.yaml component
  [[ -s $config ]] || return 1
  while read -r component; do
    [[ ! $ROOT/etc/kubernetes/manifests/$component.yaml -nt $config ]] || return 1
  done < <(control_plane_components)
}

# The kubernetesVersion of the ClusterConfiguration in the kubeadm-config
# ConfigMap (what `kubeadm upgrade apply` uploads after the static pods and
# `kubeadm upgrade node` upgrades to): sets CLUSTER (e.g. v1.28.15, or empty)
# and CLUSTER_ERROR when it cannot be read.
# shellcheck disable=SC2034  # CLUSTER and CLUSTER_ERROR are read by the caller
read_cluster_version() {
  local out
  CLUSTER='' CLUSTER_ERROR=
  if ! out=$(timeout 60 kubectl --kubeconfig "$KCFG" --request-timeout=30s -n kube-system get configmap kubeadm-config \
      -o 'jsonpath={.data.ClusterConfiguration}' 2>&1); then
    CLUSTER_ERROR=${out//$'\n'/ }
    return 1
  fi
  CLUSTER=$(sed -n 's/^kubernetesVersion:[[:space:]]*["'\'']\{0,1\}\(v[0-9][^"'\''[:space:]]*\).*/\1/p' <<<"$out" | head -n1)
}

# One image tag of a kube-system workload: prints e.g. v1.28.15; exit 3 when
# it does not exist, 1 (kubectl's message on stderr) when it cannot be read.
workload_tag() { # KIND NAME
  local out
  if ! out=$(timeout 60 kubectl --kubeconfig "$KCFG" --request-timeout=30s -n kube-system get "$1" "$2" \
      -o 'jsonpath={.spec.template.spec.containers[0].image}' 2>&1); then
    [[ $out == *NotFound* ]] && return 3
    printf '%s\n' "${out//$'\n'/ }" >&2
    return 1
  fi
  printf '%s' "${out##*:}"
}

# Whether CoreDNS and kube-proxy run what this node's kubeadm deploys: kube-proxy
# v<version> (skipped when KUBEHOP_KUBE_PROXY=0) and CoreDNS the tag `kubeadm
# config images list` names. Sets ADDONS_BEHIND (empty: both current) and
# returns 1 when something could not be read (ADDONS_BEHIND says what).
read_addons() {
  local tag want rc=0
  ADDONS_BEHIND=
  if [[ ${KUBEHOP_KUBE_PROXY:-1} == 1 ]]; then
    tag=$(workload_tag daemonset kube-proxy 2>&1) || rc=$?
    if ((rc == 1)); then ADDONS_BEHIND="kube-proxy unreadable ($tag)"; return 1; fi
    [[ $tag == "v$KUBEHOP_VERSION" ]] || ADDONS_BEHIND="kube-proxy@${tag:-missing}"
  fi
  rc=0
  want=$(timeout 60 kubeadm config images list --kubernetes-version "v$KUBEHOP_VERSION" 2>/dev/null | sed -n 's/.*\/coredns:\(v[^[:space:]]*\)$/\1/p' | head -n1)
  tag=$(workload_tag deployment coredns 2>&1) || rc=$?
  if ((rc == 3)); then return 0; fi  # no CoreDNS Deployment: kubeadm skips DNS as well
  if ((rc != 0)) || [[ -z $want ]]; then ADDONS_BEHIND+="${ADDONS_BEHIND:+ }coredns unreadable (${tag:-kubeadm config images list named no coredns image})"; return 1; fi
  [[ $tag == "$want" ]] || ADDONS_BEHIND+="${ADDONS_BEHIND:+ }coredns@$tag (kubeadm deploys $want)"
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
# within LIMIT seconds, its output also in $OUT. apt-get runs detached from the
# SSH session as the transient service kubehop-apt-<step> (run_detached; why:
# kubeadm_apply.sh's header): a dropped connection must not kill dpkg half-way
# (dpkg(1): an interrupted run leaves packages unconfigured until
# `dpkg --configure -a`), and a re-run waits for a still-running one. The
# packages are unheld only for the install and held again whatever happened, so
# none can drift with a later apt-get upgrade. Returns apt-get's exit status
# (124: stopped at LIMIT).
apt_install_held() { # LIMIT PACKAGE...
  local limit=$1 rc=0 pkg apt
  shift
  local -a wanted=() apt_opts=(-o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  for pkg in "$@"; do wanted+=("$pkg=$KUBEHOP_VERSION-*"); done
  local which=they
  if (($# == 1)); then which=$1; fi
  apt=$(command -v apt-get) || fail "apt-get is not installed on this node"
  wait_for_previous "apt-$STEP" "$limit"
  timeout 120 apt-mark unhold "$@" || fail "apt-mark unhold $* failed (see above); is dpkg busy or broken? ('dpkg --audit')"
  run_detached "apt-$STEP" "$limit" env DEBIAN_FRONTEND=noninteractive "$apt" "${apt_opts[@]}" install -y \
    --allow-change-held-packages "${wanted[@]}" 2>&1 | tee "$OUT" || rc=$?
  timeout 120 apt-mark hold "$@" || fail "apt-mark hold $* failed (see above); run it by hand so $which cannot drift"
  return "$rc"
}

# A package at the right version but not held (an install that died between apt-get and
# apt-mark, or an operator's unhold) would drift with the next `apt-get upgrade`: hold it.
# `apt-mark showhold` prints one held package name per line (apt-mark(8)).
ensure_held() { # PACKAGE...
  local held pkg
  local -a missing=()
  held=$(timeout 60 apt-mark showhold 2>/dev/null || true)
  for pkg in "$@"; do grep -qxF "$pkg" <<<"$held" || missing+=("$pkg"); done
  ((${#missing[@]} == 0)) && return 0
  say "${missing[*]} at the right version but not held; holding"
  timeout 120 apt-mark hold "${missing[@]}" || fail "apt-mark hold ${missing[*]} failed (see above); run it by hand so they cannot drift"
}

# Long actions run as a transient systemd service named kubehop-NAME, not as a
# child of the SSH session (why: the header of kubeadm_apply.sh). Its output
# goes to $ROOT/var/log/kubehop/kubehop-NAME.log and is shown when it ends.
detached_log() { printf '%s' "$ROOT/var/log/kubehop/kubehop-$1.log"; }

# When a run of NAME that an earlier, dropped connection started is still going,
# wait for it to end (at most LIMIT seconds) instead of starting a second copy;
# the caller then judges what it left like any other partial state.
wait_for_previous() { # NAME LIMIT
  local unit="kubehop-$1.service" deadline=$((SECONDS + $2))
  timeout 30 systemctl is-active --quiet "$unit" || return 0
  say "$unit from an earlier run is still running (log: $(detached_log "$1")); waiting for it to end instead of starting a second one"
  while timeout 30 systemctl is-active --quiet "$unit"; do
    ((SECONDS < deadline)) || fail "$unit from an earlier run is still running after ${2}s; see $(detached_log "$1") and 'systemctl status $unit'; re-run pulumi up once it has ended (or stop it: 'systemctl stop $unit')"
    sleep "${KUBEHOP_POLL_INTERVAL:-5}"
  done
  say "the earlier $unit has ended; checking what it left"
}

# COMMAND... as the transient service kubehop-NAME, bounded by LIMIT seconds
# (RuntimeMaxSec, enforced by systemd even when this session is gone). Returns
# the service's exit status (systemd-run --wait propagates it), 124 when it was
# stopped at LIMIT.
run_detached() { # NAME LIMIT COMMAND...
  local name=$1 limit=$2 exe log from started=$SECONDS rc=0
  shift 2
  exe=$(command -v "$1") || fail "$1 is not installed on this node"
  shift
  log=$(detached_log "$name")
  mkdir -p "${log%/*}"
  from=$(($(stat -c %s "$log" 2>/dev/null || echo 0) + 1))
  say "running $exe $* as the transient service kubehop-$name (survives a dropped connection; log: $log)"
  systemd-run --unit="kubehop-$name" --collect --wait --quiet --service-type=exec \
    --property=RuntimeMaxSec="$limit" --property=StandardInput=null \
    --property=StandardOutput=append:"$log" --property=StandardError=append:"$log" \
    -- "$exe" "$@" || rc=$?
  tail -c +"$from" "$log" 2>/dev/null || true
  if ((rc != 0 && SECONDS - started >= limit)); then return 124; fi
  return "$rc"
}
