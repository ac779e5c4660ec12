//! Crashes and concurrency with the real binary: a process aborted before
//! each filesystem step (deterministic `kill -9`), killed with SIGKILL at
//! times in the middle of a slowed-down apply, and many applies at once.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

use crate::util::*;

/// A stock tree after a successful apply: the only other state a crash may
/// leave once recovered.
fn configured() -> Snapshot {
    let tree = Tree::stock();
    ok_stdout(&mut tree.cmd(&["apply"]));
    tree.targets()
}

/// After a crash: `plan` recovers, and every target is as at the start or as
/// fully applied, with no temp file and nothing pending. Returns whether
/// recovery said it undid something.
fn check_recovered(tree: &Tree, start: &Snapshot, end: &Snapshot, what: &str) -> bool {
    let out = tree.cmd(&["plan"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what}: {stderr}");
    let recovered = stderr.contains(
        "recovered: transaction 1 was interrupted (crash or kill); it has been undone and every file it touched is as before",
    );
    let now = tree.targets();
    assert!(&now == start || &now == end, "{what}: a half-applied host");
    assert!(
        tree.temp_files().is_empty(),
        "{what}: {:?}",
        tree.temp_files()
    );
    let history = ok_stdout(&mut tree.cmd(&["history"]));
    assert!(!history.contains("pending"), "{what}: {history}");
    if &now == start {
        // The host is back where it was: the next apply goes through.
        tree.cmd(&["plan", "--detailed-exitcode"]).assert().code(2);
        ok_stdout(&mut tree.cmd(&["apply"]));
        assert_same(&tree.targets(), end);
    } else {
        assert!(
            history.lines().nth(1).unwrap().ends_with(" applied"),
            "{what}: {history}"
        );
    }
    recovered
}

#[test]
fn a_crash_before_any_step_is_recovered_by_the_next_run() {
    let steps = steps_of(&["apply"], &Tree::stock);
    let end = configured();
    let manifest_renames: Vec<usize> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.starts_with("rename ") && s.ends_with("/manifest.json"))
        .map(|(i, _)| i)
        .collect();
    // Pending written, then applied written.
    assert_eq!(manifest_renames.len(), 2, "{steps:#?}");
    for (n, step) in steps.iter().enumerate() {
        let tree = Tree::stock();
        let start = tree.targets();
        let out = tree
            .cmd(&["apply"])
            .env("GPU_SETUP_TEST_CRASH_AT", n.to_string())
            .output()
            .unwrap();
        assert_eq!(
            out.status.signal(),
            Some(6),
            "step {n} ({step}) did not abort"
        );
        let recovered =
            check_recovered(&tree, &start, &end, &format!("crash at step {n} ({step})"));
        // Between the pending entry and the applied status, recovery undoes.
        let pending = n > manifest_renames[0] && n <= manifest_renames[1];
        assert_eq!(recovered, pending, "crash at step {n} ({step})");
    }
}

#[test]
fn a_crash_during_rollback_is_recovered_too() {
    let make = || {
        let t = Tree::stock();
        ok_stdout(&mut t.cmd(&["apply"]));
        t
    };
    let steps = steps_of(&["rollback"], &make);
    for n in 0..steps.len() {
        let tree = make();
        let configured = tree.targets();
        let out = tree
            .cmd(&["rollback"])
            .env("GPU_SETUP_TEST_CRASH_AT", n.to_string())
            .output()
            .unwrap();
        assert_eq!(out.status.signal(), Some(6), "step {n}");
        ok_stdout(&mut tree.cmd(&["plan"]));
        assert!(
            tree.temp_files().is_empty(),
            "step {n}: {:?}",
            tree.temp_files()
        );
        let history = ok_stdout(&mut tree.cmd(&["history"]));
        assert!(!history.contains("pending"), "step {n}: {history}");
        // Either still configured (rollback undone) or rolled back.
        if tree.targets() == configured {
            ok_stdout(&mut tree.cmd(&["rollback"]));
        }
        tree.cmd(&["plan", "--detailed-exitcode"]).assert().code(2);
    }
}

#[test]
fn sigkill_at_any_moment_leaves_nothing_half_done() {
    let end = configured();
    // Each step sleeps 15 ms, so an apply takes about a second: kill it at
    // several moments along the way.
    for delay_ms in [5, 120, 300, 450, 600, 750, 900] {
        let tree = Tree::stock();
        let start = tree.targets();
        let bin = crate::util::bin();
        let mut child = StdCommand::new(bin)
            .arg("--root")
            .arg(tree.root())
            .args(["--color", "never", "apply"])
            .env("GPU_SETUP_TEST_STEP_DELAY_MS", "15")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        let what = format!("killed after {delay_ms} ms ({status})");
        check_recovered(&tree, &start, &end, &what);
    }
}

#[test]
fn concurrent_applies_serialise_and_leave_one_consistent_state() {
    let tree = Tree::stock();
    let n = 8;
    for i in 0..n {
        tree.exe(&format!("/usr/bin/hook-{i}"));
    }
    let settings = |i: usize| -> Vec<String> {
        vec![
            "--hook-path".to_owned(),
            format!("/usr/bin/hook-{i}"),
            "--no-cgroups".to_owned(),
            (i % 2 == 0).to_string(),
        ]
    };
    let bin = crate::util::bin();
    let children: Vec<_> = (0..n)
        .map(|i| {
            StdCommand::new(&bin)
                .arg("--root")
                .arg(tree.root())
                .args(["--format", "json", "apply"])
                .args(settings(i))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ids = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if report["changed"] == true {
            ids.push(report["transaction"].as_u64().unwrap());
        }
    }
    ids.sort_unstable();
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "one ID each"
    );

    // Every file is valid, and the host is exactly one of the desired states.
    let satisfied: Vec<usize> = (0..n)
        .filter(|i| {
            let mut args = vec!["plan", "--detailed-exitcode"];
            let s = settings(*i);
            args.extend(s.iter().map(String::as_str));
            let code = tree.cmd(&args).output().unwrap().status.code();
            assert!(
                matches!(code, Some(0) | Some(2)),
                "desired state {i}: {code:?}"
            );
            code == Some(0)
        })
        .collect();
    assert_eq!(satisfied.len(), 1, "{satisfied:?}");
    assert!(tree.temp_files().is_empty(), "{:?}", tree.temp_files());

    let history: serde_json::Value =
        serde_json::from_str(&ok_stdout(&mut tree.cmd(&["history", "--format", "json"]))).unwrap();
    let txs = history["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), ids.len());
    assert!(txs.iter().all(|t| t["status"] == "applied"), "{history:#}");
    // Each transaction started from what the previous one wrote.
    for pair in txs.windows(2) {
        let (newer, older) = (&pair[0], &pair[1]);
        for f in newer["files"].as_array().unwrap() {
            let before = &f["before_sha256"];
            let earlier = older["files"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["path"] == f["path"]);
            if let Some(g) = earlier {
                assert_eq!(before, &g["after_sha256"], "{history:#}");
            }
        }
    }
}
