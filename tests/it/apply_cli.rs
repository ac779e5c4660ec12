//! `gpu-setup apply`, `rollback` and `history` through the real binary on
//! temporary roots.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use serde_json::Value;

use crate::util::*;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// inode and mtime of each managed file.
fn stamps(tree: &Tree) -> Vec<(u64, i64, i64)> {
    [DROPIN, NV_CONFIG, HOOK]
        .iter()
        .map(|p| {
            let m = fs::metadata(tree.real(p)).unwrap();
            (m.ino(), m.mtime(), m.mtime_nsec())
        })
        .collect()
}

#[test]
fn apply_configures_the_host_and_a_second_apply_writes_nothing() {
    let tree = Tree::stock();
    let out = ok_stdout(&mut tree.cmd(&["apply"]));
    assert!(
        out.contains("create /etc/containers/containers.conf.d/99-nvidia.conf"),
        "{out}"
    );
    assert!(out.contains("+no-cgroups = true"), "{out}");
    assert!(
        out.ends_with(
            "Plan: 2 to create, 1 to modify, 0 to delete.\n\
             Applied transaction 1: 2 created, 1 modified. Undo with `gpu-setup rollback 1`.\n"
        ),
        "{out}"
    );
    tree.cmd(&["plan", "--detailed-exitcode"]).assert().code(0);

    let everything = tree.snapshot();
    let before = stamps(&tree);
    let out = ok_stdout(&mut tree.cmd(&["apply"]));
    assert!(
        out.ends_with("The host is configured: nothing to change.\n"),
        "{out}"
    );
    assert_eq!(stamps(&tree), before, "no managed file was rewritten");
    assert_eq!(
        tree.snapshot(),
        everything,
        "no temp file, backup or journal entry"
    );

    let out = json(&ok_stdout(&mut tree.cmd(&["apply", "--format", "json"])));
    assert_eq!(out["changed"], false);
    assert_eq!(out["transaction"], Value::Null);
    assert_eq!(out["files"], serde_json::json!([]));
    assert_eq!(stamps(&tree), before);
    assert_eq!(tree.snapshot(), everything);
}

#[test]
fn apply_json_reports_the_transaction_and_the_hashes_of_what_it_wrote() {
    let tree = Tree::stock();
    let original = fs::read(tree.real(NV_CONFIG)).unwrap();
    let out = json(&ok_stdout(&mut tree.cmd(&["apply", "--format", "json"])));
    assert_eq!(out["changed"], true);
    assert_eq!(out["transaction"], 1);
    assert_eq!(out["recovered"], serde_json::json!([]));
    let files = out["files"].as_array().unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, [DROPIN, NV_CONFIG, HOOK]);
    for f in files {
        let path = f["path"].as_str().unwrap();
        let now = fs::read(tree.real(path)).unwrap();
        assert_eq!(f["after_sha256"], gpu_setup_plan::sha256(&now), "{path}");
        let keys: Vec<&String> = f.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["path", "action", "before_sha256", "after_sha256"]);
    }
    assert_eq!(files[0]["action"], "create");
    assert_eq!(files[0]["before_sha256"], Value::Null);
    assert_eq!(files[1]["action"], "modify");
    assert_eq!(files[1]["before_sha256"], gpu_setup_plan::sha256(&original));
    let codes: Vec<&str> = out["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["version-unknown", "no-cgroups-rootful"]);
}

