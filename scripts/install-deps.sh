#!/usr/bin/env bash
# Installs what tsbuild, its tests and its benchmark need on a fresh Debian machine (run as root),
# then starts dockerd (the reference builder and the real consumer of tsbuild's tarballs).
set -euo pipefail
packages=(busybox-static debootstrap docker.io skopeo podman runc buildah time libslirp0 bzip2 xz-utils zstd strace
  docker-registry apache2-utils openssl curl uidmap libcap2-bin passwd)
need=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if ((${#need[@]})); then
  echo "installing: ${need[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
# The tests start their own registries on free 127.0.0.1 ports: the package's system service
# (0.0.0.0:5000, /var/lib/docker-registry) stays off.
if [[ -x /etc/init.d/docker-registry ]]; then
  systemctl disable --now docker-registry >/dev/null 2>&1 || true
  update-rc.d docker-registry disable >/dev/null 2>&1 || true
  /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
fi
for pid in $(pgrep -x docker-registry || true); do
  if tr '\0' ' ' </proc/"$pid"/cmdline | grep -q /etc/docker/registry/config.yml; then kill "$pid" || true; fi
done
if ! /usr/bin/docker info >/dev/null 2>&1; then
  echo "starting dockerd"
  (setsid dockerd --storage-driver=overlay2 >/tmp/dockerd.log 2>&1 &)
  for _ in $(seq 1 60); do /usr/bin/docker info >/dev/null 2>&1 && break; sleep 1; done
  /usr/bin/docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /tmp/dockerd.log" >&2; exit 1; }
fi
