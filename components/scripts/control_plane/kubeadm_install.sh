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
#   KUBEHOP_POLL_INTERVAL optional seconds between looks at a still-running earlier apt-get; default 5
#   KUBEHOP_ROOT         optional  prefix for /etc and /var paths (tests); default empty
# Installs kubeadm=<version>-* (any Debian revision). Already done when
# `kubeadm version -o short` prints v<version>.
# Exit: 0 done or already done; 1 failed (reason on stderr); 2 bad input.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
if ! declare -F kubehop_lib_loaded >/dev/null; then source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"; fi

STEP=kubeadm-install

kubeadm_version() { # prints e.g. v1.27.16, or nothing when kubeadm is missing or broken
  timeout 60 kubeadm version -o short 2>/dev/null || true
}

main() {
  validate_common
  validate_root
  local limit=${KUBEHOP_APT_TIMEOUT:-600} current rc=0
  seconds KUBEHOP_APT_TIMEOUT "$limit"

  current=$(kubeadm_version)
  if [[ $current == "v$KUBEHOP_VERSION" ]]; then
    ensure_held kubeadm
    say "already done (kubeadm version -o short is $current, held), skipping"
    return 0
  fi

  OUT=$(mktemp)
  trap 'rm -f "$OUT"' EXIT
  say "kubeadm is ${current:-not installed}; installing kubeadm=$KUBEHOP_VERSION-* (timeout ${limit}s)"
  apt_install_held "$limit" kubeadm || rc=$?
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
