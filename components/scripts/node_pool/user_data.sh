#!/usr/bin/env bash
# Boot script of a kubehop node: join the cluster with kubeadm. The API
# endpoint, join token and CA hash are read at boot from SSM Parameter Store
# under /kubehop/<cluster>/ (never baked into the launch template); the
# control-plane step join_token.sh writes and refreshes them. IMDSv2 is used
# for instance metadata. cloud-init sends this script's output to
# /var/log/cloud-init-output.log and the serial console: every failure is
# one "kubehop-join: FAILED: ..." line there, and the script exits non-zero.
#
# The cluster name, node labels and taints below are filled in by
# components/node_pool.py. Only tests set these (on a node they are unset):
#   KUBEHOP_ROOT       prefix of /etc/kubernetes/kubelet.conf (the "already joined" check)
#   KUBEHOP_RUN_DIR    where the join configuration is written; default /run
#   KUBEHOP_SSM_TRIES  reads of each parameter before giving up; default 8
#   KUBEHOP_SSM_WAIT   seconds between them; default 5 (the instance profile's
#                      credentials can take a while to work after boot)
set -euo pipefail
CLUSTER="__CLUSTER__"
NODE_LABELS="__LABELS__"
NODE_TAINTS="__TAINTS__"
if [[ -f ${KUBEHOP_ROOT:-}/etc/kubernetes/kubelet.conf ]]; then
  echo "kubehop: already joined" && exit 0
fi
fail() { echo "kubehop-join: FAILED: $*" >&2; exit 1; }
tries=${KUBEHOP_SSM_TRIES:-8} wait=${KUBEHOP_SSM_WAIT:-5}
join=${KUBEHOP_RUN_DIR:-/run}/kubehop-join.yaml

imds="http://169.254.169.254/latest"
token="$(curl -fsS --retry 5 -X PUT "$imds/api/token" -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')" \
  || fail "no IMDSv2 token from $imds/api/token; check the instance metadata options"
meta() { curl -fsS --retry 5 -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/$1"; }
region="$(meta placement/region)" || fail "cannot read the region from instance metadata"
hostname="$(meta local-hostname)" || fail "cannot read the local hostname from instance metadata"

# param NAME: sets VALUE to /kubehop/<cluster>/NAME, trying a few times; fails naming what to check.
param() {
  local name="/kubehop/$CLUSTER/$1" try why="KUBEHOP_SSM_TRIES is $tries"
  for ((try = 1; try <= tries; try++)); do
    if VALUE="$(aws ssm get-parameter --region "$region" --with-decryption --name "$name" \
      --query Parameter.Value --output text)"; then
      [[ -n $VALUE && $VALUE != None ]] && return 0
      why="it is empty"
    else
      why="aws ssm get-parameter failed (its error is above)"
    fi
    if ((try < tries)); then
      echo "kubehop-join: cannot read $name yet ($why); try $try of $tries, again in ${wait}s" >&2
      sleep "$wait"
    fi
  done
  fail "cannot read SSM parameter $name in $region after $tries tries: $why; check that the control-plane step join-token has run for cluster $CLUSTER and that this node's instance profile allows ssm:GetParameter on it"
}
param api-endpoint
endpoint=$VALUE
param join-token
join_token=$VALUE
param ca-cert-hash
ca_hash=$VALUE
[[ $endpoint =~ ^[^[:space:]\"/]+:[0-9]+$ ]] || fail "/kubehop/$CLUSTER/api-endpoint holds '$endpoint', not host:port; re-run the join-token step"
[[ $join_token =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || fail "/kubehop/$CLUSTER/join-token does not hold a kubeadm bootstrap token; re-run the join-token step"
[[ $ca_hash =~ ^sha256:[0-9a-f]{64}$ ]] || fail "/kubehop/$CLUSTER/ca-cert-hash holds '$ca_hash', not sha256:<hex>; re-run the join-token step"

# The token is in this file: readable by root only, and removed however the join ends.
trap 'rm -f "$join"' EXIT
(umask 077 && cat >"$join") <<JOIN
apiVersion: kubeadm.k8s.io/v1beta3
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: "$endpoint"
    token: "$join_token"
    caCertHashes: ["$ca_hash"]
nodeRegistration:
  name: "$hostname"
  kubeletExtraArgs:
    cloud-provider: external
    node-labels: "$NODE_LABELS"
    register-with-taints: "$NODE_TAINTS"
JOIN
kubeadm join --config "$join" || fail "kubeadm join to $endpoint exited $? (its output is above); the node did not join"
echo "kubehop: joined the cluster through $endpoint"
