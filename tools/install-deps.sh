#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks need; a no-op when all are present.
# `install-deps.sh run`: only what the daemon itself needs (make run, make install): python3-venv
# for the venv, util-linux's nsenter/unshare for pod infra processes, nftables for the built-in
# network's NAT, iproute2, libseccomp2 for seccomp filters, procps' ps for `docker top`.
set -euo pipefail
run_pkgs=(python3-venv util-linux nftables iproute2 libseccomp2 procps)
pkgs=("${run_pkgs[@]}" docker-registry busybox-static containerd runc crun
      containernetworking-plugins iptables openssl apache2-utils docker.io docker-compose)
[ "${1:-}" != run ] || pkgs=("${run_pkgs[@]}")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian starts these services on install; the tests and benchmarks start their own instances.
for svc in docker-registry containerd docker docker.socket; do
  if command -v systemctl >/dev/null && systemctl is-active -q "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
