//! Every bad input: exit 1, an `error:` naming file, line and column, a
//! `hint:`, and no file changed.

use std::fs;

use crate::util::*;

/// Runs plan with `args` on `tree`, expects failure, checks nothing changed
/// and returns stderr.
fn refused(tree: &Tree, args: &[&str]) -> String {
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(args));
    assert_eq!(
        tree.snapshot(),
        before,
        "a refused plan must not change any file"
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn malformed_toml_in_the_edited_containers_conf() {
    let tree = Tree::stock();
    tree.write(ETC_CONF, "[engine]\ncgroup_manager = \"systemd\n");
    let err = refused(&tree, &["plan", "--containers-conf", ETC_CONF]);
    assert!(
        err.starts_with(
            "error: `/etc/containers/containers.conf` line 2, column 26: invalid basic string"
        ),
        "{err}"
    );
    assert!(
        err.contains("hint: fix the TOML syntax in `/etc/containers/containers.conf`"),
        "{err}"
    );
}

#[test]
fn malformed_toml_in_another_containers_conf_podman_reads() {
    let tree = Tree::stock();
    tree.write(
        "/etc/containers/containers.conf.d/10-local.conf",
        "[engine\n",
    );
    let err = refused(&tree, &["plan"]);
    assert!(
        err.starts_with(
            "error: `/etc/containers/containers.conf.d/10-local.conf` line 1, column 8: "
        ),
        "{err}"
    );
}

#[test]
fn malformed_nvidia_config() {
    let tree = Tree::stock();
    tree.write(NV_CONFIG, "[nvidia-container-cli]\nno-cgroups = = true\n");
    let err = refused(&tree, &["plan"]);
    assert!(
        err.starts_with("error: `/etc/nvidia-container-runtime/config.toml` line 2, column 14: "),
        "{err}"
    );
    assert!(err.contains("hint: "), "{err}");
}

#[test]
fn a_corrupt_hook_file_gpu_setup_owns_is_replaced_and_kept_for_rollback() {
    // gpu-setup writes the hook file whole: a corrupt one (here truncated)
    // is replaced with a warning, its bytes kept in the journal.
    let tree = Tree::stock();
    let truncated = "{\n    \"version\": \"1.0.0\",\n    \"hook\": {\n}\n";
    tree.write(HOOK, truncated);
    let out = tree.cmd(&["plan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning[hook-file-corrupt]: `/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json` line 5, column 1: EOF while parsing an object: Podman refuses every container while this file is in its hooks dir; gpu-setup owns the file whole and replaces it\n"),
        "{err}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("  # replace the corrupt NVIDIA OCI hook with one running `/usr/bin/nvidia-container-toolkit`\n"), "{stdout}");
    // --strict makes the warning an error, and apply still repairs it.
    fails(&mut tree.cmd(&["plan", "--strict"]));
    ok_stdout(&mut tree.cmd(&["apply"]));
    assert_eq!(
        fs::read_to_string(tree.real(HOOK)).unwrap(),
        gpu_setup_plan::hook::TEMPLATE
    );
    ok_stdout(&mut tree.cmd(&["rollback"]));
    assert_eq!(fs::read_to_string(tree.real(HOOK)).unwrap(), truncated);
}

#[test]
fn a_corrupt_file_gpu_setup_edits_in_part_is_refused() {
    let tree = Tree::stock();
    tree.write(DROPIN, "[engine.runtimes\n");
    let err = refused(&tree, &["plan"]);
    assert!(
        err.starts_with(
            "error: `/etc/containers/containers.conf.d/99-nvidia.conf` line 1, column 17"
        ),
        "{err}"
    );
    assert!(err.contains("hint: fix the TOML syntax in `/etc/containers/containers.conf.d/99-nvidia.conf` (Podman rejects it too)"), "{err}");
    tree.write(DROPIN, "");
    tree.write(NV_CONFIG, "[nvidia-container-cli\n");
    let err = refused(&tree, &["plan"]);
    assert!(
        err.contains("(the NVIDIA Container Toolkit rejects it too)"),
        "{err}"
    );
}

#[test]
fn runtimes_of_the_wrong_type() {
    let tree = Tree::stock();
    tree.write(ETC_CONF, "[engine]\nruntimes = 5\n");
    let err = refused(&tree, &["plan", "--containers-conf", ETC_CONF]);
    assert!(
        err.starts_with("error: `/etc/containers/containers.conf` line 2, column 12: `engine.runtimes` must be a table, found integer"),
        "{err}"
    );
    assert!(
        err.contains("hint: fix or remove `engine.runtimes`"),
        "{err}"
    );
}

#[test]
fn runtime_entry_of_the_wrong_type() {
    let tree = Tree::stock();
    tree.write(DROPIN, "[engine.runtimes]\nnvidia = \"x\"\n");
    let err = refused(&tree, &["plan"]);
    assert!(
        err.starts_with("error: `/etc/containers/containers.conf.d/99-nvidia.conf` line 2, column 10: `engine.runtimes.nvidia` must be an array of strings, found string"),
        "{err}"
    );
}

#[test]
fn no_cgroups_of_the_wrong_type() {
    let tree = Tree::stock();
    tree.write(NV_CONFIG, "[nvidia-container-cli]\nno-cgroups = \"true\"\n");
    let err = refused(&tree, &["plan"]);
    assert!(
        err.contains(
            "line 2, column 14: `nvidia-container-cli.no-cgroups` must be a boolean, found string"
        ),
        "{err}"
    );
}

#[test]
fn invalid_utf8() {
    let tree = Tree::stock();
    tree.write(NV_CONFIG, b"[nvidia-container-cli]\nuser = \"r\xffot\"\n");
    let err = refused(&tree, &["plan"]);
    assert!(
        err.starts_with(
            "error: `/etc/nvidia-container-runtime/config.toml` line 2, column 10: invalid UTF-8"
        ),
        "{err}"
    );
    assert!(err.contains("hint: convert"), "{err}");
}

#[test]
fn a_directory_where_a_file_should_be() {
    let tree = Tree::stock();
    std::fs::create_dir_all(tree.real(HOOK)).unwrap();
    let err = refused(&tree, &["plan"]);
    assert!(
        err.starts_with(&format!("error: `{HOOK}` is not a regular file")),
        "{err}"
    );
    assert!(err.contains("hint: move"), "{err}");
}

#[test]
fn a_file_where_a_directory_should_be() {
    let tree = Tree::stock();
    tree.write("/etc/containers/containers.conf.d", "oops");
    let err = refused(&tree, &["plan"]);
    assert!(
        err.starts_with("error: `/etc/containers/containers.conf.d` is not a directory"),
        "{err}"
    );
}

#[test]
fn an_unreadable_file() {
    use std::os::unix::fs::PermissionsExt;
    let tree = Tree::stock();
    std::fs::set_permissions(tree.real(NV_CONFIG), std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads anything: drop to `nobody` for this one run.
    let mut cmd = if is_root() {
        as_nobody(&tree, &["plan"])
    } else {
        tree.cmd(&["plan"])
    };
    let before = tree.snapshot();
    let err = fails(&mut cmd);
    assert_eq!(tree.snapshot(), before);
    assert!(
        err.starts_with(
            "error: cannot read `/etc/nvidia-container-runtime/config.toml`\n  caused by: Permission denied (os error 13)\nhint:"
        ),
        "{err}"
    );
    assert!(err.contains("hint: run as root (or with sudo)"), "{err}");
}

#[test]
fn a_root_that_is_not_a_directory() {
    let tree = Tree::stock();
    let mut cmd = crate::util::gpu_setup();
    cmd.args(["plan", "--root"]).arg(tree.real(NV_CONFIG));
    let err = fails(&mut cmd);
    assert!(err.starts_with("error: root `"), "{err}");
    assert!(err.contains("is not a directory"), "{err}");
    assert!(
        err.contains("hint: --root takes the directory to treat as `/`"),
        "{err}"
    );
    let mut cmd = crate::util::gpu_setup();
    cmd.args(["plan", "--root"]).arg(tree.real("/missing"));
    let err = fails(&mut cmd);
    assert!(
        err.contains("caused by: No such file or directory"),
        "{err}"
    );
    assert!(err.contains("hint: --root takes the directory"), "{err}");
}

#[test]
fn bad_flag_values_exit_1_not_2() {
    let tree = Tree::stock();
    let err = refused(&tree, &["plan", "--no-cgroups", "yes"]);
    assert!(
        err.contains("invalid value 'yes' for '--no-cgroups <BOOL>'"),
        "{err}"
    );
    let err = refused(&tree, &["plan", "--hook-path", "nvidia-container-toolkit"]);
    assert!(
        err.starts_with(
            "error: invalid hook path\n  caused by: `nvidia-container-toolkit` is not an absolute path\n"
        ),
        "{err}"
    );
    let err = refused(&tree, &["plan", "--runtime-name", "a b"]);
    assert!(
        err.starts_with("error: invalid runtime name: `a b`"),
        "{err}"
    );
    let err = refused(&tree, &["plan", "--hook-file", NV_CONFIG]);
    assert!(err.starts_with("error: invalid file paths: `/etc/nvidia-container-runtime/config.toml` is given for both the NVIDIA config path and the hook file: each managed file needs its own\n"), "{err}");
    let err = refused(&tree, &["plan", "--containers-conf", "/etc/../x.conf"]);
    assert!(err.contains("contains `..`"), "{err}");
    let err = refused(
        &tree,
        &["plan", "--hook-file", "/usr/share/containers/oci/hooks.d/"],
    );
    assert!(
        err.starts_with(
            "error: invalid hook file\n  caused by: `/usr/share/containers/oci/hooks.d/` does not name a file\n"
        ),
        "{err}"
    );
    let err = refused(
        &tree,
        &["plan", "--runtime-path", "/usr/bin/nvidia\nruntime"],
    );
    assert!(err.starts_with("error: invalid runtime path\n  caused by: `/usr/bin/nvidia\\nruntime` contains a NUL byte or a line break"), "{err}");
}

#[test]
fn bad_profile() {
    let tree = Tree::stock();
    tree.write("/p.toml", "runtime_name = \"gpu\"\nhookpath = \"/x\"\n");
    let profile = tree.real("/p.toml");
    let profile = profile.to_str().unwrap();
    let err = refused(&tree, &["plan", "--profile", profile]);
    assert!(err.starts_with("error: invalid profile"), "{err}");
    assert!(
        err.contains(&format!(
            "caused by: `{profile}` line 2, column 1: unknown field `hookpath`"
        )),
        "{err}"
    );
    assert!(
        err.contains("hint: the keys are listed in `gpu-setup plan --help` and in the example profile /usr/share/doc/gpu-setup/examples/gpu-setup.toml"),
        "{err}"
    );
    let err = refused(&tree, &["plan", "--profile", "/nonexistent/p.toml"]);
    assert!(
        err.starts_with("error: cannot use profile `/nonexistent/p.toml`"),
        "{err}"
    );
    assert!(
        err.contains("caused by: No such file or directory"),
        "{err}"
    );
    assert!(err.contains("hint: --profile takes a TOML file"), "{err}");
}

#[test]
fn errors_in_json_mode_are_json_on_stdout_too() {
    let tree = Tree::stock();
    tree.write(ETC_CONF, "[engine");
    let out = tree.cmd(&["plan", "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("/etc/containers/containers.conf` line 1, column 8"),
        "{v}"
    );
    assert!(v["hint"].is_string());
    // An argument error, too, when JSON was asked for.
    let out = tree
        .cmd(&["plan", "--format", "json", "--no-cgroups", "maybe"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["error"],
        "invalid value 'maybe' for '--no-cgroups <BOOL>'"
    );
    assert_eq!(
        v["hint"],
        "`gpu-setup --help` lists the commands and options"
    );
}

#[test]
fn a_file_whose_dotted_keys_toml_edit_would_regroup_is_refused_naming_the_line() {
    // `nvidia-container-cli.debug` continues the table after another
    // table's key: writing the file back would move it (and apply the same
    // through plan and apply).
    let tree = Tree::stock();
    tree.write(
        NV_CONFIG,
        "nvidia-container-cli.debug = \"/var/log/cli.log\"\naccept-nvidia-visible-devices-as-volume-mounts = false\nnvidia-container-cli.ldconfig = \"@/sbin/ldconfig\"\n",
    );
    for args in [&["plan"][..], &["apply"]] {
        let err = refused(&tree, args);
        assert_eq!(
            err.lines().next().unwrap(),
            "error: `/etc/nvidia-container-runtime/config.toml` line 3, column 1: editing this file would move `nvidia-container-cli.ldconfig = \"@/sbin/ldconfig\"`, a dotted key toml_edit regroups with the rest of its table; gpu-setup edits only where no other line moves",
            "{err}"
        );
        assert!(
            err.contains("hint: write `nvidia-container-cli.ldconfig = \"@/sbin/ldconfig\"` under its table's `[header]` instead of as a dotted key (or keep a table's dotted keys together), then run gpu-setup again; `/etc/nvidia-container-runtime/config.toml` is unchanged"),
            "{err}"
        );
    }
    // Kept together, the same keys are edited in place.
    tree.write(
        NV_CONFIG,
        "nvidia-container-cli.debug = \"/var/log/cli.log\"\nnvidia-container-cli.ldconfig = \"@/sbin/ldconfig\"\naccept-nvidia-visible-devices-as-volume-mounts = false\n",
    );
    ok_stdout(&mut tree.cmd(&["apply", "-q"]));
    let after = fs::read_to_string(tree.real(NV_CONFIG)).unwrap();
    assert!(
        after.starts_with("nvidia-container-cli.debug = \"/var/log/cli.log\"\nnvidia-container-cli.ldconfig = \"@/sbin/ldconfig\"\n"),
        "{after}"
    );
    assert!(after.contains("no-cgroups = true"), "{after}");
}
