# The hook scenario, run inside a chroot by tests/matrix/enter.sh (POSIX
# sh). gpu-setup, the real NVIDIA runtime and hook, and a stand-in
# nvidia-container-cli are already in place (tests/it/matrix.rs put them
# there). Every step's stdout, stderr and exit code land in /out/STEP.{out,err,rc}
# for the test to judge; the scenario itself asserts nothing.
. /matrix/common.sh
LOGS="--runtime-debug-log /var/log/nvidia-container-runtime.log --cli-debug-log /var/log/nvidia-container-toolkit.log"

snapshot start
step before $P --runtime nvidia $RUN $IMG /bin/echo ok
step plan0 gpu-setup --color never plan --format json $LOGS
step apply gpu-setup --color never apply --format json $LOGS
step apply2 gpu-setup --color never apply --format json $LOGS
# The debug logs are left as they are (unset): a root-only log dir is a
# warning for rootless use, which --strict would count.
step strict gpu-setup --color never plan --detailed-exitcode --strict
snapshot applied
step run_nvidia $P --runtime nvidia $RUN $IMG /bin/echo ok
cp /var/log/nvidia-container-runtime.log "$out/runtime.log" 2>/dev/null
step info_nvidia $P --runtime nvidia info --format json
step info $P --log-level=debug info --format json
# The hook, real, for a container that asks for GPUs: it calls the
# stand-in nvidia-container-cli with what config.toml says.
step run_gpu $P --log-level=debug $RUN -e NVIDIA_VISIBLE_DEVICES=all $IMG /bin/echo ok
cp /var/log/cli.log "$out/cli.log" 2>/dev/null
# Which stage the hook lands in: the OCI spec Podman writes for a container.
step create $P create --network=none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 $IMG /bin/true
id=$(cat "$out/create.out")
step init $P init "$id"
find /var/lib/containers/storage -path "*$id*/userdata/config.json" -exec cp {} "$out/config.json" \;
step doctor gpu-setup --color never doctor --format json $LOGS
step rollback gpu-setup --color never rollback --format json
snapshot rolled_back
step after $P --runtime nvidia $RUN $IMG /bin/echo ok
step runc $P --runtime runc $RUN $IMG /bin/echo ok
