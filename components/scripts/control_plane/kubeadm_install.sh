#!/usr/bin/env bash
# kubehop step "kubeadm-install": install kubeadm <version> from the apt repo
# set by package_repo.sh, keeping it on hold (runbook 1.3). Changes no running
# component; only the next `kubeadm upgrade` uses it.
#
# Run as root with this text on stdin: `sudo env K=V ... bash -s`.
# Every input is an environment variable:
#   KUBEHOP_NODE         required  node name, e.g. master0
#   KUBEHOP_VERSION      required  exact version without "v", e.g. 1.27.16
#   KUBEHOP_MINOR        optional  e.g. 1.27; must agree with KUBEHOP_VERSION
#   KUBEHOP_APT_TIMEOUT  optional  seconds for one apt-get run; default 600
# Installs kubeadm=<version>-* (any Debian revision). Already done when
# `kubeadm version -o short` prints v<version>.
# Exit: 0 done or already done; 1 failed (reason on stderr); 2 bad input.
set -euo pipefail

STEP=kubeadm-install

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
}

seconds() { # NAME VALUE
  [[ $2 =~ ^[1-9][0-9]*$ ]] || bad "$1 must be a whole number of seconds (got '$2')"
}

kubeadm_version() { # prints e.g. v1.27.16, or nothing when kubeadm is missing or broken
  timeout 60 kubeadm version -o short 2>/dev/null || true
}

main() {
  validate_common
  local limit=${KUBEHOP_APT_TIMEOUT:-600} current rc=0
  seconds KUBEHOP_APT_TIMEOUT "$limit"

  current=$(kubeadm_version)
  if [[ $current == "v$KUBEHOP_VERSION" ]]; then
    say "already done (kubeadm version -o short is $current), skipping"
    return 0
  fi

  export DEBIAN_FRONTEND=noninteractive
  local -a apt_opts=(-o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  OUT=$(mktemp)
  trap 'rm -f "$OUT"' EXIT
  say "kubeadm is ${current:-not installed}; installing kubeadm=$KUBEHOP_VERSION-* (timeout ${limit}s)"
  timeout 120 apt-mark unhold kubeadm || fail "apt-mark unhold kubeadm failed (see above); is dpkg busy or broken? ('dpkg --audit')"
  timeout --kill-after=30 "$limit" apt-get "${apt_opts[@]}" install -y --allow-change-held-packages "kubeadm=$KUBEHOP_VERSION-*" 2>&1 | tee "$OUT" || rc=$?
  # Hold again whatever happened: an unheld kubeadm could move with any later apt-get upgrade.
  timeout 120 apt-mark hold kubeadm || fail "apt-mark hold kubeadm failed (see above); run it by hand so kubeadm cannot drift"
  if ((rc != 0)); then
    if grep -q "for 'kubeadm' was not found" "$OUT"; then
      fail "kubeadm $KUBEHOP_VERSION is not in the configured apt repo; check KUBEHOP_VERSION and that the package-repo step switched to v${KUBEHOP_VERSION%.*} ('apt-cache madison kubeadm' lists what is available)"
    elif ((rc == 124 || rc == 137)); then
      fail "apt-get install did not finish within ${limit}s (dpkg lock held or slow mirror?); kubeadm is held again; re-run pulumi up"
    fi
    fail "apt-get install kubeadm=$KUBEHOP_VERSION-* exited $rc (see its output above); kubeadm is held again; fix apt/dpkg ('dpkg --audit') and re-run pulumi up"
  fi
  current=$(kubeadm_version)
  [[ $current == "v$KUBEHOP_VERSION" ]] || fail "apt-get installed a kubeadm that reports '${current:-nothing}', not v$KUBEHOP_VERSION; check 'apt-cache policy kubeadm' and 'command -v kubeadm'"
  say "done: kubeadm $current installed and held"
}

# Everything runs from main with stdin closed: this text arrives on stdin
# (`bash -s`), so no command may read the rest of it, and a truncated
# transfer never reaches this line.
main "$@" </dev/null
