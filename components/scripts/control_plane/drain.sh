#!/usr/bin/env bash
# kubehop step "drain": cordon and drain a control-plane node before its
# kubelet is upgraded (runbook 1.6). Evicts through the eviction API, so
# PodDisruptionBudgets are honoured: never --force, never --disable-eviction.
#
# Run as root with this text on stdin: `sudo env K=V ... bash -s`.
# Every input is an environment variable:
#   KUBEHOP_NODE           required  node name as the API server knows it, e.g. master0
#   KUBEHOP_VERSION        required  exact target version without "v", e.g. 1.27.16
#   KUBEHOP_MINOR          optional  e.g. 1.27; must agree with KUBEHOP_VERSION
#   KUBEHOP_DRAIN_TIMEOUT  optional  seconds kubectl drain may take; default 900
#   KUBEHOP_KUBECONFIG     optional  default /etc/kubernetes/admin.conf
# Already done when the node's kubelet reports v<version> (it was drained,
# upgraded and the later steps take it from there).
# Records its cordon: a schedulable node is cordoned with one merge patch that
# also sets the annotation kubehop.io/cordoned=v<version>, so uncordon.sh makes
# schedulable only what kubehop cordoned. A node already cordoned without that
# annotation (an operator's cordon) is drained and stays cordoned afterwards.
# Exit: 0 done or already done; 1 failed (reason on stderr); 2 bad input.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
if ! declare -F kubehop_lib_loaded >/dev/null; then source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"; fi

STEP=drain

# Cordon through one merge patch that records kubehop as the one who cordoned,
# unless the node is already cordoned (by an earlier run: annotated; or by an
# operator: left as it is, and uncordon.sh will keep it cordoned).
cordon_recorded() {
  local out unschedulable annotations
  out=$(node_get '{.spec.unschedulable}|{.metadata.annotations}' 2>&1) \
    || fail "cannot read node $KUBEHOP_NODE from the API server: ${out//$'\n'/ }; nothing was changed"
  IFS='|' read -r unschedulable annotations <<<"$out"
  if [[ $unschedulable == true && $annotations == *'kubehop.io/cordoned'* ]]; then
    say "$KUBEHOP_NODE is already cordoned by kubehop (an earlier run)"
  elif [[ $unschedulable == true ]]; then
    say "$KUBEHOP_NODE was cordoned before this hop, not by kubehop: draining it; uncordon will leave it cordoned"
  else
    timeout 60 kubectl --kubeconfig "$KCFG" --request-timeout=30s patch node "$KUBEHOP_NODE" --type=merge \
      -p "{\"metadata\":{\"annotations\":{\"kubehop.io/cordoned\":\"v$KUBEHOP_VERSION\"}},\"spec\":{\"unschedulable\":true}}" >/dev/null \
      || fail "cannot cordon $KUBEHOP_NODE (kubectl patch failed, see above); nothing else was changed; re-run pulumi up"
    say "cordoned $KUBEHOP_NODE (recorded as kubehop's: annotation kubehop.io/cordoned=v$KUBEHOP_VERSION)"
  fi
}

main() {
  validate_common
  use_kubeconfig
  local limit=${KUBEHOP_DRAIN_TIMEOUT:-900} running rc=0 blocked
  seconds KUBEHOP_DRAIN_TIMEOUT "$limit"
  local node=$KUBEHOP_NODE

  running=$(node_kubelet_version 2>&1) \
    || fail "cannot read node $node from the API server: $running; check the node name and $KCFG; nothing was changed"
  if [[ $running == "v$KUBEHOP_VERSION" ]]; then
    say "already done (kubelet on $node reports $running), skipping"
    return 0
  fi

  cordon_recorded
  OUT=$(mktemp)
  trap 'rm -f "$OUT"' EXIT
  say "kubelet reports $running; draining $node (timeout ${limit}s; PodDisruptionBudgets are honoured)"
  timeout --kill-after=30 $((limit + 60)) kubectl --kubeconfig "$KCFG" drain "$node" \
    --ignore-daemonsets --delete-emptydir-data --timeout="${limit}s" 2>&1 | tee "$OUT" || rc=$?
  ((rc == 0)) && { say "done: $node drained"; return 0; }

  if ((rc == 124 || rc == 137)) || grep -qiE "disruption budget|global timeout" "$OUT"; then
    blocked=$(sed -n 's/.*evicting pods\/"\([^"]*\)" -n "\([^"]*\)".*/\2\/\1/p' "$OUT" | sort -u | paste -sd, - || true)
    fail "drain did not finish within ${limit}s; the likely cause is a PodDisruptionBudget that allows no disruption${blocked:+ (pods that could not be evicted: $blocked)}; see 'kubectl get pdb -A'. $node is left cordoned. To finish by hand: scale up or relax the blocking PodDisruptionBudget (or move that workload), then run 'kubectl drain $node --ignore-daemonsets --delete-emptydir-data' and re-run pulumi up; to back out instead run 'kubectl uncordon $node'"
  elif grep -q "declare no controller" "$OUT"; then
    fail "drain refused to evict pods that no controller manages (named above); kubehop never uses --force: delete or move those pods yourself, then re-run pulumi up. $node is left cordoned ('kubectl uncordon $node' to back out)"
  fi
  fail "kubectl drain $node exited $rc (see its output above); $node may be left cordoned; fix the cause and re-run pulumi up, or run 'kubectl uncordon $node' to back out"
}

# Everything runs from main with stdin closed: this text arrives on stdin
# (`bash -s`), so no command may read the rest of it, and a truncated
# transfer never reaches this line.
main "$@" </dev/null
