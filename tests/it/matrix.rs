//! The matrix: gpu-setup judged by real Podman 3.0.1, 4.3.1, 5.4.2 and
//! 5.8.x and by the real NVIDIA Container Toolkit (v1.20.0, built from
//! NVIDIA's source: `../shared/tools/nvidia-container-toolkit`).
//!
//! Each Podman lives in a pristine Debian chroot (bullseye, bookworm,
//! trixie, sid) that `tests/matrix/chroot.sh` builds once per machine and
//! caches in /var/tmp. A scenario runs as root in a fresh overlay of it, in
//! a private mount namespace (`tests/matrix/enter.sh`: private /dev, /run,
//! /tmp, a pure cgroup v1 view), with gpu-setup, the real NVIDIA runtime,
//! hook and nvidia-ctk put where the toolkit's packages put them, and only
//! `nvidia-container-cli` (libnvidia-container, C, not built here) a
//! stand-in that logs what the real hook passes it. gpu-setup runs on `/`
//! inside the chroot, so it learns the Podman version from the chroot's
//! dpkg database, as on a real host. The scenario records every step
//! (`tests/matrix/{hook,cdi}.sh`); this file judges what Podman and the
//! toolkit did, with the expected differences between versions taken from
//! the model (`gpu_setup_plan::upstream`), never written in by hand: a
//! version that disagrees with the model fails.
//!
//! `GPU_SETUP_PODMAN=bookworm` (or a comma list; `make e2e PODMAN=...`)
//! runs only those suites.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use gpu_setup_plan::upstream::Podman;
use gpu_setup_plan::Version;
use serde_json::Value;

use crate::util::*;

/// One scenario at a time: each starts Podman a dozen times on two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The four Debian suites and the Podman each carries (checked against the
/// chroot's own dpkg database, so a suite that moved on is a finding).
const SUITES: [(&str, &str); 4] = [
    ("bullseye", "3.0"),
    ("bookworm", "4.3"),
    ("trixie", "5.4"),
    ("sid", "5.8"),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The toolkit build a scenario uses.
fn toolkit(version: &str) -> PathBuf {
    repo()
        .join("../shared/tools/nvidia-container-toolkit")
        .join(version)
}

/// Whether this machine can run the matrix; says why not. CI
/// (`GPU_SETUP_REQUIRE_E2E`) fails instead of skipping.
fn can_run(suite: &str) -> bool {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root (mount namespaces, chroot)".to_owned());
    }
    for tool in ["unshare", "mmdebstrap", "objdump"] {
        if !Path::new("/usr/bin").join(tool).exists() {
            missing.push(format!("`{tool}`"));
        }
    }
    if !toolkit("v1.20.0").join("nvidia-ctk").exists() {
        missing.push("../shared/tools/nvidia-container-toolkit".to_owned());
    }
    let wanted = std::env::var("GPU_SETUP_PODMAN")
        .ok()
        .filter(|w| !w.is_empty());
    if let Some(w) = &wanted {
        if !w.split(',').any(|s| s.trim() == suite) {
            eprintln!("skipped: GPU_SETUP_PODMAN={w} leaves out {suite}");
            return false;
        }
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!("skipped: the {suite} matrix needs {}", missing.join(", "));
    assert!(
        std::env::var_os("GPU_SETUP_REQUIRE_E2E").is_none(),
        "GPU_SETUP_REQUIRE_E2E is set, so this must not skip: {why}"
    );
    eprintln!("{why}");
    false
}

/// The gpu-setup binary to put in the chroot: `GPU_SETUP_TEST_BINARY`
/// when set (`make test-portable` runs the matrix again with the portable
/// binary from `make dist`), else the test build, except on bullseye,
/// whose glibc (2.31) is older than the one the test build links against:
/// there the portable binary (glibc 2.17).
fn binary(suite: &str) -> Option<PathBuf> {
    if std::env::var_os("GPU_SETUP_TEST_BINARY").is_some() || suite != "bullseye" {
        return Some(bin());
    }
    let portable = repo().join("dist/gpu-setup");
    if portable.exists() {
        return Some(portable);
    }
    assert!(
        std::env::var_os("GPU_SETUP_REQUIRE_E2E").is_none(),
        "the bullseye matrix needs dist/gpu-setup (make dist): CI builds it first"
    );
    eprintln!("skipped: bullseye needs the portable binary (make dist)");
    None
}

/// The chroot of `suite`, built when missing.
fn chroot(suite: &str) -> PathBuf {
    let out = Command::new("bash")
        .arg(repo().join("tests/matrix/chroot.sh"))
        .arg(suite)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chroot.sh {suite}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// What one scenario left: each step's output and exit code, and the
/// files it copied to /out.
struct Run {
    suite: String,
    out: PathBuf,
    _scratch: tempfile::TempDir,
}

impl Run {
    fn rc(&self, step: &str) -> i32 {
        fs::read_to_string(self.out.join(format!("{step}.rc")))
            .unwrap_or_else(|e| panic!("{}: step {step} did not run: {e}", self.suite))
            .trim()
            .parse()
            .unwrap()
    }
    fn stdout(&self, step: &str) -> String {
        self.file(&format!("{step}.out"))
    }
    fn stderr(&self, step: &str) -> String {
        self.file(&format!("{step}.err"))
    }
    fn file(&self, name: &str) -> String {
        fs::read_to_string(self.out.join(name)).unwrap_or_default()
    }
    fn json(&self, step: &str) -> Value {
        let text = self.stdout(step);
        serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "{}: {step}: not JSON ({e}): {text}\nstderr: {}",
                self.suite,
                self.stderr(step)
            )
        })
    }
    /// Asserts a step exited with `code`, showing what it said if not.
    #[track_caller]
    fn assert_rc(&self, step: &str, code: i32) {
        assert_eq!(
            self.rc(step),
            code,
            "{}: {step}\nstdout: {}\nstderr: {}",
            self.suite,
            self.stdout(step),
            self.stderr(step)
        );
    }
    /// The files snapshot `name`: path -> checksum.
    fn files(&self, name: &str) -> BTreeMap<String, String> {
        self.file(&format!("{name}.files"))
            .lines()
            .filter_map(|l| l.split_once("  "))
            .map(|(sum, path)| (path.to_owned(), sum.to_owned()))
            .collect()
    }
    fn check(&self, step: &str, id: &str) -> Value {
        let doctor = self.json(step);
        doctor["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no check {id}: {doctor:#}"))
    }
}

