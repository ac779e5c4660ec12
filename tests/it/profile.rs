//! One desired state per host: the host's profile (/etc/gpu-setup.toml
//! under --root) is read by plan, apply, heal, doctor and the module; flags
//! and module arguments overlay it; --no-profile and --profile FILE choose
//! otherwise; a profile another user could change is refused.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::{json, Value};

use crate::util::*;

const PROFILE: &str = "/etc/gpu-setup.toml";

fn plan_json(tree: &Tree, extra: &[&str]) -> Value {
    let mut cmd = tree.cmd(&["plan", "--format", "json"]);
    cmd.args(extra);
    serde_json::from_str(&ok_stdout(&mut cmd)).unwrap()
}

/// The planned config.toml's `no-cgroups` line, or "unchanged" (the
/// stock `#no-cgroups = false` already means false).
fn no_cgroups_line(v: &Value) -> String {
    let Some(nv) = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == NV_CONFIG)
    else {
        return "unchanged".to_owned();
    };
    nv["diff"]
        .as_str()
        .unwrap()
        .lines()
        .find(|l| l.starts_with("+no-cgroups"))
        .unwrap()
        .to_owned()
}

#[test]
fn every_command_reads_the_hosts_profile_and_flags_win() {
    let tree = Tree::stock();
    tree.write(PROFILE, "no_cgroups = false\n");
    // The stock `#no-cgroups = false` already means false: no change.
    assert_eq!(no_cgroups_line(&plan_json(&tree, &[])), "unchanged");
    // A flag overlays it; --no-profile ignores it.
    assert_eq!(
        no_cgroups_line(&plan_json(&tree, &["--no-cgroups", "true"])),
        "+no-cgroups = true"
    );
    assert_eq!(
        no_cgroups_line(&plan_json(&tree, &["--no-profile"])),
        "+no-cgroups = true"
    );
    // apply, then every command agrees the host is as desired.
    ok_stdout(&mut tree.cmd(&["apply"]));
    let out = tree.cmd(&["plan", "--detailed-exitcode"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let heal = tree.cmd(&["heal", "--mode", "report"]).output().unwrap();
    assert_eq!(
        heal.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&heal.stdout)
    );
    let doctor = tree.cmd(&["doctor", "--format", "json"]).output().unwrap();
    let d: Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let state = d["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "desired-state")
        .unwrap();
    assert_eq!(state["status"], "ok", "{state:#}");
    // And the module, with no arguments of its own.
    let (_, v) = crate::module::module(&tree, json!({"_ansible_check_mode": true}));
    assert_eq!(v["changed"], false, "{v}");
    // A module argument overlays the profile, as a flag does.
    let (_, v) = crate::module::module(
        &tree,
        json!({"_ansible_check_mode": true, "no_cgroups": true}),
    );
    assert_eq!(v["changed"], true, "{v}");
}

#[test]
fn a_hosts_profile_another_user_could_change_is_refused() {
    let tree = Tree::stock();
    tree.write(PROFILE, "no_cgroups = false\n");
    fs::set_permissions(tree.real(PROFILE), fs::Permissions::from_mode(0o666)).unwrap();
    let before = tree.snapshot();
    for cmd in ["plan", "apply"] {
        let err = fails(&mut tree.cmd(&[cmd]));
        assert_eq!(
            err,
            "error: refusing the host's profile `/etc/gpu-setup.toml`: `/etc/gpu-setup.toml` is writable by group or others (mode 0666), so another user could change what root does\nhint: make it root's and not writable by others (chmod 0644), or pass --no-profile\n"
        );
    }
    assert_same(&tree.snapshot(), &before);
    // --no-profile plans without it.
    ok_stdout(&mut tree.cmd(&["plan", "--no-profile"]));
}

#[test]
fn a_broken_hosts_profile_names_its_line_and_column() {
    let tree = Tree::stock();
    tree.write(PROFILE, "no_cgroups = false\nstrategy = \"gpu\"\n");
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["apply"]));
    assert!(
        err.starts_with("error: invalid profile\n  caused by: `/etc/gpu-setup.toml` line 2, column 12: unknown variant `gpu`"),
        "{err}"
    );
    assert_same(&tree.snapshot(), &before);
}
