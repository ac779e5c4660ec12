# More e2e cases per Podman version, run inside a chroot by
# tests/matrix/enter.sh; each one's outcome is judged in tests/it/matrix.rs
# against the model (which version reads what). Results in /out.
. /matrix/common.sh
CONF=/etc/containers/containers.conf

# --state absent: the exact undo, and Podman forgets the runtime.
snapshot start
step apply gpu-setup --color never apply
step absent gpu-setup --color never apply --state absent --format json
snapshot absent
step absent_nvidia $P --runtime nvidia $RUN $IMG /bin/echo ok
step absent_runc $P --runtime runc $RUN $IMG /bin/echo ok

# In place: the main file, Debian's own copied to /etc.
cp /usr/share/containers/containers.conf "$CONF"
step inplace gpu-setup --color never apply --containers-conf "$CONF"
step inplace_nvidia $P --runtime nvidia $RUN $IMG /bin/echo ok
step inplace_rollback gpu-setup --color never rollback
rm -f "$CONF"
snapshot after_inplace

# A malformed containers.conf: Podman refuses it, gpu-setup too, nothing
# changes.
printf '[engine\nruntime = "runc"\n' >"$CONF"
snapshot broken
step broken_podman $P --runtime runc $RUN $IMG /bin/true
step broken_apply gpu-setup --color never apply
snapshot broken_after
rm -f "$CONF"

# `{append=true}` (Podman 4.8+): Podman's verdict and doctor's.
mkdir -p /etc/containers/containers.conf.d
printf '[engine]\nhooks_dir = ["/etc/containers/oci/hooks.d", {append=true}]\n' \
  >/etc/containers/containers.conf.d/50-hooks.conf
step append_podman $P info --format json
step append_doctor gpu-setup --color never doctor --format json
rm -f /etc/containers/containers.conf.d/50-hooks.conf

# $CONTAINERS_CONF_OVERRIDE (Podman 4.5+): does Podman merge it, and does
# plan say when it does not?
printf '[engine]\nruntime = "runc"\n' >/etc/override.conf
step override_podman env CONTAINERS_CONF_OVERRIDE=/etc/override.conf $P --log-level=debug info --format json
step override_plan env CONTAINERS_CONF_OVERRIDE=/etc/override.conf gpu-setup --color never plan --format json
rm -f /etc/override.conf
