# Mirrors CI: `.ci/run` installs what the tests need, then runs `make test`.
CARGO ?= cargo

.PHONY: all build test lint fmt fmt-check clippy doc man

all: build

build:
	$(CARGO) build --release -p gpu-setup

## test: everything CI runs: format and lint gates, then every test.
test: lint
	$(CARGO) test --workspace --all-targets

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
