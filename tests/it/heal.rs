//! Keeping the host configured: the heal units as shipped, and simulations of
//! each package event followed by the exact command the service (or the APT
//! hook) runs, read from the file that ships it.
//!
//! The command works on `/`, so it runs in a private mount namespace whose
//! `/etc`, `/usr` and `/var` are overlays: the lower layer is this machine's
//! own directories (never written), the upper layer a temporary directory
//! that holds the simulated host (toolkit binaries, NVIDIA's files, the
//! profile, a copy of gpu-setup at /usr/bin/gpu-setup) and receives every
//! write. The namespace vanishes with the command.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

use crate::util::*;

const UNITS: [&str; 3] = [
    "gpu-setup-heal.service",
    "gpu-setup-heal.path",
    "gpu-setup-heal.timer",
];
const PROFILE: &str = "/etc/gpu-setup.toml";
const RPM_TOML: &str = "nvidia-config.toml/nvidia-container-toolkit-v1.13.5-rpm-yum.toml";
const HOOK_1_13: &str = "hooks/nvidia-container-toolkit-v1.13.5-oci-nvidia-hook.json";
/// systemd's default `PATH` for system services.
const SYSTEMD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin";

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn unit(name: &str) -> String {
    fs::read_to_string(repo(&format!("templates/systemd/{name}"))).unwrap()
}

/// The values of `key=` lines in a unit file.
fn values(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .collect()
}

/// The service's `ExecStart=` as argv (it has no quoting, checked here, so
/// splitting on spaces is what systemd does with it).
fn exec_start() -> Vec<String> {
    let lines = values(&unit("gpu-setup-heal.service"), "ExecStart");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        !lines[0].contains(['"', '\'', '\\', '$', '%']),
        "{}",
        lines[0]
    );
    lines[0].split_whitespace().map(str::to_owned).collect()
}

/// Whether a tool the packaging checks need is here; CI
/// (`GPU_SETUP_REQUIRE_PACKAGING`) fails instead of skipping.
pub fn have_tool(tool: &str, package: &str) -> bool {
    let found = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
        .iter()
        .any(|d| Path::new(d).join(tool).is_file());
    if !found {
        assert!(
            std::env::var_os("GPU_SETUP_REQUIRE_PACKAGING").is_none(),
            "GPU_SETUP_REQUIRE_PACKAGING is set, so `{tool}` must be installed (apt-get install {package})"
        );
        eprintln!("skipped: needs `{tool}` (apt-get install {package})");
    }
    found
}

#[test]
fn the_units_pass_systemd_analyze_verify() {
    if !need_root("a mount namespace to put gpu-setup at /usr/bin/gpu-setup")
        || !have_tool("systemd-analyze", "systemd")
    {
        return;
    }
    // verify checks that ExecStart's program exists: show the built binary
    // at /usr/bin/gpu-setup in a private namespace (an overlay on /usr/bin).
    let dir = tempfile::tempdir().unwrap();
    for d in ["u", "w"] {
        fs::create_dir(dir.path().join(d)).unwrap();
    }
    fs::copy(crate::util::bin(), dir.path().join("u/gpu-setup")).unwrap();
    let units: Vec<PathBuf> = UNITS
        .iter()
        .map(|u| repo(&format!("templates/systemd/{u}")))
        .collect();
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t overlay overlay -o lowerdir=/usr/bin,upperdir=\"$D/u\",workdir=\"$D/w\" /usr/bin && exec systemd-analyze verify --man=no \"$@\"",
        )
        .arg("sh")
        .args(&units)
        .env("D", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Warnings (an unknown key, a bad value) do not change the exit code.
    assert_eq!(stderr, "", "systemd-analyze verify warned");
    // And it does catch a broken unit.
    let bad = dir.path().join("gpu-setup-heal.service");
    fs::write(
        &bad,
        unit("gpu-setup-heal.service").replace("Type=oneshot", "Type=oneshot\nExecStrat=/bin/true"),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Unknown key 'ExecStrat'"),
        "{out:?}"
    );
}

