# The CDI scenario, run inside a chroot by tests/matrix/enter.sh: the real
# nvidia-ctk generates NVIDIA's own spec without a GPU (csv mode, as on a
# Tegra host: /etc/nv_tegra_release and a csv naming /dev/nvidia0, made
# here as a character device 1,3 in the namespace's private /dev; the
# toolkit README's recipe), gpu-setup manages it, Podman resolves it.
# Results in /out for tests/it/matrix.rs to judge.
. /matrix/common.sh

mkdir -p /etc/nvidia-container-runtime/host-files-for-container.d /etc/cdi
printf 'dev, /dev/nvidia0\n' >/etc/nvidia-container-runtime/host-files-for-container.d/devices.csv
mknod /dev/nvidia0 c 1 3
# The UVM nodes a loaded driver has (without them plan and doctor warn).
mknod /dev/nvidia-uvm c 1 3
mknod /dev/nvidia-uvm-tools c 1 3
step apply_hook gpu-setup --color never apply --format json
snapshot hooked

# No driver at all, then a driver that is not loaded: the real
# nvidia-ctk fails, and gpu-setup says why with its error line.
step nodriver gpu-setup --color never plan --strategy cdi
cp /opt/fakenvml/libnvidia-ml.so.1 /usr/lib/x86_64-linux-gnu/
step notloaded gpu-setup --color never plan --strategy cdi
rm /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1
snapshot failed

# A Tegra host: nvidia-ctk's auto mode picks csv, which needs no GPU.
echo "# R36 (release), REVISION: 4.0" >/etc/nv_tegra_release
step info $P info --format json

step plan gpu-setup --color never plan --strategy cdi --format json
snapshot planned
step apply gpu-setup --color never apply --strategy cdi --format json
snapshot applied
cp /etc/cdi/nvidia.yaml "$out/nvidia.yaml" 2>/dev/null
step apply2 gpu-setup --color never apply --strategy cdi --format json
step strict gpu-setup --color never plan --strategy cdi --detailed-exitcode --strict
step list nvidia-ctk cdi list
step run $P $RUN --device nvidia.com/gpu=all $IMG /bin/sh -c 'test -c /dev/nvidia0 && echo char'
# A stray copy in the same dir: both define every device.
cp /etc/cdi/nvidia.yaml /etc/cdi/copy.yaml
step conflict_run $P $RUN --device nvidia.com/gpu=all $IMG /bin/true
step conflict_list nvidia-ctk cdi list
step conflict_doctor gpu-setup --color never doctor --format json
step conflict_strict gpu-setup --color never plan --strategy cdi --detailed-exitcode --strict
rm /etc/cdi/copy.yaml
step doctor gpu-setup --color never doctor --format json
step doctor_cdi gpu-setup --color never doctor --strategy cdi --format json
step rollback gpu-setup --color never rollback --format json
snapshot rolled_back
step after $P $RUN --device nvidia.com/gpu=all $IMG /bin/sh -c 'test -c /dev/nvidia0 && echo char'