/// Runs `scenario` (`tests/matrix/NAME.sh`) in a fresh overlay of the
/// suite's chroot, with the toolkit v1.20.0.
fn run(suite: &str, scenario: &str) -> Option<Run> {
    run_with(suite, scenario, "v1.20.0")
}

/// [`run`] with another build of the toolkit (`v1.17.9`).
fn run_with(suite: &str, scenario: &str, toolkit_version: &str) -> Option<Run> {
    if !can_run(suite) {
        return None;
    }
    let bin = binary(suite)?;
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let chroot = chroot(suite);
    // The overlay's upper dir must be on a filesystem that takes
    // overlayfs upper dirs (not another overlay): next to the cache.
    let scratch = tempfile::Builder::new()
        .prefix("gpu-setup-matrix.")
        .tempdir_in(chroot.parent().unwrap())
        .unwrap();
    let out = Command::new("bash")
        .arg(repo().join("tests/matrix/enter.sh"))
        .arg(&chroot)
        .arg(scratch.path())
        .arg(repo().join(format!("tests/matrix/{scenario}.sh")))
        .env("GPU_SETUP_BIN", &bin)
        .env("NVIDIA_TOOLKIT", toolkit(toolkit_version))
        .env("NVIDIA_CONFIG", toolkit_config())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{suite} {scenario}: enter.sh: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // No mount is left behind: the namespace died with the scenario.
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        !mounts.contains(scratch.path().to_str().unwrap()),
        "a mount outlived the scenario"
    );
    Some(Run {
        suite: suite.to_owned(),
        out: scratch.path().join("upper/out"),
        _scratch: scratch,
    })
}

