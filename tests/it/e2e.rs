//! End to end with real Podman: gpu-setup writes a test tree, then Podman
//! (Debian's, with runc) reads it and runs containers.
//!
//! Each case builds its own lab: a tree `T` holding the stock files, and a
//! work dir `W` holding a stand-in for `nvidia-container-runtime` (records
//! its arguments, then execs runc), a stand-in for the hook (records that it
//! ran and its `PATH`), a busybox image, and Podman's storage. Podman runs in
//! a private mount namespace (`unshare -m`) where `T/etc/containers`,
//! `T/usr/share/containers`, `W/var` and `W/run` are bind-mounted over the
//! real ones, so it reads the tree's files and never touches the machine's
//! own `/etc`, `/usr`, `/var` or `/run`. The recipe (cgroupfs, runc,
//! explicit ulimits) is the one `../shared/docs/podman-nvidia-facts.md`
//! gives for these machines.
//!
//! The cases run one at a time (a shared lock): each starts Podman several
//! times, and the machines have two cores.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Output};
use std::sync::Mutex;

use tempfile::TempDir;

use crate::util::*;

/// The image every case runs: busybox, imported from a tarball.
const IMAGE: &str = "localhost/gpu-setup-e2e:1";
/// The `PATH` of the hook JSON gpu-setup writes.
const HOOK_PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The `PATH` Podman runs with: different from the hook JSON's, so the
/// hook's `PATH` shows where it came from.
const PODMAN_PATH_ENV: &str = "/usr/sbin:/usr/bin:/sbin:/bin:/gpu-setup-e2e-marker";
/// What Podman says when `--runtime nvidia` names no configured runtime.
const NOT_FOUND: &str = "default OCI runtime \"nvidia\" not found";

