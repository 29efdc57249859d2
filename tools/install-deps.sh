#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks need; a no-op when all are present.
set -euo pipefail
pkgs=(docker-registry busybox-static containerd runc crun containernetworking-plugins
      nftables iptables iproute2 openssl apache2-utils python3-venv libseccomp2)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian starts these services on install; the tests and benchmarks start their own instances.
for svc in docker-registry containerd; do
  if command -v systemctl >/dev/null && systemctl is-active -q "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
