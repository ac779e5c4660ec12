#!/usr/bin/env bash
# Runs a command as root inside a fresh overlay of a pristine chroot (from
# tests/matrix/chroot.sh), in a private mount namespace, so nothing it does
# reaches the chroot or the machine. Used by tests/it/matrix.rs.
#
#   GPU_SETUP_BIN=... NVIDIA_TOOLKIT=... tests/matrix/enter.sh CHROOT SCRATCH SCENARIO
#
# SCRATCH: an empty directory for the overlay's upper and work dirs (the
# caller removes it; what the scenario wrote is in SCRATCH/upper).
# SCENARIO: a shell script (tests/matrix/*.sh) run inside the chroot with
# /bin/sh, after tests/matrix/install.sh put gpu-setup and the NVIDIA
# toolkit into the new root. The namespace holds:
# a private tmpfs /dev (null, zero, full, random, urandom, tty bound in,
# devpts newinstance), proc, a read-only sysfs, tmpfs /run and /tmp, and a
# pure cgroup v1 view of the machine's hierarchy (crun refuses a hybrid one
# whose v2 mount has controllers). The facts doc's recipe for these
# machines.
set -euo pipefail
chroot=${1:?CHROOT}
scratch=${2:?SCRATCH}
scenario=${3:?SCENARIO}
here=$(cd "$(dirname "$0")" && pwd)
[ -e "$chroot/.done" ] || { echo "enter.sh: $chroot is not a complete chroot" >&2; exit 2; }

exec unshare -m --propagation private bash -euo pipefail -c '
trap '"'"'echo "enter.sh: line $LINENO failed" >&2'"'"' ERR
chroot=$1 scratch=$2 scenario=$3 here=$4
mkdir -p "$scratch/upper" "$scratch/work" "$scratch/root"
mount -t overlay overlay -o "lowerdir=$chroot,upperdir=$scratch/upper,workdir=$scratch/work" "$scratch/root"
r=$scratch/root
mount -t proc proc "$r/proc"
mount -t tmpfs -o mode=0755,nosuid tmpfs "$r/dev"
for d in null zero full random urandom tty; do
  touch "$r/dev/$d"
  mount --bind "/dev/$d" "$r/dev/$d"
done
mkdir -p "$r/dev/pts" "$r/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$r/dev/pts"
ln -s pts/ptmx "$r/dev/ptmx"
mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
ln -s /proc/self/fd "$r/dev/fd"
mount --rbind /sys "$r/sys"
mount --make-rslave "$r/sys"
# A pure cgroup v1 view: the v1 controllers only.
mount -t tmpfs -o mode=0755 tmpfs "$r/sys/fs/cgroup"
for c in /sys/fs/cgroup/*; do
  name=${c##*/}
  [ "$name" = unified ] && continue
  if [ -d "$c" ] && mountpoint -q "$c"; then
    mkdir -p "$r/sys/fs/cgroup/$name"
    mount --bind "$c" "$r/sys/fs/cgroup/$name"
  fi
done
mount -t tmpfs -o mode=0755 tmpfs "$r/run"
mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
[ -e "$r/var/run" ] || ln -s /run "$r/var/run"
NEWROOT=$r bash "$here/install.sh"
mkdir -p "$r/matrix"
cp "$here"/*.sh "$r/matrix/"
cp "$scenario" "$r/scenario.sh"
exec chroot "$r" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root /bin/sh /scenario.sh
' enter "$chroot" "$scratch" "$scenario" "$here"
