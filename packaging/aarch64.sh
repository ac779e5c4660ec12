#!/usr/bin/env bash
# Builds the aarch64 binary (glibc >= 2.17) on this x86_64 machine from
# Debian's archive alone, and prints its path (docs/install.md):
#
#   packaging/aarch64.sh            # as root: mmdebstrap, chroot, mounts
#
# Debian trixie's rustc (1.85, the MSRV) with an aarch64 std beside it
# (libstd-rust-dev:arm64), in a chroot built once and cached under
# $GPU_SETUP_CHROOT_CACHE (default /var/tmp/gpu-setup-chroots), keyed by
# its package list and builder version; cargo-zigbuild and zig from PyPI in
# a venv inside, so zig links and no aarch64 gcc is needed. The source is
# bind-mounted in a private mount namespace (nothing leaks to the host's
# mounts); the crates cargo downloads are cached beside the chroot.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
GLIBC=2.17
cache=${GPU_SETUP_CHROOT_CACHE:-/var/tmp/gpu-setup-chroots}
# What the builder holds; bump BUILDER when what is done inside changes.
BUILDER=1
packages=rustc,cargo,libstd-rust-dev:arm64,python3-venv,ca-certificates
key=$(printf '%s\n%s\n' "$BUILDER" "$packages" | sha256sum | cut -c1-12)
dir="$cache/aarch64-builder-$key"
# The CA bundle of this machine (its network may re-sign TLS): pip and
# cargo inside use it.
host_ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
inside_ca=/etc/ssl/certs/gpu-setup-build-ca.crt

if [ "$(id -u)" != 0 ]; then
  echo "packaging/aarch64.sh needs root (mmdebstrap, chroot, mount)" >&2
  exit 1
fi
for tool in mmdebstrap unshare chroot; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "packaging/aarch64.sh needs \`$tool\`: apt-get install mmdebstrap util-linux coreutils" >&2
    exit 1
  }
done

# run CMD...: CMD in the builder, with a clean environment.
run() {
  chroot "$1" /usr/bin/env -i PATH=/opt/zig/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
    SSL_CERT_FILE="$inside_ca" PIP_CERT="$inside_ca" CARGO_HTTP_CAINFO="$inside_ca" \
    PIP_DISABLE_PIP_VERSION_CHECK=1 "${@:2}"
}

if ! [ -e "$dir/.done" ]; then
  mkdir -p "$cache"
  chmod 0755 "$cache"
  rm -rf "$dir" "$dir.tmp"
  mmdebstrap --variant=apt --architectures=amd64,arm64 --include="$packages" \
    trixie "$dir.tmp" >&2
  install -m 0644 "$host_ca" "$dir.tmp$inside_ca"
  run "$dir.tmp" python3 -m venv /opt/zig >&2
  run "$dir.tmp" /opt/zig/bin/pip install --quiet cargo-zigbuild ziglang >&2
  mkdir -p "$dir.tmp/src" "$dir.tmp/cargo-home"
  mv "$dir.tmp" "$dir"
  touch "$dir/.done"
fi
# The CA bundle may have changed since the builder was made.
install -m 0644 "$host_ca" "$dir$inside_ca"

cargo_home="$cache/aarch64-cargo-home"
mkdir -p "$cargo_home" target/aarch64-chroot
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
# 64 KiB-aligned segments: Grace and other aarch64 kernels run with 64K pages.
unshare --mount --propagation private bash -euo pipefail -c '
  dir=$1 src=$2 cargo_home=$3
  mount --bind "$src" "$dir/src"
  mount --bind "$cargo_home" "$dir/cargo-home"
  mount -t proc proc "$dir/proc"
  mount --rbind /dev "$dir/dev"
  shift 3
  chroot "$dir" /usr/bin/env -i "$@"
' builder "$dir" "$PWD" "$cargo_home" \
  PATH=/opt/zig/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
  SSL_CERT_FILE="$inside_ca" CARGO_HTTP_CAINFO="$inside_ca" \
  CARGO_HOME=/cargo-home CARGO_TARGET_DIR=/src/target/aarch64-chroot \
  CARGO_TERM_COLOR=never SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" \
  RUSTFLAGS="-C link-arg=-Wl,-z,max-page-size=65536" \
  sh -c "cd /src && cargo zigbuild --release --locked -p gpu-setup --target $TARGET.$GLIBC" >&2
echo "$PWD/target/aarch64-chroot/$TARGET/release/gpu-setup"