#[test]
fn rollback_restores_every_byte_and_mode_and_is_recorded() {
    let tree = Tree::stock();
    fs::set_permissions(
        tree.real(NV_CONFIG),
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    let start = tree.targets();
    ok_stdout(&mut tree.cmd(&["apply"]));
    assert_ne!(tree.targets(), start);

    let out = ok_stdout(&mut tree.cmd(&["rollback"]));
    assert!(
        out.contains("delete /usr/share/containers/oci/hooks.d/oci-nvidia-hook.json"),
        "{out}"
    );
    assert!(
        out.contains("-no-cgroups = true\n+#no-cgroups = false"),
        "{out}"
    );
    assert!(
        out.ends_with("Rolled back transaction 1 as transaction 2: 1 modified, 2 deleted.\n"),
        "{out}"
    );
    assert_eq!(
        tree.targets(),
        start,
        "bytes, modes, and the created directory removed"
    );
    assert!(!tree.real("/etc/containers/containers.conf.d").exists());

    let history = ok_stdout(&mut tree.cmd(&["history"]));
    let lines: Vec<&str> = history.lines().collect();
    assert!(lines[0].starts_with("  ID  TIME"), "{history}");
    assert!(lines[1].starts_with("   2  "), "{history}");
    assert!(
        lines[1].contains("rollback of 1") && lines[1].ends_with("applied"),
        "{history}"
    );
    assert!(history.contains("        delete  /etc/containers/containers.conf.d/99-nvidia.conf"));
    let applied = lines.iter().find(|l| l.starts_with("   1  ")).unwrap();
    assert!(
        applied.contains("apply") && applied.ends_with("rolled back"),
        "{history}"
    );

    let err = fails(&mut tree.cmd(&["rollback"]));
    assert_eq!(
        err,
        "error: nothing to roll back: no applied transaction in `/var/lib/gpu-setup`\n\
         hint: `gpu-setup history` lists the transactions\n"
    );
    let err = fails(&mut tree.cmd(&["rollback", "1"]));
    assert!(
        err.starts_with(
            "error: transaction 1 is rolled back: only an applied transaction can be rolled back\n"
        ),
        "{err}"
    );
    let err = fails(&mut tree.cmd(&["rollback", "2"]));
    assert!(
        err.starts_with("error: transaction 2 is itself a rollback"),
        "{err}"
    );
    let err = fails(&mut tree.cmd(&["rollback", "7"]));
    assert!(
        err.starts_with("error: no transaction 7 in `/var/lib/gpu-setup`\n"),
        "{err}"
    );
    assert_eq!(tree.targets(), start);
}

#[test]
fn rollback_undoes_the_last_applied_transaction_first() {
    let tree = Tree::stock();
    let start = tree.targets();
    ok_stdout(&mut tree.cmd(&["apply"]));
    let configured = tree.targets();
    ok_stdout(&mut tree.cmd(&["apply", "--no-cgroups", "false"]));
    let out = json(&ok_stdout(&mut tree.cmd(&["rollback", "--format", "json"])));
    assert_eq!(out["changed"], true);
    assert_eq!(out["transaction"], 3);
    assert_eq!(out["rolled_back"], 2);
    assert_eq!(out["files"][0]["path"], NV_CONFIG);
    assert_eq!(tree.targets(), configured);
    ok_stdout(&mut tree.cmd(&["rollback"]));
    assert_eq!(tree.targets(), start);

    let h = json(&ok_stdout(&mut tree.cmd(&["history", "--format", "json"])));
    let txs = h["transactions"].as_array().unwrap();
    let summary: Vec<(u64, &str, &str)> = txs
        .iter()
        .map(|t| {
            (
                t["id"].as_u64().unwrap(),
                t["kind"].as_str().unwrap(),
                t["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (4, "rollback", "applied"),
            (3, "rollback", "applied"),
            (2, "apply", "rolled-back"),
            (1, "apply", "rolled-back"),
        ]
    );
    assert_eq!(txs[0]["rolls_back"], 1);
    assert_eq!(txs[3]["command"][5], "apply");
    assert!(txs[0]["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn rollback_refuses_a_file_changed_since_and_shows_the_drift() {
    let tree = Tree::stock();
    let start = tree.targets();
    ok_stdout(&mut tree.cmd(&["apply"]));
    let edited = fs::read_to_string(tree.real(NV_CONFIG))
        .unwrap()
        .replace("load-kmods = true", "load-kmods = false");
    tree.write(NV_CONFIG, &edited);
    let drifted = tree.snapshot();

    let err = fails(&mut tree.cmd(&["rollback"]));
    assert!(
        err.starts_with(&format!(
            "error: cannot roll back transaction 1: 1 file changed since it was applied: `{NV_CONFIG}`\n"
        )),
        "{err}"
    );
    assert!(
        err.contains("-load-kmods = true\n+load-kmods = false\n"),
        "{err}"
    );
    assert!(
        err.contains(&format!("--- {NV_CONFIG} (written by transaction 1)")),
        "{err}"
    );
    assert!(
        err.contains("hint: review the changes above; `--force` rolls back anyway"),
        "{err}"
    );
    assert_eq!(tree.snapshot(), drifted);

    let out = json(&ok_stdout(
        &mut tree.cmd(&["rollback", "--force", "--format", "json"]),
    ));
    assert_eq!(out["rolled_back"], 1);
    assert_eq!(tree.targets(), start);
}

#[test]
fn history_of_a_fresh_host_is_empty_and_writes_nothing() {
    let tree = Tree::stock();
    let before = tree.snapshot();
    assert_eq!(
        ok_stdout(&mut tree.cmd(&["history"])),
        "No transactions yet.\n"
    );
    let out = json(&ok_stdout(&mut tree.cmd(&["history", "--format", "json"])));
    assert_eq!(out, serde_json::json!({"transactions": []}));
    assert_eq!(tree.snapshot(), before);
}

#[test]
fn a_saved_plan_is_applied_exactly() {
    let tree = Tree::stock();
    let plan_file = tree.real("/plan.json");
    let plan_arg = plan_file.to_str().unwrap();
    let shown = ok_stdout(&mut tree.cmd(&["plan", "--no-cgroups", "true", "--out", plan_arg]));
    let saved = json(&fs::read_to_string(&plan_file).unwrap());
    assert_eq!(saved["format"], "gpu-setup-plan/2");
    assert_eq!(saved["settings"]["no_cgroups"], true);
    assert_eq!(saved["changes"][1]["before"]["mode"], 0o644);

    // Applied with no settings flags: the plan file alone decides.
    let out = ok_stdout(&mut tree.cmd(&["apply", plan_arg]));
    assert!(
        out.starts_with(&shown),
        "apply shows the saved plan:\n{out}"
    );
    assert!(out.contains("Applied transaction 1"), "{out}");
    tree.cmd(&["plan", "--detailed-exitcode", "--no-cgroups", "true"])
        .assert()
        .code(0);
    // Applying it again: every file changed since, so it is stale.
    let err = fails(&mut tree.cmd(&["apply", plan_arg]));
    assert!(
        err.starts_with(&format!(
            "error: `{DROPIN}` changed since it was planned: it exists now\n"
        )),
        "{err}"
    );
}

#[test]
fn a_stale_plan_is_refused_and_nothing_changes() {
    let tree = Tree::stock();
    let plan_file = tree.real("/plan.json");
    let plan_arg = plan_file.to_str().unwrap();
    ok_stdout(&mut tree.cmd(&["plan", "--out", plan_arg]));
    tree.write(NV_CONFIG, fixture(UBUNTU_NV) + "# edited\n");
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["apply", plan_arg]));
    assert_eq!(
        err,
        format!(
            "error: `{NV_CONFIG}` changed since it was planned: its content differs\n\
             hint: run `gpu-setup plan --out FILE` again and review the new plan\n"
        )
    );
    assert_eq!(tree.snapshot(), before);

    // Same content, other mode: stale too.
    tree.write(NV_CONFIG, fixture(UBUNTU_NV));
    fs::set_permissions(
        tree.real(NV_CONFIG),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let err = fails(&mut tree.cmd(&["apply", plan_arg]));
    assert!(
        err.contains("changed since it was planned: its mode or owner differs"),
        "{err}"
    );
}

#[test]
fn bad_plan_files_are_refused_with_a_location() {
    let tree = Tree::stock();
    let plan_file = tree.real("/plan.json");
    let plan_arg = plan_file.to_str().unwrap();
    tree.write(
        "/plan.json",
        "{\n  \"format\": \"gpu-setup-plan/1\",\n  \"root\": 5\n}\n",
    );
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["apply", plan_arg]));
    assert!(
        err.starts_with(&format!(
            "error: `{plan_arg}` is not a gpu-setup plan: line 3, column 11: invalid type: integer `5`, expected a string"
        )),
        "{err}"
    );
    assert!(
        err.contains("hint: make a new plan with `gpu-setup plan --out FILE`"),
        "{err}"
    );
    assert_eq!(tree.snapshot(), before);

    let err = fails(&mut tree.cmd(&["apply", "/nonexistent/plan.json"]));
    assert!(
        err.starts_with("error: cannot use plan `/nonexistent/plan.json`\n  caused by: cannot open the directory of `/nonexistent/plan.json`\n  caused by: No such file or directory"),
        "{err}"
    );

    // A plan made for another root.
    let other = Tree::stock();
    ok_stdout(&mut other.cmd(&["plan", "--out", plan_arg]));
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["apply", plan_arg]));
    assert!(err.contains("was made for root"), "{err}");
    assert!(
        err.contains("hint: apply it with the same --root it was planned with"),
        "{err}"
    );
    assert_eq!(tree.snapshot(), before);

    // Settings flags do not mix with a plan file.
    let err = fails(&mut tree.cmd(&["apply", plan_arg, "--state", "absent"]));
    assert!(err.contains("cannot be used with"), "{err}");
    assert_eq!(tree.snapshot(), before);
}

