#!/usr/bin/env bash
# kubehop step "node-preflight": read-only checks on one master before a hop
# moves anything, so a node the target minor cannot run on stops the hop while
# every master still runs the old version (kubeadm's own preflight runs only
# inside `upgrade apply/node`, half-way through the stage).
#
#   containerd   at least the catalog's minimum for the target minor on its
#                release line (containerd RELEASES.md, Kubernetes support);
#                read from `containerd --version`
#                ("containerd <package> <version> <revision>", containerd
#                cmd/containerd/command/main.go).
#   kubelet      no flag the target kubelet no longer has in the files the
#   flags        kubeadm drop-in reads (/var/lib/kubelet/kubeadm-flags.env,
#                /etc/default/kubelet, /etc/sysconfig/kubelet: kubeadm
#                "kubelet-integration" docs): kubelet refuses an unknown flag
#                and never starts ("unknown flag: --container-runtime" at 1.27,
#                kubernetes#114017). From 1.27 `--cloud-provider` may only be
#                `external` or empty: the in-tree AWS provider is gone
#                (kubernetes#115838; kubelet: unknown cloud provider "aws").
#   pause image  containerd's sandbox image against the one the target's
#                kubeadm expects: a warning, not a failure, as in kubeadm's
#                own preflight (kubernetes#115610, "detected that the sandbox
#                image ... is inconsistent with that used by kubeadm"); pods
#                run on either image.
# The files are read as text and never sourced: they are shell-like, and
# sourcing one would run whatever it holds as root.
#
# Run as root with this text on stdin: `sudo env K=V ... bash -s`.
# Every input is an environment variable:
#   KUBEHOP_NODE                    required  node name, e.g. master0
#   KUBEHOP_VERSION                 required  exact target version, e.g. 1.29.15
#   KUBEHOP_MINOR                   optional  e.g. 1.29; must agree with KUBEHOP_VERSION
#   KUBEHOP_CONTAINERD_MIN          required  the minimum per release line, e.g. "1.7.11 1.6.27"
#   KUBEHOP_REMOVED_KUBELET_FLAGS   optional  flag names the target kubelet lacks, e.g. "container-runtime"
#   KUBEHOP_CLOUD_PROVIDER_EXTERNAL optional  1: --cloud-provider must be external or unset
#   KUBEHOP_PAUSE_IMAGE             required  e.g. registry.k8s.io/pause:3.9
#   KUBEHOP_ROOT                    optional  prefix for /etc and /var paths (tests); default empty
# Never skips: it changes nothing, so it proves everything on every run.
# Exit: 0 every check passed (warnings printed); 1 a check failed (all
# failures on stderr, each with its fix); 2 bad input.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
if ! declare -F kubehop_lib_loaded >/dev/null; then source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"; fi

STEP=node-preflight
PROBLEMS=()

