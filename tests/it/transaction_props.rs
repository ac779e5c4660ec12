//! Properties of plan + transaction on generated hosts (corpus files, modes,
//! existing hooks, desired states): apply then plan is empty; apply then
//! rollback restores every byte and mode.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use gpu_setup_apply::fs::OsFs;
use gpu_setup_apply::journal::{Actor, StateDir};
use gpu_setup_apply::transaction::{self, Ctx};
use gpu_setup_apply::RootFs;
use gpu_setup_plan::{plan, DesiredState, Presence, Settings, TargetPath};
use proptest::prelude::*;

use crate::util::*;

#[derive(Debug, Clone)]
struct Host {
    conf: Option<usize>,
    in_place: bool,
    nv: Option<usize>,
    nv_mode: u32,
    hook: Option<usize>,
    absent: bool,
    no_cgroups: bool,
}

fn host() -> impl Strategy<Value = Host> {
    (
        proptest::option::of(0..fixture_names("containers.conf").len()),
        any::<bool>(),
        proptest::option::of(0..fixture_names("nvidia-config.toml").len()),
        prop_oneof![Just(0o644), Just(0o600), Just(0o640)],
        proptest::option::of(0..fixture_names("hooks").len()),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(conf, in_place, nv, nv_mode, hook, absent, no_cgroups)| Host {
                conf,
                in_place,
                nv,
                nv_mode,
                hook,
                absent,
                no_cgroups,
            },
        )
}

fn build(h: &Host) -> (Tree, DesiredState) {
    let tree = Tree::new();
    tree.exe("/usr/bin/nvidia-container-runtime");
    tree.exe("/usr/bin/nvidia-container-toolkit");
    if let Some(i) = h.conf {
        let name = &fixture_names("containers.conf")[i];
        tree.write(ETC_CONF, fixture(&format!("containers.conf/{name}")));
    }
    if let Some(i) = h.nv {
        let name = &fixture_names("nvidia-config.toml")[i];
        tree.write(NV_CONFIG, fixture(&format!("nvidia-config.toml/{name}")));
        fs::set_permissions(tree.real(NV_CONFIG), fs::Permissions::from_mode(h.nv_mode)).unwrap();
    }
    if let Some(i) = h.hook {
        let name = &fixture_names("hooks")[i];
        tree.write(HOOK, fixture(&format!("hooks/{name}")));
    }
    let settings = Settings {
        containers_conf: h.in_place.then(|| ETC_CONF.to_owned()),
        no_cgroups: Some(h.no_cgroups),
        state: Some(if h.absent {
            Presence::Absent
        } else {
            Presence::Present
        }),
        ..Settings::default()
    };
    (tree, DesiredState::from_settings(&settings).unwrap())
}

fn actor() -> Actor {
    Actor {
        user: "prop".to_owned(),
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
        sudo_user: None,
        command: vec!["gpu-setup".to_owned()],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn apply_then_plan_is_empty_and_rollback_restores_everything(h in host()) {
        let (tree, desired) = build(&h);
        let start = tree.targets();
        let host = RootFs::open(tree.root()).unwrap();
        let planned = plan(&desired, &host).unwrap();
        let state = StateDir::new(host.opened(), &TargetPath::new(STATE_DIR).unwrap());
        let actor = actor();
        let ctx = Ctx { fs: &OsFs, root: host.opened(), state: &state, actor: &actor };
        if planned.is_empty() {
            return Ok(());
        }
        let applied = transaction::apply_plan(&ctx, &planned, None).unwrap();
        let again = plan(&desired, &host).unwrap();
        prop_assert!(again.is_empty(), "{:?}", again.changes.iter().map(|c| c.path.as_str()).collect::<Vec<_>>());

        let target = transaction::rollback_target(&state, None).unwrap();
        prop_assert_eq!(target.id, applied.id);
        transaction::rollback(&ctx, &target, false).unwrap();
        let now = tree.targets();
        let differ: Vec<_> = now.keys().chain(start.keys()).filter(|p| now.get(*p) != start.get(*p)).collect();
        prop_assert!(differ.is_empty(), "differ after rollback: {:?}", differ);
        prop_assert_eq!(plan(&desired, &host).unwrap(), planned);
    }
}
