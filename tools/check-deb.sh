#!/usr/bin/env bash
# Checks the Debian package end to end, cheaply enough for CI: tools/check-deb.sh
#
# Packages the dev-profile binary that `cargo test` builds (a release build would cost CI minutes;
# what is checked here is the packaging, not the optimiser), installs the .deb with dpkg into a
# scratch root, and checks that the installed binary runs, that every file the package promises
# is where `dpkg -L` says, that the installed example config validates, and that `dpkg -r`
# removes it all again. Fails naming what is wrong or missing. Needs root (dpkg --root writes
# files owned by root), dpkg and cargo-deb (`.ci/install-test-deps.sh`).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "check-deb: FAILED: $*" >&2
  exit 1
}

command -v dpkg >/dev/null || fail "dpkg is not installed"
cargo deb --version >/dev/null 2>&1 \
  || fail "cargo-deb is not installed; run .ci/install-test-deps.sh"

# The build `cargo test --locked` makes, with the same features: a no-op right after it (as in
# CI), and a way to get the binary when this script runs alone.
cargo test --locked --no-run -q >&2 || fail "cargo test --locked --no-run (the build to package)"

# cargo-deb warns that the dev profile is not meant for releases: expected here, see above.
echo "check-deb: packaging the dev-profile binary (a warning about the dev profile is expected)" >&2
deb=$(tools/build-deb.sh --profile dev --no-build -- --fast) || fail "tools/build-deb.sh failed"
echo "check-deb: built $deb" >&2

scratch=$(mktemp -d /tmp/tendhost-check-deb.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

# The dpkg database of an empty system. The package's dependencies (libc6 from `$auto`) are
# recorded as installed with this machine's own status entries, so dpkg checks the Depends line
# against real versions instead of being told to ignore it.
admin="$scratch/var/lib/dpkg"
mkdir -p "$admin/info" "$admin/updates" "$admin/triggers"
: >"$admin/available"
: >"$admin/status"
depends=$(dpkg-deb -f "$deb" Depends)
while read -r group; do # one comma-separated entry: `name (>= v)`, or alternatives `a | b`
  [ -n "$group" ] || continue
  found=
  for alternative in ${group//|/ }; do
    name=${alternative%%(*}
    name=${name%:any}
    case "$name" in ''|'('*|*')') continue ;; esac
    if dpkg-query -s "$name" >/dev/null 2>&1; then found=$name; break; fi
  done
  [ -n "$found" ] || fail "no package of the dependency '$group' is installed on this machine"
  { dpkg-query -s "$found"; echo; } >>"$admin/status"
  : >"$admin/info/$(dpkg-query -W -f='${binary:Package}' "$found").list" # its files: none here
done < <(printf '%s\n' "$depends" | sed 's/,/\n/g')

dpkg --root="$scratch" --log=/dev/null -i "$deb" >&2 || fail "dpkg -i $deb into $scratch"

bin="$scratch/usr/bin/tendhost"
want_version="tendhost $(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
got_version=$("$bin" --version) || fail "$bin --version did not run"
[ "$got_version" = "$want_version" ] \
  || fail "$bin --version printed '$got_version', expected '$want_version'"

installed=$(dpkg --root="$scratch" -L tendhost) || fail "dpkg -L tendhost in $scratch"
man=/usr/share/man/man1/tendhost.1.gz
bash_completion=/usr/share/bash-completion/completions/tendhost
example=/usr/share/doc/tendhost/examples/tendhost.toml
expected=(
  /usr/bin/tendhost
  "$man"
  "$bash_completion"
  /usr/share/zsh/vendor-completions/_tendhost
  /usr/share/fish/vendor_completions.d/tendhost.fish
  "$example"
  /usr/share/doc/tendhost/README.md
  /usr/share/doc/tendhost/copyright
)
for path in "${expected[@]}"; do
  grep -qxF "$path" <<<"$installed" || fail "the package does not list $path (dpkg -L tendhost)"
  [ -s "$scratch$path" ] || fail "$path is listed but missing or empty in $scratch"
done

zcat "$scratch$man" | grep -q '^\.TH tendhost 1' || fail "$man is not the tendhost(1) man page"
bash -n "$scratch$bash_completion" || fail "$bash_completion is not valid bash"
grep -q 'complete .*tendhost' "$scratch$bash_completion" \
  || fail "$bash_completion registers no completion for tendhost"
cmp -s "$scratch$example" tendhost.toml || fail "$example differs from tendhost.toml"

"$bin" --config "$scratch$example" --state-dir "$scratch/state" --batch check >&2 \
  || fail "the installed example config does not pass --batch check"

dpkg --root="$scratch" --log=/dev/null -r tendhost >&2 || fail "dpkg -r tendhost in $scratch"
for path in "${expected[@]}"; do
  [ ! -e "$scratch$path" ] || fail "dpkg -r tendhost left $path behind"
done

echo "check-deb: ok: $(basename "$deb") installs, runs ($got_version), ships its" \
  "${#expected[@]} files and removes cleanly"