/// `podman run` and the flags every case runs containers with (no network,
/// explicit ulimits: the facts doc's recipe for these machines).
const RUN: [&str; 7] = [
    "run",
    "--rm",
    "--network=none",
    "--ulimit",
    "nofile=20000:20000",
    "--ulimit",
    "nproc=32768:32768",
];

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Whether this machine can run the e2e cases: root, Podman, runc, busybox
/// and unshare. Says why when not; CI (`GPU_SETUP_REQUIRE_E2E`) fails
/// instead of skipping.
fn can_run() -> bool {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root (bind mounts in a private mount namespace)".to_owned());
    }
    for (tool, package) in [
        ("podman", "podman"),
        ("runc", "runc"),
        ("busybox", "busybox-static"),
        ("unshare", "util-linux"),
        ("tar", "tar"),
    ] {
        if which(tool).is_none() {
            missing.push(format!("`{tool}` (apt-get install {package})"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "skipped: the real-Podman e2e case needs {}",
        missing.join(", ")
    );
    assert!(
        std::env::var_os("GPU_SETUP_REQUIRE_E2E").is_none(),
        "GPU_SETUP_REQUIRE_E2E is set, so this must not skip: {why}"
    );
    eprintln!("{why}");
    false
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// A test tree and a work dir with stand-ins, image and Podman storage.
struct Lab {
    tree: Tree,
    work: TempDir,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Lab {
    /// A lab whose tree holds Debian's stock files, Ubuntu's NVIDIA
    /// config.toml and the policy.json Podman needs; `None` when the
    /// machine cannot run Podman (see [`can_run`]).
    fn new() -> Option<Lab> {
        if !can_run() {
            return None;
        }
        let serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let tree = Tree::stock();
        tree.write(
            "/etc/containers/policy.json",
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        );
        let work = tempfile::tempdir().unwrap();
        let lab = Lab {
            tree,
            work,
            _serial: serial,
        };
        for dir in ["var/tmp", "run", "img/bin"] {
            fs::create_dir_all(lab.work(dir)).unwrap();
        }
        fs::set_permissions(lab.work("var/tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        lab.stand_in(
            "runtime",
            &format!(
                "echo \"$@\" >> {}\nexec {} \"$@\"\n",
                lab.work("runtime.log").display(),
                which("runc").unwrap().display()
            ),
        );
        lab.stand_in(
            "hook",
            &format!(
                "echo \"ran PATH=$PATH args=$*\" >> {}\ncat >/dev/null\n",
                lab.work("hook.log").display()
            ),
        );
        // The tree mirrors the machine: the stand-ins are where the files
        // gpu-setup writes say they are.
        for name in ["runtime", "hook"] {
            let path = lab.path_of(name);
            lab.tree.write(&path, fs::read(lab.work(name)).unwrap());
            fs::set_permissions(lab.tree.real(&path), fs::Permissions::from_mode(0o755)).unwrap();
        }
        lab.import_image();
        Some(lab)
    }

    fn work(&self, rel: &str) -> PathBuf {
        self.work.path().join(rel)
    }

    fn stand_in(&self, name: &str, body: &str) {
        let path = self.work(name);
        fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Absolute path of a stand-in, as the flags and the files name it.
    fn path_of(&self, name: &str) -> String {
        self.work(name).to_str().unwrap().to_owned()
    }

    /// Busybox with the applets the cases use, as a Podman image.
    fn import_image(&self) {
        let busybox = which("busybox").unwrap();
        let img = self.work("img");
        fs::copy(&busybox, img.join("bin/busybox")).unwrap();
        for applet in ["sh", "echo", "true", "cat"] {
            std::os::unix::fs::symlink("busybox", img.join("bin").join(applet)).unwrap();
        }
        let tar = self.work("img.tar");
        let out = StdCommand::new("tar")
            .arg("-C")
            .arg(&img)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let out = self.podman(&["import", tar.to_str().unwrap(), IMAGE]);
        assert!(out.status.success(), "podman import: {}", text(&out.stderr));
    }

    /// `podman ARGS` in a private mount namespace that shows the tree's
    /// `/etc/containers` and `/usr/share/containers`, and the work dir's
    /// `/var` and `/run`.
    fn podman(&self, args: &[&str]) -> Output {
        self.podman_with("", args)
    }

    /// [`Lab::podman`] after `extra` (shell, run in the namespace after the
    /// lab's mounts).
    fn podman_with(&self, extra: &str, args: &[&str]) -> Output {
        let mut argv = vec![
            "podman",
            "--cgroup-manager=cgroupfs",
            "--events-backend=file",
            "--storage-driver=vfs",
        ];
        argv.extend(args);
        self.in_ns(extra, &argv)
    }

    /// `ARGV` in the lab's private mount namespace (see [`Lab::podman`]),
    /// after `extra`, with Podman's `PATH`.
    fn in_ns(&self, extra: &str, argv: &[&str]) -> Output {
        for dir in ["/etc/containers", "/usr/share/containers"] {
            fs::create_dir_all(self.tree.real(dir)).unwrap();
        }
        let script = format!(
            "set -e
mount --bind \"$T/etc/containers\" /etc/containers
mount --bind \"$T/usr/share/containers\" /usr/share/containers
mount --bind \"$W/var\" /var
mount --bind \"$W/run\" /run
{extra}
exec \"$@\"
"
        );
        StdCommand::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script, "sh"])
            .args(argv)
            .env("T", self.tree.root())
            .env("W", self.work.path())
            .env("PATH", PODMAN_PATH_ENV)
            .env_remove("CONTAINERS_CONF")
            .env_remove("CONTAINERS_CONF_OVERRIDE")
            .env_remove("GPU_SETUP_LOG")
            .output()
            .unwrap()
    }

    /// `podman [--log-level=debug] --runtime RUNTIME run ... /bin/echo ok`,
    /// after clearing the stand-ins' logs.
    fn run_with(&self, runtime: &str, debug: bool) -> Output {
        for log in ["runtime.log", "hook.log"] {
            let _ = fs::remove_file(self.work(log));
        }
        let mut args = vec!["--runtime", runtime];
        if debug {
            args.push("--log-level=debug");
        }
        args.extend(RUN);
        args.extend([IMAGE, "/bin/echo", "ok"]);
        self.podman(&args)
    }

    fn run(&self, runtime: &str) -> Output {
        self.run_with(runtime, false)
    }

    /// Asserts `podman --runtime RUNTIME run ... echo ok` prints `ok`.
    #[track_caller]
    fn assert_runs(&self, runtime: &str) {
        let out = self.run(runtime);
        assert!(
            out.status.success() && text(&out.stdout) == "ok\n",
            "podman --runtime {runtime} run: exit {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    /// Asserts the NVIDIA runtime entry is gone as far as Podman knows.
    #[track_caller]
    fn assert_no_nvidia_runtime(&self) {
        let out = self.run("nvidia");
        assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(NOT_FOUND),
            "{}",
            text(&out.stderr)
        );
        assert!(self.log("runtime.log").is_empty());
    }

    /// A stand-in's log ("" when it did not run since the last run).
    fn log(&self, name: &str) -> String {
        fs::read_to_string(self.work(name)).unwrap_or_default()
    }

    /// `gpu-setup --root T ARGS --runtime-path W/runtime --hook-path W/hook`.
    fn gpu_setup(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = self.tree.cmd(args);
        cmd.args(["--runtime-path", &self.path_of("runtime")])
            .args(["--hook-path", &self.path_of("hook")]);
        cmd
    }

    /// The tree's files, without the state dir and Podman's own lock file
    /// (`/etc/containers/networks`, made by Podman's first run).
    fn files(&self) -> Snapshot {
        self.tree
            .targets()
            .into_iter()
            .filter(|(p, _)| !p.starts_with("etc/containers/networks"))
            .collect()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The hook stand-in ran exactly once (for the one container), with the
/// `PATH` from the hook JSON, not Podman's own.
#[track_caller]
fn assert_hook_ran(lab: &Lab) {
    let log = lab.log("hook.log");
    assert_eq!(
        log,
        format!("ran PATH={HOOK_PATH_ENV} args=prestart\n"),
        "hook log"
    );
}

/// The runtime stand-in was called for create, start and delete.
#[track_caller]
fn assert_runtime_called(lab: &Lab) {
    let log = lab.log("runtime.log");
    let verbs: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for verb in ["create", "start", "delete"] {
        assert!(verbs.contains(&verb), "runtime log: {log}");
    }
}

#[test]
fn default_mode_podman_runs_the_nvidia_runtime_and_hook() {
    let Some(lab) = Lab::new() else { return };
    // Before: Podman has no nvidia runtime, and runc works.
    lab.assert_runs("runc");
    lab.assert_no_nvidia_runtime();

    ok_stdout(&mut lab.gpu_setup(&["apply"]));
    assert!(lab
        .tree
        .real("/etc/containers/containers.conf.d/99-nvidia.conf")
        .is_file());

    lab.assert_runs("nvidia");
    assert_runtime_called(&lab);
    assert_hook_ran(&lab);
    // Podman's other runtimes still work, and the hook runs for them too.
    lab.assert_runs("runc");
    assert!(lab.log("runtime.log").is_empty());
    assert_hook_ran(&lab);
}

#[test]
fn in_place_mode_for_every_corpus_containers_conf_podman_accepts() {
    if !can_run() {
        return;
    }
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for name in fixture_names("containers.conf") {
        let lab = Lab::new().unwrap();
        lab.tree
            .write(ETC_CONF, fixture(&format!("containers.conf/{name}")));
        // Which of the corpus files this Podman reads at all.
        let before = lab.run("runc");
        if !before.status.success() {
            // Only a refusal of the file itself may skip it.
            assert!(
                text(&before.stderr).contains("/etc/containers/containers.conf"),
                "{name}: {}",
                text(&before.stderr)
            );
            refused.push(format!("{name}: {}", text(&before.stderr).trim()));
            continue;
        }
        ok_stdout(&mut lab.gpu_setup(&["apply", "--containers-conf", ETC_CONF]));
        assert!(
            !lab.tree
                .real("/etc/containers/containers.conf.d/99-nvidia.conf")
                .exists(),
            "{name}: in-place mode writes no drop-in"
        );
        let out = lab.run("nvidia");
        assert!(
            out.status.success() && text(&out.stdout) == "ok\n",
            "{name}: {}",
            text(&out.stderr)
        );
        assert_runtime_called(&lab);
        assert_hook_ran(&lab);
        lab.assert_runs("runc");
        accepted.push(name);
    }
    eprintln!("accepted by this Podman: {accepted:?}\nrefused by this Podman: {refused:?}");
    // Debian's own file is read by Debian's Podman, and so are most of the
    // others; a setup problem would refuse them all.
    assert!(
        accepted.contains(
            &DEBIAN_CONF
                .trim_start_matches("containers.conf/")
                .to_owned()
        ),
        "accepted: {accepted:?}, refused: {refused:?}"
    );
    assert!(accepted.len() >= 4, "refused: {refused:?}");
}

#[test]
fn a_second_apply_changes_nothing_and_podman_still_works() {
    let Some(lab) = Lab::new() else { return };
    ok_stdout(&mut lab.gpu_setup(&["apply"]));
    lab.assert_runs("nvidia");
    let configured = lab.tree.snapshot();

    let out = ok_stdout(&mut lab.gpu_setup(&["apply"]));
    assert!(
        out.contains("The host is configured: nothing to change."),
        "{out}"
    );
    let json = ok_stdout(&mut lab.gpu_setup(&["apply", "--format", "json"]));
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["changed"], false, "{json}");
    assert_same(&lab.tree.snapshot(), &configured);

    lab.assert_runs("nvidia");
    assert_runtime_called(&lab);
    assert_hook_ran(&lab);
}

#[test]
fn rollback_restores_every_file_and_podman_forgets_the_runtime_and_hook() {
    let Some(lab) = Lab::new() else { return };
    lab.assert_runs("runc");
    let start = lab.files();

    ok_stdout(&mut lab.gpu_setup(&["apply"]));
    lab.assert_runs("nvidia");
    ok_stdout(&mut lab.tree.cmd(&["rollback"]));

    assert_same(&lab.files(), &start);
    lab.assert_no_nvidia_runtime();
    lab.assert_runs("runc");
    assert_eq!(lab.log("hook.log"), "", "the hook must no longer run");
}

#[test]
fn state_absent_removes_the_runtime_and_hook_and_keeps_other_runtimes() {
    let Some(lab) = Lab::new() else { return };
    ok_stdout(&mut lab.gpu_setup(&["apply"]));
    lab.assert_runs("nvidia");

    ok_stdout(&mut lab.gpu_setup(&["apply", "--state", "absent"]));
    assert!(!lab.tree.real(HOOK).exists());
    lab.assert_no_nvidia_runtime();
    lab.assert_runs("runc");
    assert_eq!(lab.log("hook.log"), "", "the hook must no longer run");
    // And absent again is a no-op.
    let out = ok_stdout(&mut lab.gpu_setup(&["apply", "--state", "absent"]));
    assert!(out.contains("nothing to change"), "{out}");
}

/// With `bad` written at `path`, Podman fails; apply refuses with an error
/// naming the file, changes nothing, and Podman fails exactly as before.
fn broken_input_never_reaches_podman(path: &str, bad: &str, podman_says: &str) {
    let Some(lab) = Lab::new() else { return };
    lab.tree.write(path, bad);
    let before = lab.run("runc");
    assert_eq!(before.status.code().map(|c| c != 0), Some(true));
    assert!(
        text(&before.stderr).contains(podman_says),
        "{}",
        text(&before.stderr)
    );
    let start = lab.files();

    let err = fails(&mut lab.gpu_setup(&["apply"]));
    assert!(err.contains(&format!("error: `{path}` line ")), "{err}");
    assert_same(&lab.files(), &start);
    assert!(
        !lab.tree.real(STATE_DIR).exists(),
        "no journal entry either"
    );

    let after = lab.run("runc");
    assert_eq!(after.status.code(), before.status.code());
    assert_eq!(after.stdout, before.stdout);
    assert_eq!(
        without_timestamps(&text(&after.stderr)),
        without_timestamps(&text(&before.stderr))
    );
    assert_eq!(lab.log("runtime.log"), "");
    assert_eq!(lab.log("hook.log"), "");
}

/// Podman's log lines carry `time="..."`; the rest must match.
fn without_timestamps(s: &str) -> String {
    s.lines()
        .map(|l| match l.find("level=") {
            Some(i) if l.starts_with("time=") => &l[i..],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_corrupt_hook_json_is_replaced_and_podman_works_again() {
    // gpu-setup owns the hook file whole: a truncated one, which makes
    // Podman refuse every container, is replaced (and kept for rollback).
    let Some(lab) = Lab::new() else { return };
    let truncated = "{\"version\": \"1.0.0\", \"hook\": {\n";
    lab.tree.write(HOOK, truncated);
    let before = lab.run("runc");
    assert_ne!(before.status.code(), Some(0));
    assert!(
        text(&before.stderr)
            .contains("parsing hook \"/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json\""),
        "{}",
        text(&before.stderr)
    );

    let out = lab.gpu_setup(&["apply"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("warning[hook-file-corrupt]"),
        "{}",
        text(&out.stderr)
    );
    lab.assert_runs("nvidia");
    assert_runtime_called(&lab);
    assert_hook_ran(&lab);
    lab.assert_runs("runc");

    // Rollback brings the corrupt file back, and Podman fails as before.
    ok_stdout(&mut lab.tree.cmd(&["rollback"]));
    assert_eq!(fs::read_to_string(lab.tree.real(HOOK)).unwrap(), truncated);
    let after = lab.run("runc");
    assert_eq!(after.status.code(), before.status.code());
    assert_eq!(
        without_timestamps(&text(&after.stderr)),
        without_timestamps(&text(&before.stderr))
    );
}

#[test]
fn a_malformed_containers_conf_is_refused_and_podman_is_unchanged() {
    broken_input_never_reaches_podman(
        ETC_CONF,
        "[engine\nruntime = \"runc\"\n",
        "decode configuration /etc/containers/containers.conf",
    );
}

#[test]
fn podman_itself_reports_the_runtime_and_considers_the_hook() {
    let Some(lab) = Lab::new() else { return };
    ok_stdout(&mut lab.gpu_setup(&["apply"]));

    // Podman 4.x `info` shows only the runtime in use; asked for nvidia,
    // it names the stand-in gpu-setup configured.
    let out = lab.podman(&["--runtime", "nvidia", "info", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runtime = &info["host"]["ociRuntime"];
    assert_eq!(runtime["name"], "nvidia", "{runtime}");
    assert_eq!(
        runtime["path"],
        lab.path_of("runtime").as_str(),
        "{runtime}"
    );
    // Where a Podman lists every runtime (`host.ociRuntimes`), nvidia is
    // among them.
    let plain = lab.podman(&["info", "--format", "json"]);
    let plain: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap();
    if let Some(all) = plain["host"].get("ociRuntimes") {
        assert!(all.get("nvidia").is_some(), "{all}");
    }

    let out = lab.run_with("nvidia", true);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let debug = text(&out.stderr);
    for line in [
        "reading hooks from /usr/share/containers/oci/hooks.d",
        "added hook /usr/share/containers/oci/hooks.d/oci-nvidia-hook.json",
        "hook oci-nvidia-hook.json matched; adding to stages [prestart]",
    ] {
        assert!(debug.contains(line), "missing {line:?} in:\n{debug}");
    }

    // After rollback Podman reads the hooks dir and finds nothing.
    ok_stdout(&mut lab.tree.cmd(&["rollback"]));
    let out = lab.run_with("runc", true);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("oci-nvidia-hook.json"));
}

/// The stand-ins are real files outside the tree; check the lab itself
/// keeps Podman away from the machine's own files.
#[test]
fn the_lab_never_touches_the_machines_podman_files() {
    let Some(lab) = Lab::new() else { return };
    let watched: Vec<&Path> = [
        "/etc/containers",
        "/usr/share/containers",
        "/var/lib/containers",
    ]
    .into_iter()
    .map(Path::new)
    .collect();
    let before: Vec<_> = watched.iter().map(|p| listing(p)).collect();
    ok_stdout(&mut lab.gpu_setup(&["apply"]));
    lab.assert_runs("nvidia");
    let after: Vec<_> = watched.iter().map(|p| listing(p)).collect();
    assert_eq!(before, after);
    // Podman's storage went to the work dir.
    assert!(lab.work("var/lib/containers/storage").is_dir());
}

/// Names, sizes and mtimes under a dir (empty when it does not exist).
fn listing(dir: &Path) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let meta = fs::symlink_metadata(e.path()).unwrap();
        out.push((e.path(), meta.len(), meta.modified().ok()));
        if meta.is_dir() {
            out.extend(listing(&e.path()));
        }
    }
    out.sort();
    out
}

// Doctor against real Podman: for each configuration, what `gpu-setup
// doctor` (root `/`, in the lab's namespace) says about Podman's default
// runtime, its configuration files and its hooks dirs is compared with
// what the same Podman prints (`podman info`, and its debug log), never
// with an answer written into the test.

/// What doctor and Podman each said about one configuration.
struct Views {
    doctor: serde_json::Value,
    doctor_code: Option<i32>,
    info: Output,
}

impl Views {
    /// `podman info` as JSON (it must have succeeded).
    fn info_json(&self) -> serde_json::Value {
        assert!(
            self.info.status.success(),
            "podman info: {}",
            text(&self.info.stderr)
        );
        serde_json::from_slice(&self.info.stdout).unwrap()
    }

    /// The files Podman says it merged, in order (`--log-level=debug`).
    fn merged(&self) -> Vec<String> {
        debug_values(&text(&self.info.stderr), "Merged system config \\\"")
    }

    fn check(&self, id: &str) -> &serde_json::Value {
        self.doctor["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()
    }
}

/// The quoted values following `marker` in Podman's debug lines.
fn debug_values(log: &str, marker: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.split_once(marker).map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_once("\\\"").map(|(v, _)| v.to_owned()))
        .collect()
}

/// Doctor and `podman --log-level=debug info` in the lab's namespace after
/// `extra`.
fn views(lab: &Lab, extra: &str) -> Views {
    let bin = crate::util::bin();
    let out = lab.in_ns(
        extra,
        &[
            bin.to_str().unwrap(),
            "--color",
            "never",
            "doctor",
            "--format",
            "json",
        ],
    );
    let doctor = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)));
    let info = lab.podman_with(extra, &["--log-level=debug", "info", "--format", "json"]);
    Views {
        doctor,
        doctor_code: out.status.code(),
        info,
    }
}

/// Doctor names the runtime and the files Podman itself uses.
#[track_caller]
fn assert_agree(v: &Views) {
    let info = v.info_json();
    let podman = &v.doctor["podman"];
    assert_eq!(
        podman["default_runtime"]["name"], info["host"]["ociRuntime"]["name"],
        "doctor: {podman:#}"
    );
    assert_eq!(
        podman["default_runtime"]["path"], info["host"]["ociRuntime"]["path"],
        "doctor: {podman:#}"
    );
    let files: Vec<String> = podman["config_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(files, v.merged(), "doctor: {podman:#}");
    assert_eq!(
        v.check("runtimes")["status"],
        "ok",
        "{:#}",
        v.check("runtimes")
    );
}

/// Hides `/usr/bin/crun` inside the namespace: an overlay on /usr/bin
/// whose upper dir holds a whiteout (the facts doc's recipe).
const HIDE_CRUN: &str = "mkdir -p \"$W/ovl/u\" \"$W/ovl/w\"
[ -e \"$W/ovl/u/crun\" ] || mknod \"$W/ovl/u/crun\" c 0 0
mount -t overlay overlay -o lowerdir=/usr/bin,upperdir=\"$W/ovl/u\",workdir=\"$W/ovl/w\" /usr/bin";

#[test]
fn doctor_and_podman_agree_on_the_default_runtime_files_and_hooks() {
    let Some(lab) = Lab::new() else { return };
    if which("crun").is_none() {
        assert!(
            std::env::var_os("GPU_SETUP_REQUIRE_E2E").is_none(),
            "CI installs crun (.ci/run)"
        );
        eprintln!("skipped: needs crun (apt-get install crun)");
        return;
    }
    ok_stdout(&mut lab.gpu_setup(&["apply"]));

    // crun installed: Podman takes it (findRuntime: crun first).
    let v = views(&lab, "");
    assert_agree(&v);
    assert_eq!(v.info_json()["host"]["ociRuntime"]["name"], "crun");

    // crun hidden: Podman falls back to runc, and so does doctor.
    let v = views(&lab, HIDE_CRUN);
    assert_agree(&v);
    assert_eq!(v.info_json()["host"]["ociRuntime"]["name"], "runc");
    // The nvidia entry gpu-setup wrote resolves where Podman resolves it.
    let out = lab.podman_with(
        HIDE_CRUN,
        &["--runtime", "nvidia", "info", "--format", "json"],
    );
    let nvidia: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v.doctor["podman"]["runtimes"]["nvidia"],
        nvidia["host"]["ociRuntime"]["path"]
    );
    // The hooks dirs doctor names are the ones Podman reads.
    let mut args = vec!["--log-level=debug", "--runtime", "runc"];
    args.extend(RUN);
    args.extend([IMAGE, "/bin/true"]);
    let run = lab.podman_with(HIDE_CRUN, &args);
    assert!(run.status.success(), "{}", text(&run.stderr));
    // `msg="reading hooks from DIR"`, once per dir (and per container).
    let mut read: Vec<String> = Vec::new();
    for l in text(&run.stderr).lines() {
        if let Some((_, dir)) = l.split_once("reading hooks from ") {
            let dir = dir.trim_end_matches('"').to_owned();
            if !read.contains(&dir) {
                read.push(dir);
            }
        }
    }
    let dirs: Vec<String> = v.doctor["podman"]["hooks_dirs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(read, dirs);

    // A runtime set to one that is not installed: Podman fails every
    // command, and doctor fails the runtimes check.
    lab.tree
        .write(ETC_CONF, "[engine]\nruntime = \"gpu-setup-missing\"\n");
    let v = views(&lab, "");
    assert_eq!(v.info.status.code(), Some(125), "{}", text(&v.info.stderr));
    assert!(text(&v.info.stderr).contains("default OCI runtime \"gpu-setup-missing\" not found"));
    assert_eq!(v.doctor_code, Some(1));
    let c = v.check("runtimes");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .starts_with("the default runtime `gpu-setup-missing`"),
        "{c:#}"
    );
}

#[test]
fn doctor_and_podman_agree_on_this_machines_own_configuration() {
    let Some(lab) = Lab::new() else { return };
    // The machine's own /etc/containers and /usr/share/containers, seen
    // through an overlay so nothing Podman writes reaches them.
    let bin = crate::util::bin();
    let script = "set -e
mkdir -p \"$W/etc-u\" \"$W/etc-w\"
mount -t overlay overlay -o lowerdir=/etc/containers,upperdir=\"$W/etc-u\",workdir=\"$W/etc-w\" /etc/containers
mount --bind \"$W/var\" /var
mount --bind \"$W/run\" /run
\"$BIN\" --color never doctor --format json > \"$W/doctor.json\" || true
exec podman --log-level=debug --cgroup-manager=cgroupfs --events-backend=file --storage-driver=vfs info --format json
";
    let out = StdCommand::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .env("W", lab.work.path())
        .env("BIN", &bin)
        .env("PATH", PODMAN_PATH_ENV)
        .env_remove("CONTAINERS_CONF")
        .env_remove("CONTAINERS_CONF_OVERRIDE")
        .output()
        .unwrap();
    let doctor: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(lab.work("doctor.json")).unwrap()).unwrap();
    let v = Views {
        doctor,
        doctor_code: None,
        info: out,
    };
    let info = v.info_json();
    let podman = &v.doctor["podman"];
    assert_eq!(
        podman["default_runtime"]["name"], info["host"]["ociRuntime"]["name"],
        "{podman:#}"
    );
    assert_eq!(
        podman["default_runtime"]["path"], info["host"]["ociRuntime"]["path"],
        "{podman:#}"
    );
    let files: Vec<&str> = podman["config_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(files, v.merged(), "{podman:#}");
    assert_eq!(
        podman["version"],
        serde_json::to_value(gpu_setup_plan::PodmanVersion::parse(
            info["version"]["Version"].as_str().unwrap()
        ))
        .unwrap()
    );
}

#[test]
fn podman_before_4_8_refuses_append_attributes_as_doctor_says() {
    let Some(lab) = Lab::new() else { return };
    let podman_version =
        gpu_setup_plan::PodmanVersion::parse(&text(&lab.podman(&["--version"]).stdout)).unwrap();
    lab.tree.write(
        "/etc/containers/containers.conf.d/50-hooks.conf",
        "[engine]\nhooks_dir = [\"/etc/containers/oci/hooks.d\", {append=true}]\n",
    );
    let v = views(&lab, HIDE_CRUN);
    let c = v.check("podman");
    if podman_version.at_least(4, 8) {
        // This Podman accepts the attribute: so must doctor.
        assert!(v.info.status.success(), "{}", text(&v.info.stderr));
        assert_eq!(c["status"], "ok", "{c:#}");
    } else {
        // Every podman command fails: it cannot decode the file.
        assert!(!v.info.status.success(), "{}", text(&v.info.stderr));
        assert!(
            text(&v.info.stderr)
                .contains("decode configuration /etc/containers/containers.conf.d/50-hooks.conf"),
            "{}",
            text(&v.info.stderr)
        );
        // Doctor fails it too, naming the file: from the version's rule,
        // or from Podman's own refusal when even `podman --version` fails.
        assert_eq!(c["status"], "fail", "{c:#}");
        assert!(
            c["message"].as_str().unwrap().contains("50-hooks.conf"),
            "{c:#}"
        );
    }
}

#[test]
fn the_first_failing_hook_file_decides_whether_podman_goes_on_as_doctor_says() {
    let Some(lab) = Lab::new() else { return };
    let missing = r#"{"version": "1.0.0", "hook": {"path": "/gpu-setup-e2e-missing"}, "when": {"always": true}, "stages": ["prestart"]}"#;
    for (first, second, podman_runs) in [(missing, "{", true), ("{", missing, false)] {
        lab.tree
            .write("/usr/share/containers/oci/hooks.d/a.json", first);
        lab.tree
            .write("/usr/share/containers/oci/hooks.d/b.json", second);
        let mut args = vec!["--runtime", "runc"];
        args.extend(RUN);
        args.extend([IMAGE, "/bin/true"]);
        let run = lab.podman_with(HIDE_CRUN, &args);
        assert_eq!(run.status.success(), podman_runs, "{}", text(&run.stderr));
        let v = views(&lab, HIDE_CRUN);
        let c = v.check("hooks");
        let refuses = c["message"]
            .as_str()
            .unwrap()
            .ends_with("Podman refuses to create any container while it exists");
        assert_eq!(refuses, !podman_runs, "{c:#}");
    }
}

/// Shows the tree's CDI spec dirs to Podman: `/etc` under an overlay (so
/// the mount point `/etc/cdi` is made in the overlay, never on the host),
/// `T/etc/containers` bound again on top of it, `T/etc/cdi` at `/etc/cdi`,
/// and `T/var/run/cdi` at `/run/cdi` (`/var/run` links to `/run`, as on
/// the hosts). The facts doc's recipe.
const CDI_MOUNTS: &str = "mkdir -p \"$W/ovl-etc/u\" \"$W/ovl-etc/w\"
mount -t overlay overlay -o lowerdir=/etc,upperdir=\"$W/ovl-etc/u\",workdir=\"$W/ovl-etc/w\" /etc
mount --bind \"$T/etc/containers\" /etc/containers
mkdir -p /etc/cdi /run/cdi
mount --bind \"$T/etc/cdi\" /etc/cdi
mount --bind \"$T/var/run/cdi\" /run/cdi
[ -e /var/run ] || ln -s /run /var/run";

/// A spec that works without a GPU: `all` maps `/dev/nvidia0` to
/// `/dev/null` and sets `FROM_SPEC` (the facts doc's minimal spec).
fn gpu_spec(from: &str) -> String {
    format!(
        "cdiVersion: \"0.5.0\"\nkind: nvidia.com/gpu\ndevices:\n- name: all\n  containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n      hostPath: /dev/null\n    env:\n    - FROM_SPEC={from}\n"
    )
}

impl Lab {
    /// The tree's CDI spec dirs, empty, for [`CDI_MOUNTS`].
    fn cdi_dirs(&self) {
        for dir in ["/etc/cdi", "/var/run/cdi"] {
            fs::create_dir_all(self.tree.real(dir)).unwrap();
        }
    }

    /// `podman --runtime runc run --device nvidia.com/gpu=all ...` printing
    /// whether `/dev/nvidia0` is a character device and `$FROM_SPEC`, with
    /// the tree's CDI dirs in place; the hook log cleared first.
    fn run_gpu(&self) -> Output {
        let _ = fs::remove_file(self.work("hook.log"));
        let mut args = vec!["--runtime", "runc"];
        args.extend(RUN);
        args.extend([
            "--device",
            "nvidia.com/gpu=all",
            IMAGE,
            "/bin/sh",
            "-c",
            "if test -c /dev/nvidia0; then echo char; fi; echo \"spec=$FROM_SPEC\"",
        ]);
        self.podman_with(CDI_MOUNTS, &args)
    }

    /// Doctor's `(status, message)` for check `id` on the tree.
    fn doctor_says(&self, id: &str) -> (String, String) {
        let out = self
            .gpu_setup(&["doctor", "--format", "json", "--podman-version", "4.3.1"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let c = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()
            .clone();
        (
            c["status"].as_str().unwrap().to_owned(),
            c["message"].as_str().unwrap().to_owned(),
        )
    }

    /// Asserts the GPU reached the container from the spec named `from`.
    #[track_caller]
    fn assert_gpu_from(&self, from: &str) {
        let out = self.run_gpu();
        assert!(
            out.status.success() && text(&out.stdout) == format!("char\nspec={from}\n"),
            "podman run --device nvidia.com/gpu=all: exit {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

#[test]
fn cdi_gives_the_container_the_gpu_without_the_hook_and_rollback_takes_it_away() {
    let Some(lab) = Lab::new() else { return };
    let ctk = crate::cdi::Ctk::new();
    ctk.set_spec(&gpu_spec("etc"));
    lab.cdi_dirs();
    ok_stdout(&mut lab.gpu_setup(&["apply"]));
    lab.assert_runs("nvidia");
    assert_hook_ran(&lab);
    let hooked = lab.files();
    // Before: Podman cannot resolve the device.
    let out = lab.run_gpu();
    assert!(
        text(&out.stderr).contains("unresolvable CDI devices nvidia.com/gpu=all"),
        "{}",
        text(&out.stderr)
    );

    let mut apply = lab.gpu_setup(&["apply", "--strategy", "cdi"]);
    apply.args(ctk.flag());
    let out = ok_stdout(&mut apply);
    assert!(out.contains("1 created, 1 deleted"), "{out}");
    assert!(!lab.tree.real(HOOK).exists());
    lab.assert_gpu_from("etc");
    assert_eq!(lab.log("hook.log"), "", "the hook must not run with CDI");
    // Doctor says what Podman just did.
    let (status, message) = lab.doctor_says("strategy");
    assert_eq!(status, "ok");
    assert!(message.starts_with("cdi: containers get GPUs"), "{message}");
    assert_eq!(
        lab.doctor_says("cdi"),
        (
            "ok".to_owned(),
            "1 NVIDIA CDI spec(s), valid (use `--device nvidia.com/gpu=all`)".to_owned()
        )
    );

    // A second apply changes nothing.
    let configured = lab.files();
    let mut again = lab.gpu_setup(&["apply", "--strategy", "cdi"]);
    again.args(ctk.flag());
    assert_eq!(
        ok_stdout(&mut again),
        "The host is configured: nothing to change.\n"
    );
    assert_same(&lab.files(), &configured);

    // Rollback: Podman says it cannot resolve the device, and the hook path
    // works again.
    ok_stdout(&mut lab.tree.cmd(&["rollback"]));
    assert_same(&lab.files(), &hooked);
    let out = lab.run_gpu();
    // Podman 4.3.1 exits 126 for it (the container cannot start).
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("unresolvable CDI devices nvidia.com/gpu=all"),
        "{}",
        text(&out.stderr)
    );
    lab.assert_runs("nvidia");
    assert_runtime_called(&lab);
    assert_hook_ran(&lab);
    let (status, message) = lab.doctor_says("strategy");
    assert_eq!(status, "ok");
    assert!(message.starts_with("hook: "), "{message}");
    assert_eq!(
        lab.doctor_says("cdi"),
        ("ok".to_owned(), "no NVIDIA CDI spec".to_owned())
    );
}

#[test]
fn a_refresh_managed_spec_is_left_to_nvidia_and_podman_uses_it() {
    let Some(lab) = Lab::new() else { return };
    let ctk = crate::cdi::Ctk::new();
    ctk.set_spec(&gpu_spec("etc"));
    lab.cdi_dirs();
    // Toolkit 1.18+: the units and the spec they wrote at boot.
    lab.tree.write(
        "/usr/lib/systemd/system/nvidia-cdi-refresh.path",
        "[Path]\nPathChanged=/usr/bin/nvidia-ctk\n",
    );
    lab.tree.write("/var/run/cdi/nvidia.yaml", gpu_spec("run"));
    ok_stdout(&mut lab.gpu_setup(&["apply"]));

    let mut apply = lab.gpu_setup(&["apply", "--strategy", "cdi"]);
    apply.args(ctk.flag());
    let out = ok_stdout(&mut apply);
    assert!(out.contains("Applied transaction 2: 1 deleted."), "{out}");
    assert!(!out.contains("/etc/cdi"), "{out}");
    assert_eq!(fs::read_dir(lab.tree.real("/etc/cdi")).unwrap().count(), 0);
    assert!(ctk.take_calls().is_empty(), "nvidia-ctk must not run");
    lab.assert_gpu_from("run");
    assert_eq!(lab.log("hook.log"), "");
    let (status, message) = lab.doctor_says("strategy");
    assert_eq!(status, "warn");
    assert!(
        message.starts_with("cdi, but nvidia-cdi-refresh.path is not enabled"),
        "{message}"
    );
    // Even with a spec of its own in /etc/cdi, /var/run/cdi wins (so
    // writing one there would change nothing).
    lab.tree.write("/etc/cdi/nvidia.yaml", gpu_spec("etc"));
    lab.assert_gpu_from("run");
}
