#!/bin/sh
# Drift check and repair for one host, for cron, a systemd timer or a
# provisioning step (docs/provisioning.md). Silent when the host is
# configured (cron mails nothing); says what it repaired otherwise.
#   GPU_SETUP          the binary (default: gpu-setup)
#   GPU_SETUP_ARGS     global options, e.g. "--root /mnt/image" (no spaces in values)
#   GPU_SETUP_LOG_DIR  where the JSON record of a change goes (default: /var/log)
# Exit 0: configured (now or already); 1: an error (nothing half-done).
set -u
gs="${GPU_SETUP:-gpu-setup} ${GPU_SETUP_ARGS:-}"
log_dir=${GPU_SETUP_LOG_DIR:-/var/log}

# plan --detailed-exitcode: 0 configured, 2 changes pending, 1 error
# (--quiet: errors only, on stderr).
$gs --quiet plan --detailed-exitcode
case $? in
  0) ;;
  2) $gs apply --format json >"$log_dir/gpu-setup-apply.json" || exit 1
     echo "gpu-setup: applied; record in $log_dir/gpu-setup-apply.json" ;;
  *) echo "gpu-setup: plan failed" >&2; exit 1 ;;
esac