#[test]
fn the_units_watch_every_default_managed_file_and_run_heal_with_the_profile() {
    let d = gpu_setup_plan::DesiredState::default();
    let watched = values(&unit("gpu-setup-heal.path"), "PathChanged");
    assert_eq!(
        watched,
        [
            d.containers_conf.as_str(),
            d.nvidia_config.as_str(),
            d.hook_file.as_str(),
            d.cdi_spec.as_str()
        ]
    );
    let service = unit("gpu-setup-heal.service");
    assert_eq!(
        exec_start(),
        [
            "/usr/bin/gpu-setup",
            "--format",
            "json",
            "--color",
            "never",
            "heal",
            "--profile",
            PROFILE
        ]
    );
    // Without a profile the unit is skipped, not failed.
    assert_eq!(values(&service, "ConditionPathExists"), [PROFILE]);
    for u in ["gpu-setup-heal.path", "gpu-setup-heal.timer"] {
        assert_eq!(values(&unit(u), "Unit"), ["gpu-setup-heal.service"], "{u}");
    }
    // Nothing is enabled by a package: the [Install] sections only say
    // where `systemctl enable` links them.
    assert_eq!(
        values(&unit("gpu-setup-heal.timer"), "WantedBy"),
        ["timers.target"]
    );
    assert!(values(&service, "WantedBy").is_empty());
}

/// A simulated host: the upper layers of `/etc`, `/usr` and `/var`.
struct Host {
    view: Overlay,
}

impl Host {
    /// A host with the NVIDIA Container Toolkit v1.13.5 installed from its
    /// RPMs: the hook binary and the `nvidia-container-toolkit` link to it
    /// (%posttrans), the runtime, nvidia-ctk, the package's hook file and
    /// config.toml; gpu-setup at /usr/bin/gpu-setup and the profile.
    fn new(profile: &str) -> Option<Host> {
        if !need_root("mount namespaces with overlays on /etc, /usr and /var") {
            return None;
        }
        for path in [
            PROFILE,
            NV_CONFIG,
            HOOK,
            DROPIN,
            STATE_DIR,
            "/usr/bin/gpu-setup",
        ] {
            assert!(
                !Path::new(path).exists(),
                "this machine has {path}: the simulation would see it"
            );
        }
        let host = Host {
            view: Overlay::new(),
        };
        host.write(PROFILE, profile);
        let bin = host.upper("/usr/bin/gpu-setup");
        fs::create_dir_all(bin.parent().unwrap()).unwrap();
        fs::copy(crate::util::bin(), &bin).unwrap();
        host.install_toolkit();
        host.write(NV_CONFIG, fixture(RPM_TOML));
        host.write(HOOK, fixture(HOOK_1_13));
        Some(host)
    }

