#!/usr/bin/env bash
# `ansible-test sanity` on the collection (ansible/collection), as
# tests/it/ansible.rs runs it: ansible-test wants the collection at
# .../ansible_collections/NAMESPACE/NAME, so a copy goes there. Its venvs are
# cached in ANSIBLE_TEST_HOME (default target/ansible-test-home); their
# packages come from PyPI. Needs ansible-test from ansible-core (.venv).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$repo/.venv/bin:$PATH"
home=${ANSIBLE_TEST_HOME:-$repo/target/ansible-test-home}
python=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# The pip version ansible-test bootstraps, and where it looks for the script.
pip=$(python3 - <<'PY'
import inspect, re
from ansible_test._internal import python_requirements as r
print(re.search(r"pip='([0-9.]+)'", inspect.getsource(r)).group(1))
PY
)
mkdir -p "$home/.ansible/test/cache"
install -m 0644 "$repo/ansible/get_pip.py" "$home/.ansible/test/cache/get_pip_${pip//./_}.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ansible_collections/gpu_setup"
cp -r "$repo/ansible/collection" "$work/ansible_collections/gpu_setup/podman_nvidia"
cd "$work/ansible_collections/gpu_setup/podman_nvidia"
HOME=$home ansible-test sanity --python "$python" --local --color no "$@"
