#!/usr/bin/env bash
# Run `python -m kubehop gate "$@"` from the project root with the cluster's
# kubeconfig (KUBEHOP_KUBECONFIG_DATA, a secret) in a private temp file that
# is removed on exit. Used by every gate step of the Pulumi program.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
python="${KUBEHOP_PYTHON:-.venv/bin/python}"
if [[ -n "${KUBEHOP_KUBECONFIG_DATA:-}" ]]; then
  umask 077
  kubeconfig="$(mktemp)"
  trap 'rm -f "$kubeconfig"' EXIT
  printf '%s\n' "$KUBEHOP_KUBECONFIG_DATA" > "$kubeconfig"
  unset KUBEHOP_KUBECONFIG_DATA
  export KUBECONFIG="$kubeconfig"
fi
"$python" -m kubehop gate "$@"
