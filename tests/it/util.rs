//! Test trees: a temporary root holding host files, and the binary run on it.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use gpu_setup_apply::RootFs;
use gpu_setup_plan::{plan, DesiredState, Plan};
use tempfile::TempDir;

pub const USR_CONF: &str = "/usr/share/containers/containers.conf";
pub const ETC_CONF: &str = "/etc/containers/containers.conf";
pub const DROPIN: &str = "/etc/containers/containers.conf.d/99-nvidia.conf";
pub const NV_CONFIG: &str = "/etc/nvidia-container-runtime/config.toml";
pub const HOOK: &str = "/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json";
pub const STATE_DIR: &str = "/var/lib/gpu-setup";

/// The binary under test: `GPU_SETUP_TEST_BINARY` when set (`make
/// test-portable` runs the CLI suites against the portable binary from
/// `make dist`), else the one cargo built for the tests.
pub fn bin() -> PathBuf {
    match std::env::var_os("GPU_SETUP_TEST_BINARY") {
        Some(p) => PathBuf::from(p),
        None => assert_cmd::cargo::cargo_bin("gpu-setup"),
    }
}

/// `gpu-setup` (see [`bin`]) as a command.
pub fn gpu_setup() -> Command {
    Command::new(bin())
}

/// Whether the binary under test has the test build's fault injection
/// (`GPU_SETUP_TEST_*`); a released binary has none (docs/security.md, R12),
/// so a test that needs it says so and skips.
pub fn test_hooks(what: &str) -> bool {
    let built_for_tests = std::env::var_os("GPU_SETUP_TEST_BINARY").is_none();
    if !built_for_tests {
        eprintln!(
            "skipped against GPU_SETUP_TEST_BINARY (no test hooks in a release binary): {what}"
        );
    }
    built_for_tests
}

/// Whether the tests run as root (CI does; some tests need it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skips a test that needs root, saying why; CI (which sets
/// `GPU_SETUP_REQUIRE_ROOT_TESTS`) runs as root and fails instead of skipping.
pub fn need_root(why: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var_os("GPU_SETUP_REQUIRE_ROOT_TESTS").is_none(),
        "this test must run as root in CI: {why}"
    );
    eprintln!("skipped: needs root ({why})");
    false
}

