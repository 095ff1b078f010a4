#!/usr/bin/env bash
# Install the real servers and tools the tests run (Debian packages): etcd,
# Prometheus, MariaDB, sshd, shellcheck and chromium (renders the HTML plan). Does nothing when all are present.
set -euo pipefail
need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v prometheus >/dev/null || need+=(prometheus)
command -v mariadbd >/dev/null || need+=(mariadb-server)
command -v mariadb >/dev/null || need+=(mariadb-client)
command -v shellcheck >/dev/null || need+=(shellcheck)
# systemd-analyze verify checks the unit files kubehop installs on masters
command -v systemd-analyze >/dev/null || need+=(systemd)
[[ -x /usr/sbin/sshd ]] || need+=(openssh-server)
command -v chromium >/dev/null || need+=(chromium)
# A real kubectl >= 1.27 talks to the tests' loopback API server (tests/helpers/kube_api.py).
# It is not a Debian package: it cannot be apt-installed here, so say exactly how to get one.
kubectl_minor=$(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -n1)
if [[ -z $kubectl_minor || $kubectl_minor -lt 27 ]]; then
  echo "kubehop: the tests need a real kubectl >= 1.27 on PATH (found: ${kubectl_minor:+1.}${kubectl_minor:-none})." >&2
  echo "  Get one: the Google Cloud SDK ships kubectl and kubectl.1.27 ... kubectl.1.33 in its bin folder" >&2
  echo "  (gcloud components install kubectl), or the Kubernetes release binary from" >&2
  echo "  https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/ ; then put it on PATH." >&2
  exit 1
fi
if [[ ${#need[@]} -eq 0 ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "kubehop: the tests need these Debian packages: ${need[*]}; install them as root (apt-get install ${need[*]})" >&2
  exit 1
fi
echo "kubehop: installing ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# the packages' own services are not what the tests use: they start their own on loopback
for svc in etcd prometheus mariadb ssh; do
  service "$svc" stop >/dev/null 2>&1 || true
done