    fn install_toolkit(&self) {
        for exe in [
            "/usr/bin/nvidia-container-runtime-hook",
            "/usr/bin/nvidia-container-runtime",
            "/usr/bin/nvidia-ctk",
        ] {
            self.write(exe, "#!/bin/sh\nexit 0\n");
            fs::set_permissions(self.upper(exe), fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::os::unix::fs::symlink(
            "/usr/bin/nvidia-container-runtime-hook",
            self.upper("/usr/bin/nvidia-container-toolkit"),
        )
        .unwrap();
    }

    fn upper(&self, host_path: &str) -> PathBuf {
        self.view.upper(host_path)
    }

    fn write(&self, host_path: &str, content: impl AsRef<[u8]>) {
        let p = self.upper(host_path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    fn read(&self, host_path: &str) -> Option<String> {
        fs::read_to_string(self.upper(host_path)).ok()
    }

    /// Runs `argv` in the simulated host, as systemd would (no terminal, its
    /// default `PATH`, no other variable).
    fn run(&self, argv: &[String]) -> Output {
        // Each word as a variable, so no quoting can change it.
        let names: Vec<String> = (0..argv.len()).map(|i| format!("A{i}")).collect();
        let script = format!(
            "PATH={SYSTEMD_PATH}\nexec {}",
            names
                .iter()
                .map(|n| format!("\"${n}\""))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let env: Vec<(&str, &std::ffi::OsStr)> = names
            .iter()
            .zip(argv)
            .map(|(n, a)| (n.as_str(), std::ffi::OsStr::new(a)))
            .collect();
        self.view.sh(&script, &env)
    }

    /// Runs the service's ExecStart; returns its exit code and JSON.
    fn heal(&self) -> (Option<i32>, Value) {
        let out = self.run(&exec_start());
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code(), v)
    }

    /// `gpu-setup history --format json` in the simulated host.
    fn history(&self) -> Vec<Value> {
        let out = self.run(&[
            "/usr/bin/gpu-setup".into(),
            "--format".into(),
            "json".into(),
            "history".into(),
        ]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["transactions"].as_array().unwrap().clone()
    }

    /// Every file of the simulated host but the journal.
    fn files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
            for e in fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(base).unwrap().to_path_buf();
                if rel.starts_with("work") || rel.starts_with("var/lib/gpu-setup") {
                    continue;
                }
                let meta = fs::symlink_metadata(&p).unwrap();
                if meta.is_dir() {
                    walk(&p, base, out);
                } else if meta.is_file() {
                    out.push((rel, fs::read(&p).unwrap()));
                } else {
                    out.push((rel, Vec::new()));
                }
            }
        }
        let mut out = Vec::new();
        walk(self.view.path(), self.view.path(), &mut out);
        out.sort();
        out
    }

    /// The first heal on a freshly installed toolkit: configures the host
    /// (the package's hook is left: it runs the same binary).
    fn configured(profile: &str) -> Option<Host> {
        let host = Host::new(profile)?;
        let (code, v) = host.heal();
        assert_eq!(code, Some(0), "{v:#}");
        assert_eq!(v["changed"], true, "{v:#}");
        assert_eq!(changed_paths(&v), [DROPIN, NV_CONFIG]);
        assert_eq!(host.read(HOOK).unwrap(), fixture(HOOK_1_13));
        Some(host)
    }
}

#[test]
fn an_rpm_upgrade_that_saves_our_config_as_rpmsave_is_healed_in_one_transaction() {
    let Some(host) = Host::configured("") else {
        return;
    };
    let ours = host.read(NV_CONFIG).unwrap();
    assert!(ours.contains("\nno-cgroups = true\n"));
    // v1.10-v1.13 RPMs mark config.toml %config: an upgrade that changes it
    // installs the package's copy and keeps ours as config.toml.rpmsave.
    fs::rename(
        host.upper(NV_CONFIG),
        host.upper(&format!("{NV_CONFIG}.rpmsave")),
    )
    .unwrap();
    host.write(NV_CONFIG, fixture(RPM_TOML));
    let (code, v) = host.heal();
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["transaction"], 2, "{v:#}");
    assert_eq!(v["heal"]["mode"], "apply");
    assert_eq!(
        v["heal"]["drift"],
        serde_json::json!([{"path": NV_CONFIG, "action": "modify", "reasons": ["set [nvidia-container-cli] no-cgroups = true"]}])
    );
    // no-cgroups is back, on the package's new file; the .rpmsave is as
    // rpm left it.
    assert_eq!(host.read(NV_CONFIG).unwrap(), ours);
    assert_eq!(host.read(&format!("{NV_CONFIG}.rpmsave")).unwrap(), ours);
    // history says it was a heal, and why.
    let history = host.history();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["kind"], "apply");
    assert_eq!(history[0]["heal"]["drift"][0]["path"], NV_CONFIG);
    // Converged: two more heals, no transaction, nothing written.
    let before = host.files();
    for _ in 0..2 {
        let (code, v) = host.heal();
        assert_eq!(
            (code, &v["changed"]),
            (Some(0), &Value::Bool(false)),
            "{v:#}"
        );
    }
    assert_eq!(host.history().len(), 2);
    assert_eq!(host.files(), before);
}

