# Mirrors CI: `.ci/run` installs what the tests need, then runs `make test`.
CARGO ?= cargo

.PHONY: all build test e2e lint fmt fmt-check clippy doc man

all: build

build:
	$(CARGO) build --release -p gpu-setup

## test: everything CI runs: format and lint gates, then every test.
test: lint
	$(CARGO) test --workspace --all-targets

## e2e: only the end-to-end cases with real Podman (root; see docs/testing.md).
e2e:
	GPU_SETUP_REQUIRE_E2E=1 $(CARGO) test -p gpu-setup --test it e2e::

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
