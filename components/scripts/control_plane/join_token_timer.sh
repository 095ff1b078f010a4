#!/usr/bin/env bash
# kubehop step "join-token-timer": renew the workers' bootstrap token on the
# first master on a schedule of its own, so a node the cluster-autoscaler
# launches days after the last `pulumi up` still joins. Installs join_token.sh
# (with lib.sh, the same text the join-token step runs) as
# /usr/local/lib/kubehop/join-token.sh and a systemd timer that runs it every
# third of the token's TTL. join_token.sh keeps a token while half its TTL is
# left and makes a new one otherwise, so the published token never has less
# than a sixth of its TTL left while the timer runs (a third after a check
# that kept it: more than half minus a third).
#
# systemd.timer(5): OnActiveSec= counts from the timer's own start and
# OnUnitActiveSec= from the service's last start; with only the latter a
# timer whose service never ran would never elapse, so both are set, and
# OnBootSec= makes a rebooted master check soon. A Type=oneshot service without
# RemainAfterExit= is inactive again after each run, so the timer starts it
# each time (systemd.timer(5), on services left active). EnvironmentFile= lines
# are KEY=VALUE (systemd.exec(5)); every value written is validated first and
# holds no quote, space or `$`.
#
# Run as root with this text on stdin: `sudo env K=V ... bash -s`.
# Every input is an environment variable:
#   KUBEHOP_NODE        required  node name (the first master, where this runs)
#   KUBEHOP_CLUSTER     required  cluster name, as for join_token.sh
#   KUBEHOP_REGION      required  AWS region of the parameters, as for join_token.sh
#   KUBEHOP_TOKEN_TTL   required  the token lifetime join_token.sh is given, e.g. 24h
#   KUBEHOP_ROOT        optional  prefix for /etc, /usr and /var paths (tests); default empty
# Already done when the script, its environment file and both units hold exactly
# what this run would write and the timer is enabled and active.
# Exit: 0 done or already done; 1 failed (reason on stderr); 2 bad input.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
if ! declare -F kubehop_lib_loaded >/dev/null; then source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"; fi

STEP=join-token-timer
UNIT=kubehop-join-token
SCRIPT=/usr/local/lib/kubehop/join-token.sh
ENV_FILE=/etc/kubehop/join-token.env

# wanted PATH MODE: CHANGED=1 after writing the content on stdin to $ROOT$PATH
# (atomically, with MODE) unless it is already there with that content and mode.
wanted() {
  local path=$ROOT$1 mode=$2 tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [[ -f $path ]] && cmp -s "$tmp" "$path" && [[ $(stat -c %a "$path") == "${mode#0}" ]]; then
    rm -f "$tmp"
    return 0
  fi
  mkdir -p "$(dirname "$path")"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$path" || fail "cannot write $path; nothing else was changed"
  CHANGED=1
  say "wrote $1"
}

timer_running() {
  timeout 30 systemctl is-enabled --quiet "$UNIT.timer" && timeout 30 systemctl is-active --quiet "$UNIT.timer"
}

# Sent over SSH, the text of join_token.sh comes embedded ahead of this one (components/steps.py
# EMBEDDED); run from its file, it is read from beside this file, lib.sh first, as it is sent.
if ! declare -F kubehop_join_token_script >/dev/null; then
  kubehop_join_token_script() {
    local here
    here=$(dirname "${BASH_SOURCE[0]}")
    cat "$here/lib.sh" && printf '\n' && cat "$here/join_token.sh"
  }
fi

main() {
  validate_node
  [[ -n ${KUBEHOP_TOKEN_TTL:-} ]] || bad "KUBEHOP_TOKEN_TTL is required (e.g. 24h: the join-token step's TTL)"
  validate_join_inputs
  validate_root
  command -v base64 >/dev/null || fail "base64 is not installed on $KUBEHOP_NODE (coreutils); nothing was changed"
  local every=$((TTL_SECONDS / 3)) changed_units=0
  umask 077
  CHANGED=0
  kubehop_join_token_script | wanted "$SCRIPT" 0700
  printf 'KUBEHOP_NODE=%s\nKUBEHOP_CLUSTER=%s\nKUBEHOP_REGION=%s\nKUBEHOP_TOKEN_TTL=%s\n' \
    "$KUBEHOP_NODE" "$KUBEHOP_CLUSTER" "$KUBEHOP_REGION" "$KUBEHOP_TOKEN_TTL" | wanted "$ENV_FILE" 0600
  CHANGED=0
  wanted "/etc/systemd/system/$UNIT.service" 0644 <<EOF
[Unit]
Description=kubehop: keep the bootstrap token in /kubehop/$KUBEHOP_CLUSTER/join-token valid for joining workers
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
EnvironmentFile=$ENV_FILE
ExecStart=/bin/bash $SCRIPT
TimeoutStartSec=600
EOF
  wanted "/etc/systemd/system/$UNIT.timer" 0644 <<EOF
[Unit]
Description=kubehop: renew the join token every ${every}s (a third of $KUBEHOP_TOKEN_TTL)

[Timer]
OnBootSec=5min
OnActiveSec=${every}s
OnUnitActiveSec=${every}s
AccuracySec=1min

[Install]
WantedBy=timers.target
EOF
  changed_units=$CHANGED
  if ((!changed_units)) && timer_running; then
    say "already done ($UNIT.timer is enabled and active, every ${every}s, with the current script and settings), skipping"
    return 0
  fi
  if ((changed_units)); then
    timeout 60 systemctl daemon-reload || fail "systemctl daemon-reload failed (see above)"
  fi
  timeout 60 systemctl enable "$UNIT.timer" || fail "systemctl enable $UNIT.timer failed (see above)"
  # restart: a changed interval applies now; a stopped timer starts
  timeout 60 systemctl restart "$UNIT.timer" || fail "systemctl restart $UNIT.timer failed; see 'systemctl status $UNIT.timer' on $KUBEHOP_NODE"
  timer_running || fail "$UNIT.timer is not enabled and active after enabling it; see 'systemctl status $UNIT.timer' on $KUBEHOP_NODE"
  say "done: $UNIT.timer runs $SCRIPT every ${every}s"
}

# Everything runs from main with stdin closed: this text arrives on stdin
# (`bash -s`), so no command may read the rest of it.
main "$@" </dev/null