#[test]
fn a_plan_that_cannot_be_saved_is_an_error() {
    let tree = Tree::stock();
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["plan", "--out", "/nonexistent-dir/plan.json"]));
    assert!(
        err.starts_with("error: cannot save the plan to `/nonexistent-dir/plan.json`\n  caused by: cannot open the directory of `/nonexistent-dir/plan.json`\n  caused by: No such file or directory"),
        "{err}"
    );
    assert!(
        err.contains("hint: --out takes a file path in a directory only you (or root) can write"),
        "{err}"
    );
    assert_eq!(tree.snapshot(), before);
}

#[test]
fn a_plan_from_another_gpu_setup_version_is_refused() {
    let tree = Tree::stock();
    let plan_file = tree.real("/plan.json");
    let plan_arg = plan_file.to_str().unwrap();
    ok_stdout(&mut tree.cmd(&["plan", "--out", plan_arg]));
    let text = fs::read_to_string(&plan_file)
        .unwrap()
        .replace("gpu-setup-plan/2", "gpu-setup-plan/3");
    tree.write("/plan.json", text);
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["apply", plan_arg]));
    assert!(
        err.starts_with(&format!(
            "error: `{plan_arg}` has format `gpu-setup-plan/3`; this gpu-setup reads `gpu-setup-plan/2`\n"
        )),
        "{err}"
    );
    assert_eq!(tree.snapshot(), before);
}

