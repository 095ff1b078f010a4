#!/usr/bin/env bash
# kubehop step "etcd-snapshot": save and verify an etcd snapshot on the first
# control-plane node before the hop touches anything (runbook 1.1).
#
# Run as root with this text on stdin: `sudo env K=V ... bash -s`.
# Every input is an environment variable:
#   KUBEHOP_NODE                 required  node name, e.g. master0
#   KUBEHOP_HOP                  required  hop name, part of the file name, e.g. before-1.27.16
#   KUBEHOP_SNAPSHOT_DIR         optional  default $KUBEHOP_ROOT/var/backups/kubehop/etcd
#   KUBEHOP_SNAPSHOT_KEEP        optional  keep the newest N etcd-*.db there; default 5
#   KUBEHOP_SNAPSHOT_S3_URI      optional  s3://bucket/prefix: also `aws s3 cp` the snapshot to
#                                          <uri>/etcd-<hop>.db (skipped when `aws s3 ls` shows it)
#   KUBEHOP_SNAPSHOT_TIMEOUT     optional  seconds for snapshot save and upload; default 300
#   KUBEHOP_ETCD_HEALTH_TIMEOUT  optional  seconds for the health check before saving; default 15
#   ETCDCTL_ENDPOINTS            optional  ONE endpoint; default https://127.0.0.1:2379
#   ETCDCTL_CACERT               optional  default $KUBEHOP_ROOT/etc/kubernetes/pki/etcd/ca.crt
#   ETCDCTL_CERT                 optional  default $KUBEHOP_ROOT/etc/kubernetes/pki/etcd/server.crt
#   ETCDCTL_KEY                  optional  default $KUBEHOP_ROOT/etc/kubernetes/pki/etcd/server.key
#   KUBEHOP_ETCD_INSECURE        optional  1: pass no TLS files (plain-http etcd, tests); default 0
#   KUBEHOP_ROOT                 optional  prefix for /etc and /var paths (tests); default empty
#   KUBEHOP_VERSION, KUBEHOP_MINOR  accepted and ignored
# Writes <dir>/etcd-<hop>.db atomically: save to a hidden .part file, check
# `etcdctl snapshot status` reports totalKey > 0, then rename. Mode 0600: it
# holds every Secret of the cluster. Needs etcdctl (etcd-client) on the node.
# Already done when <dir>/etcd-<hop>.db exists and verifies (and is in S3 when asked).
# Exit: 0 done or already done; 1 failed (reason on stderr); 2 bad input.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
if ! declare -F kubehop_lib_loaded >/dev/null; then source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"; fi

STEP=etcd-snapshot

