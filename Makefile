# Mirrors CI: `.ci/run` installs what the tests need, then runs `make test`.
CARGO ?= cargo

.PHONY: all build ansible-module bench test test-portable dist dist-tools e2e fuzz fuzz-build lint fmt fmt-check clippy doc man

all: build

build:
	$(CARGO) build --release -p gpu-setup

## ansible-module: the portable binary (glibc >= 2.17, from make dist) as
## the Ansible module library/gpu_setup, with its sidecar docs
## library/gpu_setup.yml for ansible-doc (examples/ansible,
## docs/provisioning.md).
ansible-module: dist
	mkdir -p library
	install -m 0755 dist/gpu-setup library/gpu_setup
	install -m 0644 ansible/collection/plugins/modules/gpu_setup.yml library/gpu_setup.yml

## dist-tools: cargo-zigbuild and zig (ziglang), and ansible-core (for the
## collection), from PyPI, into .venv.
dist-tools:
	[ -x .venv/bin/python3 ] || python3 -m venv .venv
	.venv/bin/pip install --quiet cargo-zigbuild ziglang ansible-core

## dist: the portable binaries (x86_64 and aarch64; the aarch64 one is
## built as root in a Debian chroot, packaging/aarch64.sh), a tarball, a
## .deb and an .rpm of each, the Ansible collection and SHA256SUMS in dist/
## (docs/install.md). GPU_SETUP_DIST_ARCHES=x86_64 builds only the first.
dist:
	bash packaging/dist.sh

## bench: measure against the floor and the alternatives; writes
## docs/benchmarks.md (needs hyperfine, strace and time from Debian).
bench: build
	python3 bench/bench.py

## test: everything CI runs: format and lint gates, then every test; then,
## when make dist has built it, the CLI suites again against the portable
## binary.
test: lint
	$(CARGO) test --workspace --all-targets
	$(MAKE) test-portable

## test-portable: the CLI suites against dist/gpu-setup, and against
## dist/aarch64/gpu-setup under qemu-user (binfmt_misc) when it is built and
## this machine runs it (skipped, saying so, otherwise; CI builds both and
## sets GPU_SETUP_REQUIRE_QEMU). The matrix cannot run the aarch64 binary:
## its chroots hold no aarch64 glibc (docs/testing.md).
PORTABLE_SUITES = plan_cli:: output:: apply_cli:: bad_input:: doctor:: cdi:: heal:: packages:: module:: corpus:: provisioning:: matrix::
QEMU_SUITES = $(filter-out matrix::,$(PORTABLE_SUITES)) e2e:: security:: rootless:: kernel:: host_facts:: one_state:: profile::
test-portable:
	@if [ -x dist/gpu-setup ]; then \
	  GPU_SETUP_TEST_BINARY=$(CURDIR)/dist/gpu-setup $(CARGO) test -p gpu-setup --test it -- $(PORTABLE_SUITES); \
	else \
	  echo "test-portable: dist/gpu-setup is not built (make dist): skipped"; \
	fi
	@if [ ! -x dist/aarch64/gpu-setup ]; then \
	  echo "test-portable: dist/aarch64/gpu-setup is not built (make dist): skipped"; \
	elif grep -qs '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64; then \
	  GPU_SETUP_TEST_BINARY=$(CURDIR)/dist/aarch64/gpu-setup $(CARGO) test -p gpu-setup --test it -- $(QEMU_SUITES); \
	elif [ -n "$$GPU_SETUP_REQUIRE_QEMU" ]; then \
	  echo "test-portable: GPU_SETUP_REQUIRE_QEMU is set, but binfmt_misc cannot run aarch64 binaries (apt-get install qemu-user-static binfmt-support libc6:arm64)" >&2; exit 1; \
	else \
	  echo "test-portable: this machine cannot run aarch64 binaries (qemu-user-static, binfmt-support, libc6:arm64): dist/aarch64/gpu-setup skipped"; \
	fi

## e2e: only the end-to-end cases with real Podman: this machine's, and
## the matrix of Debian chroots (root; see docs/testing.md). PODMAN=trixie
## (or a comma list of bullseye, bookworm, trixie, sid) runs only those.
PODMAN ?=
e2e:
	GPU_SETUP_REQUIRE_E2E=1 GPU_SETUP_PODMAN=$(PODMAN) $(CARGO) test -p gpu-setup --test it -- e2e:: matrix::

## fuzz: every cargo-fuzz target for FUZZ_SECONDS each (docs/testing.md).
## Needs `cargo install cargo-fuzz`; RUSTC_BOOTSTRAP lets stable Rust build it.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = containers_conf nvidia_config hook_json journal
fuzz: fuzz-build
	mkdir -p target
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $$t for $(FUZZ_SECONDS) s"; \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -O $$t -- -max_total_time=$(FUZZ_SECONDS) \
	    -print_final_stats=1 > ../target/fuzz-$$t.log 2>&1 \
	    || { tail -40 ../target/fuzz-$$t.log; exit 1; }; \
	  grep -E '^(Done|stat::number_of_executed_units)' ../target/fuzz-$$t.log; \
	done

fuzz-build:
	cd fuzz && ./seed.sh && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz build -O

lint: fmt-check clippy

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## doc: API docs, and the man pages in docs/man regenerated from --help.
doc: man
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

man:
	GPU_SETUP_UPDATE_DOCS=1 $(CARGO) test -p gpu-setup --test it man_pages
