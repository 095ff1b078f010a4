#!/usr/bin/env bash
# kubehop step "kubelet-upgrade": install kubelet and kubectl <version>, keep
# them on hold and restart kubelet (runbook 1.7). Run after drain.sh: the
# node goes NotReady for a moment; uncordon.sh waits for it to come back.
#
# Run as root with this text on stdin: `sudo env K=V ... bash -s`.
# Every input is an environment variable:
#   KUBEHOP_NODE         required  node name, e.g. master0
#   KUBEHOP_VERSION      required  exact version without "v", e.g. 1.27.16
#   KUBEHOP_MINOR        optional  e.g. 1.27; must agree with KUBEHOP_VERSION
#   KUBEHOP_APT_TIMEOUT  optional  seconds for one apt-get run; default 600
#   KUBEHOP_POLL_INTERVAL optional seconds between looks at a still-running earlier apt-get; default 5
#   KUBEHOP_ROOT         optional  prefix for /etc and /var paths (tests); default empty
#   KUBEHOP_KUBECONFIG   optional  default /etc/kubernetes/admin.conf
# Installs kubelet=<version>-* and kubectl=<version>-* (any Debian revision).
# Already done when `kubelet --version` says Kubernetes v<version>, `kubectl
# version --client` says v<version> and the node's running kubelet reports
# v<version>; when only the restart is missing, it just restarts kubelet.
# Exit: 0 done or already done; 1 failed (reason on stderr); 2 bad input.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
if ! declare -F kubehop_lib_loaded >/dev/null; then source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"; fi

STEP=kubelet-upgrade

kubelet_binary() { # prints e.g. v1.27.16, or nothing
  local out
  out=$(timeout 30 kubelet --version 2>/dev/null || true)
  printf '%s' "${out#Kubernetes }"
}

kubectl_binary() { # prints e.g. v1.27.16, or nothing
  timeout 30 kubectl version --client -o json 2>/dev/null \
    | sed -n 's/^ *"gitVersion": *"\([^"]*\)".*/\1/p' | head -n1 || true
}

main() {
  validate_common
  validate_root
  use_kubeconfig
  local limit=${KUBEHOP_APT_TIMEOUT:-600} kubelet_v kubectl_v running rc=0
  seconds KUBEHOP_APT_TIMEOUT "$limit"
  local want="v$KUBEHOP_VERSION"

  kubelet_v=$(kubelet_binary)
  kubectl_v=$(kubectl_binary)
  if [[ $kubelet_v == "$want" && $kubectl_v == "$want" ]]; then
    running=$(node_kubelet_version 2>/dev/null || true)
    if [[ $running == "$want" ]]; then
      ensure_held kubelet kubectl
      say "already done (kubelet and kubectl binaries are $want, held, and the node's kubelet reports $want), skipping"
      return 0
    fi
    say "kubelet and kubectl binaries are already $want but the node reports kubelet '${running:-unknown}'; restarting kubelet"
  else
    OUT=$(mktemp)
    trap 'rm -f "$OUT"' EXIT
    say "kubelet is ${kubelet_v:-not installed}, kubectl is ${kubectl_v:-not installed}; installing kubelet and kubectl $KUBEHOP_VERSION-* (timeout ${limit}s)"
    apt_install_held "$limit" kubelet kubectl || rc=$?
    if ((rc != 0)); then
      if grep -q "was not found" "$OUT"; then
        fail "kubelet/kubectl $KUBEHOP_VERSION are not in the configured apt repo; check that the package-repo step switched to v${KUBEHOP_VERSION%.*} ('apt-cache madison kubelet'); kubelet was not restarted"
      elif ((rc == 124 || rc == 137)); then
        fail "apt-get install did not finish within ${limit}s (dpkg lock held or slow mirror?); both packages are held again; kubelet was not restarted; re-run pulumi up"
      fi
      fail "apt-get install kubelet/kubectl exited $rc (see its output above); both packages are held again; kubelet was not restarted; fix apt/dpkg ('dpkg --audit') and re-run pulumi up"
    fi
    kubelet_v=$(kubelet_binary)
    kubectl_v=$(kubectl_binary)
    [[ $kubelet_v == "$want" && $kubectl_v == "$want" ]] \
      || fail "after apt-get install kubelet reports '${kubelet_v:-nothing}' and kubectl '${kubectl_v:-nothing}', not $want; check 'apt-cache policy kubelet kubectl'; kubelet was not restarted"
  fi

  timeout 60 systemctl daemon-reload || fail "systemctl daemon-reload failed (see above)"
  timeout 120 systemctl restart kubelet || fail "systemctl restart kubelet failed; the new kubelet may not start: see 'journalctl -u kubelet -n 100' and 'systemctl status kubelet' on $KUBEHOP_NODE; the node stays cordoned"
  timeout 30 systemctl is-active --quiet kubelet || fail "kubelet is not active after the restart; see 'journalctl -u kubelet -n 100' on $KUBEHOP_NODE; the node stays cordoned"
  say "done: kubelet and kubectl $want installed and held, kubelet restarted (uncordon waits for the node to be Ready)"
}

# Everything runs from main with stdin closed: this text arrives on stdin
# (`bash -s`), so no command may read the rest of it, and a truncated
# transfer never reaches this line.
main "$@" </dev/null
