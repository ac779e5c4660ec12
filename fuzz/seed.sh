#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seeds: the real-world files of
# tests/fixtures (and the journal seeds in fuzz/seeds). The corpus grows as
# the fuzzer runs and is not committed.
set -euo pipefail
cd "$(dirname "$0")"
fx=../tests/fixtures
mkdir -p corpus/containers_conf corpus/nvidia_config corpus/hook_json corpus/journal
for f in "$fx"/containers.conf/*; do
  n=$(basename "$f")
  # First byte: 0 = edit in place, 1 = the file is gpu-setup's drop-in.
  { printf '\x00'; cat "$f"; } > "corpus/containers_conf/inplace-$n"
  { printf '\x01'; cat "$f"; } > "corpus/containers_conf/dropin-$n"
done
cp "$fx"/nvidia-config.toml/* corpus/nvidia_config/
cp "$fx"/hooks/* corpus/hook_json/
cp ../templates/oci-nvidia-hook.json corpus/hook_json/ 2>/dev/null || true
cp seeds/journal/* corpus/journal/
