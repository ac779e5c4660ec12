//! The shell recipe of docs/provisioning.md (`examples/provision.sh`):
//! repair drift, record it as JSON, and do nothing on a configured host.

use std::fs;
use std::path::Path;
use std::process::Command as StdCommand;

use serde_json::Value;

use crate::util::*;

/// Runs the recipe on `tree`; returns (exit code, stdout, stderr).
fn provision(tree: &Tree, log_dir: &Path) -> (Option<i32>, String, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/provision.sh");
    let out = StdCommand::new("sh")
        .arg(script)
        .env("GPU_SETUP", crate::util::bin())
        .env(
            "GPU_SETUP_ARGS",
            format!("--root {} --color never", tree.root().display()),
        )
        .env("GPU_SETUP_LOG_DIR", log_dir)
        .env_remove("GPU_SETUP_LOG")
        .output()
        .unwrap();
    outcome(&out)
}

#[test]
fn the_shell_recipe_repairs_drift_records_it_and_is_quiet_when_configured() {
    let tree = Tree::stock();
    let logs = tempfile::tempdir().unwrap();
    let record = logs.path().join("gpu-setup-apply.json");

    let (code, out, err) = provision(&tree, logs.path());
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("gpu-setup: applied; record in "), "{out}");
    let json: Value = serde_json::from_str(&fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(
        (json["changed"].clone(), json["transaction"].clone()),
        (Value::Bool(true), 1.into())
    );
    assert_eq!(json["files"].as_array().unwrap().len(), 3);

    // Configured: nothing written, not even the record.
    fs::remove_file(&record).unwrap();
    let configured = tree.snapshot();
    let (code, out, err) = provision(&tree, logs.path());
    assert_eq!(code, Some(0));
    // Quiet when all is well: cron mails nothing.
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
    assert!(!record.exists());
    assert_same(&tree.snapshot(), &configured);

    // A package upgrade reverts config.toml: the next run repairs only it.
    tree.write(NV_CONFIG, fixture(UBUNTU_NV));
    let (code, out, _) = provision(&tree, logs.path());
    assert_eq!(code, Some(0));
    assert!(out.starts_with("gpu-setup: applied"), "{out}");
    let json: Value = serde_json::from_str(&fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(json["transaction"], 2);
    assert_eq!(json["files"][0]["path"], NV_CONFIG);
    assert_eq!(json["files"].as_array().unwrap().len(), 1);
}

#[test]
fn the_shell_recipe_fails_cleanly_on_a_broken_file() {
    let tree = Tree::stock();
    tree.write(NV_CONFIG, "[nvidia-container-cli\n");
    let logs = tempfile::tempdir().unwrap();
    let before = tree.snapshot();
    let (code, out, err) = provision(&tree, logs.path());
    assert_eq!(code, Some(1), "{out}");
    assert!(
        err.contains("error: `/etc/nvidia-container-runtime/config.toml` line 1, column"),
        "{err}"
    );
    assert!(err.ends_with("gpu-setup: plan failed\n"), "{err}");
    assert_same(&tree.snapshot(), &before);
    assert!(!logs.path().join("gpu-setup-apply.json").exists());
}
