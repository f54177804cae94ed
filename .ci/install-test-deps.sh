#!/bin/sh
# Installs the system packages tendhost's integration tests need (Debian 12, run as root).
# Idempotent. A temporary policy-rc.d keeps apt from starting daemons (a machine-wide sshd on :22
# would collide with the test hosts).
set -eu

export DEBIAN_FRONTEND=noninteractive
PACKAGES="openssh-server openssh-client sudo"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

if [ -n "$missing" ]; then
    policy=/usr/sbin/policy-rc.d
    created_policy=no
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod 755 "$policy"
        created_policy=yes
    fi
    trap '[ "$created_policy" = yes ] && rm -f "$policy"' EXIT
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing
fi

# sshd's privilege-separation directory.
mkdir -p /run/sshd
chmod 755 /run/sshd

# A non-root user whose sudo needs no password (tests of `sudo -n` wrapping), and one whose sudo
# does (tests of the "sudo needs a password" error).
if ! id tendhost-nopw >/dev/null 2>&1; then
    useradd --create-home --shell /bin/sh tendhost-nopw
fi
if ! id tendhost-pw >/dev/null 2>&1; then
    useradd --create-home --shell /bin/sh tendhost-pw
fi
# Both accounts need a usable (non-locked) password entry for sshd's pubkey login with UsePAM no.
usermod -p '*' tendhost-nopw
usermod -p '*' tendhost-pw
mkdir -p /etc/sudoers.d
echo 'tendhost-nopw ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/tendhost-nopw
echo 'tendhost-pw ALL=(ALL) ALL' > /etc/sudoers.d/tendhost-pw
chmod 440 /etc/sudoers.d/tendhost-nopw /etc/sudoers.d/tendhost-pw
