#!/usr/bin/env bash
# Builds the Debian package: tools/build-deb.sh [--profile release|dev] [--no-build] [-- ARGS...]
#
# 1. builds the binary with `cargo build --locked --profile PROFILE` (default release), unless
#    --no-build says it is built already;
# 2. has that binary print its man page and bash/zsh/fish completions into target/deb-assets/,
#    so the package documents exactly the CLI it carries (nothing generated is committed);
# 3. runs `cargo deb --no-build` with `[package.metadata.deb]` from Cargo.toml (ARGS after `--` go
#    to cargo-deb, e.g. `--fast`), and prints the path of the .deb on stdout, alone, so that
#    `sudo apt install "$(tools/build-deb.sh)"` works. Everything else goes to stderr.
#
# Needs cargo-deb (`.ci/install-test-deps.sh` installs the version CI uses).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
build=1
extra=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --profile) [ "$#" -ge 2 ] || { echo "build-deb: --profile needs a value" >&2; exit 2; }
               profile=$2; shift 2 ;;
    --profile=*) profile=${1#--profile=}; shift ;;
    --no-build) build=0; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "build-deb: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if ! cargo deb --version >/dev/null 2>&1; then
  echo "build-deb: cargo-deb is not installed; run .ci/install-test-deps.sh" \
    "or: cargo install cargo-deb --version 3.8.0 --locked" >&2
  exit 1
fi

# Cargo's output directory for the profile (honours CARGO_TARGET_DIR and .cargo/config).
target_dir=$(cargo metadata --format-version 1 --no-deps --locked \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target_dir" ] || { echo "build-deb: cargo metadata named no target directory" >&2; exit 1; }
case "$profile" in
  dev|test) profile_dir=debug ;;
  *) profile_dir=$profile ;;
esac
bin="$target_dir/$profile_dir/tendhost"

if [ "$build" = 1 ]; then
  cargo build --locked --profile "$profile" --bin tendhost >&2
fi
if [ ! -x "$bin" ]; then
  echo "build-deb: $bin is missing: build it (drop --no-build)" >&2
  exit 1
fi

# The generated assets, at the paths `[package.metadata.deb] assets` names (relative to the crate).
assets=target/deb-assets
mkdir -p "$assets"
generate() { # FILE COMMAND...: write COMMAND's stdout to FILE, never leaving half a file
  local out=$1
  shift
  "$@" >"$out.tmp" || { echo "build-deb: '$*' failed" >&2; rm -f "$out.tmp"; exit 1; }
  [ -s "$out.tmp" ] || { echo "build-deb: '$*' printed nothing" >&2; rm -f "$out.tmp"; exit 1; }
  mv "$out.tmp" "$out"
}
generate "$assets/tendhost.1" "$bin" man
generate "$assets/tendhost.bash" "$bin" completions bash
generate "$assets/_tendhost" "$bin" completions zsh
generate "$assets/tendhost.fish" "$bin" completions fish

# cargo-deb prints the path of the package it wrote as its last line on stdout.
deb=$(cargo deb --no-build --locked --profile "$profile" "${extra[@]}" | tail -n 1)
if [ ! -f "$deb" ]; then
  echo "build-deb: cargo deb did not name the package it made (got '$deb')" >&2
  exit 1
fi
realpath "$deb"
