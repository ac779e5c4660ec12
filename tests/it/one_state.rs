//! Exact undo and no fight with the package manager: `--state absent`
//! reverts what gpu-setup did and leaves what it never touched; a package's
//! hook file survives the CDI strategy; config.toml is not created before
//! the toolkit is installed; a file gpu-setup created at a path it no
//! longer manages is removed (the journal's memory).

use serde_json::Value;

use crate::util::*;

const PACKAGE_HOOK: &str = r#"{
    "version": "1.0.0",
    "hook": {
        "path": "/usr/bin/nvidia-container-runtime-hook",
        "args": ["nvidia-container-runtime-hook", "prestart"]
    },
    "when": {"always": true, "commands": [".*"]},
    "stages": ["prestart"]
}
"#;

/// A stock tree where dpkg's package nvidia-container-toolkit owns the
/// hook file (as NVIDIA's v1.10-v1.13 packages shipped it).
fn with_package_hook() -> Tree {
    let tree = Tree::stock();
    tree.write(HOOK, PACKAGE_HOOK);
    tree.write(
        "/var/lib/dpkg/info/nvidia-container-toolkit.list",
        format!("/usr/share/containers/oci/hooks.d\n{HOOK}\n"),
    );
    tree
}

fn json(cmd: &mut assert_cmd::Command) -> Value {
    serde_json::from_str(&ok_stdout(cmd)).unwrap()
}

#[test]
fn state_absent_puts_back_exactly_what_was_there() {
    // The stock config.toml keeps its `#no-cgroups = false` line, the
    // drop-in gpu-setup created goes, every byte as before apply.
    let tree = Tree::stock();
    let start = tree.targets();
    ok_stdout(&mut tree.cmd(&["apply"]));
    let v = json(&mut tree.cmd(&["apply", "--state", "absent", "--format", "json"]));
    assert_eq!(v["changed"], true);
    assert_same(&tree.targets(), &start);
    assert!(std::fs::read_to_string(tree.real(NV_CONFIG))
        .unwrap()
        .contains("#no-cgroups = false"),);
    // Again: nothing to do.
    let v = json(&mut tree.cmd(&["apply", "--state", "absent", "--format", "json"]));
    assert_eq!(v["changed"], false, "{v:#}");
}

#[test]
fn state_absent_leaves_a_package_hook_it_never_wrote() {
    let tree = with_package_hook();
    let start = tree.targets();
    let v = json(&mut tree.cmd(&["plan", "--state", "absent", "--format", "json"]));
    assert!(!changed_paths(&v).contains(&HOOK.to_owned()), "{v:#}");
    ok_stdout(&mut tree.cmd(&["apply", "--state", "absent"]));
    assert_eq!(
        std::fs::read_to_string(tree.real(HOOK)).unwrap(),
        PACKAGE_HOOK
    );
    // After gpu-setup replaced it, absent gives the package's bytes back.
    ok_stdout(&mut tree.cmd(&["apply"]));
    assert_ne!(
        std::fs::read_to_string(tree.real(HOOK)).unwrap(),
        PACKAGE_HOOK
    );
    ok_stdout(&mut tree.cmd(&["apply", "--state", "absent"]));
    assert_same(&tree.targets(), &start);
}

#[test]
fn the_cdi_strategy_leaves_a_package_hook_and_says_so() {
    let tree = with_package_hook();
    let ctk = crate::cdi::Ctk::new();
    let mut cmd = tree.cmd(&["apply", "--strategy", "cdi", "--strict"]);
    cmd.args(ctk.flag());
    let out = cmd.output().unwrap();
    // Applied (the spec), the package's hook left, and --strict fails.
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("warning[nvidia-hook-remains]: `{HOOK}` belongs to package nvidia-container-toolkit: gpu-setup leaves it (its next upgrade would put it back)")),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(tree.real(HOOK)).unwrap(),
        PACKAGE_HOOK
    );
    assert!(tree.real("/etc/cdi/nvidia.yaml").exists());
}

