#!/usr/bin/env bash
# kubehop step "etcd-snapshot": save and verify a FRESH etcd snapshot on the first
# control-plane node before the hop touches anything (runbook 1.1).
#
# Run as root with this text on stdin: `sudo env K=V ... bash -s`.
# Every input is an environment variable:
#   KUBEHOP_NODE                 required  node name, e.g. master0
#   KUBEHOP_HOP                  required  hop name, part of the file name, e.g. before-1.27.16
#   KUBEHOP_SNAPSHOT_DIR         optional  default $KUBEHOP_ROOT/var/backups/kubehop/etcd
#   KUBEHOP_SNAPSHOT_KEEP        optional  keep the newest N etcd-*.db there; default 5
#   KUBEHOP_SNAPSHOT_S3_URI      optional  s3://bucket/prefix: also `aws s3 cp` the snapshot there
#   KUBEHOP_SNAPSHOT_S3_KMS_KEY  optional  KMS key id/ARN/alias: upload with SSE-KMS under that key
#   KUBEHOP_SNAPSHOT_TIMEOUT     optional  seconds for snapshot save and upload; default 300
#   KUBEHOP_ETCD_HEALTH_TIMEOUT  optional  seconds for the health check before saving; default 15
#   ETCDCTL_ENDPOINTS            optional  ONE endpoint; default https://127.0.0.1:2379
#   ETCDCTL_CACERT               optional  default $KUBEHOP_ROOT/etc/kubernetes/pki/etcd/ca.crt
#   ETCDCTL_CERT                 optional  default $KUBEHOP_ROOT/etc/kubernetes/pki/etcd/server.crt
#   ETCDCTL_KEY                  optional  default $KUBEHOP_ROOT/etc/kubernetes/pki/etcd/server.key
#   KUBEHOP_ETCD_INSECURE        optional  1: pass no TLS files (plain-http etcd, tests); default 0
#   KUBEHOP_ROOT                 optional  prefix for /etc and /var paths (tests); default empty
#   KUBEHOP_VERSION, KUBEHOP_MINOR  accepted and ignored
#
# Every run takes a NEW snapshot, <dir>/etcd-<hop>-<UTC yyyymmddThhmmssZ>.db: the step runs
# when a hop starts or is retried, and a retry a week later must not be "protected" by a
# snapshot a restore would use to throw away that week's writes. The file is saved to a
# hidden .part file, verified (totalKey > 0 and a revision), made 0600 (it holds every
# Secret of the cluster) and renamed. The last line of stdout is machine-readable:
#   kubehop-snapshot path=<file> revision=<R> keys=<N>
# (kubehop records it as the hop's snapshot; the README's restore section uses it).
#
# Which client. A stock kubeadm master runs etcd as a static pod and has no etcdctl on the
# host. In order:
#   1. etcdctl on the host saves; `etcdutl snapshot status` verifies when etcdutl is there,
#      else `etcdctl snapshot status` when etcdctl is older than 3.6 (etcd 3.5 deprecated it
#      in etcdctl, 3.6 removed it: etcd-io/etcd CHANGELOG-3.5/3.6, etcdutl/README.md).
#   2. else crictl: `crictl exec` into the running etcd container (`crictl ps --name ^etcd$
#      --state running -q`, cri-tools docs) and use the etcdctl/etcdutl the etcd image ships in
#      /usr/local/bin (etcd-io/etcd Dockerfile: etcd, etcdctl, etcdutl). The snapshot is written
#      to the pod's data dir /var/lib/etcd, which kubeadm mounts from the host's /var/lib/etcd
#      (kubeadm's local etcd static pod: volume etcd-data, hostPath = DataDir), verified there,
#      then moved to <dir>.
#   Chosen over installing an etcd release on the node: the pod's client is exactly the running
#   etcd's version, needs no download during the maintenance window, and leaves nothing behind.
#   3. else fail with the fix (install etcd-client matching the running etcd, or cri-tools).
# Exit: 0 done; 1 failed (reason on stderr); 2 bad input.
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
  KMS=${KUBEHOP_SNAPSHOT_S3_KMS_KEY:-}
  [[ -z $KMS || $KMS =~ ^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_-]+|alias/[A-Za-z0-9/_-]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$ ]] \
    || bad "KUBEHOP_SNAPSHOT_S3_KMS_KEY must be a KMS key id, key ARN, alias/<name> or alias ARN (got '$KMS')"
  [[ -z $KMS || -n $S3 ]] || bad "KUBEHOP_SNAPSHOT_S3_KMS_KEY needs KUBEHOP_SNAPSHOT_S3_URI (the key encrypts the S3 copy)"
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

