# What ansible-test runs to put pip into each sanity test's venv, in place of
# the get-pip script it would download from ci-files.testing.ansible.com
# (not reachable from CI here): Python's own ensurepip, then the pip version
# ansible-test asks for, from PyPI. ansible/sanity.sh puts it in
# ansible-test's cache.
import ensurepip
import os
import runpy
import sys

ensurepip.bootstrap(upgrade=True)
# ensurepip turns pip's config files off for its own run: back on, so the
# machine's (its CA certificates, say) apply.
os.environ.pop("PIP_CONFIG_FILE", None)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.argv = ["pip", "install"] + args
runpy.run_module("pip", run_name="__main__", alter_sys=True)
