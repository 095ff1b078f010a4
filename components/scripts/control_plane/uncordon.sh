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
# Uncordons only what kubehop cordoned: drain.sh records its cordon in the
# annotation kubehop.io/cordoned; this step removes it and the cordon in one
# merge patch. A node cordoned without it (an operator's cordon from before the
# hop) stays cordoned. Already done when the node is Ready, its kubelet reports
# v<version> and no kubehop cordon is left.
# Exit: 0 done or already done; 1 failed (reason on stderr); 2 bad input.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
if ! declare -F kubehop_lib_loaded >/dev/null; then source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"; fi

STEP=uncordon

# One look at the node: sets UNSCHEDULABLE (true or empty), READY (True,
# False, Unknown or empty), KUBELET (e.g. v1.27.16) and OURS (1 when kubehop's
# cordon annotation is on it); LOOK_ERROR on failure.
look() {
  local out annotations
  if ! out=$(node_get '{.spec.unschedulable}|{.status.conditions[?(@.type=="Ready")].status}|{.status.nodeInfo.kubeletVersion}|{.metadata.annotations}' 2>&1); then
    LOOK_ERROR=${out//$'\n'/ }
    return 1
  fi
  IFS='|' read -r UNSCHEDULABLE READY KUBELET annotations <<<"$out"
  OURS=0
  if [[ $annotations == *'kubehop.io/cordoned'* ]]; then OURS=1; fi
}

describe() { printf 'schedulable=%s Ready=%s kubelet=%s' "$([[ $UNSCHEDULABLE == true ]] && echo no || echo yes)" "${READY:-unknown}" "${KUBELET:-unknown}"; }

finished() { [[ $OURS == 0 && $READY == True && $KUBELET == "$1" ]]; }

main() {
  validate_common
  use_kubeconfig
  local limit=${KUBEHOP_READY_TIMEOUT:-300} interval=${KUBEHOP_POLL_INTERVAL:-5} deadline last
  seconds KUBEHOP_READY_TIMEOUT "$limit"
  [[ $interval =~ ^[0-9]+(\.[0-9]+)?$ && ! $interval =~ ^0+(\.0+)?$ ]] || bad "KUBEHOP_POLL_INTERVAL must be a positive number of seconds (got '$interval')"
  local node=$KUBEHOP_NODE want="v$KUBEHOP_VERSION"

  look || fail "cannot read node $node from the API server: $LOOK_ERROR; check the node name and $KCFG; nothing was changed"
  if finished "$want"; then
    say "already done ($(describe)$([[ $UNSCHEDULABLE == true ]] && echo "; cordoned before the hop, not by kubehop: left cordoned")), skipping"
    return 0
  fi
  if [[ $OURS == 1 ]]; then
    timeout 60 kubectl --kubeconfig "$KCFG" --request-timeout=30s patch node "$node" --type=merge \
      -p '{"metadata":{"annotations":{"kubehop.io/cordoned":null}},"spec":{"unschedulable":null}}' \
      || fail "kubectl patch (uncordon) of $node failed (see above); the node stays cordoned; retry with 'kubectl uncordon $node' or re-run pulumi up"
    say "uncordoned $node (kubehop had cordoned it)"
  elif [[ $UNSCHEDULABLE == true ]]; then
    say "$node was cordoned before the hop, not by kubehop: leaving it cordoned"
  else
    say "$node is already schedulable"
  fi

  deadline=$((SECONDS + limit))
  while :; do
    if look; then
      last=$(describe)
      if finished "$want"; then
        say "done: $node is $last"
        return 0
      fi
    else
      last="API error: $LOOK_ERROR"
    fi
    if ((SECONDS >= deadline)); then
      fail "$node did not become Ready with kubelet $want within ${limit}s (last seen: $last); kubehop's cordon is lifted; check 'kubectl describe node $node' and 'journalctl -u kubelet -n 100' on it, then re-run pulumi up"
    fi
    say "waiting for Ready with kubelet $want ($last; $((deadline - SECONDS))s left)"
    sleep "$interval"
  done
}

# Everything runs from main with stdin closed: this text arrives on stdin
# (`bash -s`), so no command may read the rest of it, and a truncated
# transfer never reaches this line.
main "$@" </dev/null