# Picks the clients (see the header): sets VIA (host|pod), CID, CTL (the etcdctl argv), STATUS_TOOL.
pick_client() {
  VIA="" CID="" STATUS_TOOL=""
  if command -v etcdctl >/dev/null 2>&1; then
    VIA=host CTL=(etcdctl)
    if command -v etcdutl >/dev/null 2>&1; then
      STATUS_TOOL=etcdutl
    else
      local v
      v=$(etcdctl version 2>/dev/null | sed -n 's/^etcdctl version: *\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p')
      if [[ -n $v ]] && version_ge "$v" 3.6; then
        fail "etcdctl $v on this host cannot verify a snapshot (etcd 3.6 moved 'snapshot status' to etcdutl) and etcdutl is not installed; install etcdutl from the same etcd release, then re-run pulumi up"
      fi
      STATUS_TOOL=etcdctl
    fi
    return 0
  fi
  if command -v crictl >/dev/null 2>&1; then
    CID=$(timeout 30 crictl ps --name '^etcd$' --state running -q 2>/dev/null | head -n 1 || true)
    [[ -n $CID ]] || fail "no etcdctl on this host and crictl finds no running etcd container; is etcd a static pod here ('crictl ps --name etcd')? install etcd-client matching the running etcd, or set up crictl's runtime endpoint; no snapshot was written"
    VIA=pod STATUS_TOOL=etcdutl CTL=(crictl exec "$CID" etcdctl)
    say "no etcdctl on this host: using the clients of the etcd container $CID (crictl exec)"
    return 0
  fi
  fail "neither etcdctl nor crictl is on this host, so no snapshot can be taken; install the etcd client matching the running etcd (etcd-client, or etcdctl+etcdutl from the etcd release) or cri-tools, then re-run pulumi up; nothing was changed"
}

version_ge() { # version_ge A B: A >= B for dotted major.minor
  [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1) == "$2" ]]
}

# Checks a snapshot file: sets KEYS, REV and EVIDENCE, or VERIFY_ERROR.
verify() {
  local json
  local -a cmd=("$STATUS_TOOL" snapshot status -w json "$1")
  [[ $VIA == pod ]] && cmd=(crictl exec "$CID" "${cmd[@]}")
  if ! json=$(timeout 120 "${cmd[@]}" 2>&1); then
    VERIFY_ERROR="$STATUS_TOOL snapshot status failed: ${json//$'\n'/ }"
    return 1
  fi
  KEYS=$(sed -n 's/.*"totalKey":\([0-9][0-9]*\).*/\1/p' <<<"$json")
  REV=$(sed -n 's/.*"revision":\([0-9][0-9]*\).*/\1/p' <<<"$json")
  if [[ -z $KEYS || $KEYS -eq 0 ]]; then
    VERIFY_ERROR="snapshot status reports totalKey=${KEYS:-missing}: ${json//$'\n'/ }"
    return 1
  fi
  if [[ -z $REV || $REV -eq 0 ]]; then
    VERIFY_ERROR="snapshot status reports no revision: ${json//$'\n'/ }"
    return 1
  fi
  EVIDENCE="$KEYS keys, revision $REV"
}

