#!/usr/bin/env bash
# Builds (once) a pristine Debian chroot with a real Podman for the matrix
# e2e tests (tests/it/matrix.rs, docs/testing.md), and prints its path.
#
#   tests/matrix/chroot.sh SUITE      # bullseye | bookworm | trixie | sid
#
# The tree is cached under $GPU_SETUP_CHROOT_CACHE (default
# /var/tmp/gpu-setup-chroots), keyed by the suite, the package list and
# this script, so CI builds each once per machine. A tree is complete only
# when its `.done` marker exists: an interrupted build is rebuilt.
set -euo pipefail

suite=${1:?usage: chroot.sh SUITE}
cache=${GPU_SETUP_CHROOT_CACHE:-/var/tmp/gpu-setup-chroots}
# What every case needs inside: Podman and its runtimes, busybox for the
# image, uidmap for rootless Podman, strace to see which files Podman opens.
packages=podman,crun,runc,conmon,busybox-static,uidmap,strace,ca-certificates
key=$(printf '%s\n%s\n' "$suite" "$packages" | cat - "$0" | sha256sum | cut -c1-12)
dir="$cache/$suite-$key"
if [ -e "$dir/.done" ]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$cache"
chmod 0755 "$cache"
# A half-built tree from an interrupted run.
rm -rf "$dir" "$dir.tmp"
extra=()
# sid's Release files may outlive their Valid-Until on a snapshot mirror.
[ "$suite" = sid ] && extra+=(--aptopt='Acquire::Check-Valid-Until "false"')
mmdebstrap --variant=minbase --include="$packages" "${extra[@]}" \
  "$suite" "$dir.tmp" >&2
mv "$dir.tmp" "$dir"
touch "$dir/.done"
echo "$dir"
