# Sourced by the matrix scenarios (inside the chroot): the step recorder,
# Podman's flags for these machines, and the busybox image.
set -u
out=/out
mkdir -p "$out"
P="podman --cgroup-manager=cgroupfs --events-backend=file --storage-driver=vfs"
RUN="run --rm --network=none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768"
IMG=localhost/gpu-setup-matrix:1
# step NAME CMD...: CMD's stdout, stderr and exit code into /out/NAME.*,
# bounded by a time limit (124: it hung).
step() {
  name=$1
  shift
  timeout 120 "$@" >"$out/$name.out" 2>"$out/$name.err"
  echo $? >"$out/$name.rc"
}
# snapshot NAME: every file gpu-setup may touch, with its checksum.
snapshot() {
  find /etc/containers /usr/share/containers /etc/nvidia-container-runtime /etc/cdi /var/run/cdi \
    -type f 2>/dev/null | sort | xargs -r sha256sum >"$out/$1.files"
}
mkdir -p /img/bin
cp /bin/busybox /img/bin/
for a in sh echo true cat test; do ln -s busybox /img/bin/$a; done
tar -C /img -cf /img.tar .
step import $P import /img.tar $IMG