take() {
  local rc=0 log=$WORK/etcdctl.log
  timeout $((HEALTH_TIMEOUT + 5)) "${CTL[@]}" "${ETCD_ARGS[@]}" --dial-timeout=5s --command-timeout="${HEALTH_TIMEOUT}s" \
    endpoint health >"$log" 2>&1 \
    || fail "etcd at $ENDPOINT is not reachable or not healthy: $(tail -n 3 "$log" | tr '\n' ' '); check the etcd static pod ('crictl ps --name etcd'), the endpoint and the certificates; no snapshot was written"
  rm -f "$PART" "$PART.part" "$SAVE_TO" "$SAVE_TO.part"
  timeout --kill-after=10 "$SAVE_TIMEOUT" "${CTL[@]}" "${ETCD_ARGS[@]}" snapshot save "$SAVE_AS" >"$log" 2>&1 || rc=$?
  if ((rc == 124 || rc == 137)); then
    fail "etcdctl snapshot save from $ENDPOINT did not finish within ${SAVE_TIMEOUT}s; no snapshot was written; check etcd's health and disk, or raise KUBEHOP_SNAPSHOT_TIMEOUT"
  elif ((rc != 0)); then
    fail "etcdctl snapshot save from $ENDPOINT exited $rc: $(tail -n 3 "$log" | tr '\n' ' '); no snapshot was written"
  fi
  verify "$SAVE_AS" || fail "the snapshot taken from $ENDPOINT does not verify ($VERIFY_ERROR); it was discarded; nothing else was changed"
  if [[ $SAVE_TO != "$PART" ]]; then # saved in the pod's data dir: bring it beside the others
    cp -- "$SAVE_TO" "$PART"
    rm -f -- "$SAVE_TO"
  fi
  chmod 0600 "$PART"
  sync "$PART" 2>/dev/null || sync
  mv -f "$PART" "$FINAL"
  say "saved $FINAL ($EVIDENCE)"
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
  local dest=$S3/${FINAL##*/}
  local -a sse=()
  # SSE-KMS: `aws s3 cp --sse aws:kms --sse-kms-key-id <key>` (AWS CLI s3 cp reference).
  [[ -n $KMS ]] && sse=(--sse aws:kms --sse-kms-key-id "$KMS")
  timeout --kill-after=10 "$SAVE_TIMEOUT" aws s3 cp --only-show-errors "${sse[@]}" "$FINAL" "$dest" \
    || fail "uploading $FINAL to $dest failed (see above); the local snapshot is kept; check this node's IAM role (s3:PutObject${KMS:+, kms:GenerateDataKey on $KMS}) and the bucket, then re-run pulumi up (it takes a new snapshot)"
  say "uploaded $FINAL to $dest${KMS:+ (SSE-KMS $KMS)}"
}

main() {
  validate
  umask 077
  mkdir -p "$DIR"
  SAVE_TO="" PART="" REV="" KEYS=""
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"; [[ -z $PART ]] || rm -f "$PART" "$PART.part"; [[ -z $SAVE_TO ]] || rm -f "$SAVE_TO" "$SAVE_TO.part"' EXIT
  local stamp
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  FINAL=$DIR/etcd-$KUBEHOP_HOP-$stamp.db
  while [[ -e $FINAL ]]; do # two runs within one second: never overwrite a snapshot
    sleep 1
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    FINAL=$DIR/etcd-$KUBEHOP_HOP-$stamp.db
  done
  PART=$DIR/.etcd-$KUBEHOP_HOP-$stamp.db.part
  pick_client
  if [[ $VIA == pod ]]; then
    SAVE_TO=$ROOT/var/lib/etcd/.kubehop-etcd-$KUBEHOP_HOP-$stamp.db.part
    SAVE_AS=/var/lib/etcd/${SAVE_TO##*/}
  else
    SAVE_TO=$PART SAVE_AS=$PART
  fi
  take
  prune
  if [[ -n $S3 ]]; then upload; fi
  say "snapshot $FINAL revision $REV"
  printf 'kubehop-snapshot path=%s revision=%s keys=%s\n' "$FINAL" "$REV" "$KEYS"
}

# Everything runs from main with stdin closed: this text arrives on stdin
# (`bash -s`), so no command may read the rest of it, and a truncated
# transfer never reaches this line.
main "$@" </dev/null
