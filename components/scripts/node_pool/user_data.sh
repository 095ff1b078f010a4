#!/usr/bin/env bash
# Boot script of a kubehop node: join the cluster with kubeadm. The join
# token and CA hash are read at boot from SSM Parameter Store (never baked
# into the launch template). IMDSv2 is used for instance metadata.
set -euo pipefail
CLUSTER="__CLUSTER__"
NODE_LABELS="__LABELS__"
NODE_TAINTS="__TAINTS__"
if [[ -f /etc/kubernetes/kubelet.conf ]]; then
  echo "kubehop: already joined" && exit 0
fi
token="$(curl -fsS -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')"
region="$(curl -fsS -H "X-aws-ec2-metadata-token: $token" http://169.254.169.254/latest/meta-data/placement/region)"
hostname="$(curl -fsS -H "X-aws-ec2-metadata-token: $token" http://169.254.169.254/latest/meta-data/local-hostname)"
param() { aws ssm get-parameter --region "$region" --with-decryption --name "/kubehop/$CLUSTER/$1" --query Parameter.Value --output text; }
cat > /run/kubehop-join.yaml <<JOIN
apiVersion: kubeadm.k8s.io/v1beta3
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: "$(param api-endpoint)"
    token: "$(param join-token)"
    caCertHashes: ["$(param ca-cert-hash)"]
nodeRegistration:
  name: "$hostname"
  kubeletExtraArgs:
    cloud-provider: external
    node-labels: "$NODE_LABELS"
    register-with-taints: "$NODE_TAINTS"
JOIN
chmod 600 /run/kubehop-join.yaml
kubeadm join --config /run/kubehop-join.yaml
rm -f /run/kubehop-join.yaml
