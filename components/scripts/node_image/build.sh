#!/usr/bin/env bash
# Build one node AMI with Packer, or reuse it when an AMI of the same name
# (Kubernetes version + content hash) already exists: a re-run after a failure
# never builds twice. Prints only the AMI id on stdout; Packer logs go to stderr.
#
# Env: KUBEHOP_PACKER_TEMPLATE (packer/worker.pkr.hcl), KUBEHOP_PACKER_VARS (JSON
# object of Packer variables), KUBEHOP_AMI_NAME (the name the template produces),
# AWS_REGION.
set -euo pipefail

for var in KUBEHOP_PACKER_TEMPLATE KUBEHOP_PACKER_VARS KUBEHOP_AMI_NAME AWS_REGION; do
  if [[ -z "${!var:-}" ]]; then
    echo "kubehop: image-build: $var is required" >&2
    exit 2
  fi
done
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."

# Only an `available` AMI is reused; a `pending` or `failed` one of the same name would
# hand the pools an image that cannot launch (DescribeImages State: pending | available |
# invalid | deregistered | transient | failed | error | disabled, EC2 API reference).
read -r existing state < <(aws ec2 describe-images --region "$AWS_REGION" --owners self \
  --filters "Name=name,Values=$KUBEHOP_AMI_NAME" --query 'Images[0].[ImageId,State]' --output text) || true
if [[ "${existing:-}" == ami-* ]]; then
  if [[ "${state:-}" != available ]]; then
    echo "kubehop: image-build FAILED: $KUBEHOP_AMI_NAME exists as $existing in state ${state:-unknown}, not available; wait for a pending build to finish, or deregister a failed one (aws ec2 deregister-image --image-id $existing), and re-run pulumi up" >&2
    exit 1
  fi
  echo "kubehop: image-build: $KUBEHOP_AMI_NAME already exists as $existing (available), skipping" >&2
  echo "$existing"
  exit 0
fi

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
printf '%s\n' "$KUBEHOP_PACKER_VARS" > "$workdir/vars.json"
manifest="$workdir/manifest.json"
packer init "$KUBEHOP_PACKER_TEMPLATE" >&2
if ! packer build -color=false -var-file="$workdir/vars.json" -var "manifest_path=$manifest" \
    "$KUBEHOP_PACKER_TEMPLATE" >&2; then
  echo "kubehop: image-build FAILED: packer build of $KUBEHOP_AMI_NAME failed; see the log above, fix, and re-run pulumi up" >&2
  exit 1
fi
ami="$(python3 -c 'import json,sys; b=json.load(open(sys.argv[1]))["builds"][-1]; print(b["artifact_id"].split(":")[-1])' "$manifest")"
if [[ "$ami" != ami-* ]]; then
  echo "kubehop: image-build FAILED: no AMI id in the Packer manifest ($ami)" >&2
  exit 1
fi
echo "$ami"
