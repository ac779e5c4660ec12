//! The config.toml editor: the fuzzer's bytes as
//! /etc/nvidia-container-runtime/config.toml, with `no-cgroups` and a debug
//! log path to set and remove.
#![no_main]

use gpu_setup_fuzz::{check, host_with, settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = "/etc/nvidia-container-runtime/config.toml";
    check(host_with(path, data), settings(None));
});
