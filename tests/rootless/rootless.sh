#!/usr/bin/env bash
# The seed's own case, on this machine's Podman: rootless containers of a
# local test user through the real NVIDIA runtime and hook, after
# gpu-setup apply. Run by tests/it/rootless.rs as root inside
# `unshare -m --propagation private`: /etc, /usr and /var are overlays
# whose upper layers live in $W (the machine's own are never written), /run
# a tmpfs. Each step's output and exit code land in $W/out/STEP.{out,err,rc}.
#
# Environment: W (scratch, mode 0755), GPU_SETUP_BIN, NVIDIA_TOOLKIT,
# NVIDIA_CONFIG.
set -euo pipefail
trap 'echo "rootless.sh: line $LINENO failed" >&2' ERR
mkdir -p "$W/out" "$W/log"
chmod 1777 "$W/log"
for d in etc usr var; do
  mkdir -p "$W/ovl/$d" "$W/ovl/work/$d"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$W/ovl/$d,workdir=$W/ovl/work/$d" "/$d"
done
mount -t tmpfs tmpfs /run
useradd -u 1500 -d /var/lib/gpu-setup-rootless -m gpu-setup-rootless
mkdir -p /run/user/1500
chown 1500:1500 /run/user/1500
chmod 0700 /run/user/1500
for b in nvidia-ctk nvidia-container-runtime nvidia-container-runtime-hook; do
  install -m 0755 "$NVIDIA_TOOLKIT/$b" "/usr/bin/$b"
done
ln -sf nvidia-container-runtime-hook /usr/bin/nvidia-container-toolkit
# libnvidia-container is not built here: a stand-in that logs, as whom and
# with what, the real hook calls it.
printf '#!/bin/sh\necho "uid=$(id -u) $*" >>%s/log/cli.log\nexit 0\n' "$W" >/usr/bin/nvidia-container-cli
chmod 0755 /usr/bin/nvidia-container-cli
mkdir -p /etc/nvidia-container-runtime
install -m 0644 "$NVIDIA_CONFIG" /etc/nvidia-container-runtime/config.toml

home=/var/lib/gpu-setup-rootless
mkdir -p "$home/img/bin"
cp /bin/busybox "$home/img/bin/"
for a in sh echo true; do ln -sf busybox "$home/img/bin/$a"; done
tar -C "$home/img" -cf "$home/img.tar" .
chown -R 1500:1500 "$home"

step() {
  name=$1
  shift
  set +e
  timeout 120 "$@" >"$W/out/$name.out" 2>"$W/out/$name.err"
  echo $? >"$W/out/$name.rc"
  set -e
}
as_user=(runuser -u gpu-setup-rootless -- env HOME="$home" XDG_RUNTIME_DIR=/run/user/1500
  PATH=/usr/sbin:/usr/bin:/sbin:/bin)
P=(podman --storage-driver=vfs --cgroup-manager=cgroupfs --events-backend=file)
RUN=(run --rm --network=none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
IMG=localhost/gpu-setup-rootless:1
cd "$home"
step apply "$GPU_SETUP_BIN" --color never apply --no-profile
step import "${as_user[@]}" "${P[@]}" import "$home/img.tar" "$IMG"
step doctor "${as_user[@]}" "$GPU_SETUP_BIN" --color never doctor --format json --no-profile
# crun refuses this machine's hybrid cgroups: runc, as the facts doc says.
step runtime "${as_user[@]}" "${P[@]}" --runtime nvidia "${RUN[@]}" "$IMG" /bin/echo ok
step hook "${as_user[@]}" "${P[@]}" --runtime runc "${RUN[@]}" -e NVIDIA_VISIBLE_DEVICES=all "$IMG" /bin/echo ok
mv "$W/log/cli.log" "$W/out/cli-true.log" 2>/dev/null || true
# Rootful GPU containers need no-cgroups = false: what doctor says to the
# rootless user then, and what the real hook passes.
step apply_false "$GPU_SETUP_BIN" --color never apply --no-profile --no-cgroups false
step doctor_false "${as_user[@]}" "$GPU_SETUP_BIN" --color never doctor --format json --no-profile --no-cgroups false
step hook_false "${as_user[@]}" "${P[@]}" --runtime runc "${RUN[@]}" -e NVIDIA_VISIBLE_DEVICES=all "$IMG" /bin/echo ok
mv "$W/log/cli.log" "$W/out/cli-false.log" 2>/dev/null || true