/// `gpu-setup --color never --root T ARGS` run as `nobody` (from a copy of
/// the binary inside the tree, made world-readable, so `nobody` can run it
/// wherever the checkout lives).
pub fn as_nobody(tree: &Tree, args: &[&str]) -> assert_cmd::Command {
    std::fs::set_permissions(
        tree.root(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let bin = tree.real("/gpu-setup");
    if !bin.exists() {
        std::fs::copy(crate::util::bin(), &bin).unwrap();
    }
    let mut cmd = assert_cmd::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(["--color", "never", "--root"])
        .arg(tree.root())
        .args(args);
    cmd
}

/// A temporary directory (mode 0755) whose every parent is root's and not
/// writable by others, unlike `/tmp`: for binaries run through `--sudo`,
/// which refuses anything else.
pub fn root_only_tempdir() -> TempDir {
    let dir = tempfile::Builder::new()
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Stdout of a command that must succeed.
pub fn ok_stdout(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The project's copy of the corpus.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// A fixture's text, e.g. `containers.conf/debian-bookworm-0.50.1+ds1-4.conf`.
pub fn fixture(rel: &str) -> String {
    fs::read_to_string(fixtures().join(rel)).unwrap()
}

/// Names of the files in a fixture directory, sorted.
pub fn fixture_names(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(fixtures().join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

pub const DEBIAN_CONF: &str = "containers.conf/debian-bookworm-0.50.1+ds1-4.conf";
pub const UBUNTU_NV: &str = "nvidia-config.toml/nvidia-container-toolkit-v1.13.5-ubuntu.toml";

/// A temporary directory used as `--root`.
pub struct Tree {
    dir: TempDir,
}

/// Every node under a root: path -> (mode, content for files).
pub type Snapshot = BTreeMap<PathBuf, (u32, Option<Vec<u8>>)>;

impl Tree {
    pub fn new() -> Self {
        Tree {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Debian's stock containers.conf, Ubuntu's NVIDIA config.toml and the
    /// NVIDIA executables: a host with the toolkit installed, not configured.
    pub fn stock() -> Self {
        let t = Tree::new();
        t.write(USR_CONF, fixture(DEBIAN_CONF));
        t.write(NV_CONFIG, fixture(UBUNTU_NV));
        t.exe("/usr/bin/nvidia-container-runtime");
        t.exe("/usr/bin/nvidia-container-toolkit");
        t
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn real(&self, host_path: &str) -> PathBuf {
        self.root().join(host_path.trim_start_matches('/'))
    }

    pub fn write(&self, host_path: &str, content: impl AsRef<[u8]>) -> &Self {
        let p = self.real(host_path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
        self
    }

    pub fn exe(&self, host_path: &str) -> &Self {
        self.write(host_path, "#!/bin/sh\nexit 0\n");
        fs::set_permissions(self.real(host_path), fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    /// Every file and directory under the root with modes and contents.
    pub fn snapshot(&self) -> Snapshot {
        fn walk(dir: &Path, base: &Path, out: &mut Snapshot) {
            for entry in fs::read_dir(dir).unwrap() {
                let entry = entry.unwrap();
                let path = entry.path();
                let meta = fs::symlink_metadata(&path).unwrap();
                let rel = path.strip_prefix(base).unwrap().to_path_buf();
                let mode = meta.permissions().mode();
                if meta.is_dir() {
                    out.insert(rel, (mode, None));
                    walk(&path, base, out);
                } else {
                    out.insert(rel, (mode, Some(fs::read(&path).unwrap_or_default())));
                }
            }
        }
        let mut out = Snapshot::new();
        walk(self.root(), self.root(), &mut out);
        out
    }

    /// Like [`Tree::snapshot`], without the state dir (and the parents made
    /// for it): the files a transaction may change.
    pub fn targets(&self) -> Snapshot {
        let state = Path::new(STATE_DIR.trim_start_matches('/'));
        self.snapshot()
            .into_iter()
            .filter(|(p, _)| !p.starts_with(state) && !state.starts_with(p))
            .collect()
    }

    /// Paths of leftover temp files (`.*~`) anywhere under the root.
    pub fn temp_files(&self) -> Vec<PathBuf> {
        self.snapshot()
            .into_keys()
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.ends_with('~') || name.ends_with(".tmp")
            })
            .collect()
    }

    /// `gpu-setup --root <tree> --color never ARGS...`
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = gpu_setup();
        cmd.env_remove("GPU_SETUP_LOG").env_remove("NO_COLOR");
        cmd.arg("--root")
            .arg(self.root())
            .arg("--color")
            .arg("never")
            .args(args);
        cmd
    }

    /// The plan the library computes for this tree.
    pub fn plan(&self, desired: &DesiredState) -> Plan {
        plan(desired, &RootFs::open(self.root()).unwrap()).unwrap()
    }

    /// Writes a plan's results into the tree (what `apply` will do).
    pub fn apply(&self, p: &Plan) {
        for change in &p.changes {
            match &change.after {
                Some(bytes) => {
                    self.write(change.path.as_str(), bytes);
                }
                None => fs::remove_file(self.real(change.path.as_str())).unwrap(),
            }
        }
    }
}

/// Asserts two snapshots are equal, naming the paths that differ (the
/// whole maps are too large to read).
#[track_caller]
pub fn assert_same(now: &Snapshot, expected: &Snapshot) {
    let differ: Vec<&PathBuf> = now
        .keys()
        .chain(expected.keys())
        .filter(|p| now.get(*p) != expected.get(*p))
        .collect();
    assert!(differ.is_empty(), "paths that differ: {differ:?}");
}

/// The filesystem steps a command takes on a fresh tree from `make`, as
/// `name path` with the path as the tree shows it (from its trace log).
pub fn steps_of(args: &[&str], make: &dyn Fn() -> Tree) -> Vec<String> {
    let tree = make();
    let out = tree
        .cmd(args)
        .env("GPU_SETUP_LOG", "trace")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = tree.root().to_str().unwrap().to_owned();
    String::from_utf8(out.stderr)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(" step ").map(|(_, rest)| rest))
        .filter_map(|rest| {
            rest.split_once(": ")
                .map(|(_, step)| step.replace(&root, ""))
        })
        .collect()
}

/// Runs `cmd`, expects exit 1, and returns stderr.
pub fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// The warning codes of a JSON plan, apply or rollback result, in order.
pub fn codes(v: &serde_json::Value) -> Vec<String> {
    v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap().to_owned())
        .collect()
}

/// The check `id` of a JSON doctor report.
pub fn doctor_check(report: &serde_json::Value, id: &str) -> serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no check {id}: {report:#}"))
}

/// The config.toml the real-toolkit tests start from (nvidia-ctk v1.17.6's
/// own, from the corpus fixtures).
pub fn toolkit_config() -> PathBuf {
    fixtures().join("nvidia-config.toml/ssst0n3-docker_archive-nvidia-ctk-v1.17.6-ubuntu24.04.toml")
}

/// The paths of the `files` of a JSON plan or apply result.
pub fn changed_paths(v: &serde_json::Value) -> Vec<String> {
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect()
}

/// This machine's `/etc`, `/usr` and `/var` as overlays in a private mount
/// namespace: the machine's directories below (never written), the upper
/// layers in a temp dir above, receiving every write. For programs that
/// only work on `/` (dpkg, a unit's exact command); the namespace vanishes
/// with each run.
pub struct Overlay {
    dir: TempDir,
}

impl Overlay {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for d in ["etc", "usr", "var", "work/etc", "work/usr", "work/var"] {
            fs::create_dir_all(dir.path().join(d)).unwrap();
            fs::set_permissions(dir.path().join(d), fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        Overlay { dir }
    }

    /// The directory holding the upper layers (`etc/`, `usr/`, `var/`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Where a host path lives in the upper layers.
    pub fn upper(&self, host_path: &str) -> PathBuf {
        self.dir.path().join(host_path.trim_start_matches('/'))
    }

    /// `sh -c SCRIPT` in the namespace, with only `env` and a `PATH` (`$H`
    /// names the upper layers' directory).
    pub fn sh(&self, script: &str, env: &[(&str, &std::ffi::OsStr)]) -> std::process::Output {
        let mounts = "set -e
for d in etc usr var; do
  mount -t overlay overlay -o lowerdir=/$d,upperdir=\"$H/$d\",workdir=\"$H/work/$d\" /$d
done
";
        let mut cmd = std::process::Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(format!("{mounts}{script}"))
            .env_clear()
            .env("H", self.dir.path())
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            );
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
}

/// A finished command's exit code, stdout and stderr (lossy UTF-8).
pub fn outcome(out: &std::process::Output) -> (Option<i32>, String, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
