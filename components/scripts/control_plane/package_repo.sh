#!/usr/bin/env bash
# kubehop step "package-repo": point apt at the pkgs.k8s.io repository of the
# target minor (runbook 1.2): each minor has its own repo, so this decides
# which kubeadm/kubelet/kubectl versions the next steps can install.
#
# Run as root with this text on stdin: `sudo env K=V ... bash -s`.
# Every input is an environment variable:
#   KUBEHOP_NODE          required  node name, e.g. master0
#   KUBEHOP_REPO_URL      required  https://pkgs.k8s.io/core:/stable:/v1.27/deb/
#   KUBEHOP_REPO_KEY_URL  required  https://pkgs.k8s.io/core:/stable:/v1.27/deb/Release.key
#   KUBEHOP_MINOR         optional  e.g. 1.27; when set the repo URL must contain /v1.27/
#   KUBEHOP_VERSION       optional  e.g. 1.27.16; when set must agree with KUBEHOP_MINOR, and apt's
#                                   index must list kubeadm, kubelet and kubectl at it (the program sets it)
#   KUBEHOP_APT_TIMEOUT   optional  seconds for apt-get update; default 600
#   KUBEHOP_ROOT          optional  prefix for /etc and /var paths (tests); default empty
# Writes $KUBEHOP_ROOT/etc/apt/sources.list.d/kubernetes.list as the single line
#   deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] <url> /
# fetches the key (curl -fsSL | gpg --dearmor) into
# $KUBEHOP_ROOT/etc/apt/keyrings/kubernetes-apt-keyring.gpg and runs apt-get update.
# If apt-get update fails, the previous list and keyring are put back.
# Already done when the list is exactly that line, the keyring exists and is not empty, AND
# apt's index lists the target packages at KUBEHOP_VERSION from that URL: `apt-cache madison`
# reads only what the last `apt-get update` fetched (apt cmdline/apt-cache.cc: Madison prints
# "NAME | VERSION | <index description>" per cached index entry; apt-cache's help: it "works
# exclusively on the data acquired into the local cache via the 'update' command"). So a run
# that died during the update, or a patch hop inside one minor (same list, new patch
# published since), runs `apt-get update` again instead of skipping.
# Exit: 0 done or already done; 1 failed (reason on stderr); 2 bad input.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
if ! declare -F kubehop_lib_loaded >/dev/null; then source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"; fi

STEP=package-repo
PACKAGES=(kubeadm kubelet kubectl)

warn() { printf 'kubehop: %s on %s: WARNING: %s\n' "$STEP" "$KUBEHOP_NODE" "$*" >&2; }

