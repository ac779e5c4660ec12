//! Integration tests: the real `gpu-setup` binary on temporary roots, and the
//! planner on every file of the corpus. One test binary for all of them.

#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr, missing_docs)]

mod ansible;
mod apply_cli;
mod bad_input;
mod cdi;
mod corpus;
mod crash;
mod dist;
mod doctor;
mod e2e;
mod heal;
mod host_facts;
mod kernel;
mod man;
mod matrix;
mod module;
mod one_state;
mod output;
mod packages;
mod plan_cli;
mod profile;
mod provisioning;
mod rootless;
mod security;
mod transaction_props;
mod util;