/// The Podman the chroot's dpkg database names, checked against the suite.
fn podman_of(run: &Run, expected: &str) -> Podman {
    let info = run.json("info");
    let version = Version::parse(info["version"]["Version"].as_str().unwrap()).unwrap();
    assert!(
        version.to_string().starts_with(expected),
        "{}: Podman {version}, expected {expected}.x: the suite moved on",
        run.suite
    );
    Podman::new(Some(gpu_setup_plan::PodmanVersion(version)))
}

/// The hook scenario: a default `apply` makes Podman run the real NVIDIA
/// runtime and hook; plan, doctor and Podman agree; rollback undoes it.
fn hook_case(suite: &str, expected: &str) {
    hook_case_with(suite, expected, "v1.20.0");
}

/// [`hook_case`] with the toolkit `toolkit_version`.
fn hook_case_with(suite: &str, expected: &str, toolkit_version: &str) {
    let Some(r) = run_with(suite, "hook", toolkit_version) else {
        return;
    };
    r.assert_rc("import", 0);
    let rules = podman_of(&r, expected);
    let not_found = "default OCI runtime \"nvidia\" not found";

    // Before: Podman has no nvidia runtime.
    assert_eq!(r.rc("before"), 125, "{}", r.stderr("before"));
    assert!(
        r.stderr("before").contains(not_found),
        "{}",
        r.stderr("before")
    );

    // gpu-setup read the version from the chroot's dpkg database, and
    // puts the entry where this Podman reads it.
    r.assert_rc("apply", 0);
    let conf = if rules.reads_dropins() {
        "/etc/containers/containers.conf.d/99-nvidia.conf"
    } else {
        "/etc/containers/containers.conf"
    };
    let applied = r.json("apply");
    let written: Vec<&str> = applied["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(written.contains(&conf), "{suite}: {applied:#}");
    assert!(
        !r.stderr("plan0").contains("version-unknown"),
        "{suite}: {}",
        r.stderr("plan0")
    );
    // A second apply changes nothing; plan --strict says configured.
    assert_eq!(r.json("apply2")["changed"], false, "{suite}");
    r.assert_rc("strict", 0);
    assert!(
        r.stdout("strict").contains("The host is configured"),
        "{}",
        r.stdout("strict")
    );

    // Podman runs the real nvidia-container-runtime, which logs to the
    // debug path gpu-setup set and forwards to runc.
    r.assert_rc("run_nvidia", 0);
    assert_eq!(r.stdout("run_nvidia"), "ok\n");
    let log = r.file("runtime.log");
    assert!(
        log.contains("Using OCI specification file path"),
        "{suite}: runtime log: {log}"
    );
    let info = r.json("info_nvidia");
    assert_eq!(info["host"]["ociRuntime"]["name"], "nvidia", "{suite}");
    assert_eq!(
        info["host"]["ociRuntime"]["path"], "/usr/bin/nvidia-container-runtime",
        "{suite}"
    );

    // The real hook ran for a GPU container and passed what config.toml
    // says to nvidia-container-cli: --no-cgroups and the debug path.
    r.assert_rc("run_gpu", 0);
    let cli = r.file("cli.log");
    assert!(
        cli.contains("--no-cgroups")
            && cli.contains("--debug=/var/log/nvidia-container-toolkit.log"),
        "{suite}: nvidia-container-cli got: {cli}"
    );
    assert!(
        r.stderr("run_gpu")
            .contains("added hook /usr/share/containers/oci/hooks.d/oci-nvidia-hook.json"),
        "{suite}: {}",
        r.stderr("run_gpu")
    );

    // The stage the hook lands in, from the OCI spec Podman wrote.
    r.assert_rc("init", 0);
    let spec: Value = serde_json::from_str(&r.file("config.json")).unwrap();
    let stage = if rules.hooks_as_create_runtime() {
        "createRuntime"
    } else {
        "prestart"
    };
    let hooks = &spec["hooks"][stage];
    assert!(
        hooks.as_array().is_some_and(|h| h
            .iter()
            .any(|h| h["path"] == "/usr/bin/nvidia-container-toolkit")),
        "{suite}: expected the hook in {stage}: {:#}",
        spec["hooks"]
    );

    // doctor: exit 0 on the configured host, and it names what Podman
    // itself says it uses.
    r.assert_rc("doctor", 0);
    let doctor = r.json("doctor");
    let podman_info = r.json("info");
    assert_eq!(
        doctor["podman"]["default_runtime"]["name"], podman_info["host"]["ociRuntime"]["name"],
        "{suite}: {:#}",
        doctor["podman"]
    );
    assert_eq!(
        doctor["podman"]["default_runtime"]["path"], podman_info["host"]["ociRuntime"]["path"],
        "{suite}"
    );
    assert_eq!(
        doctor["podman"]["version"],
        serde_json::to_value(rules.version).unwrap(),
        "{suite}"
    );
    for c in doctor["checks"].as_array().unwrap() {
        assert_ne!(c["status"], "fail", "{suite}: {c:#}");
    }

    // Rollback: every file as at the start; Podman forgets the runtime;
    // runc still works.
    r.assert_rc("rollback", 0);
    assert_eq!(r.files("rolled_back"), r.files("start"), "{suite}");
    assert_eq!(r.rc("after"), 125, "{}", r.stderr("after"));
    assert!(r.stderr("after").contains(not_found));
    r.assert_rc("runc", 0);
}

/// The CDI scenario: the real nvidia-ctk's spec, managed by gpu-setup,
/// resolved by Podman where the model says this Podman can, refused with
/// nothing changed where it cannot.
fn cdi_case(suite: &str, expected: &str) {
    let Some(r) = run(suite, "cdi") else { return };
    r.assert_rc("import", 0);
    r.assert_rc("apply_hook", 0);
    let rules = podman_of(&r, expected);
    if !rules.reads_nvidia_cdi_specs() {
        // Refused before anything runs, naming the version, nothing changed.
        r.assert_rc("plan", 1);
        assert!(
            r.json("plan")["error"]
                .as_str()
                .unwrap()
                .starts_with(&format!(
                    "--strategy cdi needs Podman 4.3 or later, and this host has Podman {} (dpkg: podman ",
                    rules.version.unwrap()
                )),
            "{suite}: {}",
            r.stdout("plan")
        );
        r.assert_rc("apply", 1);
        assert_eq!(
            r.files("applied"),
            r.files("hooked"),
            "{suite}: nothing changed"
        );
        // doctor recommends the hook here.
        let strategy = r.check("doctor", "strategy");
        assert_eq!(strategy["status"], "ok", "{strategy:#}");
        assert!(
            strategy["details"][0]
                .as_str()
                .unwrap()
                .contains("recommended strategy hook: this Podman cannot use NVIDIA's CDI specs"),
            "{strategy:#}"
        );
        return;
    }
    // The real nvidia-ctk without a driver: gpu-setup names its error
    // line (not the warnings before it), and nothing changed.
    r.assert_rc("nodriver", 1);
    let err = r.stderr("nodriver");
    assert!(
        err.starts_with("error: cannot generate the CDI spec: `/usr/bin/nvidia-ctk cdi generate` failed: failed to generate CDI spec: failed to create device CDI specs: failed to construct device spec generators: failed to initialize NVML: ERROR_LIBRARY_NOT_FOUND\n"),
        "{suite}: {err}"
    );
    r.assert_rc("notloaded", 1);
    let err = r.stderr("notloaded");
    assert!(err.contains("Driver Not Loaded"), "{suite}: {err}");
    assert_eq!(
        r.files("failed"),
        r.files("hooked"),
        "{suite}: nothing changed"
    );

    r.assert_rc("plan", 0);
    r.assert_rc("apply", 0);
    let spec = r.file("nvidia.yaml");
    assert!(
        spec.starts_with(gpu_setup_plan::cdi::MARKER),
        "{suite}: {spec}"
    );
    let summary = gpu_setup_plan::cdi::check_spec(spec.as_bytes()).unwrap();
    assert_eq!(summary.devices, ["0", "all"], "{suite}");
    let declared = Version::parse(&summary.cdi_version).unwrap();
    assert!(
        Some(declared) <= rules.max_cdi_version(),
        "{suite}: {declared}"
    );
    // The hook is gone; a second apply changes nothing; strict is clean.
    assert!(!r
        .files("applied")
        .contains_key("/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json"));
    assert_eq!(r.json("apply2")["changed"], false, "{suite}");
    r.assert_rc("strict", 0);
    // NVIDIA's own tool lists the devices of the spec gpu-setup manages,
    // and Podman gives the container the device node.
    r.assert_rc("list", 0);
    assert_eq!(r.stdout("list"), "nvidia.com/gpu=0\nnvidia.com/gpu=all\n");
    r.assert_rc("run", 0);
    assert_eq!(r.stdout("run"), "char\n", "{suite}");
    // Two specs of one dir defining the same devices: Podman and
    // nvidia-ctk refuse them, and so do doctor and plan --strict.
    assert_ne!(r.rc("conflict_run"), 0);
    assert!(
        r.stderr("conflict_run")
            .contains("unresolvable CDI devices nvidia.com/gpu=all"),
        "{suite}: {}",
        r.stderr("conflict_run")
    );
    let listed = r.stdout("conflict_list") + &r.stderr("conflict_list");
    assert!(listed.contains("conflicting device"), "{suite}: {listed}");
    r.assert_rc("conflict_doctor", 1);
    let cdi = r.check("conflict_doctor", "cdi");
    assert_eq!(cdi["status"], "fail", "{cdi:#}");
    assert!(
        cdi["message"]
            .as_str()
            .unwrap()
            .contains("define nvidia.com/gpu=0 in one directory"),
        "{cdi:#}"
    );
    r.assert_rc("conflict_strict", 1);
    assert!(
        r.stderr("conflict_strict")
            .contains("warning[cdi-device-conflict]"),
        "{suite}: {}",
        r.stderr("conflict_strict")
    );
    // doctor passes a correct CDI host, told the strategy or not.
    for step in ["doctor", "doctor_cdi"] {
        r.assert_rc(step, 0);
        let strategy = r.check(step, "strategy");
        assert_eq!(strategy["status"], "ok", "{suite}: {strategy:#}");
        assert!(
            strategy["message"].as_str().unwrap().starts_with("cdi: "),
            "{strategy:#}"
        );
        assert_eq!(r.check(step, "hooks")["status"], "ok", "{suite}");
    }
    // Rollback: the hook is back, the spec gone, and Podman says so.
    r.assert_rc("rollback", 0);
    assert_eq!(r.files("rolled_back"), r.files("hooked"), "{suite}");
    assert_ne!(r.rc("after"), 0);
    assert!(
        r.stderr("after")
            .contains("unresolvable CDI devices nvidia.com/gpu=all"),
        "{suite}: {}",
        r.stderr("after")
    );
}

#[test]
fn podman_3_0_bullseye_hook() {
    hook_case(SUITES[0].0, SUITES[0].1);
}

#[test]
fn podman_3_0_bullseye_cdi() {
    cdi_case(SUITES[0].0, SUITES[0].1);
}

#[test]
fn podman_4_3_bookworm_hook() {
    hook_case(SUITES[1].0, SUITES[1].1);
}

#[test]
fn podman_4_3_bookworm_cdi() {
    cdi_case(SUITES[1].0, SUITES[1].1);
}

#[test]
fn podman_5_4_trixie_hook() {
    hook_case(SUITES[2].0, SUITES[2].1);
}

#[test]
fn podman_5_4_trixie_cdi() {
    cdi_case(SUITES[2].0, SUITES[2].1);
}

#[test]
fn podman_5_8_sid_hook() {
    hook_case(SUITES[3].0, SUITES[3].1);
}

#[test]
fn podman_5_8_sid_cdi() {
    cdi_case(SUITES[3].0, SUITES[3].1);
}

// The last toolkit whose runtime resolves `auto` to legacy, on a Podman
// that passes the hook as prestart and one that passes it as createRuntime.

#[test]
fn podman_4_3_bookworm_hook_toolkit_1_17() {
    hook_case_with(SUITES[1].0, SUITES[1].1, "v1.17.9");
}

#[test]
fn podman_5_8_sid_hook_toolkit_1_17() {
    hook_case_with(SUITES[3].0, SUITES[3].1, "v1.17.9");
}

/// More cases per version: exact undo, in place, a malformed file, the
/// `{append=true}` attribute and `$CONTAINERS_CONF_OVERRIDE`, each judged
/// by this Podman and compared with the model.
fn cases(suite: &str, expected: &str) {
    let Some(r) = run(suite, "cases") else { return };
    r.assert_rc("import", 0);
    let version = Version::parse(expected).unwrap();
    let rules = Podman::new(Some(gpu_setup_plan::PodmanVersion(version)));
    // --state absent: every file as before apply; nvidia gone, runc works.
    r.assert_rc("apply", 0);
    r.assert_rc("absent", 0);
    assert_eq!(r.files("absent"), r.files("start"), "{suite}: exact undo");
    assert_eq!(r.rc("absent_nvidia"), 125, "{}", r.stderr("absent_nvidia"));
    r.assert_rc("absent_runc", 0);
    // In place, in the main file: Podman runs nvidia; rollback undoes it.
    r.assert_rc("inplace", 0);
    r.assert_rc("inplace_nvidia", 0);
    assert_eq!(r.stdout("inplace_nvidia"), "ok\n");
    r.assert_rc("inplace_rollback", 0);
    assert_eq!(r.files("after_inplace"), r.files("start"), "{suite}");
    // A malformed file: Podman refuses it, gpu-setup names it and changes
    // nothing.
    assert_ne!(r.rc("broken_podman"), 0, "{suite}");
    assert!(
        r.stderr("broken_podman")
            .contains("/etc/containers/containers.conf"),
        "{suite}: {}",
        r.stderr("broken_podman")
    );
    assert_eq!(r.rc("broken_apply"), 1);
    assert!(
        r.stderr("broken_apply")
            .starts_with("error: `/etc/containers/containers.conf` line "),
        "{suite}: {}",
        r.stderr("broken_apply")
    );
    assert_eq!(r.files("broken_after"), r.files("broken"), "{suite}");
    // {append=true}: accepted from 4.8 by the model, and by this Podman
    // exactly when the model says; doctor agrees.
    // (A drop-in: Podman before 3.3 does not read it at all.)
    let podman_ok = r.rc("append_podman") == 0;
    assert_eq!(
        podman_ok,
        rules.accepts_append_attribute() || !rules.reads_dropins(),
        "{suite}: Podman {version} {} {{append=true}}: {}",
        if podman_ok { "accepts" } else { "refuses" },
        r.stderr("append_podman")
    );
    let c = r.check("append_doctor", "podman");
    assert_eq!(c["status"] == "fail", !podman_ok, "{suite}: {c:#}");
    // $CONTAINERS_CONF_OVERRIDE: merged from 4.5 by the model; this
    // Podman merges it (its debug log names the file) exactly then, and
    // plan notes it only when it is not read.
    // The override sets `runtime = "runc"`; without it Podman takes crun,
    // the first installed.
    r.assert_rc("override_podman", 0);
    let merged = r.json("override_podman")["host"]["ociRuntime"]["name"] == "runc";
    assert_eq!(
        merged,
        rules.reads_conf_override(),
        "{suite}: {}",
        r.stderr("override_podman")
    );
    let plan = r.json("override_plan");
    let noted = plan["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["code"] == "conf-override-ignored");
    assert_eq!(noted, !merged, "{suite}: {plan:#}");
}

#[test]
fn podman_3_0_bullseye_cases() {
    cases(SUITES[0].0, "3.0.1");
}

#[test]
fn podman_4_3_bookworm_cases() {
    cases(SUITES[1].0, "4.3.1");
}

#[test]
fn podman_5_4_trixie_cases() {
    cases(SUITES[2].0, "5.4.2");
}

#[test]
fn podman_5_8_sid_cases() {
    cases(SUITES[3].0, "5.8.6");
}