#[test]
fn config_toml_is_not_created_before_the_toolkit_is_installed() {
    // cloud-init or Ansible in the wrong order: gpu-setup first.
    let tree = Tree::new();
    tree.write(USR_CONF, fixture(DEBIAN_CONF));
    let out = tree.cmd(&["apply"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(!tree.real(NV_CONFIG).exists());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "warning[toolkit-config-not-created]: `{NV_CONFIG}` does not exist and the NVIDIA Container Toolkit is not installed"
        )),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The toolkit's package then installs its own config.toml; the next
    // apply (or heal) sets no-cgroups in it.
    tree.write(NV_CONFIG, fixture(UBUNTU_NV));
    tree.exe("/usr/bin/nvidia-container-runtime");
    let v = json(&mut tree.cmd(&["apply", "--format", "json"]));
    assert_eq!(changed_paths(&v), [NV_CONFIG]);
}

#[test]
fn a_file_gpu_setup_created_at_a_path_it_no_longer_manages_is_removed() {
    let tree = Tree::stock();
    let old = "/etc/containers/containers.conf.d/50-gpu.conf";
    ok_stdout(&mut tree.cmd(&["apply", "--containers-conf", old]));
    assert!(tree.real(old).exists());
    // Back to the default drop-in: the old one is removed in the same
    // transaction (two drop-ins would both define the runtime).
    let v = json(&mut tree.cmd(&["plan", "--format", "json"]));
    let files = v["files"].as_array().unwrap();
    let of = |p: &str| files.iter().find(|f| f["path"] == p).unwrap()["action"].clone();
    assert_eq!(of(DROPIN), "create");
    assert_eq!(of(old), "delete");
    ok_stdout(&mut tree.cmd(&["apply"]));
    assert!(!tree.real(old).exists() && tree.real(DROPIN).exists());
    // A file gpu-setup did not create there is left alone.
    let theirs = "/etc/containers/containers.conf.d/40-site.conf";
    tree.write(theirs, "[engine]\n");
    let v = json(&mut tree.cmd(&["plan", "--format", "json"]));
    assert!(!changed_paths(&v).contains(&theirs.to_owned()), "{v:#}");
}

#[test]
fn history_keep_prunes_only_what_no_rollback_or_undo_needs() {
    let tree = Tree::stock();
    let start = tree.targets();
    for cmd in ["apply", "rollback", "apply", "rollback", "apply"] {
        ok_stdout(&mut tree.cmd(&[cmd]));
    }
    let out = tree.cmd(&["history", "--keep", "1"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "note: pruned 4 transactions from the journal: 1, 2, 3, 4\n"
    );
    let v = json(&mut tree.cmd(&["history", "--format", "json"]));
    let ids: Vec<u64> = v["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [5]);
    // An applied apply is never pruned, however many are asked to go.
    let out = tree.cmd(&["history", "--keep", "0"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "note: nothing to prune\n"
    );
    // The exact undo still has what it needs.
    ok_stdout(&mut tree.cmd(&["apply", "--state", "absent"]));
    assert_same(&tree.targets(), &start);
}

#[test]
fn the_profiles_history_keep_prunes_after_each_transaction() {
    let tree = Tree::stock();
    tree.write("/etc/gpu-setup.toml", "history_keep = 2\n");
    for cmd in ["apply", "rollback", "apply", "rollback", "apply"] {
        ok_stdout(&mut tree.cmd(&[cmd]));
    }
    let v = json(&mut tree.cmd(&["history", "--format", "json"]));
    let ids: Vec<u64> = v["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    // Pruned at the last apply: 1 and 2 (a rolled-back apply and its
    // rollback, both beyond the newest 2); 3 and 4 were within it then.
    assert_eq!(ids, [5, 4, 3]);
}

#[test]
fn json_is_one_line_when_not_on_a_terminal() {
    // The heal service logs what it prints: one journald record per run.
    let tree = Tree::stock();
    let out = ok_stdout(&mut tree.cmd(&["plan", "--format", "json"]));
    assert_eq!(out.lines().count(), 1, "{out}");
    let out = ok_stdout(&mut tree.cmd(&["heal", "--format", "json"]));
    assert_eq!(out.lines().count(), 1, "{out}");
}
