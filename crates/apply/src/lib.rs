//! gpu-setup-apply: the only crate that touches the host. For now it observes
//! files under a root directory for the planner; writing comes with
//! transactional apply.

mod observe;

pub use observe::RootFs;