#[test]
fn the_debian_postinst_rewrite_keeps_the_values_so_there_is_nothing_to_heal() {
    let Some(host) = Host::configured("") else {
        return;
    };
    // What the postinst runs, the real one: `nvidia-ctk --quiet config
    // --config-file /etc/nvidia-container-runtime/config.toml --in-place`
    // (v1.17.9 and v1.20.0 from ../shared/tools): its own layout and
    // comments, our value kept (no-cgroups = true is not the default, so
    // not re-commented).
    let tools = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/tools/nvidia-container-toolkit");
    assert!(
        tools.join("v1.17.9/nvidia-ctk").exists(),
        "{}",
        tools.display()
    );
    for version in ["v1.17.9", "v1.20.0"] {
        let configured = fs::read_to_string(host.upper(NV_CONFIG)).unwrap();
        let out = Command::new(tools.join(version).join("nvidia-ctk"))
            .args(["--quiet", "config", "--in-place", "--config-file"])
            .arg(host.upper(NV_CONFIG))
            .env_clear()
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let rewritten = fs::read_to_string(host.upper(NV_CONFIG)).unwrap();
        if version == "v1.17.9" {
            assert_ne!(
                rewritten, configured,
                "{version}: the postinst rewrites the file"
            );
        }
        assert!(
            rewritten.contains("no-cgroups = true"),
            "{version}: {rewritten}"
        );
        let before = host.files();
        let (code, v) = host.heal();
        assert_eq!(code, Some(0), "{v:#}");
        assert_eq!(v["changed"], false, "{version}: {v:#}");
        assert_eq!(v["transaction"], Value::Null);
        assert_eq!(host.history().len(), 1);
        assert_eq!(host.files(), before);
    }
}

#[test]
fn an_rpm_rewriting_its_hook_that_runs_the_same_binary_is_not_fought() {
    let Some(host) = Host::new("") else {
        return;
    };
    // A host where gpu-setup wrote its own hook (no package hook then).
    fs::remove_file(host.upper(HOOK)).unwrap();
    let (_, v) = host.heal();
    assert!(
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == HOOK),
        "{v:#}"
    );
    // An upgrade of the v1.13 RPM writes its file back.
    host.write(HOOK, fixture(HOOK_1_13));
    let before = host.files();
    let (code, v) = host.heal();
    assert_eq!(
        (code, &v["changed"]),
        (Some(0), &Value::Bool(false)),
        "{v:#}"
    );
    assert_eq!(host.files(), before);
    assert_eq!(host.history().len(), 1);
}

#[test]
fn after_the_toolkit_is_removed_heal_changes_nothing_and_says_why() {
    let Some(host) = Host::configured("") else {
        return;
    };
    // `dnf remove nvidia-container-toolkit nvidia-container-toolkit-base`:
    // the binaries and the package's hook file go, the modified %config
    // file is saved as .rpmsave.
    for f in [
        "/usr/bin/nvidia-container-runtime-hook",
        "/usr/bin/nvidia-container-toolkit",
        "/usr/bin/nvidia-container-runtime",
        "/usr/bin/nvidia-ctk",
        HOOK,
    ] {
        fs::remove_file(host.upper(f)).unwrap();
    }
    fs::rename(
        host.upper(NV_CONFIG),
        host.upper(&format!("{NV_CONFIG}.rpmsave")),
    )
    .unwrap();
    let before = host.files();
    let (code, v) = host.heal();
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["changed"], false);
    assert!(
        v["heal"]["skipped"]
            .as_str()
            .unwrap()
            .starts_with("the NVIDIA Container Toolkit is not installed"),
        "{v:#}"
    );
    // Nothing recreated; gpu-setup's own drop-in stays until `apply
    // --state absent` (Podman drops an entry whose runtime is gone).
    assert_eq!(host.files(), before);
    assert!(host.read(HOOK).is_none() && host.read(NV_CONFIG).is_none());
    assert!(host.read(DROPIN).is_some());
    assert_eq!(host.history().len(), 1);
    // Reinstalled: the next heal configures it again.
    host.install_toolkit();
    host.write(NV_CONFIG, fixture(RPM_TOML));
    let (code, v) = host.heal();
    assert_eq!(
        (code, &v["changed"]),
        (Some(0), &Value::Bool(true)),
        "{v:#}"
    );
}

