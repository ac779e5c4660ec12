//! `gpu-setup plan` end to end on temporary roots.

use std::fs;

use predicates::prelude::*;
use serde_json::Value;

use crate::util::*;
use gpu_setup_plan::DesiredState;

/// Runs a successful command and parses its JSON stdout.
fn plan_json(tree: &Tree, args: &[&str]) -> Value {
    let out = tree.cmd(args).assert().success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

#[test]
fn plan_on_a_stock_host_shows_diffs_and_writes_nothing() {
    let tree = Tree::stock();
    let before = tree.snapshot();
    let out = tree
        .cmd(&["plan"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains(&format!("create {DROPIN}\n")), "{out}");
    assert!(out.contains(&format!("modify {NV_CONFIG}\n")), "{out}");
    assert!(out.contains(&format!("create {HOOK}\n")), "{out}");
    assert!(
        out.contains("-#no-cgroups = false\n+no-cgroups = true\n"),
        "{out}"
    );
    assert!(
        out.contains("+nvidia = [\"/usr/bin/nvidia-container-runtime\"]\n"),
        "{out}"
    );
    assert!(out.contains("--- /dev/null\n+++ b/etc/containers/containers.conf.d/99-nvidia.conf\n"));
    assert!(
        out.ends_with("Plan: 2 to create, 1 to modify, 0 to delete.\n"),
        "{out}"
    );
    assert_eq!(tree.snapshot(), before, "plan must not write");
}

#[test]
fn detailed_exitcode_is_2_with_changes_and_0_when_configured() {
    let tree = Tree::stock();
    tree.cmd(&["plan", "--detailed-exitcode"]).assert().code(2);
    tree.cmd(&["plan"]).assert().code(0);
    tree.apply(&tree.plan(&DesiredState::default()));
    let before = tree.snapshot();
    tree.cmd(&["plan", "--detailed-exitcode"])
        .assert()
        .code(0)
        .stdout("The host is configured: nothing to change.\n");
    assert_eq!(tree.snapshot(), before);
}

#[test]
fn json_report_has_the_documented_shape() {
    let tree = Tree::stock();
    let v = plan_json(&tree, &["plan", "--format", "json"]);
    assert_eq!(v["changed"], true);
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    assert_eq!(files[0]["path"], DROPIN);
    assert_eq!(files[0]["action"], "create");
    assert_eq!(files[0]["before_sha256"], Value::Null);
    assert_eq!(files[0]["after_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(files[1]["action"], "modify");
    let nv = std::fs::read(tree.real(NV_CONFIG)).unwrap();
    assert_eq!(files[1]["before_sha256"], gpu_setup_plan::sha256(&nv));
    assert!(files[1]["diff"]
        .as_str()
        .unwrap()
        .contains("+no-cgroups = true"));
    let codes: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    // No package database in the tree: the version is unknown, and said.
    assert_eq!(codes, ["version-unknown", "no-cgroups-rootful"]);
    assert!(v["warnings"][1]["message"].is_string() && v["warnings"][1]["hint"].is_string());
}

#[test]
fn json_when_configured_reports_no_change() {
    let tree = Tree::stock();
    tree.apply(&tree.plan(&DesiredState::default()));
    let v = plan_json(&tree, &["plan", "--format=json"]);
    assert_eq!(v["changed"], false);
    assert_eq!(v["files"], serde_json::json!([]));
}

#[test]
fn global_options_are_accepted_after_the_subcommand() {
    let tree = Tree::stock();
    let mut cmd = crate::util::gpu_setup();
    cmd.args(["plan", "--format", "json", "--root"])
        .arg(tree.root());
    let out = cmd.assert().success().get_output().stdout.clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["changed"], true);
}

#[test]
fn in_place_edit_lands_under_the_existing_runtimes_header() {
    let tree = Tree::stock();
    let out = tree
        .cmd(&["plan", "--containers-conf", USR_CONF])
        .assert()
        .success();
    let out = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        out.contains(
            " [engine.runtimes]\n+nvidia = [\"/usr/bin/nvidia-container-runtime\"]\n #crun = [\n"
        ),
        "{out}"
    );
    assert!(!out.contains(DROPIN));
}

#[test]
fn flags_and_profile_choose_the_desired_state() {
    let tree = Tree::stock();
    let profile = tree.real("/profile.toml");
    std::fs::write(
        &profile,
        "runtime_name = \"gpu\"\nno_cgroups = false\nhook_path = \"/opt/hook\"\n",
    )
    .unwrap();
    let out = tree
        .cmd(&["plan", "--no-cgroups", "true", "--profile"])
        .arg(&profile)
        .assert()
        .success();
    let out = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        out.contains("+gpu = [\"/usr/bin/nvidia-container-runtime\"]"),
        "{out}"
    );
    assert!(out.contains("+no-cgroups = true"), "flag must win: {out}");
    assert!(out.contains("+        \"path\": \"/opt/hook\","), "{out}");
}

#[test]
fn the_shipped_profile_template_is_valid_and_means_the_defaults() {
    let tree = Tree::stock();
    let template =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates/gpu-setup.toml");
    let with = tree
        .cmd(&["plan", "--format", "json", "--profile"])
        .arg(&template)
        .assert()
        .success();
    let without = tree.cmd(&["plan", "--format", "json"]).assert().success();
    assert_eq!(with.get_output().stdout, without.get_output().stdout);
}

#[test]
fn state_absent_on_a_configured_host_removes_everything() {
    let tree = Tree::stock();
    tree.apply(&tree.plan(&DesiredState::default()));
    let out = tree.cmd(&["plan", "--state", "absent"]).assert().success();
    let out = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(out.contains(&format!("delete {DROPIN}\n")), "{out}");
    assert!(out.contains(&format!("delete {HOOK}\n")), "{out}");
    assert!(out.contains("-no-cgroups = true\n"), "{out}");
    assert!(
        out.ends_with("Plan: 0 to create, 1 to modify, 2 to delete.\n"),
        "{out}"
    );
}

#[test]
fn warnings_go_to_stderr_with_hints() {
    let tree = Tree::new();
    tree.write(USR_CONF, fixture(DEBIAN_CONF));
    tree.cmd(&["plan"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning[runtime-missing]: runtime `/usr/bin/nvidia-container-runtime`",
        ))
        .stderr(predicate::str::contains("warning[hook-executable-missing]"))
        .stderr(predicate::str::contains(
            "  hint: install the NVIDIA Container Toolkit",
        ));
}

#[test]
fn unsafe_debug_log_path_is_refused_unless_allowed() {
    let tree = Tree::stock();
    std::fs::create_dir_all(tree.real("/tmp")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tree.real("/tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["plan", "--cli-debug-log", "/tmp/nvidia.log"]));
    assert!(
        err.contains("error: debug log `/tmp/nvidia.log` is unsafe: `/tmp` is writable by group or others (mode 1777)"),
        "{err}"
    );
    assert!(
        err.contains("hint: the NVIDIA runtime opens its log as root"),
        "{err}"
    );
    tree.cmd(&[
        "plan",
        "--cli-debug-log",
        "/tmp/nvidia.log",
        "--allow-unsafe-log-path",
    ])
    .assert()
    .success()
    .stderr(predicate::str::contains("warning[unsafe-log-path]"));
    assert_eq!(tree.snapshot(), before);
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let tree = Tree::stock();
    let plain = tree.cmd(&["plan"]).assert().success();
    assert!(!plain.get_output().stdout.contains(&0x1b));
    let mut cmd = crate::util::gpu_setup();
    cmd.args(["plan", "--color", "always", "--root"])
        .arg(tree.root());
    let coloured = cmd.assert().success();
    let out = String::from_utf8(coloured.get_output().stdout.clone()).unwrap();
    assert!(out.contains("\u{1b}[32m+no-cgroups = true"), "{out}");
}

#[test]
fn help_and_version_exit_0() {
    let mut cmd = crate::util::gpu_setup();
    cmd.arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Usage: gpu-setup"));
    let mut cmd = crate::util::gpu_setup();
    cmd.args(["plan", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--detailed-exitcode"))
        .stdout(predicate::str::contains("--containers-conf <PATH>"));
    let mut cmd = crate::util::gpu_setup();
    cmd.arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("gpu-setup "));
}

#[test]
fn log_level_debug_logs_to_stderr_only() {
    let tree = Tree::stock();
    let out = tree
        .cmd(&["plan", "--format", "json", "--log-level", "debug"])
        .assert()
        .success();
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("DEBUG"), "{stderr}");
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["changed"], true);
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let tree = Tree::stock();
    let mut child = std::process::Command::new(crate::util::bin())
        .args(["plan", "--root"])
        .arg(tree.root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("error:"),
        "{stderr}"
    );
}

#[test]
fn the_shipped_profile_template_with_cdi_leaves_the_runtime_alone() {
    // Switching the template to CDI must not keep managing what CDI does
    // not use: its runtime and no-cgroups keys are commented out.
    let tree = Tree::stock();
    let ctk = crate::cdi::Ctk::new();
    let template =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates/gpu-setup.toml");
    let dir = root_only_tempdir();
    let profile = dir.path().join("gpu-setup.toml");
    let text = std::fs::read_to_string(template)
        .unwrap()
        .replace("# strategy = \"hook\"", "strategy = \"cdi\"")
        .replace(
            "# nvidia_ctk = \"/usr/bin/nvidia-ctk\"",
            &format!("nvidia_ctk = \"{}\"", ctk.path().display()),
        );
    std::fs::write(&profile, text).unwrap();
    let out = ok_stdout(tree.cmd(&["plan", "--profile"]).arg(&profile));
    assert!(out.starts_with("create /etc/cdi/nvidia.yaml\n"), "{out}");
    assert!(
        out.ends_with("Plan: 1 to create, 0 to modify, 0 to delete.\n"),
        "{out}"
    );
}

#[test]
fn completions_are_printed_for_each_shell_and_others_are_refused() {
    for (shell, marker) in [
        ("bash", "complete -F _gpu__setup"),
        ("zsh", "#compdef gpu-setup"),
        ("fish", "complete -c gpu-setup"),
    ] {
        let out = ok_stdout(gpu_setup().args(["completions", shell]));
        assert!(out.contains(marker), "{shell}: {out}");
        assert!(out.contains("heal"), "{shell}: the subcommands are offered");
    }
    // What TAB gives, from bash itself: subcommands, flags after a
    // subcommand, and flag values.
    let script = ok_stdout(gpu_setup().args(["completions", "bash"]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gpu-setup.bash");
    std::fs::write(&file, &script).unwrap();
    let tab = |words: &[&str]| -> Vec<String> {
        // COMP_WORDS as bash sets them, the cursor on the last word.
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let cword = words.len() - 1;
        let prev = if cword > 0 { words[cword - 1] } else { "" };
        let cmd = format!(
            "source '{}'; COMP_WORDS=({}); COMP_CWORD={cword}; _gpu__setup gpu-setup '{}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file.display(),
            quoted.join(" "),
            words[cword]
        );
        let out = std::process::Command::new("bash")
            .args(["--norc", "--noprofile", "-c", &cmd])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    assert!(tab(&["gpu-setup", "he"]).contains(&"heal".to_owned()));
    assert_eq!(
        tab(&["gpu-setup", "plan", "--str"]),
        ["--strict", "--strategy"]
    );
    assert_eq!(
        tab(&["gpu-setup", "plan", "--strategy", ""]),
        ["hook", "cdi"]
    );
    assert_eq!(tab(&["gpu-setup", "heal", "--mo"]), ["--mode"]);
    assert_eq!(tab(&["gpu-setup", "heal", "--mode", "r"]), ["report"]);
    assert_eq!(tab(&["gpu-setup", "completions", "f"]), ["fish"]);
    // fish, when installed (CI installs it): `complete -C` is what TAB
    // shows.
    if std::path::Path::new("/usr/bin/fish").exists() {
        let fish = ok_stdout(gpu_setup().args(["completions", "fish"]));
        let file = dir.path().join("gpu-setup.fish");
        std::fs::write(&file, fish).unwrap();
        let complete = |line: &str| -> Vec<String> {
            let out = std::process::Command::new("fish")
                .args(["--no-config", "-c"])
                .arg(format!("source '{}'; complete -C '{line}'", file.display()))
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| l.split('\t').next().unwrap().to_owned())
                .collect()
        };
        assert_eq!(complete("gpu-setup plan --str"), ["--strategy", "--strict"]);
        assert_eq!(complete("gpu-setup plan --strategy "), ["cdi", "hook"]);
        assert_eq!(complete("gpu-setup heal --mode "), ["apply", "report"]);
    } else {
        assert!(
            std::env::var_os("GPU_SETUP_REQUIRE_PACKAGING").is_none(),
            "CI installs fish (.ci/run)"
        );
    }
    // zsh, when installed (CI installs it): completion runs only in its
    // line editor, so tests/completion/zsh-capture.zsh types the line and
    // a TAB into an interactive zsh on a pty and prints what compadd got.
    if std::path::Path::new("/usr/bin/zsh").exists() {
        let zsh = ok_stdout(gpu_setup().args(["completions", "zsh"]));
        std::fs::write(dir.path().join("_gpu-setup"), zsh).unwrap();
        let capture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/completion/zsh-capture.zsh"
        );
        let complete = |line: &str| -> Vec<String> {
            let out = std::process::Command::new("timeout")
                .args(["60", "zsh", "-f", capture])
                .arg(dir.path())
                .arg(line)
                .env("HOME", dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "{line}: {out:?}");
            let mut got: Vec<String> = String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect();
            got.sort();
            got
        };
        assert_eq!(complete("gpu-setup plan --str"), ["--strategy", "--strict"]);
        assert_eq!(complete("gpu-setup plan --strategy "), ["cdi", "hook"]);
        assert_eq!(complete("gpu-setup heal --mode "), ["apply", "report"]);
        assert_eq!(complete("gpu-setup compl"), ["completions"]);
    } else {
        assert!(
            std::env::var_os("GPU_SETUP_REQUIRE_PACKAGING").is_none(),
            "CI installs zsh (.ci/run)"
        );
    }
    let err = fails(gpu_setup().args(["--color", "never", "completions", "tcsh"]));
    assert!(err.contains("invalid value 'tcsh' for '<SHELL>'"), "{err}");
    assert!(
        err.contains("[possible values: bash, elvish, fish, powershell, zsh]"),
        "{err}"
    );
}

#[test]
fn colour_is_decided_per_stream() {
    // stdout on a terminal (script(1) gives it a pty), stderr to a file:
    // the diff is coloured, the warnings in the file carry no escape code.
    if !std::path::Path::new("/usr/bin/script").exists() {
        return;
    }
    let tree = Tree::stock();
    let err = tree.root().parent().unwrap().join(format!(
        "{}.err",
        tree.root().file_name().unwrap().to_str().unwrap()
    ));
    let cmd = format!(
        "'{}' --root '{}' plan 2>'{}'",
        bin().display(),
        tree.root().display(),
        err.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("\u{1b}["),
        "the terminal gets colour: {shown:?}"
    );
    let logged = std::fs::read_to_string(&err).unwrap();
    let _ = std::fs::remove_file(&err);
    assert!(logged.contains("info[no-cgroups-rootful]"), "{logged}");
    assert!(
        !logged.contains('\u{1b}'),
        "no escape codes in the file: {logged:?}"
    );
}

// Day one and day thirty for an admin (issue 18): each command run as the
// admin ran it, with the exit code, the message and the files checked.

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
