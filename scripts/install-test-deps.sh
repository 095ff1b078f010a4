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
[[ -x /usr/sbin/sshd ]] || need+=(openssh-server)
command -v chromium >/dev/null || need+=(chromium)
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
