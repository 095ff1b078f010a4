#!/usr/bin/env bash
# kubehop step "uncordon": make the upgraded node schedulable again and wait
# until it is Ready with its kubelet at <version> (runbook 1.8).
#
# Run as root with this text on stdin: `sudo env K=V ... bash -s`.
# Every input is an environment variable:
#   KUBEHOP_NODE           required  node name as the API server knows it, e.g. master0
#   KUBEHOP_VERSION        required  exact target version without "v", e.g. 1.27.16
#   KUBEHOP_MINOR          optional  e.g. 1.27; must agree with KUBEHOP_VERSION
#   KUBEHOP_READY_TIMEOUT  optional  seconds to wait for Ready at <version>; default 300
#   KUBEHOP_POLL_INTERVAL  optional  seconds between looks; default 5
#   KUBEHOP_KUBECONFIG     optional  default /etc/kubernetes/admin.conf
# Already done when the node is schedulable, Ready and its kubelet reports
# v<version>. Uncordoning a schedulable node is skipped, so re-runs are safe.
# Exit: 0 done or already done; 1 failed (reason on stderr); 2 bad input.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
if ! declare -F kubehop_lib_loaded >/dev/null; then source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"; fi

STEP=uncordon

# One look at the node: sets UNSCHEDULABLE (true or empty), READY (True,
# False, Unknown or empty) and KUBELET (e.g. v1.27.16); LOOK_ERROR on failure.
look() {
  local out
  if ! out=$(node_get '{.spec.unschedulable}|{.status.conditions[?(@.type=="Ready")].status}|{.status.nodeInfo.kubeletVersion}' 2>&1); then
    LOOK_ERROR=${out//$'\n'/ }
    return 1
  fi
  IFS='|' read -r UNSCHEDULABLE READY KUBELET <<<"$out"
}

describe() { printf 'schedulable=%s Ready=%s kubelet=%s' "$([[ $UNSCHEDULABLE == true ]] && echo no || echo yes)" "${READY:-unknown}" "${KUBELET:-unknown}"; }

main() {
  validate_common
  use_kubeconfig
  local limit=${KUBEHOP_READY_TIMEOUT:-300} interval=${KUBEHOP_POLL_INTERVAL:-5} deadline last
  seconds KUBEHOP_READY_TIMEOUT "$limit"
  [[ $interval =~ ^[0-9]+(\.[0-9]+)?$ && ! $interval =~ ^0+(\.0+)?$ ]] || bad "KUBEHOP_POLL_INTERVAL must be a positive number of seconds (got '$interval')"
  local node=$KUBEHOP_NODE want="v$KUBEHOP_VERSION"

  look || fail "cannot read node $node from the API server: $LOOK_ERROR; check the node name and $KCFG; nothing was changed"
  if [[ $UNSCHEDULABLE != true && $READY == True && $KUBELET == "$want" ]]; then
    say "already done ($(describe)), skipping"
    return 0
  fi
  if [[ $UNSCHEDULABLE == true ]]; then
    timeout 60 kubectl --kubeconfig "$KCFG" --request-timeout=30s uncordon "$node" \
      || fail "kubectl uncordon $node failed (see above); the node stays cordoned; retry with 'kubectl uncordon $node' or re-run pulumi up"
  else
    say "$node is already schedulable"
  fi

  deadline=$((SECONDS + limit))
  while :; do
    if look; then
      last=$(describe)
      if [[ $UNSCHEDULABLE != true && $READY == True && $KUBELET == "$want" ]]; then
        say "done: $node is $last"
        return 0
      fi
    else
      last="API error: $LOOK_ERROR"
    fi
    if ((SECONDS >= deadline)); then
      fail "$node did not become Ready with kubelet $want within ${limit}s (last seen: $last); it is uncordoned; check 'kubectl describe node $node' and 'journalctl -u kubelet -n 100' on it, then re-run pulumi up"
    fi
    say "waiting for Ready with kubelet $want ($last; $((deadline - SECONDS))s left)"
    sleep "$interval"
  done
}

# Everything runs from main with stdin closed: this text arrives on stdin
# (`bash -s`), so no command may read the rest of it, and a truncated
# transfer never reaches this line.
main "$@" </dev/null
