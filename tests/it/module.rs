//! The Ansible module mode run directly, as Ansible runs it: the binary with
//! one argument, a JSON file of arguments.

use std::fs;

use serde_json::{json, Value};

use crate::util::*;

/// Runs `gpu-setup ARGS.json`; returns (exit code, the one JSON object).
pub fn module(tree: &Tree, args: Value) -> (Option<i32>, Value) {
    // Outside the tree: the tree's snapshots must show only gpu-setup's work.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("args.json");
    let mut args = args;
    args["root"] = json!(tree.root());
    fs::write(&file, args.to_string()).unwrap();
    // Ansible runs a binary module by its module name.
    let module = dir.path().join("gpu_setup");
    std::os::unix::fs::symlink(crate::util::bin(), &module).unwrap();
    let out = assert_cmd::Command::new(&module)
        .arg(&file)
        .env_remove("GPU_SETUP_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.lines().count(),
        1,
        "one JSON object on one line: {stdout}"
    );
    (out.status.code(), serde_json::from_str(&stdout).unwrap())
}

#[test]
fn check_mode_with_diff_writes_nothing_and_shows_every_file() {
    let tree = Tree::stock();
    let before = tree.targets();
    let (code, v) = module(
        &tree,
        json!({"_ansible_check_mode": true, "_ansible_diff": true}),
    );
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["changed"], true);
    assert_eq!(v["transaction"], Value::Null);
    assert_eq!(v["msg"], "3 file(s) would change (check mode)");
    let diff = v["diff"].as_array().unwrap();
    let headers: Vec<&str> = diff
        .iter()
        .map(|d| d["before_header"].as_str().unwrap())
        .collect();
    assert_eq!(headers, [DROPIN, NV_CONFIG, HOOK]);
    assert_eq!(diff[1]["before"], fixture(UBUNTU_NV));
    assert!(diff[1]["after"]
        .as_str()
        .unwrap()
        .contains("\nno-cgroups = true\n"));
    assert_eq!(diff[0]["before"], "");
    assert_same(&tree.targets(), &before);
    assert!(!tree.real(STATE_DIR).exists());
}

#[test]
fn apply_then_nothing_to_do() {
    let tree = Tree::stock();
    let (code, v) = module(&tree, json!({"no_cgroups": "yes", "_ansible_verbosity": 0}));
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["changed"], true);
    assert_eq!(v["transaction"], 1);
    assert_eq!(
        v["msg"],
        "transaction 1 changed 3 file(s); undo with `gpu-setup rollback 1`"
    );
    assert!(v.get("diff").is_none());
    assert!(tree.real(HOOK).is_file());
    let (_, v) = module(&tree, json!({"no_cgroups": true}));
    assert_eq!(v["changed"], false);
    assert_eq!(v["msg"], "the host is configured: nothing to change");
}

#[test]
fn errors_are_failed_results_naming_the_file_and_nothing_changes() {
    let tree = Tree::stock();
    tree.write(NV_CONFIG, "[nvidia-container-cli\n");
    let before = tree.targets();
    let (code, v) = module(&tree, json!({}));
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["failed"], true);
    assert_eq!(v["changed"], false);
    let msg = v["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("`/etc/nvidia-container-runtime/config.toml` line 1, column 22:"),
        "{msg}"
    );
    assert!(msg.contains("(hint: fix the TOML syntax"), "{msg}");
    assert_same(&tree.targets(), &before);

    let (_, v) = module(&tree, json!({"runtime_name": 5}));
    assert_eq!(v["failed"], true);
    assert_eq!(v["msg"], "argument runtime_name must be a string, not 5");

    let (_, v) = module(&tree, json!({"state": "gone"}));
    assert_eq!(v["failed"], true);
    assert_eq!(v["msg"], "state must be present or absent, not \"gone\"");

    // The diff is planned in process, with the same state dir rules.
    tree.write(NV_CONFIG, fixture(UBUNTU_NV));
    let before = tree.snapshot();
    let (_, v) = module(
        &tree,
        json!({"state_dir": "var/lib/x", "_ansible_diff": true}),
    );
    assert_eq!(v["failed"], true);
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .starts_with("invalid state_dir: "),
        "{v}"
    );
    assert_same(&tree.snapshot(), &before);
}

#[test]
fn a_file_that_is_not_a_json_object_is_an_ordinary_argument() {
    let tree = Tree::stock();
    tree.write("/notes.txt", "plan\n");
    let out = crate::util::gpu_setup()
        .arg(tree.real("/notes.txt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error: unrecognized subcommand"), "{err}");
}

#[test]
fn the_cdi_strategy_through_the_module_diffs_and_applies_the_spec() {
    let tree = Tree::stock();
    let ctk = crate::cdi::Ctk::new();
    let ctk_path = ctk.path().to_str().unwrap().to_owned();
    let before = tree.targets();
    let (code, v) = module(
        &tree,
        json!({"strategy": "cdi", "nvidia_ctk": ctk_path, "_ansible_check_mode": true, "_ansible_diff": true}),
    );
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["msg"], "1 file(s) would change (check mode)");
    let diff = &v["diff"][0];
    assert_eq!(diff["before_header"], crate::cdi::SPEC);
    assert!(diff["after"]
        .as_str()
        .unwrap()
        .contains("kind: nvidia.com/gpu\n"));
    assert_same(&tree.targets(), &before);
    let (_, v) = module(&tree, json!({"strategy": "cdi", "nvidia_ctk": ctk_path}));
    assert_eq!(v["changed"], true, "{v}");
    assert!(tree.real(crate::cdi::SPEC).is_file());
    let (_, v) = module(&tree, json!({"strategy": "cdi", "nvidia_ctk": ctk_path}));
    assert_eq!(v["changed"], false, "{v}");
    // nvidia-ctk failing: the module fails with its message and hint.
    ctk.set_mode("fail");
    let (code, v) = module(
        &tree,
        json!({"strategy": "cdi", "nvidia_ctk": ctk_path, "_ansible_diff": true}),
    );
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["failed"], true);
    let msg = v["msg"].as_str().unwrap();
    assert!(
        msg.contains("Driver Not Loaded") && msg.contains("(hint: --root is not `/`"),
        "{msg}"
    );
    let (_, v) = module(&tree, json!({"strategy": "gpu"}));
    assert_eq!(v["msg"], "strategy must be hook or cdi, not \"gpu\"");
}