validate() {
  validate_node
  [[ -n ${KUBEHOP_REPO_URL:-} ]] || bad "KUBEHOP_REPO_URL is required (e.g. https://pkgs.k8s.io/core:/stable:/v1.27/deb/)"
  [[ $KUBEHOP_REPO_URL == https://?* && $KUBEHOP_REPO_URL != *[[:space:]\]\[]* ]] || bad "KUBEHOP_REPO_URL must be an https:// URL without spaces or brackets (got '$KUBEHOP_REPO_URL')"
  [[ -n ${KUBEHOP_REPO_KEY_URL:-} ]] || bad "KUBEHOP_REPO_KEY_URL is required (e.g. https://pkgs.k8s.io/core:/stable:/v1.27/deb/Release.key)"
  [[ $KUBEHOP_REPO_KEY_URL =~ ^https://[^[:space:]]+$ ]] || bad "KUBEHOP_REPO_KEY_URL must be an https:// URL (got '$KUBEHOP_REPO_KEY_URL')"
  if [[ -n ${KUBEHOP_MINOR:-} ]]; then
    [[ $KUBEHOP_MINOR =~ ^[0-9]+\.[0-9]+$ ]] || bad "KUBEHOP_MINOR must look like 1.27 (got '$KUBEHOP_MINOR')"
    [[ $KUBEHOP_REPO_URL == */v"$KUBEHOP_MINOR"/* ]] || bad "KUBEHOP_REPO_URL ($KUBEHOP_REPO_URL) is not the repo of KUBEHOP_MINOR=$KUBEHOP_MINOR (expected .../v$KUBEHOP_MINOR/...)"
    if [[ -n ${KUBEHOP_VERSION:-} && ${KUBEHOP_VERSION%.*} != "$KUBEHOP_MINOR" ]]; then
      bad "KUBEHOP_MINOR=$KUBEHOP_MINOR does not match KUBEHOP_VERSION=$KUBEHOP_VERSION"
    fi
  fi
  validate_root
}

restore() { # put back the list and keyring saved before this run
  if [[ -f $WORK/old.list ]]; then cp -p "$WORK/old.list" "$LIST"; else rm -f "$LIST"; fi
  if [[ -f $WORK/old.gpg ]]; then cp -p "$WORK/old.gpg" "$KEYRING"; else rm -f "$KEYRING"; fi
}

main() {
  validate
  local limit=${KUBEHOP_APT_TIMEOUT:-600} url=$KUBEHOP_REPO_URL key_url=$KUBEHOP_REPO_KEY_URL others
  seconds KUBEHOP_APT_TIMEOUT "$limit"
  local host_keyring=/etc/apt/keyrings/kubernetes-apt-keyring.gpg
  local line="deb [signed-by=$host_keyring] $url /"
  LIST=$ROOT/etc/apt/sources.list.d/kubernetes.list
  KEYRING=$ROOT$host_keyring

  WORK=$(mktemp -d)
  NEW_KEY="" NEW_LIST=""
  trap 'rm -rf "$WORK"; rm -f "$NEW_KEY" "$NEW_LIST"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  if [[ -f $LIST && -s $KEYRING && "$(<"$LIST")" == "$line" ]]; then
    if index_lists "$url"; then
      say "already done ($LIST is '$line', $KEYRING exists and apt's index lists ${PACKAGES[*]} ${KUBEHOP_VERSION:-}), skipping"
      return 0
    fi
    say "$LIST and $KEYRING are in place but apt's index does not list ${MISSING[*]} at $KUBEHOP_VERSION; running apt-get update"
    update "$url" "$limit" keep
    index_lists "$url" || fail "after apt-get update, $url still offers no ${MISSING[*]} at $KUBEHOP_VERSION ('apt-cache madison ${MISSING[0]}' lists what it has); check KUBEHOP_VERSION against the catalog"
    say "done: apt's index lists ${PACKAGES[*]} $KUBEHOP_VERSION from $url"
    return 0
  fi

  mkdir -p "${LIST%/*}" "${KEYRING%/*}"
  # New files are made beside their targets (so the final mv is atomic) and
  # removed on any exit; backups and logs go to a private temp dir, out of apt's sight.
  NEW_KEY=$(mktemp "$KEYRING.kubehop.XXXXXX")
  NEW_LIST=$(mktemp "$LIST.kubehop.XXXXXX")

  say "fetching the repo key from $key_url"
  set +e
  timeout 120 curl -fsSL --retry 3 --max-time 60 "$key_url" | gpg --batch --yes --dearmor -o "$NEW_KEY"
  local -a st=("${PIPESTATUS[@]}")
  set -e
  ((st[0] == 0)) || fail "could not download the repo key from $key_url (curl exit ${st[0]}); check the URL and this node's egress/proxy; nothing was changed"
  ((st[1] == 0)) || fail "gpg --dearmor rejected what $key_url returned (gpg exit ${st[1]}); is it a PGP public key?; nothing was changed"
  [[ -s $NEW_KEY ]] || fail "gpg --dearmor wrote an empty keyring from $key_url; nothing was changed"
  chmod 0644 "$NEW_KEY"
  printf '%s\n' "$line" >"$NEW_LIST"
  chmod 0644 "$NEW_LIST"

  # Keep what was there, so a failed apt-get update leaves apt as it was.
  if [[ -f $LIST ]]; then cp -p "$LIST" "$WORK/old.list"; fi
  if [[ -f $KEYRING ]]; then cp -p "$KEYRING" "$WORK/old.gpg"; fi
  mv -f "$NEW_KEY" "$KEYRING"
  mv -f "$NEW_LIST" "$LIST"

  others=$(grep -lsF 'pkgs.k8s.io' "${LIST%/*}"/*.list "${LIST%/*}"/*.sources | grep -vxF "$LIST" | paste -sd' ' - || true)
  [[ -z $others ]] || warn "other apt sources also point at pkgs.k8s.io and may offer other versions or clash: $others"

  say "wrote $LIST"
  update "$url" "$limit" restore
  index_lists "$url" || fail "apt now uses $url, but it offers no ${MISSING[*]} at $KUBEHOP_VERSION ('apt-cache madison ${MISSING[0]}' lists what it has); check KUBEHOP_VERSION against the catalog"
  say "done: apt now uses $url"
}

# apt-get update; on failure put the previous list and keyring back ($3 = restore) or keep them.
update() {
  local url=$1 limit=$2 rc=0
  say "running apt-get update (timeout ${limit}s)"
  timeout --kill-after=30 "$limit" apt-get -o DPkg::Lock::Timeout=120 update 2>&1 | tee "$WORK/update.log" || rc=$?
  # apt-get update exits 0 on some per-repo errors; look for ours too.
  if ((rc != 0)) || grep -E '^(Err:|W: |E: )' "$WORK/update.log" | grep -qF "${url%/}"; then
    if [[ $3 == restore ]]; then
      restore
      fail "apt-get update failed for $url (exit $rc; see the Err/W/E lines above); the previous kubernetes.list and keyring were put back; check the URL, the key and this node's egress, then re-run pulumi up"
    fi
    fail "apt-get update failed for $url (exit $rc; see the Err/W/E lines above); the list and keyring are unchanged; check this node's egress, then re-run pulumi up"
  fi
}

# True when apt's cached index lists every package at KUBEHOP_VERSION from $1 (sets MISSING).
index_lists() {
  local url=${1%/} pkg out
  MISSING=()
  [[ -n ${KUBEHOP_VERSION:-} ]] || return 0
  for pkg in "${PACKAGES[@]}"; do
    out=$(timeout 120 apt-cache madison "$pkg" 2>/dev/null || true)
    awk -F' [|] ' -v v="$KUBEHOP_VERSION" -v u="$url" '
      { gsub(/^ +| +$/, "", $2) } index($2, v "-") == 1 && index($3, u) == 1 { found = 1 }
      END { exit !found }' <<<"$out" || MISSING+=("$pkg")
  done
  ((${#MISSING[@]} == 0))
}

# Everything runs from main with stdin closed: this text arrives on stdin
# (`bash -s`), so no command may read the rest of it, and a truncated
# transfer never reaches this line.
main "$@" </dev/null
