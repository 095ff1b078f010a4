#!/usr/bin/env bash
# kubehop step "etcd-snapshot": take a FRESH, verified etcd snapshot on the
# first control-plane node before the hop touches anything (runbook 1.1).
#
# Run as root with this text on stdin: `sudo env K=V ... bash -s`.
# Every input is an environment variable:
#   KUBEHOP_NODE                 required  node name, e.g. master0
#   KUBEHOP_VERSION              required  the hop's target, e.g. 1.27.16 (part of the file name)
#   KUBEHOP_MINOR                optional  e.g. 1.27; must agree with KUBEHOP_VERSION
#   KUBEHOP_SNAPSHOT_DIR         optional  default $KUBEHOP_ROOT/var/backups/kubehop/etcd
#   KUBEHOP_SNAPSHOT_KEEP        optional  keep the newest N etcd-*.db there; default 5
#   KUBEHOP_SNAPSHOT_S3_URI      optional  s3://bucket/prefix: also `aws s3 cp` the snapshot there
#   KUBEHOP_SNAPSHOT_KMS_KEY_ID  optional  with the S3 URI: encrypt the copy with this KMS key
#                                          (`aws s3 cp --sse aws:kms --sse-kms-key-id KEY`, AWS CLI
#                                          s3 cp reference); a key id, key ARN, alias/NAME or alias ARN
#   KUBEHOP_SNAPSHOT_TIMEOUT     optional  seconds for snapshot save and upload; default 300
#   KUBEHOP_ETCD_HEALTH_TIMEOUT  optional  seconds for the health check before saving; default 15
#   KUBEHOP_ETCD_DATA_DIR        optional  the etcd pod's data dir (a hostPath, the same path inside the
#                                          pod, plus KUBEHOP_ROOT here); default $KUBEHOP_ROOT/var/lib/etcd
#   ETCDCTL_ENDPOINTS            optional  ONE endpoint; default https://127.0.0.1:2379
#   ETCDCTL_CACERT               optional  default $KUBEHOP_ROOT/etc/kubernetes/pki/etcd/ca.crt
#   ETCDCTL_CERT                 optional  default $KUBEHOP_ROOT/etc/kubernetes/pki/etcd/server.crt
#   ETCDCTL_KEY                  optional  default $KUBEHOP_ROOT/etc/kubernetes/pki/etcd/server.key
#   KUBEHOP_ETCD_INSECURE        optional  1: pass no TLS files (plain-http etcd, tests); default 0
#   KUBEHOP_ROOT                 optional  prefix for /etc and /var paths (tests); default empty
#
# Every run takes a new snapshot: <dir>/etcd-before-<version>-<UTC time>.db.
# A file left by an earlier run never counts: a hop retried a week later must
# be protected by a snapshot of today's data, not one a restore would use to
# throw away a week of writes. The new file is saved to a hidden .part file,
# checked (`snapshot status` must report keys: totalKey > 0 and revision > 0) and renamed; mode 0600
# (it holds every Secret). The newest KEEP etcd-*.db are kept. The last line
# on stdout is a `kubehop-record` line (kubehop/record.py) with the path, the
# revision and the key count: the program exports it as the stack's
# etcdSnapshot output.
#
# Which client. A stock kubeadm master has no etcdctl on the host: etcd runs
# as a static pod. Then this step runs etcdctl INSIDE that pod (`crictl exec`)
# rather than downloading an etcd release: the pod's image
# (registry.k8s.io/etcd, kubernetes/kubernetes cluster/images/etcd/Dockerfile
# copies etcd* and etcdctl* to /usr/local/bin) carries the client of exactly
# the running server, it needs no egress, no checksum to trust and leaves
# nothing installed; kubeadm's etcd pod runs on the host network with
# /var/lib/etcd and /etc/kubernetes/pki/etcd mounted at the same paths
# (kubeadm cmd/kubeadm/app/phases/etcd/local.go), so the endpoint and
# certificates are the same and the snapshot written to the data dir appears
# on the host, from where it is moved to <dir>.
# Verification: etcd 3.6 removed `etcdctl snapshot status` and `restore`
# (moved to etcdutl, added in 3.5; etcd-io/etcd CHANGELOG-3.6 "Removed etcdctl
# snapshot status", PR #13809), so etcdutl is used where there is one, and
# etcdctl only when it is older than 3.6.
# Exit: 0 done; 1 failed (reason on stderr); 2 bad input.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
if ! declare -F kubehop_lib_loaded >/dev/null; then source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"; fi

