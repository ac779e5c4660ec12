//! The Ansible module mode with real ansible-core (from PyPI, in the venv
//! `.ci/run` makes): several local hosts, each with its own tree as `root`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use crate::util::*;

/// The module's docs, in the collection and beside the binary module.
const SIDECAR: &str = "ansible/collection/plugins/modules/gpu_setup.yml";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `ansible-playbook` from PATH or the repository's `.venv`; says why it
/// skips, and fails instead in CI (`GPU_SETUP_REQUIRE_ANSIBLE`).
fn ansible_bin(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([repo().join(".venv/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        let why = format!("skipped: needs `{name}` from ansible-core (python3 -m venv .venv && .venv/bin/pip install ansible-core)");
        assert!(
            std::env::var_os("GPU_SETUP_REQUIRE_ANSIBLE").is_none(),
            "GPU_SETUP_REQUIRE_ANSIBLE is set: {why}"
        );
        eprintln!("{why}");
    }
    found
}

/// Three local hosts with their own stock trees, and the module.
struct Fleet {
    trees: Vec<Tree>,
    dir: tempfile::TempDir,
    playbook: PathBuf,
}

impl Fleet {
    fn new(host_vars: &[&str]) -> Option<Fleet> {
        let playbook = ansible_bin("ansible-playbook")?;
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("library")).unwrap();
        fs::copy(crate::util::bin(), dir.path().join("library/gpu_setup")).unwrap();
        // Its docs beside it, as `make ansible-module` installs them: Ansible
        // still runs the binary.
        fs::copy(
            repo().join(SIDECAR),
            dir.path().join("library/gpu_setup.yml"),
        )
        .unwrap();
        let trees: Vec<Tree> = host_vars.iter().map(|_| Tree::stock()).collect();
        let mut inv = String::from("[gpu_hosts]\n");
        for (i, (tree, vars)) in trees.iter().zip(host_vars).enumerate() {
            inv.push_str(&format!(
                "host{i} ansible_connection=local root={} {vars}\n",
                tree.root().display()
            ));
        }
        fs::write(dir.path().join("inventory.ini"), inv).unwrap();
        Some(Fleet {
            trees,
            dir,
            playbook,
        })
    }

    /// `ansible-playbook PLAYBOOK ARGS`: exit code and output.
    fn play(&self, playbook: &Path, args: &[&str]) -> (Option<i32>, String) {
        self.play_with(playbook, args, &[])
    }

    /// [`Fleet::play`] with more environment.
    fn play_with(
        &self,
        playbook: &Path,
        args: &[&str],
        env: &[(&str, std::ffi::OsString)],
    ) -> (Option<i32>, String) {
        let out = StdCommand::new(&self.playbook)
            .arg("-i")
            .arg(self.dir.path().join("inventory.ini"))
            .arg(playbook)
            .args(args)
            .arg("-e")
            .arg(format!("ansible_python_interpreter={}", python().display()))
            .current_dir(self.dir.path())
            .env("ANSIBLE_LIBRARY", self.dir.path().join("library"))
            .env("ANSIBLE_LOCAL_TEMP", self.dir.path().join("tmp"))
            .env("ANSIBLE_REMOTE_TEMP", self.dir.path().join("tmp"))
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_FORCE_COLOR", "0")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    }
}

/// `PLAY RECAP` counts per host: `host -> (ok, changed, failed)`.
fn recap(out: &str) -> std::collections::BTreeMap<String, (u32, u32, u32)> {
    let count = |line: &str, key: &str| -> u32 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
    };
    out.lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .skip(1)
        .filter(|l| l.contains(" : ok="))
        .map(|l| {
            let host = l.split_whitespace().next().unwrap().to_owned();
            (
                host,
                (count(l, "ok"), count(l, "changed"), count(l, "failed")),
            )
        })
        .collect()
}

/// The interpreter of the `ansible-playbook` found (for `command`).
fn python() -> PathBuf {
    let pb = ansible_bin("ansible-playbook").unwrap();
    pb.parent().unwrap().join("python3")
}

/// The shipped configure and rollback playbooks in `dir`, on every host of
/// the fleet: `--check --diff` shows the diffs and writes nothing; the first
/// run changes every host, the second none; the rollback's `--check` writes
/// nothing, the rollback restores every tree, and a second changes nothing.
fn configure_and_roll_back(
    fleet: &Fleet,
    dir: &Path,
    args: &[&str],
    env: &[(&str, std::ffi::OsString)],
) {
    let start: Vec<Snapshot> = fleet.trees.iter().map(Tree::targets).collect();
    let hosts: Vec<String> = (0..fleet.trees.len()).map(|i| format!("host{i}")).collect();
    let n = fleet.trees.len();
    let play =
        |name: &str, extra: &[&str]| fleet.play_with(&dir.join(name), &[args, extra].concat(), env);

    // --check --diff: shows the diff, writes nothing.
    let (code, out) = play("configure.yml", &["--check", "--diff"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out.matches("+no-cgroups = true").count(), n, "{out}");
    assert_eq!(
        out.matches("+nvidia = [\"/usr/bin/nvidia-container-runtime\"]")
            .count(),
        n,
        "{out}"
    );
    assert_eq!(
        out.matches(&format!("+++ after: {DROPIN}")).count(),
        n,
        "{out}"
    );
    for host in &hosts {
        assert_eq!(recap(&out)[host.as_str()].1, 1, "{out}");
    }
    for (tree, before) in fleet.trees.iter().zip(&start) {
        assert_same(&tree.targets(), before);
        assert!(!tree.real(STATE_DIR).exists());
    }

    // First run: changed on every host (the module, and the debug task
    // that reports its transaction).
    let (code, out) = play("configure.yml", &[]);
    assert_eq!(code, Some(0), "{out}");
    for host in &hosts {
        assert_eq!(recap(&out)[host.as_str()], (2, 1, 0), "{out}");
    }
    assert_eq!(
        out.matches("transaction 1 changed 3 file(s)").count(),
        n,
        "{out}"
    );
    for tree in &fleet.trees {
        assert!(tree.real(HOOK).is_file());
    }

    // Second run: ok, not changed.
    let (code, out) = play("configure.yml", &[]);
    assert_eq!(code, Some(0), "{out}");
    for host in &hosts {
        assert_eq!(recap(&out)[host.as_str()], (1, 0, 0), "{out}");
    }

    // The rollback playbook, as shipped: --check says what it would undo
    // and writes nothing; then it restores every tree (the module, and the
    // debug task that reports it).
    let configured: Vec<Snapshot> = fleet.trees.iter().map(Tree::snapshot).collect();
    let (code, out) = play("rollback.yml", &["--check"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        out.matches("transaction 1 would be rolled back (check mode)")
            .count(),
        n,
        "{out}"
    );
    for (tree, before) in fleet.trees.iter().zip(&configured) {
        assert_same(&tree.snapshot(), before);
    }
    let (code, out) = play("rollback.yml", &[]);
    assert_eq!(code, Some(0), "{out}");
    for host in &hosts {
        assert_eq!(recap(&out)[host.as_str()], (2, 1, 0), "{out}");
    }
    assert_eq!(
        out.matches("rolled back transaction 1 as transaction 2")
            .count(),
        n,
        "{out}"
    );
    for (tree, before) in fleet.trees.iter().zip(&start) {
        assert_same(&tree.targets(), before);
    }
    // Run again: nothing to undo, nothing changes, no failure.
    let undone: Vec<Snapshot> = fleet.trees.iter().map(Tree::snapshot).collect();
    let (code, out) = play("rollback.yml", &[]);
    assert_eq!(code, Some(0), "{out}");
    for host in &hosts {
        assert_eq!(recap(&out)[host.as_str()], (1, 0, 0), "{out}");
    }
    for (tree, before) in fleet.trees.iter().zip(&undone) {
        assert_same(&tree.snapshot(), before);
    }
}

#[test]
fn the_example_playbooks_configure_and_roll_back_several_hosts() {
    let Some(fleet) = Fleet::new(&["", "", ""]) else {
        return;
    };
    configure_and_roll_back(&fleet, &repo().join("examples/ansible"), &[], &[]);
}

#[test]
fn a_bad_argument_fails_only_its_host_with_a_readable_message() {
    let Some(fleet) = Fleet::new(&["", "nc=maybe", ""]) else {
        return;
    };
    let playbook = fleet.dir.path().join("bad.yml");
    fs::write(
        &playbook,
        "- hosts: gpu_hosts\n  gather_facts: false\n  tasks:\n    - gpu_setup:\n        root: \"{{ root }}\"\n        no_cgroups: \"{{ nc | default(true) }}\"\n",
    )
    .unwrap();
    let before = fleet.trees[1].snapshot();
    let (code, out) = fleet.play(&playbook, &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("fatal: [host1]: FAILED!"), "{out}");
    assert!(
        out.contains(r#""msg": "argument no_cgroups must be a boolean, not \"maybe\"""#),
        "{out}"
    );
    let r = recap(&out);
    assert_eq!(r["host1"].2, 1, "{out}");
    assert_eq!(r["host0"], (1, 1, 0), "{out}");
    assert_eq!(r["host2"], (1, 1, 0), "{out}");
    assert_same(&fleet.trees[1].snapshot(), &before);
}
#[test]
fn an_unknown_argument_fails_like_ansibles_own_modules() {
    let Some(fleet) = Fleet::new(&[""]) else {
        return;
    };
    let Some(adhoc) = ansible_bin("ansible") else {
        return;
    };
    let before = fleet.trees[0].snapshot();
    let out = StdCommand::new(adhoc)
        .args(["localhost", "-c", "local", "-m", "gpu_setup", "-a"])
        .arg(format!(
            "root={} runtime_nmae=gpu",
            fleet.trees[0].root().display()
        ))
        .env("ANSIBLE_LIBRARY", fleet.dir.path().join("library"))
        .env("ANSIBLE_LOCAL_TEMP", fleet.dir.path().join("tmp"))
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert!(
        stdout.contains("Unsupported parameters for (gpu_setup) module: runtime_nmae."),
        "{stdout}"
    );
    assert_same(&fleet.trees[0].snapshot(), &before);
}

#[test]
fn ansible_doc_shows_the_sidecar_docs_and_they_name_every_argument_the_module_takes() {
    let Some(doc) = ansible_bin("ansible-doc") else {
        return;
    };
    // As `make ansible-module` installs them: the binary and its docs.
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("library");
    fs::create_dir(&library).unwrap();
    fs::copy(crate::util::bin(), library.join("gpu_setup")).unwrap();
    fs::copy(repo().join(SIDECAR), library.join("gpu_setup.yml")).unwrap();
    let run_doc = |extra: &[&str]| {
        let out = StdCommand::new(&doc)
            .arg("-M")
            .arg(&library)
            .args(extra)
            .arg("gpu_setup")
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_LOCAL_TEMP", dir.path().join("tmp"))
            .env("HOME", dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}{stderr}");
        assert!(!stderr.contains("Missing documentation"), "{stderr}");
        stdout
    };
    let text = run_doc(&[]);
    assert!(
        text.contains("Configure Podman for NVIDIA GPUs")
            || text.contains("Runs the gpu-setup binary"),
        "{text}"
    );
    assert!(text.contains("EXAMPLES"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&run_doc(&["--json"])).unwrap();
    let options = json["gpu_setup"]["doc"]["options"].as_object().unwrap();
    let documented: Vec<&str> = options.keys().map(String::as_str).collect();
    // What the module accepts, in its own words: the list an unknown
    // argument gets back.
    let args = dir.path().join("args.json");
    fs::write(
        &args,
        r#"{"no_such_argument": 1, "_ansible_check_mode": true}"#,
    )
    .unwrap();
    let out = StdCommand::new(library.join("gpu_setup"))
        .arg(&args)
        .output()
        .unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let msg = reply["msg"].as_str().unwrap();
    let supported = msg
        .split("Supported parameters include: ")
        .nth(1)
        .unwrap_or_else(|| panic!("{msg}"))
        .trim_end_matches('.');
    let mut accepted: Vec<&str> = supported.split(", ").collect();
    accepted.sort_unstable();
    assert_eq!(documented, accepted, "{SIDECAR} vs the module");
    // Each setting as its one declaration (gpu_setup_plan::settings) says:
    // the type, the choices, and the default named in the description.
    // (ansible-test sanity holds the wrapper's argument spec to these docs.)
    use gpu_setup_plan::settings::{Kind, SETTINGS};
    for s in SETTINGS.iter().filter(|s| s.module) {
        let option = &options[s.key];
        let types: &[&str] = match s.kind {
            Kind::Text => &["path", "str"],
            Kind::Bool | Kind::Switch => &["bool"],
            Kind::Choice(_) => &["str"],
            Kind::Count => &["int"],
        };
        let ty = option["type"].as_str().unwrap_or_default();
        assert!(types.contains(&ty), "{}: type {ty} in {SIDECAR}", s.key);
        let choices: Vec<&str> = option["choices"]
            .as_array()
            .map(|c| c.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        assert_eq!(choices, s.choices(), "{}: choices in {SIDECAR}", s.key);
        if let Some(default) = s.default {
            let value = default.split(';').next().unwrap();
            let text = option["description"].to_string();
            assert!(
                text.contains(value),
                "{}: {SIDECAR} does not name the default {value}: {text}",
                s.key
            );
        }
    }
    // The documented choices are the ones the module takes: any other
    // value is refused with the same list.
    for (name, refusal) in [
        ("state", "state must be present or absent"),
        ("strategy", "strategy must be hook or cdi"),
    ] {
        let choices: Vec<&str> = options[name]["choices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(refusal.rsplit(" be ").next().unwrap(), choices.join(" or "));
        let root = dir.path().join("root");
        fs::create_dir_all(&root).unwrap();
        let call = serde_json::json!({name: "bogus", "root": root, "_ansible_check_mode": true});
        fs::write(&args, call.to_string()).unwrap();
        let out = StdCommand::new(library.join("gpu_setup"))
            .arg(&args)
            .output()
            .unwrap();
        let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            reply["msg"].as_str().unwrap().starts_with(refusal),
            "{reply}"
        );
    }
}

/// The collection as `ansible-galaxy collection build` makes it (what
/// `make dist` ships), installed into `dir/collections`.
fn installed_collection(dir: &Path) -> Option<PathBuf> {
    let galaxy = ansible_bin("ansible-galaxy")?;
    let built = dir.join("built");
    let out = StdCommand::new(&galaxy)
        .args(["collection", "build"])
        .arg(repo().join("ansible/collection"))
        .arg("--output-path")
        .arg(&built)
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let tarball = built.join(format!(
        "gpu_setup-podman_nvidia-{}.tar.gz",
        env!("CARGO_PKG_VERSION")
    ));
    let out = StdCommand::new(&galaxy)
        .args(["collection", "install", "-p"])
        .arg(dir.join("collections"))
        .arg(&tarball)
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let root = dir.join("collections/ansible_collections/gpu_setup/podman_nvidia");
    assert!(root.join("plugins/modules/gpu_setup.py").is_file());
    Some(dir.join("collections"))
}

#[test]
fn the_collection_configures_and_rolls_back_hosts_by_its_fqcn_with_the_installed_binary() {
    let Some(fleet) = Fleet::new(&["", ""]) else {
        return;
    };
    let Some(collections) = installed_collection(fleet.dir.path()) else {
        return;
    };
    // The host's packaged gpu-setup, found on PATH here: the module runs
    // it, and nothing is copied from a library directory.
    let bin_dir = fleet.dir.path().join("bin");
    fs::create_dir(&bin_dir).unwrap();
    std::os::unix::fs::symlink(crate::util::bin(), bin_dir.join("gpu-setup")).unwrap();
    fs::remove_file(fleet.dir.path().join("library/gpu_setup")).unwrap();
    let path = std::env::join_paths(
        [bin_dir.clone()]
            .into_iter()
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let env = [
        (
            "ANSIBLE_COLLECTIONS_PATH",
            collections.clone().into_os_string(),
        ),
        ("PATH", path.clone()),
    ];
    let playbooks = collections.join("ansible_collections/gpu_setup/podman_nvidia/playbooks");
    // As root already: no sudo.
    let no_become = ["-e", "ansible_become=false"];
    configure_and_roll_back(&fleet, &playbooks, &no_become, &env);

    // A bad argument is refused by the wrapper's spec before gpu-setup
    // runs; one gpu-setup refuses fails its host with the binary's words.
    let before: Vec<Snapshot> = fleet.trees.iter().map(Tree::snapshot).collect();
    for (task, refusal) in [
        (
            "strategy: nvml",
            "value of strategy must be one of: hook, cdi, got: nvml",
        ),
        (
            "rollback: true\n        transaction: 99",
            "no transaction 99 (see gpu-setup history)",
        ),
    ] {
        let playbook = fleet.dir.path().join("bad.yml");
        fs::write(
            &playbook,
            format!("- hosts: host0\n  gather_facts: false\n  tasks:\n    - gpu_setup.podman_nvidia.gpu_setup:\n        root: \"{{{{ root }}}}\"\n        {task}\n"),
        )
        .unwrap();
        let (code, out) = fleet.play_with(&playbook, &[], &env);
        assert_eq!(code, Some(2), "{out}");
        assert!(out.contains("fatal: [host0]: FAILED!"), "{out}");
        assert!(out.contains(refusal), "{out}");
    }
    for (tree, before) in fleet.trees.iter().zip(&before) {
        assert_same(&tree.snapshot(), before);
    }

    // Without gpu-setup installed, the module says what is missing.
    let bare =
        std::env::join_paths(std::env::split_paths(&path).filter(|d| d != &bin_dir)).unwrap();
    if !Path::new("/usr/bin/gpu-setup").exists() {
        let (code, out) = fleet.play_with(
            &playbooks.join("configure.yml"),
            &no_become,
            &[env[0].clone(), ("PATH", bare.clone())],
        );
        assert_eq!(code, Some(2), "{out}");
        assert!(
            out.contains("Failed to find required executable \"gpu-setup\""),
            "{out}"
        );
        // A gpu-setup that answers with something other than one JSON
        // object (a broken or foreign binary): the host fails, saying what
        // came back, and nothing changes.
        let broken = fleet.dir.path().join("broken");
        fs::create_dir(&broken).unwrap();
        let fake = broken.join("gpu-setup");
        let on_path = std::env::join_paths(
            [broken.clone()]
                .into_iter()
                .chain(std::env::split_paths(&bare)),
        )
        .unwrap();
        let before: Vec<Snapshot> = fleet.trees.iter().map(Tree::snapshot).collect();
        for (script, refusal) in [
            (
                "echo 'not json'; echo boom >&2; exit 3",
                "gpu-setup returned no JSON (exit 3): boom",
            ),
            ("echo '[1]'", "gpu-setup returned [1], not a JSON object"),
        ] {
            fs::write(&fake, format!("#!/bin/sh\n{script}\n")).unwrap();
            fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
            let (code, out) = fleet.play_with(
                &playbooks.join("configure.yml"),
                &no_become,
                &[env[0].clone(), ("PATH", on_path.clone())],
            );
            assert_eq!(code, Some(2), "{out}");
            assert!(out.contains(refusal), "{out}");
        }
        for (tree, before) in fleet.trees.iter().zip(&before) {
            assert_same(&tree.snapshot(), before);
        }
    }

    // ansible-doc finds the module by its FQCN.
    let doc = ansible_bin("ansible-doc").unwrap();
    let out = StdCommand::new(doc)
        .arg("gpu_setup.podman_nvidia.gpu_setup")
        .env("ANSIBLE_COLLECTIONS_PATH", &collections)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("HOME", fleet.dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("gpu_setup.podman_nvidia.gpu_setup"), "{text}");
    assert!(text.contains("no_cgroups"), "{text}");
}

#[test]
fn the_collection_passes_ansible_test_sanity() {
    if ansible_bin("ansible-test").is_none() {
        return;
    }
    // ansible/sanity.sh: a copy under ansible_collections/, the venvs
    // cached under target/ (their packages from PyPI).
    let out = StdCommand::new("bash")
        .arg(repo().join("ansible/sanity.sh"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    // Every sanity test ran, validate-modules (docs against the argument
    // spec) among them, and none failed.
    assert!(
        text.contains("Running sanity test \"validate-modules\""),
        "{text}"
    );
    assert!(
        text.contains("Running sanity test \"ansible-doc\""),
        "{text}"
    );
    assert!(!text.contains("ERROR:"), "{text}");
}