#[test]
fn report_mode_changes_nothing_and_fails_the_unit_while_changes_are_pending() {
    let Some(host) = Host::new("heal = \"report\"\n") else {
        return;
    };
    let before = host.files();
    let (code, v) = host.heal();
    // Exit 2: systemd marks the unit failed, `systemctl --failed` shows it.
    assert_eq!(code, Some(2), "{v:#}");
    assert_eq!(v["heal"]["mode"], "report");
    assert_eq!(v["heal"]["pending"], true);
    assert_eq!(
        v["changed"], true,
        "the plan's `changed`: changes are pending"
    );
    assert_eq!(v["files"].as_array().unwrap().len(), 2, "{v:#}");
    assert_eq!(host.files(), before);
    assert!(host.history().is_empty());
    // Once an admin applied, report mode is quiet and succeeds.
    host.write(PROFILE, "heal = \"apply\"\n");
    assert_eq!(host.heal().0, Some(0));
    host.write(PROFILE, "heal = \"report\"\n");
    let (code, v) = host.heal();
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["heal"]["pending"], false);
    assert_eq!(host.history().len(), 1);
}

#[test]
fn the_apt_hook_runs_heal_after_dpkg() {
    if !have_tool("apt-config", "apt") {
        return;
    }
    let Some(host) = Host::configured("") else {
        return;
    };
    // The command as apt reads it from the snippet.
    let out = Command::new("apt-config")
        .arg("-c")
        .arg(repo("templates/apt/90gpu-setup-heal"))
        .args([
            "dump",
            "--no-empty",
            "--format",
            "%v%n",
            "DPkg::Post-Invoke",
        ])
        .output()
        .unwrap();
    let dumped = String::from_utf8(out.stdout).unwrap();
    let commands: Vec<&str> = dumped.lines().filter(|l| l.contains("gpu-setup")).collect();
    assert_eq!(commands.len(), 1, "{dumped}");
    // A package upgrade dropped no-cgroups; apt runs the hook (with sh -c).
    host.write(NV_CONFIG, fixture(RPM_TOML));
    let out = host.run(&["sh".into(), "-c".into(), commands[0].to_owned()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("Healed: transaction 2 put back the desired state (1 modified)."),
        "{stdout}"
    );
    assert!(host
        .read(NV_CONFIG)
        .unwrap()
        .contains("\nno-cgroups = true\n"));
    // Without a profile it does nothing, and never fails apt.
    fs::remove_file(host.upper(PROFILE)).unwrap();
    let out = host.run(&["sh".into(), "-c".into(), commands[0].to_owned()]);
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
}

#[test]
fn the_dnf_action_runs_heal_after_a_toolkit_transaction() {
    let Some(host) = Host::configured("") else {
        return;
    };
    // post-transaction-actions: `package_filter:transaction_state:command`,
    // the command split on spaces (dnf-plugins-core
    // post-transaction-actions.py).
    let text = fs::read_to_string(repo("templates/dnf/gpu-setup.action")).unwrap();
    let actions: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .collect();
    assert!(!actions.is_empty());
    for action in actions {
        let mut parts = action.splitn(3, ':');
        let (filter, state, command) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        assert!(filter.starts_with("nvidia-container-toolkit"), "{action}");
        assert_eq!(state, "any", "{action}");
        host.write(NV_CONFIG, fixture(RPM_TOML));
        let argv: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
        let out = host.run(&argv);
        assert!(out.status.success(), "{out:?}");
        assert!(host
            .read(NV_CONFIG)
            .unwrap()
            .contains("\nno-cgroups = true\n"));
    }
}

/// A profile in a directory only root (or the caller) can write.
fn profile(text: &str) -> (TempDir, PathBuf) {
    let dir = root_only_tempdir();
    let path = dir.path().join("gpu-setup.toml");
    fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn a_heal_transaction_is_marked_in_history_with_the_drift_it_repaired() {
    let tree = Tree::stock();
    tree.cmd(&["apply", "-q"]).assert().success();
    let (_dir, p) = profile("");
    // A package upgrade put its own config.toml back.
    tree.write(NV_CONFIG, fixture(UBUNTU_NV));
    let out = ok_stdout(tree.cmd(&["heal", "--profile"]).arg(&p));
    assert!(
        out.ends_with("Healed: transaction 2 put back the desired state (1 modified). Undo with `gpu-setup rollback 2`.\n"),
        "{out}"
    );
    let history = ok_stdout(&mut tree.cmd(&["history"]));
    let lines: Vec<&str> = history.lines().collect();
    assert!(
        lines[1].contains("  heal  ") && lines[1].ends_with("applied"),
        "{history}"
    );
    assert_eq!(lines[2], format!("        modify  {NV_CONFIG}"));
    assert_eq!(
        lines[3],
        format!("        drift:  {NV_CONFIG}: set [nvidia-container-cli] no-cgroups = true")
    );
    // A plain apply is not a heal.
    assert!(lines[4].contains("  apply  "), "{history}");
    // The heal is undone like any transaction.
    tree.cmd(&["rollback", "-q"]).assert().success();
    assert_eq!(
        fs::read_to_string(tree.real(NV_CONFIG)).unwrap(),
        fixture(UBUNTU_NV)
    );
    // Nothing to heal: the usual line, nothing written.
    tree.cmd(&["apply", "-q"]).assert().success();
    let before = tree.snapshot();
    let out = ok_stdout(tree.cmd(&["heal", "--profile"]).arg(&p));
    assert_eq!(out, "The host is configured: nothing to change.\n");
    assert_same(&tree.snapshot(), &before);
}

#[test]
fn mode_flag_wins_over_the_profile_and_bad_modes_are_refused() {
    let tree = Tree::stock();
    let (_dir, p) = profile("heal = \"apply\"\n");
    let before = tree.snapshot();
    let out = tree
        .cmd(&["heal", "--mode", "report", "--profile"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.ends_with("Drift found (heal = report): nothing was changed; `gpu-setup heal --mode apply` repairs it.\n"),
        "{stdout}"
    );
    assert_same(&tree.snapshot(), &before);
    // -q: the exit code alone.
    let out = tree
        .cmd(&["-q", "heal", "--mode", "report", "--profile"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!((out.status.code(), out.stdout.len()), (Some(2), 0));
    // A bad mode in the profile: the file, line and column; nothing changed.
    let (_bad_dir, bad) = profile("strategy = \"hook\"\nheal = \"sometimes\"\n");
    let err = fails(tree.cmd(&["heal", "--profile"]).arg(&bad));
    assert!(err.starts_with("error: invalid profile\n"), "{err}");
    assert!(
        err.contains(&format!(
            "`{}` line 2, column 8: unknown variant `sometimes`, expected `apply` or `report`",
            bad.display()
        )),
        "{err}"
    );
    let err = fails(&mut tree.cmd(&["heal", "--mode", "sometimes"]));
    assert!(
        err.contains("invalid value 'sometimes' for '--mode <MODE>'"),
        "{err}"
    );
    assert_same(&tree.snapshot(), &before);
}

#[test]
fn plan_and_apply_accept_a_profile_with_a_heal_key_and_ignore_it() {
    let tree = Tree::stock();
    let (_dir, p) = profile("heal = \"report\"\n");
    let with = ok_stdout(tree.cmd(&["plan", "--format", "json", "--profile"]).arg(&p));
    let without = ok_stdout(&mut tree.cmd(&["plan", "--format", "json"]));
    assert_eq!(with, without);
}

#[test]
fn with_cdi_and_no_nvidia_ctk_heal_changes_nothing_and_says_why() {
    let tree = Tree::stock();
    let (_dir, p) = profile("strategy = \"cdi\"\nnvidia_ctk = \"/nonexistent/nvidia-ctk\"\n");
    let before = tree.snapshot();
    let out = tree
        .cmd(&["--format", "json", "heal", "--profile"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["heal"]["skipped"],
        "the NVIDIA Container Toolkit is not installed (`/nonexistent/nvidia-ctk` does not exist): nothing to heal"
    );
    assert_eq!(v["changed"], false);
    assert_same(&tree.snapshot(), &before);
    // Text: a note, and a line saying nothing was healed.
    let out = tree.cmd(&["heal", "--profile"]).arg(&p).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Nothing healed.\n");
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("note: the NVIDIA Container Toolkit is not installed"));
}