validate() {
  validate_node
  [[ -n ${KUBEHOP_HOP:-} ]] || bad "KUBEHOP_HOP is required (e.g. before-1.27.16)"
  [[ $KUBEHOP_HOP =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || bad "KUBEHOP_HOP may hold only letters, digits, '.', '_' and '-' (got '$KUBEHOP_HOP')"
  validate_root
  DIR=${KUBEHOP_SNAPSHOT_DIR:-$ROOT/var/backups/kubehop/etcd}
  DIR=${DIR%/}
  [[ $DIR == /* ]] || bad "KUBEHOP_SNAPSHOT_DIR must be an absolute path (got '$DIR')"
  KEEP=${KUBEHOP_SNAPSHOT_KEEP:-5}
  [[ $KEEP =~ ^[1-9][0-9]*$ ]] || bad "KUBEHOP_SNAPSHOT_KEEP must be a whole number >= 1 (got '$KEEP')"
  S3=${KUBEHOP_SNAPSHOT_S3_URI:-}
  S3=${S3%/}
  [[ -z $S3 || $S3 =~ ^s3://[^[:space:]]+$ ]] || bad "KUBEHOP_SNAPSHOT_S3_URI must look like s3://bucket/prefix (got '$S3')"
  SAVE_TIMEOUT=${KUBEHOP_SNAPSHOT_TIMEOUT:-300}
  seconds KUBEHOP_SNAPSHOT_TIMEOUT "$SAVE_TIMEOUT"
  HEALTH_TIMEOUT=${KUBEHOP_ETCD_HEALTH_TIMEOUT:-15}
  seconds KUBEHOP_ETCD_HEALTH_TIMEOUT "$HEALTH_TIMEOUT"
  ENDPOINT=${ETCDCTL_ENDPOINTS:-https://127.0.0.1:2379}
  [[ $ENDPOINT =~ ^https?://[^[:space:],]+$ ]] || bad "ETCDCTL_ENDPOINTS must be exactly one http(s):// endpoint, a snapshot is taken from one member (got '$ENDPOINT')"
  local insecure=${KUBEHOP_ETCD_INSECURE:-0}
  [[ $insecure == 0 || $insecure == 1 ]] || bad "KUBEHOP_ETCD_INSECURE must be 0 or 1 (got '$insecure')"

  ETCD_ARGS=(--endpoints="$ENDPOINT")
  if [[ $insecure == 0 ]]; then
    local cacert=${ETCDCTL_CACERT:-$ROOT/etc/kubernetes/pki/etcd/ca.crt}
    local cert=${ETCDCTL_CERT:-$ROOT/etc/kubernetes/pki/etcd/server.crt}
    local key=${ETCDCTL_KEY:-$ROOT/etc/kubernetes/pki/etcd/server.key}
    local f
    for f in "$cacert" "$cert" "$key"; do
      [[ -r $f ]] || fail "cannot read $f; is this a kubeadm control-plane node with local etcd? (set ETCDCTL_CACERT, ETCDCTL_CERT and ETCDCTL_KEY for other layouts)"
    done
    # File paths only; etcdctl reads the key itself.
    ETCD_ARGS+=(--cacert="$cacert" --cert="$cert" --key="$key")
  fi
  # Our flags are the only source of truth: etcdctl must not also read these.
  unset ETCDCTL_ENDPOINTS ETCDCTL_CACERT ETCDCTL_CERT ETCDCTL_KEY
  export ETCDCTL_API=3
}

# Checks a snapshot file: sets EVIDENCE ("N keys, revision R") or VERIFY_ERROR.
verify() {
  local json keys rev
  if ! json=$(timeout 120 etcdctl snapshot status -w json "$1" 2>&1); then
    VERIFY_ERROR="etcdctl snapshot status failed: ${json//$'\n'/ }"
    return 1
  fi
  keys=$(sed -n 's/.*"totalKey":\([0-9][0-9]*\).*/\1/p' <<<"$json")
  rev=$(sed -n 's/.*"revision":\([0-9][0-9]*\).*/\1/p' <<<"$json")
  if [[ -z $keys || $keys -eq 0 ]]; then
    VERIFY_ERROR="snapshot status reports totalKey=${keys:-missing}: ${json//$'\n'/ }"
    return 1
  fi
  EVIDENCE="$keys keys, revision ${rev:-?}"
}

take() {
  local rc=0 log=$WORK/etcdctl.log
  timeout $((HEALTH_TIMEOUT + 5)) etcdctl "${ETCD_ARGS[@]}" --dial-timeout=5s --command-timeout="${HEALTH_TIMEOUT}s" \
    endpoint health >"$log" 2>&1 \
    || fail "etcd at $ENDPOINT is not reachable or not healthy: $(tail -n 3 "$log" | tr '\n' ' '); check the etcd static pod ('crictl ps --name etcd'), the endpoint and the certificates; no snapshot was written"
  rm -f "$PART" "$PART.part"
  timeout --kill-after=10 "$SAVE_TIMEOUT" etcdctl "${ETCD_ARGS[@]}" snapshot save "$PART" >"$log" 2>&1 || rc=$?
  if ((rc == 124 || rc == 137)); then
    fail "etcdctl snapshot save from $ENDPOINT did not finish within ${SAVE_TIMEOUT}s; no snapshot was written; check etcd's health and disk, or raise KUBEHOP_SNAPSHOT_TIMEOUT"
  elif ((rc != 0)); then
    fail "etcdctl snapshot save from $ENDPOINT exited $rc: $(tail -n 3 "$log" | tr '\n' ' '); no snapshot was written"
  fi
  verify "$PART" || fail "the snapshot taken from $ENDPOINT does not verify ($VERIFY_ERROR); it was discarded; nothing else was changed"
  chmod 0600 "$PART"
  sync "$PART" 2>/dev/null || sync
  mv -f "$PART" "$FINAL"
  say "saved $FINAL ($EVIDENCE)"
}

prune() { # keep the newest $KEEP etcd-*.db, always including this hop's
  local -a files=()
  local f kept=1
  mapfile -t files < <(find "$DIR" -maxdepth 1 -type f -name 'etcd-*.db' -printf '%T@ %p\n' | sort -rn | cut -d' ' -f2-)
  for f in "${files[@]}"; do
    [[ $f == "$FINAL" ]] && continue
    if ((kept < KEEP)); then
      kept=$((kept + 1))
    else
      rm -f -- "$f"
      say "pruned old snapshot $f (keeping the newest $KEEP)"
    fi
  done
}

upload() { # prints nothing and returns 0 when S3 already had it
  local dest=$S3/${FINAL##*/} size listing
  size=$(stat -c %s "$FINAL")
  listing=$(timeout 120 aws s3 ls "$dest" 2>/dev/null || true)
  if awk -v n="${FINAL##*/}" -v s="$size" '$4 == n && $3 == s { found = 1 } END { exit !found }' <<<"$listing"; then
    S3_EVIDENCE="; $dest already holds it"
    return 0
  fi
  timeout --kill-after=10 "$SAVE_TIMEOUT" aws s3 cp --only-show-errors "$FINAL" "$dest" \
    || fail "uploading $FINAL to $dest failed (see above); the local snapshot is kept; check this node's IAM role (s3:PutObject) and the bucket, then re-run pulumi up"
  say "uploaded $FINAL to $dest"
  UPLOADED=1
}

main() {
  validate
  umask 077
  mkdir -p "$DIR"
  WORK=$(mktemp -d)
  FINAL=$DIR/etcd-$KUBEHOP_HOP.db
  PART=$DIR/.etcd-$KUBEHOP_HOP.db.part
  trap 'rm -rf "$WORK"; rm -f "$PART" "$PART.part"' EXIT
  local done_before=0
  S3_EVIDENCE="" UPLOADED=0

  if [[ -f $FINAL ]]; then
    if verify "$FINAL"; then
      done_before=1
    else
      say "existing $FINAL does not verify ($VERIFY_ERROR); taking a new snapshot"
    fi
  fi
  if ((done_before == 0)); then take; fi
  prune
  if [[ -n $S3 ]]; then upload; fi
  if ((done_before == 1 && UPLOADED == 0)); then
    say "already done ($FINAL verifies: $EVIDENCE$S3_EVIDENCE), skipping"
  fi
}

# Everything runs from main with stdin closed: this text arrives on stdin
# (`bash -s`), so no command may read the rest of it, and a truncated
# transfer never reaches this line.
main "$@" </dev/null