#[test]
fn a_waiting_apply_goes_through_once_the_lock_is_released() {
    let tree = Tree::stock();
    make_state_dir(&tree);
    let lock_file = fs::File::create(tree.real(&format!("{STATE_DIR}/lock"))).unwrap();
    let held = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let bin = crate::util::bin();
    let child = std::process::Command::new(bin)
        .arg("--root")
        .arg(tree.root())
        .args(["--format", "json", "apply", "--lock-timeout", "30"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        !tree.real(DROPIN).exists(),
        "nothing written while the lock is held"
    );
    drop(held);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        json(&String::from_utf8(out.stdout).unwrap())["transaction"],
        1
    );
}

#[test]
fn a_held_lock_makes_apply_wait_then_fail_clearly() {
    let tree = Tree::stock();
    make_state_dir(&tree);
    let lock_file = fs::File::create(tree.real(&format!("{STATE_DIR}/lock"))).unwrap();
    let held = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let before = tree.targets();
    let err = fails(&mut tree.cmd(&["apply", "--lock-timeout", "1"]));
    assert!(
        err.contains(
            "note: waiting up to 1 s for another gpu-setup to release /var/lib/gpu-setup/lock\n"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "error: another gpu-setup is changing this host: lock `/var/lib/gpu-setup/lock` still held after 1 s\n"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "hint: wait for the other run to finish, or give more time with --lock-timeout"
        ),
        "{err}"
    );
    assert_same(&tree.targets(), &before);
    drop(held);
    ok_stdout(&mut tree.cmd(&["apply", "--lock-timeout", "1"]));
}

