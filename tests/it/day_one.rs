//! Day one and day thirty for an admin (issue 18): each command run as the
//! admin ran it, with the exit code, the message and the files checked.

use std::fs;

use serde_json::Value;

use crate::util::*;

const LOCAL: &str = "/etc/containers/containers.conf.d/zz-local.conf";

/// A configured host where a later drop-in overrides gpu-setup's entry.
fn overridden() -> Tree {
    let tree = Tree::stock();
    ok_stdout(&mut tree.cmd(&["apply"]));
    tree.write(
        LOCAL,
        "[engine.runtimes]\nnvidia = [\"/opt/old/nvidia-container-runtime\"]\n",
    );
    tree
}

#[test]
fn files_as_desired_but_overridden_say_so_and_strict_fails() {
    let tree = overridden();
    let before = tree.snapshot();
    // Terraform's codes: the files are as desired, so 0 ...
    let out = tree.cmd(&["plan", "--detailed-exitcode"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "The managed files are as desired, but the effective configuration is not: 1 warning (runtime-overridden) says GPUs may still not work.\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("warning[runtime-overridden]: "));
    // ... and --strict makes the warning an error, for cron drift checks.
    let err = fails(&mut tree.cmd(&["plan", "--detailed-exitcode", "--strict"]));
    assert!(
        err.ends_with("error: 1 warning-level finding (runtime-overridden), and --strict makes it an error\nhint: each warning above says what to fix (`gpu-setup doctor` explains more)\n"),
        "{err}"
    );
    let err = fails(&mut tree.cmd(&["apply", "--strict"]));
    assert!(err.contains("--strict makes it an error"), "{err}");
    assert_same(&tree.snapshot(), &before);
    // doctor names the overriding file and the fix.
    tree.exe("/usr/bin/podman");
    tree.exe("/usr/sbin/runc");
    let out = tree
        .cmd(&["doctor", "--podman-version", "4.3.1", "--format", "json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "runtimes")
        .unwrap();
    assert_eq!(c["status"], "fail", "{c:#}");
    assert_eq!(
        c["hint"],
        format!("remove `nvidia` from [engine.runtimes] in `{LOCAL}` (it is read after gpu-setup's `{DROPIN}`), or make gpu-setup edit it: gpu-setup apply --containers-conf {LOCAL}")
    );
}

#[test]
fn a_configured_host_is_quiet() {
    let tree = Tree::stock();
    ok_stdout(&mut tree.cmd(&["apply"]));
    for cmd in ["plan", "apply"] {
        let out = tree.cmd(&[cmd]).output().unwrap();
        assert!(out.status.success());
        // No note about no-cgroups on every run: only when it changes.
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{cmd}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "The host is configured: nothing to change.\n"
        );
        let out = tree.cmd(&["--quiet", cmd]).output().unwrap();
        assert!(out.status.success());
        assert_eq!((out.stdout.len(), out.stderr.len()), (0, 0), "{cmd}");
    }
    // The note appears when the setting changes.
    let fresh = Tree::stock();
    let out = fresh.cmd(&["plan"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("info[no-cgroups-rootful]"));
    // --quiet: the exit code carries the answer; errors still print.
    let out = fresh
        .cmd(&["plan", "-q", "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!((out.stdout.len(), out.stderr.len()), (0, 0));
    fresh.write(NV_CONFIG, "[nvidia-container-cli\n");
    let err = fails(&mut fresh.cmd(&["-q", "plan"]));
    assert!(
        err.starts_with("error: `/etc/nvidia-container-runtime/config.toml` line 1"),
        "{err}"
    );
}

#[test]
fn a_normal_user_sees_one_style_of_diagnostic_and_hints_it_can_use() {
    if !need_root("switching to the nobody user with setpriv") {
        return;
    }
    let tree = Tree::stock();
    ok_stdout(&mut tree.cmd(&["apply"]));
    let out = as_nobody(&tree, &["plan"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        err,
        "info[journal-unreadable]: cannot check the journal for an interrupted transaction: `/var/lib/gpu-setup` is root's\n"
    );
    // `history` has no --sudo, so its hint does not name it.
    let err = fails(&mut as_nobody(&tree, &["history"]));
    assert!(!err.contains("--sudo"), "{err}");
    // `apply` has: its hint names it.
    let err = fails(&mut as_nobody(&tree, &["apply", "--no-cgroups", "false"]));
    assert!(err.contains("hint: run as root, or add --sudo"), "{err}");
}

#[test]
fn a_saved_plan_with_a_flag_names_only_that_flag() {
    let tree = Tree::stock();
    let plan = tree.real("/plan.json");
    ok_stdout(&mut tree.cmd(&["plan", "--out", plan.to_str().unwrap()]));
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["apply", plan.to_str().unwrap(), "--no-cgroups", "false"]));
    assert_eq!(
        err,
        "error: `--no-cgroups` cannot be used with a saved plan: it carries its own settings\nhint: apply the plan alone, or make a new one: gpu-setup plan --no-cgroups --out FILE\n"
    );
    assert_same(&tree.snapshot(), &before);
}

#[test]
fn rollback_force_says_where_the_overwritten_content_is_kept() {
    let tree = Tree::stock();
    ok_stdout(&mut tree.cmd(&["apply"]));
    let edited = fs::read_to_string(tree.real(NV_CONFIG)).unwrap() + "# local edit\n";
    tree.write(NV_CONFIG, &edited);
    let out = tree.cmd(&["rollback", "--force"]).output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let copy = err
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                "note: `{NV_CONFIG}` had changed since; what it held is kept in `"
            ))
        })
        .unwrap_or_else(|| panic!("{err}"))
        .trim_end_matches('`');
    assert!(
        copy.starts_with("/var/lib/gpu-setup/transactions/2/"),
        "{copy}"
    );
    assert_eq!(fs::read_to_string(tree.real(copy)).unwrap(), edited);
    // JSON says it too.
    ok_stdout(&mut tree.cmd(&["apply"]));
    tree.write(NV_CONFIG, &edited);
    let out = ok_stdout(&mut tree.cmd(&["rollback", "--force", "--format", "json"]));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kept"][0]["path"], NV_CONFIG);
    assert!(v["kept"][0]["copy"]
        .as_str()
        .unwrap()
        .starts_with("/var/lib/gpu-setup/transactions/4/"));
}
