//! Host facts from the tree's own package database: trees whose dpkg
//! `status` names a Podman version (3.0.1, 4.2.0, 4.3.1, 5.5.1, 5.8.0,
//! 6.0.0), and what plan, apply, rollback and doctor do there. Refusals
//! name the version and where it came from, and change nothing. Real
//! Podman's word on the same rules is in matrix.rs.

use serde_json::Value;

use crate::cdi::Ctk;
use crate::util::*;

/// A stock tree whose dpkg database says Podman `version` is installed
/// (and, when given, the toolkit).
fn debian(version: &str, toolkit: Option<&str>) -> Tree {
    let tree = Tree::stock();
    let mut status = format!(
        "Package: podman\nStatus: install ok installed\nPriority: optional\nVersion: {version}+ds1-1\nDescription: engine\n\n"
    );
    if let Some(t) = toolkit {
        status.push_str(&format!(
            "Package: nvidia-container-toolkit-base\nStatus: install ok installed\nVersion: {t}-1\n\n"
        ));
    }
    tree.write("/var/lib/dpkg/status", status);
    tree
}

fn json_of(cmd: &mut assert_cmd::Command) -> Value {
    serde_json::from_str(&ok_stdout(cmd)).unwrap()
}

/// `doctor --format json ARGS` (it exits 1 when a check fails: a bare
/// tree has no runtime or toolkit).
fn doctor(tree: &Tree, args: &[&str]) -> Value {
    let mut cmd = tree.cmd(&["doctor", "--format", "json"]);
    cmd.args(args);
    serde_json::from_slice(&cmd.output().unwrap().stdout).unwrap()
}

