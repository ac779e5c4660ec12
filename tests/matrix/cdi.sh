# The CDI scenario, run inside a chroot by tests/matrix/enter.sh: the real
# nvidia-ctk generates NVIDIA's own spec without a GPU (csv mode, as on a
# Tegra host: /etc/nv_tegra_release and a csv naming /dev/nvidia0, made
# here as a character device 1,3 in the namespace's private /dev; the
# toolkit README's recipe), gpu-setup manages it, Podman resolves it.
# Results in /out for tests/it/matrix.rs to judge.
. /matrix/common.sh

echo "# R36 (release), REVISION: 4.0" >/etc/nv_tegra_release
mkdir -p /etc/nvidia-container-runtime/host-files-for-container.d /etc/cdi
printf 'dev, /dev/nvidia0\n' >/etc/nvidia-container-runtime/host-files-for-container.d/devices.csv
mknod /dev/nvidia0 c 1 3
step info $P info --format json

step apply_hook gpu-setup --color never apply --format json
snapshot hooked
step plan gpu-setup --color never plan --strategy cdi --format json
snapshot planned
step apply gpu-setup --color never apply --strategy cdi --format json
snapshot applied
cp /etc/cdi/nvidia.yaml "$out/nvidia.yaml" 2>/dev/null
step apply2 gpu-setup --color never apply --strategy cdi --format json
step strict gpu-setup --color never plan --strategy cdi --detailed-exitcode --strict
step list nvidia-ctk cdi list
step run $P $RUN --device nvidia.com/gpu=all $IMG /bin/sh -c 'test -c /dev/nvidia0 && echo char'
step doctor gpu-setup --color never doctor --format json
step doctor_cdi gpu-setup --color never doctor --strategy cdi --format json
step rollback gpu-setup --color never rollback --format json
snapshot rolled_back
step after $P $RUN --device nvidia.com/gpu=all $IMG /bin/sh -c 'test -c /dev/nvidia0 && echo char'