#[test]
fn an_injected_failure_undoes_the_transaction() {
    if !test_hooks("GPU_SETUP_TEST_FAIL_AT") {
        return;
    }
    let steps = steps_of(&["apply"], &Tree::stock);
    // Fail after the first target was renamed into place, and at the last
    // target's rename.
    let renames: Vec<usize> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.starts_with("rename ") && !s.contains(STATE_DIR))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(renames.len(), 3, "{steps:#?}");
    for step in [renames[0] + 1, renames[2]] {
        let tree = Tree::stock();
        let before = tree.targets();
        let err = fails(
            tree.cmd(&["apply"])
                .env("GPU_SETUP_TEST_FAIL_AT", step.to_string()),
        );
        assert!(
            err.contains(
                "error: transaction 1 failed and was undone: every file is as it was before\n"
            ),
            "{err}"
        );
        // The error names the step's file.
        let path = steps[step].split_once(' ').unwrap().1;
        assert!(
            err.contains("  caused by: cannot ") && err.contains(&format!("`{path}`")),
            "{err}"
        );
        assert!(err.contains("caused by: injected test failure"), "{err}");
        assert_same(&tree.targets(), &before);
        assert!(tree.temp_files().is_empty(), "{:?}", tree.temp_files());
        let history = ok_stdout(&mut tree.cmd(&["history"]));
        assert!(
            history.lines().nth(1).unwrap().ends_with(" failed"),
            "{history}"
        );
        assert!(history.contains("error: cannot "), "{history}");
        // The next run goes through.
        ok_stdout(&mut tree.cmd(&["apply"]));
    }
}

#[test]
fn state_dir_errors_are_clear() {
    let tree = Tree::stock();
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["apply", "--state-dir", "relative"]));
    assert!(
        err.starts_with(
            "error: invalid --state-dir\n  caused by: `relative` is not an absolute path\n"
        ),
        "{err}"
    );
    assert!(
        err.contains("hint: --state-dir takes an absolute path, resolved under --root"),
        "{err}"
    );
    assert_eq!(tree.snapshot(), before);

    // A file where the state dir should be.
    tree.write("/var/lib/gpu-setup", "not a directory");
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["apply"]));
    assert!(err.starts_with("error: cannot "), "{err}");
    assert!(err.contains("/var/lib/gpu-setup"), "{err}");
    assert_eq!(tree.snapshot(), before);

    // A corrupt journal entry stops every command that reads the journal.
    let tree = Tree::stock();
    ok_stdout(&mut tree.cmd(&["apply"]));
    tree.write("/var/lib/gpu-setup/transactions/1/manifest.json", "{]");
    let before = tree.snapshot();
    for args in [&["history"][..], &["rollback"], &["plan"]] {
        let err = fails(&mut tree.cmd(args));
        assert!(
            err.starts_with("error: corrupt journal entry `/var/lib/gpu-setup/transactions/1/manifest.json`: line 1, column 2: "),
            "{args:?}: {err}"
        );
        assert_eq!(tree.snapshot(), before);
    }
}

/// The state dir as gpu-setup makes it: root-only.
fn make_state_dir(tree: &Tree) {
    fs::create_dir_all(tree.real(STATE_DIR)).unwrap();
    fs::set_permissions(tree.real(STATE_DIR), fs::Permissions::from_mode(0o700)).unwrap();
}
