//! The containers.conf editor: the fuzzer's bytes as the main containers.conf
//! edited in place, or as gpu-setup's own drop-in (first byte chooses).
#![no_main]

use gpu_setup_fuzz::{check, host_with, settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((mode, bytes)) = data.split_first() else { return };
    if mode % 2 == 0 {
        let path = "/etc/containers/containers.conf";
        check(host_with(path, bytes), settings(Some(path)));
    } else {
        let path = "/etc/containers/containers.conf.d/99-nvidia.conf";
        check(host_with(path, bytes), settings(None));
    }
});