validate_inputs() {
  validate_common
  validate_root
  local v f
  [[ -n ${KUBEHOP_CONTAINERD_MIN:-} ]] || bad "KUBEHOP_CONTAINERD_MIN is required (e.g. '1.7.11 1.6.27')"
  for v in $KUBEHOP_CONTAINERD_MIN; do
    [[ $v =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || bad "KUBEHOP_CONTAINERD_MIN must list x.y.z versions (got '$v')"
  done
  for f in ${KUBEHOP_REMOVED_KUBELET_FLAGS:-}; do
    [[ $f =~ ^[a-z][a-z0-9-]*$ ]] || bad "KUBEHOP_REMOVED_KUBELET_FLAGS must list flag names without dashes, e.g. container-runtime (got '$f')"
  done
  [[ ${KUBEHOP_CLOUD_PROVIDER_EXTERNAL:-0} =~ ^[01]$ ]] || bad "KUBEHOP_CLOUD_PROVIDER_EXTERNAL must be 0 or 1 (got '$KUBEHOP_CLOUD_PROVIDER_EXTERNAL')"
  [[ -n ${KUBEHOP_PAUSE_IMAGE:-} ]] || bad "KUBEHOP_PAUSE_IMAGE is required (e.g. registry.k8s.io/pause:3.9)"
  [[ $KUBEHOP_PAUSE_IMAGE =~ ^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+:[A-Za-z0-9._-]+$ ]] \
    || bad "KUBEHOP_PAUSE_IMAGE must be registry/repository:tag (got '$KUBEHOP_PAUSE_IMAGE')"
}

check_containerd() {
  local line version want line_of best
  line=$(containerd --version 2>/dev/null) || { PROBLEMS+=("containerd --version failed; install containerd (or put it on root's PATH) on $KUBEHOP_NODE first"); return 0; }
  read -r _ _ version _ <<<"$line"
  version=${version#v}
  if [[ ! $version =~ ^([0-9]+\.[0-9]+)\.[0-9]+ ]]; then
    PROBLEMS+=("cannot read a version from 'containerd --version' (got: $line); check the containerd install on $KUBEHOP_NODE")
    return 0
  fi
  line_of=${BASH_REMATCH[1]}
  version=${BASH_REMATCH[0]}
  for want in $KUBEHOP_CONTAINERD_MIN; do
    if [[ ${want%.*} == "$line_of" ]]; then
      if older "$version" "$want"; then
        PROBLEMS+=("containerd $version is older than $want, the least Kubernetes $KUBEHOP_MINOR supports on the $line_of line; upgrade containerd on $KUBEHOP_NODE first")
      else
        say "ok: containerd $version (at least $want for Kubernetes $KUBEHOP_MINOR)"
      fi
      return 0
    fi
  done
  best=$(tr ' ' '\n' <<<"$KUBEHOP_CONTAINERD_MIN" | sort -V | tail -n1)
  if older "$best" "$version"; then
    say "ok: containerd $version (a release line newer than every listed minimum)"
  else
    PROBLEMS+=("containerd $version is on the $line_of line, which Kubernetes $KUBEHOP_MINOR does not support (minimums: $KUBEHOP_CONTAINERD_MIN); upgrade containerd on $KUBEHOP_NODE first")
  fi
}

kubelet_args() { # the files the kubeadm drop-in reads, that exist, one "path<TAB>text" per line
  local f
  for f in "$ROOT/var/lib/kubelet/kubeadm-flags.env" "$ROOT/etc/default/kubelet" "$ROOT/etc/sysconfig/kubelet"; do
    [[ -f $f ]] || continue
    printf '%s\t%s\n' "${f#"$ROOT"}" "$({ grep -v '^[[:space:]]*#' "$f" || true; } | tr '\n' ' ')"
  done
}

check_kubelet_flags() {
  local path text flag value found=0
  while IFS=$'\t' read -r path text; do
    [[ -n $path ]] || continue
    found=1
    for flag in ${KUBEHOP_REMOVED_KUBELET_FLAGS:-}; do
      if [[ $text =~ (^|[[:space:]\"\'])--$flag(=|[[:space:]\"\']|$) ]]; then
        PROBLEMS+=("$path passes --$flag, which kubelet $KUBEHOP_MINOR no longer has (it would not start); remove the flag from $path on $KUBEHOP_NODE, restart kubelet, then re-run pulumi up")
      fi
    done
    if ((${KUBEHOP_CLOUD_PROVIDER_EXTERNAL:-0})) && [[ $text =~ (^|[[:space:]\"\'])--cloud-provider[=[:space:]]+\"?([^[:space:]\"\']*) ]]; then
      value=${BASH_REMATCH[2]}
      if [[ -n $value && $value != external ]]; then
        PROBLEMS+=("$path passes --cloud-provider=$value; kubelet $KUBEHOP_MINOR knows only 'external' (the in-tree AWS provider was removed in 1.27); move to the AWS cloud-controller-manager and --cloud-provider=external first")
      fi
    fi
  done < <(kubelet_args)
  ((found)) || say "note: none of the kubelet flag files exists (kubelet runs with its config file only)"
  say "checked kubelet flags for: ${KUBEHOP_REMOVED_KUBELET_FLAGS:-nothing removed in $KUBEHOP_MINOR}$( ((${KUBEHOP_CLOUD_PROVIDER_EXTERNAL:-0})) && printf ', --cloud-provider external only')"
}

check_pause_image() {
  local dump image=""
  dump=$(containerd config dump 2>/dev/null) || { say "warning: 'containerd config dump' failed: cannot compare the sandbox image with $KUBEHOP_PAUSE_IMAGE"; return 0; }
  # containerd 1.7: sandbox_image = "..." (CRI plugin); 2.x: sandbox = "..." under pinned_images
  image=$(sed -nE 's/^[[:space:]]*(sandbox_image|sandbox)[[:space:]]*=[[:space:]]*["'\'']([^"'\'']*)["'\''].*/\2/p' <<<"$dump" | head -n1)
  if [[ -z $image ]]; then
    say "warning: containerd's config names no sandbox image; kubeadm $KUBEHOP_MINOR expects $KUBEHOP_PAUSE_IMAGE"
  elif [[ $image != "$KUBEHOP_PAUSE_IMAGE" ]]; then
    say "warning: containerd's sandbox image is $image, kubeadm $KUBEHOP_MINOR expects $KUBEHOP_PAUSE_IMAGE (pods run on either; to align, set it in containerd's config.toml and restart containerd)"
  else
    say "ok: containerd's sandbox image is $image, as kubeadm $KUBEHOP_MINOR expects"
  fi
}

main() {
  validate_inputs
  KUBEHOP_MINOR=${KUBEHOP_MINOR:-${KUBEHOP_VERSION%.*}}
  check_containerd
  check_kubelet_flags
  check_pause_image
  if ((${#PROBLEMS[@]})); then
    local p
    for p in "${PROBLEMS[@]}"; do
      printf 'kubehop: %s on %s: FAILED: %s\n' "$STEP" "$KUBEHOP_NODE" "$p" >&2
    done
    exit 1
  fi
  say "done: $KUBEHOP_NODE can run Kubernetes $KUBEHOP_VERSION (nothing was changed)"
}

# Everything runs from main with stdin closed: this text arrives on stdin
# (`bash -s`), so no command may read the rest of it, and a truncated
# transfer never reaches this line.
main "$@" </dev/null