#[test]
fn podman_3_0_gets_the_runtime_entry_where_it_reads_it() {
    let tree = debian("3.0.1", None);
    let v = json_of(&mut tree.cmd(&["plan", "--format", "json"]));
    assert_eq!(
        changed_paths(&v),
        [ETC_CONF, NV_CONFIG, HOOK],
        "no drop-in: Podman 3.0 reads none"
    );
    assert!(!codes(&v).contains(&"version-unknown".to_owned()), "{v:#}");
    ok_stdout(&mut tree.cmd(&["apply"]));
    assert_eq!(
        std::fs::read_to_string(tree.real(ETC_CONF)).unwrap(),
        "[engine.runtimes]\nnvidia = [\"/usr/bin/nvidia-container-runtime\"]\n"
    );
    assert!(!tree.real(DROPIN).exists());
    // Configured now, as Podman 3.0 sees it.
    let out = tree.cmd(&["plan", "--detailed-exitcode"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // doctor: the main file is right for this version.
    let podman = doctor_check(&doctor(&tree, &[]), "podman");
    assert_eq!(podman["status"], "ok", "{podman:#}");
    assert_eq!(
        podman["message"],
        "Podman 3.0.1: merges every containers.conf it finds (up to 5.x), no drop-ins (3.3 and later read them)"
    );
}

#[test]
fn cdi_is_refused_where_podman_cannot_use_nvidias_specs_and_nothing_changes() {
    for version in ["3.0.1", "4.2.0"] {
        let tree = debian(version, Some("1.17.9"));
        ok_stdout(&mut tree.cmd(&["apply"]));
        let before = tree.snapshot();
        let ctk = Ctk::new();
        let mut cmd = tree.cmd(&["apply", "--strategy", "cdi"]);
        cmd.args(ctk.flag());
        let err = fails(&mut cmd);
        assert!(
            err.starts_with(&format!(
                "error: --strategy cdi needs Podman 4.3 or later, and this host has Podman {version} (dpkg: podman {version}+ds1-1): "
            )),
            "{err}"
        );
        assert!(
            err.ends_with("hint: keep the hook (gpu-setup apply --strategy hook), or upgrade Podman to 4.3 or later first\n"),
            "{err}"
        );
        assert!(ctk.take_calls().is_empty(), "nvidia-ctk must not run");
        assert_same(&tree.snapshot(), &before);
        // doctor recommends the hook on this Podman.
        let s = doctor_check(&doctor(&tree, &[]), "strategy");
        assert!(
            s["details"][0]
                .as_str()
                .unwrap()
                .starts_with(&format!("Podman {version}, toolkit 1.17.9: recommended strategy hook: this Podman cannot use NVIDIA's CDI specs")),
            "{s:#}"
        );
    }
}

#[test]
fn cdi_works_from_podman_4_3_and_doctor_passes_the_cdi_host() {
    let tree = debian("4.3.1", Some("1.17.9"));
    for exe in ["/usr/bin/nvidia-ctk", "/usr/bin/podman", "/usr/sbin/runc"] {
        tree.exe(exe);
    }
    let ctk = Ctk::new();
    let mut cmd = tree.cmd(&["apply", "--strategy", "cdi"]);
    cmd.args(ctk.flag());
    ok_stdout(&mut cmd);
    // Told the strategy or not, doctor judges the CDI host as CDI: no
    // `fail hooks ... hint: gpu-setup apply`, which would undo it.
    let ctk_flag = ctk.flag();
    let flag: Vec<&str> = ctk_flag.iter().map(String::as_str).collect();
    for extra in [vec![], vec!["--strategy", "cdi"]] {
        let args: Vec<&str> = flag.iter().copied().chain(extra).collect();
        let d = doctor(&tree, &args);
        let hooks = doctor_check(&d, "hooks");
        assert_eq!(hooks["status"], "ok", "{hooks:#}");
        assert_eq!(
            hooks["message"],
            "no NVIDIA OCI hook, as the CDI strategy wants (CDI gives containers their GPUs)"
        );
        assert_eq!(
            doctor_check(&d, "strategy")["status"],
            "ok",
            "{:#}",
            doctor_check(&d, "strategy")
        );
        let runtimes = doctor_check(&d, "runtimes");
        assert_eq!(runtimes["status"], "ok", "{runtimes:#}");
        assert!(
            runtimes["message"]
                .as_str()
                .unwrap()
                .starts_with("no `nvidia` runtime entry, which the CDI strategy does not use; "),
            "{runtimes:#}"
        );
        for c in d["checks"].as_array().unwrap() {
            if let Some(hint) = c["hint"].as_str() {
                assert!(!hint.contains("--strategy hook"), "{c:#}");
                assert_ne!(hint, "gpu-setup apply", "{c:#}");
            }
        }
    }
}

#[test]
fn a_cdi_spec_newer_than_podman_accepts_is_refused() {
    // Podman 4.3's CDI library accepts cdiVersion 0.5.0 at most.
    let tree = debian("4.3.1", Some("1.17.9"));
    let ctk = Ctk::new();
    ctk.set_spec(
        &fixture("cdi/nvidia-ctk-v1.18-generate.yaml")
            .replace("cdiVersion: 0.5.0", "cdiVersion: 0.6.0"),
    );
    let before = tree.snapshot();
    let mut cmd = tree.cmd(&["plan", "--strategy", "cdi"]);
    cmd.args(ctk.flag());
    let err = fails(&mut cmd);
    assert!(
        err.starts_with("error: the CDI spec nvidia-ctk generated declares cdiVersion 0.6.0, and Podman 4.3.1 (dpkg: podman 4.3.1+ds1-1) accepts at most 0.5.0: Podman would refuse the spec\n"),
        "{err}"
    );
    assert_same(&tree.snapshot(), &before);
}

#[test]
fn podman_5_5_1_does_not_read_the_refresh_units_spec() {
    let tree = debian("5.5.1", Some("1.18.2"));
    tree.write(
        "/usr/lib/systemd/system/nvidia-cdi-refresh.path",
        "[Path]\n",
    );
    tree.write(
        "/etc/systemd/system/multi-user.target.wants/nvidia-cdi-refresh.path",
        "",
    );
    let out = tree
        .cmd(&["plan", "--strategy", "cdi", "--strict"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning[cdi-spec-not-read]: Podman 5.5.1 reads CDI specs from [\"/etc/cdi\"], which does not include `/var/run/cdi` where NVIDIA's refresh units write theirs"),
        "{err}"
    );
}

#[test]
fn podman_5_and_later_say_that_gpus_asks_for_cdi() {
    let tree = debian("5.8.0", None);
    let v = json_of(&mut tree.cmd(&["plan", "--format", "json"]));
    assert!(codes(&v).contains(&"gpus-flag-is-cdi".to_owned()), "{v:#}");
    let tree = debian("4.3.1", None);
    let v = json_of(&mut tree.cmd(&["plan", "--format", "json"]));
    assert!(!codes(&v).contains(&"gpus-flag-is-cdi".to_owned()), "{v:#}");
}

#[test]
fn podman_6_fails_cgroup_v1_in_doctor() {
    let tree = debian("6.0.0", None);
    tree.write("/sys/fs/cgroup/memory/memory.limit_in_bytes", "0\n");
    let c = doctor_check(&doctor(&tree, &[]), "cgroups");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .ends_with("Podman 6.0.0 does not run on cgroup v1 (6.0 dropped it; provisional)"),
        "{c:#}"
    );
}

#[test]
fn an_unknown_version_is_said_and_a_flag_wins() {
    let tree = Tree::stock();
    let v = json_of(&mut tree.cmd(&["plan", "--format", "json"]));
    let w = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "version-unknown")
        .unwrap()
        .clone();
    assert_eq!(
        w["message"],
        "Podman's version is unknown: no package database under the root names it (programs are run only when --root is `/`): gpu-setup follows the rules of any released Podman"
    );
    // --podman-version wins over the database.
    let tree = debian("5.8.0", None);
    let v = json_of(&mut tree.cmd(&["plan", "--format", "json", "--podman-version", "3.0.1"]));
    assert_eq!(changed_paths(&v)[0], ETC_CONF);
}

#[test]
fn rollback_refuses_to_leave_runtimes_flags_without_their_runtime() {
    // Podman 5.7+ fails every command when [engine.runtimes_flags] names
    // a runtime without an entry (seen with 5.8.6).
    let tree = debian("5.8.0", None);
    ok_stdout(&mut tree.cmd(&["apply"]));
    tree.write(
        "/etc/containers/containers.conf.d/50-flags.conf",
        "[engine.runtimes_flags]\nnvidia = [\"--debug\"]\n",
    );
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["rollback"]));
    assert_eq!(
        err,
        "error: rolling back transaction 1 would break Podman: runtime-flags-orphaned: `/etc/containers/containers.conf.d/50-flags.conf` sets [engine.runtimes_flags] nvidia while no file defines that runtime: Podman 5.7 and later then fail every command\nhint: remove `nvidia` from [engine.runtimes_flags] in `/etc/containers/containers.conf.d/50-flags.conf`; or roll back anyway with `gpu-setup rollback 1 --force`\n"
    );
    assert_same(&tree.snapshot(), &before);
    // On 5.6 the key means nothing: no refusal.
    let old = debian("5.6.0", None);
    ok_stdout(&mut old.cmd(&["apply"]));
    old.write(
        "/etc/containers/containers.conf.d/50-flags.conf",
        "[engine.runtimes_flags]\nnvidia = [\"--debug\"]\n",
    );
    ok_stdout(&mut old.cmd(&["rollback"]));
    // --force rolls back and says so.
    let out = tree.cmd(&["rollback", "--force"]).output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning[runtime-flags-orphaned]"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
