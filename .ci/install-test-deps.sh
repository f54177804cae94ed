#!/usr/bin/env bash
# Installs the system packages tendhost's integration tests need (Debian 12, run as root), and
# cargo-deb for tools/check-deb.sh.
# Idempotent: safe to run again. A temporary policy-rc.d keeps apt from starting daemons (a
# machine-wide sshd on :22 would collide with the test hosts; docker-registry is started by tests).
set -euo pipefail

PACKAGES=(
  # remote: real sshd test hosts, ssh-keygen/ssh-agent, sudo for non-root users
  openssh-server openssh-client sudo
  # tui: end-to-end tests drive the real binary in tmux; the README screenshot is rendered from
  # `tmux capture-pane -e` by tools/screenshot.py with PIL and a DejaVu monospace font
  tmux python3-pil fonts-dejavu-core
  # pkg: a Debian root per test host and a local apt repository of generated .deb files
  debootstrap dpkg-dev
  # pkg: a real rpm database and repository for dnf/yum output
  dnf dnf-plugins-core rpm createrepo-c
  # pkg: a local registry on loopback for docker compose pulls, compose v1, and gcc/libc6-dev
  # for the static binary inside the test images
  docker-registry docker-compose gcc libc6-dev
  # engine: a real VM (systemd as PID 1, real reboots) under TCG emulation; mkfs.ext4 -d makes
  # its disk image from a Debian root
  qemu-system-x86 e2fsprogs
  # pkg: the dpkg-lock test holds apt's fcntl lock from python3
  python3
  # metrics: `promtool check metrics` reads the node_exporter textfile by Prometheus' own rules
  prometheus
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

# sshd's privilege-separation directory.
mkdir -p /run/sshd
chmod 755 /run/sshd

# A non-root user whose sudo needs no password (tests of `sudo -n` wrapping), and one whose sudo
# does (tests of the "sudo needs a password" error).
for user in tendhost-nopw tendhost-pw; do
  id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$user"
  # A usable (non-locked) password entry, so sshd allows pubkey logins with UsePAM no.
  usermod -p '*' "$user"
done
mkdir -p /etc/sudoers.d
echo 'tendhost-nopw ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/tendhost-nopw
echo 'tendhost-pw ALL=(ALL) ALL' > /etc/sudoers.d/tendhost-pw
chmod 440 /etc/sudoers.d/tendhost-nopw /etc/sudoers.d/tendhost-pw

# packaging: tools/check-deb.sh builds the .deb with cargo-deb. Pinned, so CI does not change
# under us (packaging the dev profile is a warning in this version); a debug build, which packs
# the one binary with --fast as quickly as a release build does: ~25 s to install on 2 cores
# instead of ~50 s.
CARGO_DEB_VERSION=3.8.0
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
  cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --debug --force
fi