STEP=etcd-snapshot
SAFE_PATH='^/[A-Za-z0-9._/-]*$'

validate() {
  validate_common
  validate_root
  DIR=${KUBEHOP_SNAPSHOT_DIR:-$ROOT/var/backups/kubehop/etcd}
  DIR=${DIR%/}
  [[ $DIR =~ $SAFE_PATH && $DIR != */../* && $DIR != */.. ]] || bad "KUBEHOP_SNAPSHOT_DIR must be an absolute path of letters, digits, '.', '_', '-' and '/' without '..' (got '$DIR')"
  DATA_DIR=${KUBEHOP_ETCD_DATA_DIR:-$ROOT/var/lib/etcd}
  DATA_DIR=${DATA_DIR%/}
  [[ $DATA_DIR =~ $SAFE_PATH && $DATA_DIR != *..* && $DATA_DIR == "$ROOT"/* ]] || bad "KUBEHOP_ETCD_DATA_DIR must be an absolute path without '..' (got '$DATA_DIR')"
  KEEP=${KUBEHOP_SNAPSHOT_KEEP:-5}
  [[ $KEEP =~ ^[1-9][0-9]*$ ]] || bad "KUBEHOP_SNAPSHOT_KEEP must be a whole number >= 1 (got '$KEEP')"
  S3=${KUBEHOP_SNAPSHOT_S3_URI:-}
  S3=${S3%/}
  [[ -z $S3 || $S3 =~ ^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9._/-]*)?$ ]] || bad "KUBEHOP_SNAPSHOT_S3_URI must look like s3://bucket/prefix (got '$S3')"
  KMS=${KUBEHOP_SNAPSHOT_KMS_KEY_ID:-}
  if [[ -n $KMS ]]; then
    [[ -n $S3 ]] || bad "KUBEHOP_SNAPSHOT_KMS_KEY_ID is set but KUBEHOP_SNAPSHOT_S3_URI is not; set the S3 URI or drop the key"
    [[ $KMS =~ ^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|alias/[A-Za-z0-9/_-]+|arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key/[A-Za-z0-9-]+|alias/[A-Za-z0-9/_-]+))$ ]] \
      || bad "KUBEHOP_SNAPSHOT_KMS_KEY_ID must be a KMS key id, key ARN, alias/NAME or alias ARN (got '$KMS')"
  fi
  SAVE_TIMEOUT=${KUBEHOP_SNAPSHOT_TIMEOUT:-300}
  seconds KUBEHOP_SNAPSHOT_TIMEOUT "$SAVE_TIMEOUT"
  HEALTH_TIMEOUT=${KUBEHOP_ETCD_HEALTH_TIMEOUT:-15}
  seconds KUBEHOP_ETCD_HEALTH_TIMEOUT "$HEALTH_TIMEOUT"
  ENDPOINT=${ETCDCTL_ENDPOINTS:-https://127.0.0.1:2379}
  [[ $ENDPOINT =~ ^https?://[^[:space:],]+$ ]] || bad "ETCDCTL_ENDPOINTS must be exactly one http(s):// endpoint, a snapshot is taken from one member (got '$ENDPOINT')"
  INSECURE=${KUBEHOP_ETCD_INSECURE:-0}
  [[ $INSECURE == 0 || $INSECURE == 1 ]] || bad "KUBEHOP_ETCD_INSECURE must be 0 or 1 (got '$INSECURE')"
  TLS_FILES=()
  if [[ $INSECURE == 0 ]]; then
    TLS_FILES=("${ETCDCTL_CACERT:-$ROOT/etc/kubernetes/pki/etcd/ca.crt}" "${ETCDCTL_CERT:-$ROOT/etc/kubernetes/pki/etcd/server.crt}"
      "${ETCDCTL_KEY:-$ROOT/etc/kubernetes/pki/etcd/server.key}")
    local f
    for f in "${TLS_FILES[@]}"; do
      [[ -r $f ]] || fail "cannot read $f; is this a kubeadm control-plane node with local etcd? (set ETCDCTL_CACERT, ETCDCTL_CERT and ETCDCTL_KEY for other layouts)"
    done
  fi
  # Our flags are the only source of truth: etcdctl must not also read these.
  unset ETCDCTL_ENDPOINTS ETCDCTL_CACERT ETCDCTL_CERT ETCDCTL_KEY
  export ETCDCTL_API=3
}

# etcdctl's connection flags; PREFIX is stripped from the certificate paths
# (the host's $ROOT when etcdctl runs inside the pod, which sees / as the node's /).
etcd_args() { # PREFIX
  ETCD_ARGS=(--endpoints="$ENDPOINT")
  if [[ $INSECURE == 0 ]]; then
    local f
    for f in "${TLS_FILES[@]}"; do
      if [[ -n $1 && $f != "$1"/* ]]; then
        fail "$f is outside the node's root, the etcd pod cannot see it; keep the certificates in kubeadm's etcd pki directory (the pod mounts it) or install etcdctl on the node"
      fi
    done
    # File paths only; etcdctl reads the key itself.
    ETCD_ARGS+=(--cacert="${TLS_FILES[0]#"$1"}" --cert="${TLS_FILES[1]#"$1"}" --key="${TLS_FILES[2]#"$1"}")
  fi
}

minor_of() { # "etcdctl version: 3.5.9 ..." -> 3.5
  sed -n 's/.*version: *\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' <<<"$1" | head -n1
}

# Chooses how to reach etcd. Sets CTL (the etcdctl command), STATUS (the
# snapshot status command), SNAP_SEEN (where that client writes/reads the
# snapshot) and SNAP_HOST (the same file on this node), and says which.
choose_client() {
  local got
  if command -v etcdctl >/dev/null; then
    CTL=(etcdctl)
    etcd_args ""
    SNAP_HOST=$DIR/.$NAME.part
    SNAP_SEEN=$SNAP_HOST
    if command -v etcdutl >/dev/null; then
      STATUS=(etcdutl)
    else
      got=$(timeout 30 etcdctl version 2>&1 || true)
      if [[ -z $(minor_of "$got") ]] || ! older "$(minor_of "$got")" 3.6; then
        fail "this node's etcdctl (${got%%$'\n'*}) has no 'snapshot status' (etcd 3.6 moved it to etcdutl) and there is no etcdutl; install etcdutl of the same release beside etcdctl, or remove etcdctl so the step uses the etcd pod's own client; no snapshot was written"
      fi
      STATUS=(etcdctl)
    fi
    say "using this node's $(command -v etcdctl) (${STATUS[0]} to verify)"
    return 0
  fi
  command -v crictl >/dev/null \
    || fail "neither etcdctl nor crictl is on this node, so no snapshot can be taken; fix: install cri-tools (crictl, to reach the etcd static pod) or etcd-client/etcdutl matching the running etcd ('kubectl -n kube-system get pod etcd-$KUBEHOP_NODE -o jsonpath={..image}'); no snapshot was written"
  local ids
  ids=$(timeout 60 crictl ps --name '^etcd$' --state running -q 2>&1) \
    || fail "no etcdctl on this node, and 'crictl ps' failed: ${ids//$'\n'/ }; check containerd and crictl's runtime endpoint (crictl.yaml); no snapshot was written"
  mapfile -t ids_list < <(grep -E '^[0-9a-f]{6,64}$' <<<"$ids" || true)
  ((${#ids_list[@]} == 1)) \
    || fail "no etcdctl on this node, and crictl shows ${#ids_list[@]} running etcd containers, not 1; is this a kubeadm master with a local etcd static pod? ('crictl ps --name etcd'); no snapshot was written"
  CID=${ids_list[0]}
  CTL=(crictl exec "$CID" etcdctl)
  etcd_args "$ROOT"
  SNAP_HOST=$DATA_DIR/.$NAME.part
  SNAP_SEEN=${SNAP_HOST#"$ROOT"}
  if timeout 60 crictl exec "$CID" etcdutl version >/dev/null 2>&1; then
    STATUS=(crictl exec "$CID" etcdutl)
  else
    STATUS=(crictl exec "$CID" etcdctl)
  fi
  say "etcdctl is not on this node; using the etcd static pod's own client (crictl exec $CID, ${STATUS[3]} to verify)"
}

# Checks a snapshot file (as the client sees it): sets KEYS and REVISION, or VERIFY_ERROR.
verify() {
  local json
  if ! json=$(timeout 120 "${STATUS[@]}" snapshot status -w json "$1" 2>&1); then
    VERIFY_ERROR="${STATUS[*]} snapshot status failed: ${json//$'\n'/ }"
    return 1
  fi
  KEYS=$(sed -n 's/.*"totalKey":\([0-9][0-9]*\).*/\1/p' <<<"$json")
  REVISION=$(sed -n 's/.*"revision":\([0-9][0-9]*\).*/\1/p' <<<"$json")
  # No keys: totalKey 0, or revision 0 (a store never written to: its totalKey
  # still counts etcd's own meta and members entries, 3 on etcd 3.4).
  if [[ -z $KEYS || $KEYS -eq 0 || -z $REVISION || $REVISION -eq 0 ]]; then
    VERIFY_ERROR="snapshot status reports totalKey=${KEYS:-missing} revision=${REVISION:-missing}: ${json//$'\n'/ }"
    return 1
  fi
}

take() {
  local rc=0 log=$WORK/etcdctl.log
  timeout $((HEALTH_TIMEOUT + 5)) "${CTL[@]}" "${ETCD_ARGS[@]}" --dial-timeout=5s --command-timeout="${HEALTH_TIMEOUT}s" \
    endpoint health >"$log" 2>&1 \
    || fail "etcd at $ENDPOINT is not reachable or not healthy: $(tail -n 3 "$log" | tr '\n' ' '); check the etcd static pod ('crictl ps --name etcd'), the endpoint and the certificates; no snapshot was written"
  timeout --kill-after=10 "$SAVE_TIMEOUT" "${CTL[@]}" "${ETCD_ARGS[@]}" snapshot save "$SNAP_SEEN" >"$log" 2>&1 || rc=$?
  if ((rc == 124 || rc == 137)); then
    fail "etcdctl snapshot save from $ENDPOINT did not finish within ${SAVE_TIMEOUT}s; no snapshot was written; check etcd's health and disk, or raise KUBEHOP_SNAPSHOT_TIMEOUT"
  elif ((rc != 0)); then
    fail "etcdctl snapshot save from $ENDPOINT exited $rc: $(tail -n 3 "$log" | tr '\n' ' '); no snapshot was written"
  fi
  verify "$SNAP_SEEN" || fail "the snapshot taken from $ENDPOINT does not verify ($VERIFY_ERROR); it was discarded; nothing else was changed"
  chmod 0600 "$SNAP_HOST"
  if [[ $SNAP_HOST != "$PART" ]]; then mv -f "$SNAP_HOST" "$PART"; fi
  sync "$PART" 2>/dev/null || sync
  mv -f "$PART" "$FINAL"
  say "saved $FINAL ($KEYS keys, revision $REVISION)"
}

prune() { # keep the newest $KEEP etcd-*.db, always including this run's
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

upload() {
  local -a sse=()
  if [[ -n $KMS ]]; then sse=(--sse aws:kms --sse-kms-key-id "$KMS"); fi
  S3_DEST=$S3/$NAME.db
  timeout --kill-after=10 "$SAVE_TIMEOUT" aws s3 cp --only-show-errors "${sse[@]}" "$FINAL" "$S3_DEST" \
    || fail "uploading $FINAL to $S3_DEST failed (see above); the local snapshot is kept; check this node's IAM role (s3:PutObject${KMS:+, kms:GenerateDataKey on the key}) and the bucket, then re-run pulumi up"
  say "uploaded $FINAL to $S3_DEST${KMS:+ (SSE-KMS)}"
}

main() {
  validate
  umask 077
  mkdir -p "$DIR"
  WORK=$(mktemp -d)
  NAME=etcd-before-$KUBEHOP_VERSION-$(date -u +%Y%m%dT%H%M%S.%3NZ)
  FINAL=$DIR/$NAME.db
  PART=$DIR/.$NAME.part
  SNAP_HOST=$PART
  trap 'rm -rf "$WORK"; rm -f "$PART" "$SNAP_HOST" "$SNAP_HOST.part"' EXIT
  S3_DEST=""
  choose_client
  take
  prune
  if [[ -n $S3 ]]; then upload; fi
  say "done: $FINAL, revision $REVISION, $KEYS keys${S3_DEST:+, copied to $S3_DEST}"
  # The record the program exports (kubehop.record.snapshot): paths are
  # validated above, so they need no JSON escaping.
  printf 'kubehop-record {"argv": ["--path", "%s", "--revision", "%s", "--keys", "%s", "--s3", "%s"], "gate": "etcd-snapshot"}\n' \
    "$FINAL" "$REVISION" "$KEYS" "$S3_DEST"
}

# Everything runs from main with stdin closed: this text arrives on stdin
# (`bash -s`), so no command may read the rest of it, and a truncated
# transfer never reaches this line.
main "$@" </dev/null
