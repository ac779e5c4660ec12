//! `heal`: when there is nothing to heal towards. After the NVIDIA toolkit
//! is removed (`apt remove`, `dnf remove`), putting its files back would
//! only leave a hook and runtime entry pointing at programs that are gone
//! (Podman skips such a hook and drops such an entry, so nothing breaks,
//! but nothing works either): heal then changes nothing and says why.

use gpu_setup_plan::desired::{Presence, Strategy};
use gpu_setup_plan::{DesiredState, Observe, TargetPath};

/// Why healing makes no sense here, or `None`.
pub(crate) fn toolkit_absent(desired: &DesiredState, host: &dyn Observe) -> Option<String> {
    if desired.presence == Presence::Absent {
        return None;
    }
    let exists = |p: &TargetPath| host.real_path(p).ok().flatten().is_some();
    match desired.strategy {
        Strategy::Hook => {
            let hook = exists(&desired.hook_path);
            let runtime = !desired.manage_runtime || exists(&desired.runtime_path);
            // The package's own name for the hook binary counts too.
            let other_hook = TargetPath::new(gpu_setup_plan::well_known::MODERN_HOOK_PATH)
                .ok()
                .is_some_and(|p| exists(&p));
            (!hook && !other_hook && !runtime).then(|| {
                format!(
                    "the NVIDIA Container Toolkit is not installed (neither `{}` nor `{}` exists): nothing to heal",
                    desired.hook_path, desired.runtime_path
                )
            })
        }
        Strategy::Cdi => {
            let refresh = gpu_setup_plan::cdi::refresh_units(host).installed();
            let ctk = std::path::Path::new(desired.nvidia_ctk.as_str()).exists();
            (!refresh && !ctk).then(|| {
                format!(
                    "the NVIDIA Container Toolkit is not installed (`{}` does not exist): nothing to heal",
                    desired.nvidia_ctk
                )
            })
        }
    }
}
