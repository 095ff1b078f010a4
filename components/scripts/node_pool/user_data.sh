#!/usr/bin/env bash
# Boot script of a kubehop node: join the cluster with kubeadm. The API
# endpoint, join token and CA hash are read at boot from SSM Parameter Store
# under /kubehop/<cluster>/ (never baked into the launch template); the
# control-plane step join_token.sh writes and refreshes them. IMDSv2 is used
# for instance metadata. cloud-init sends this script's output to
# /var/log/cloud-init-output.log and the serial console: every failure is
# one "kubehop-join: FAILED: ..." line there, and the script exits non-zero.
#
# The values components/node_pool.py fills in arrive base64-encoded (the
# alphabet has no quote, '$' or backslash), so none of them can be shell code
# here; decoded, each must also match the syntax its consumer accepts (the
# config refused anything else already, kubehop/node_labels.py) or nothing runs.
# When the pool's group has a launch lifecycle hook, the script completes it
# (CONTINUE) only once `kubectl get node` with the node's own credentials shows
# this node Ready at the expected kubelet version, and ABANDON on any failure,
# so an instance refresh never counts a node that did not join.
# Only tests set these (on a node they are unset):
#   KUBEHOP_ROOT       prefix of /etc/kubernetes/kubelet.conf (the "already joined" check)
#   KUBEHOP_RUN_DIR    where the join configuration is written; default /run
#   KUBEHOP_SSM_TRIES  reads of each parameter before giving up; default 8
#   KUBEHOP_SSM_WAIT   seconds between them; default 5 (the instance profile's
#                      credentials can take a while to work after boot)
#   KUBEHOP_READY_TIMEOUT / KUBEHOP_READY_WAIT  bound and poll of the Ready wait
set -euo pipefail
fail() { echo "kubehop-join: FAILED: $*" >&2; exit 1; }
# decode NAME B64 REGEX: sets NAME to the decoded value, refusing one that does not match REGEX.
decode() {
  local text
  text="$(printf %s "$2" | base64 -d)" || fail "$1 is not base64; regenerate the launch template with kubehop"
  [[ $text =~ $3 ]] || fail "$1 holds characters its consumer does not accept; fix the pool's config"
  printf -v "$1" %s "$text"
}
decode CLUSTER '__CLUSTER_B64__' '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'
decode NODE_LABELS '__LABELS_B64__' '^[-A-Za-z0-9_./=,]*$'
decode NODE_TAINTS '__TAINTS_B64__' '^[-A-Za-z0-9_./=,:]*$'
decode GROUP '__GROUP_B64__' '^[^[:cntrl:]]*$'
decode LAUNCH_HOOK '__HOOK_B64__' '^[-A-Za-z0-9_./]*$'
decode KUBELET_VERSION '__KUBELET_B64__' '^(v[0-9]+\.[0-9]+\.[0-9]+)?$'
if [[ -f ${KUBEHOP_ROOT:-}/etc/kubernetes/kubelet.conf ]]; then
  echo "kubehop: already joined" && exit 0
fi
tries=${KUBEHOP_SSM_TRIES:-8} wait=${KUBEHOP_SSM_WAIT:-5}
join=${KUBEHOP_RUN_DIR:-/run}/kubehop-join.yaml

imds="http://169.254.169.254/latest"
token="$(curl -fsS --retry 5 -X PUT "$imds/api/token" -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')" \
  || fail "no IMDSv2 token from $imds/api/token; check the instance metadata options"
meta() { curl -fsS --retry 5 -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/$1"; }
region="$(meta placement/region)" || fail "cannot read the region from instance metadata"
hostname="$(meta local-hostname)" || fail "cannot read the local hostname from instance metadata"
instance_id=""
if [[ -n $LAUNCH_HOOK ]]; then
  instance_id="$(meta instance-id)" || fail "cannot read the instance id from instance metadata"
fi

# hook RESULT: complete this instance's launch lifecycle action (AWS Auto Scaling
# CompleteLifecycleAction: LifecycleActionResult CONTINUE or ABANDON; ABANDON on a
# launch terminates the instance). Without it the hook's heartbeat timeout applies its
# DefaultResult, ABANDON for kubehop's hook.
hook() {
  [[ -n $LAUNCH_HOOK && -n $instance_id ]] || return 0
  aws autoscaling complete-lifecycle-action --region "$region" --lifecycle-hook-name "$LAUNCH_HOOK" \
    --auto-scaling-group-name "$GROUP" --instance-id "$instance_id" --lifecycle-action-result "$1"
}
# Any failure from here on abandons the launch, so the group replaces the instance and
# an instance refresh sees the failure at once; the join file (it holds the token) goes.
trap 'rc=$?; rm -f "$join"; if ((rc != 0)); then hook ABANDON || true; fi' EXIT

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

# The token is in this file: readable by root only, and removed however the join ends (trap above).
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
rm -f "$join"
[[ -n $LAUNCH_HOOK ]] || exit 0

# Ready at the expected kubelet, read with the node's own credentials (the Node
# authorizer lets a kubelet get its own Node object: kubernetes.io docs "Using Node
# Authorization"); kubeadm join writes them to /etc/kubernetes/kubelet.conf.
ready_timeout=${KUBEHOP_READY_TIMEOUT:-600} ready_wait=${KUBEHOP_READY_WAIT:-10}
deadline=$((SECONDS + ready_timeout)) seen="nothing"
want="$KUBELET_VERSION True"
while :; do
  if seen="$(kubectl --kubeconfig "${KUBEHOP_ROOT:-}/etc/kubernetes/kubelet.conf" get node "$hostname" \
    -o 'jsonpath={.status.nodeInfo.kubeletVersion} {.status.conditions[?(@.type=="Ready")].status}')"; then
    [[ $seen == "$want" ]] && break
  fi
  ((SECONDS < deadline)) || fail "node $hostname is not Ready at kubelet $KUBELET_VERSION after ${ready_timeout}s (last seen: '$seen'); the launch is abandoned"
  sleep "$ready_wait"
done
hook CONTINUE || fail "complete-lifecycle-action CONTINUE for $instance_id failed (its error is above); check that the instance profile allows autoscaling:CompleteLifecycleAction"
echo "kubehop: node $hostname Ready at $KUBELET_VERSION; launch hook $LAUNCH_HOOK completed"
