#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gpu-setup developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0), as gpu-setup
"""The collection's gpu_setup module: runs the installed gpu-setup binary.

Its documentation is the sidecar file gpu_setup.yml beside this one. The
binary does the work: this wrapper checks the arguments against the spec
below, hands the ones given to ``gpu-setup`` in its Ansible module mode
(program name ``gpu_setup``, one argument naming a JSON file of arguments)
and returns its one JSON object.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

# Every argument the binary's module mode takes (crates/cli/src/module.rs),
# with no defaults: an argument left out is not sent, so the host's profile
# (/etc/gpu-setup.toml) and the built-in defaults apply.
ARGUMENT_SPEC = dict(
    root=dict(type='path'),
    state_dir=dict(type='path'),
    profile=dict(type='path'),
    state=dict(type='str', choices=['present', 'absent']),
    strategy=dict(type='str', choices=['hook', 'cdi']),
    containers_conf=dict(type='path'),
    runtime_name=dict(type='str'),
    runtime_path=dict(type='path'),
    nvidia_config=dict(type='path'),
    no_cgroups=dict(type='bool'),
    hook_file=dict(type='path'),
    hook_path=dict(type='path'),
    cli_debug_log=dict(type='path'),
    runtime_debug_log=dict(type='path'),
    allow_unsafe_log_path=dict(type='bool'),
    follow_symlinks=dict(type='bool'),
    cdi_spec=dict(type='path'),
    nvidia_ctk=dict(type='path'),
    rollback=dict(type='bool'),
    transaction=dict(type='int'),
    force=dict(type='bool'),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    # The packaged binary first; then the managed host's PATH.
    binary = module.get_bin_path('gpu-setup', required=True, opt_dirs=['/usr/bin'])
    args = dict((k, v) for k, v in module.params.items() if v is not None)
    args['_ansible_check_mode'] = module.check_mode
    args['_ansible_diff'] = module._diff
    fd, path = tempfile.mkstemp(prefix='gpu_setup-', suffix='.json', dir=module.tmpdir)
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(args, f)
        # Named gpu_setup, as the binary's module mode wants to be run.
        rc, out, err = module.run_command(['gpu_setup', path], executable=binary)
    finally:
        os.unlink(path)
    try:
        result = json.loads(out)
    except ValueError:
        module.fail_json(msg='gpu-setup returned no JSON (exit %d): %s' % (rc, err.strip() or out.strip()))
    if not isinstance(result, dict):
        module.fail_json(msg='gpu-setup returned %r, not a JSON object' % (result,))
    if result.pop('failed', False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
