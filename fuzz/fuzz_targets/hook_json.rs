//! The hook JSON: comparison with the desired hook (through the planner)
//! and validation against oci-hooks(5), which doctor uses.
#![no_main]

use gpu_setup_fuzz::{check, host_with, settings};
use gpu_setup_plan::{hook, TargetPath};
use libfuzzer_sys::fuzz_target;

const HOOK: &str = "/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json";

fuzz_target!(|data: &[u8]| {
    check(host_with(HOOK, data), settings(None));
    if let Ok(text) = std::str::from_utf8(data) {
        let path = TargetPath::new(HOOK).expect("a valid path");
        let parsed = hook::parse(&path, text);
        let valid = hook::validate(&path, text, &|_| true);
        // A hook that validates is JSON the comparison reads too.
        if valid.is_ok() {
            assert!(parsed.is_ok(), "validated but unparseable: {text}");
        }
    }
});
