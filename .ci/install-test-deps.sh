#!/usr/bin/env bash
# Installs the system packages the integration tests need. Idempotent: safe to run again.
# A temporary policy-rc.d keeps package installs from starting daemons (sshd, docker-registry).
set -euo pipefail

PACKAGES=(
  # pkg: a Debian root per test host and a local apt repository of generated .deb files
  debootstrap dpkg-dev
  # pkg: a real rpm database and repository for dnf/yum output
  dnf dnf-plugins-core rpm createrepo-c
  # pkg: a local registry on loopback for docker compose pulls, compose v1, and gcc/libc6-dev
  # for the static binary inside the test images
  docker-registry docker-compose gcc libc6-dev
  # pkg: the dpkg-lock test holds apt's fcntl lock from python3
  python3
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    created_policy=1
  fi
  trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || true
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
