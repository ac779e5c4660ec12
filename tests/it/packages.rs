//! Package awareness: which package owns each managed file (dpkg's lists
//! under the root, checked against `dpkg -S` itself; rpm's database under
//! the root, queried with the real `rpm`), reported when a change to the
//! file is planned and always in JSON.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::heal::have_tool;
use crate::util::*;

fn plan_json(tree: &Tree) -> Value {
    serde_json::from_str(&ok_stdout(&mut tree.cmd(&["plan", "--format", "json"]))).unwrap()
}

fn package_notes(v: &Value) -> Vec<String> {
    v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["code"] == "package-owned")
        .map(|w| {
            assert_eq!(w["level"], "info", "{w:#}");
            w["message"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// A stock tree whose dpkg database says NVIDIA's Debian package
/// `nvidia-container-toolkit-base` (v1.13.5: config.toml installed into
/// /etc, so a conffile) is installed.
fn dpkg_tree() -> Tree {
    let tree = Tree::stock();
    tree.write(
        "/var/lib/dpkg/info/nvidia-container-toolkit-base.list",
        "/.\n/etc\n/etc/nvidia-container-runtime\n/etc/nvidia-container-runtime/config.toml\n/usr\n/usr/bin\n/usr/bin/nvidia-container-runtime\n/usr/bin/nvidia-ctk\n",
    );
    tree.write(
        "/var/lib/dpkg/info/nvidia-container-toolkit-base.conffiles",
        "/etc/nvidia-container-runtime/config.toml\n",
    );
    tree.write(
        "/var/lib/dpkg/status",
        "Package: nvidia-container-toolkit-base\nStatus: install ok installed\nPriority: optional\nSection: utils\nMaintainer: NVIDIA CORPORATION <cudatools@nvidia.com>\nArchitecture: amd64\nVersion: 1.13.5-1\nConffiles:\n /etc/nvidia-container-runtime/config.toml 00000000000000000000000000000000\nDescription: NVIDIA Container Toolkit Base\n\n",
    );
    tree
}

#[test]
fn a_dpkg_owned_file_is_named_with_what_dpkg_does_to_it() {
    let tree = dpkg_tree();
    let v = plan_json(&tree);
    let owner = json!({
        "path": NV_CONFIG,
        "package": "nvidia-container-toolkit-base",
        "manager": "dpkg",
        "kind": "conffile",
    });
    assert_eq!(v["packages"], json!([owner]));
    let file = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == NV_CONFIG)
        .unwrap();
    assert_eq!(file["package"], owner);
    assert_eq!(
        package_notes(&v),
        [format!("`{NV_CONFIG}` belongs to package nvidia-container-toolkit-base (dpkg): a dpkg conffile: an upgrade of nvidia-container-toolkit-base that ships a new version of it asks whether to keep this one, and without a terminal dpkg fails to configure nvidia-container-toolkit-base (--force-confold keeps this one); `dpkg --remove` keeps it, `dpkg --purge` deletes it")]
    );
    // dpkg itself agrees.
    if have_tool("dpkg", "dpkg") {
        let out = Command::new("dpkg")
            .arg(format!(
                "--admindir={}",
                tree.real("/var/lib/dpkg").display()
            ))
            .args(["-S", NV_CONFIG])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("nvidia-container-toolkit-base: {NV_CONFIG}\n"),
            "{out:?}"
        );
    }
    // Configured: no note (nothing changes), the JSON still says who owns it.
    tree.cmd(&["apply", "-q"]).assert().success();
    let v = plan_json(&tree);
    assert!(package_notes(&v).is_empty(), "{v:#}");
    assert_eq!(v["packages"][0]["package"], "nvidia-container-toolkit-base");
    // Text: the note goes to stderr with a hint naming the heal units.
    tree.write(NV_CONFIG, fixture(UBUNTU_NV));
    let out = tree.cmd(&["plan"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("info[package-owned]: `{NV_CONFIG}` belongs to package nvidia-container-toolkit-base (dpkg)")),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: the gpu-setup-heal units put gpu-setup's settings back"),
        "{stderr}"
    );
}

#[test]
fn a_plain_dpkg_file_and_an_unreadable_list_do_not_break_planning() {
    let tree = dpkg_tree();
    // A package shipping the hook file itself (as NVIDIA's RPMs do).
    tree.write("/var/lib/dpkg/info/some-hooks.list", format!("{HOOK}\n"));
    // A list that is not UTF-8 and one that is a directory: skipped.
    tree.write("/var/lib/dpkg/info/broken.list", b"\xff\xfe".as_slice());
    fs::create_dir_all(tree.real("/var/lib/dpkg/info/odd.list")).unwrap();
    let v = plan_json(&tree);
    let hook = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"] == HOOK)
        .unwrap_or_else(|| panic!("{v:#}"))
        .clone();
    assert_eq!(hook["kind"], "plain");
    assert!(package_notes(&v)
        .iter()
        .any(|n| n.contains("a plain dpkg file: every upgrade of some-hooks overwrites it and removing some-hooks deletes it")));
}

/// Builds a noarch RPM `nvidia-container-toolkit` of `version` holding
/// `files`: (path, content, `%files` prefix such as `%config`).
fn build_rpm(dir: &Path, version: &str, files: &[(&str, &str, &str)]) -> PathBuf {
    let mut install = String::new();
    let mut listed = String::new();
    for (path, content, attr) in files {
        install.push_str(&format!(
            "mkdir -p $(dirname %{{buildroot}}{path})\nprintf '%s\\n' '{content}' > %{{buildroot}}{path}\n"
        ));
        listed.push_str(&format!("{attr} {path}\n"));
    }
    let spec = dir.join(format!("toolkit-{version}.spec"));
    fs::write(
        &spec,
        format!("Name: nvidia-container-toolkit\nVersion: {version}\nRelease: 1\nSummary: stand-in\nLicense: Apache-2.0\nBuildArch: noarch\n%description\nstand-in\n%install\n{install}%files\n{listed}"),
    )
    .unwrap();
    let out = Command::new("rpmbuild")
        .args(["--quiet", "-bb", "--define"])
        .arg(format!("_topdir {}", dir.display()))
        .arg(&spec)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    dir.join(format!(
        "RPMS/noarch/nvidia-container-toolkit-{version}-1.noarch.rpm"
    ))
}

/// `rpm --root TREE --dbpath /var/lib/rpm ARGS`, which must succeed.
fn rpm_in(tree: &Tree, args: &[&str]) {
    let out = Command::new("rpm")
        .arg("--root")
        .arg(tree.root())
        .args(["--dbpath", "/var/lib/rpm"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "rpm {args:?}: {out:?}");
}

/// A tree whose rpm database says NVIDIA's v1.13.5 packages are installed
/// (the hook file plain, config.toml `%config`), registered without
/// installing files, and the files as those packages install them.
fn rpm_tree() -> Option<Tree> {
    if !have_tool("rpm", "rpm") || !have_tool("rpmbuild", "rpm") {
        return None;
    }
    let tree = Tree::stock();
    let top = tempfile::tempdir().unwrap();
    let rpm = build_rpm(
        top.path(),
        "1.13.5",
        &[(HOOK, "{}", ""), (NV_CONFIG, "", "%config")],
    );
    let rpm_cmd = |args: &[&str]| rpm_in(&tree, args);
    rpm_cmd(&["--initdb"]);
    rpm_cmd(&[
        "-i",
        "--justdb",
        "--nodeps",
        "--noscripts",
        rpm.to_str().unwrap(),
    ]);
    // The files as the v1.13.5 packages install them.
    tree.write(
        NV_CONFIG,
        fixture("nvidia-config.toml/nvidia-container-toolkit-v1.13.5-rpm-yum.toml"),
    );
    tree.write(
        HOOK,
        fixture("hooks/nvidia-container-toolkit-v1.13.5-oci-nvidia-hook.json"),
    );
    fs::remove_file(tree.real("/usr/bin/nvidia-container-toolkit")).unwrap();
    tree.exe("/usr/bin/nvidia-container-runtime-hook");
    std::os::unix::fs::symlink(
        "/usr/bin/nvidia-container-runtime-hook",
        tree.real("/usr/bin/nvidia-container-toolkit"),
    )
    .unwrap();
    Some(tree)
}

#[test]
fn rpm_owners_come_from_the_roots_rpm_database() {
    let Some(tree) = rpm_tree() else { return };
    let v = plan_json(&tree);
    assert_eq!(
        v["packages"],
        json!([
            {"path": NV_CONFIG, "package": "nvidia-container-toolkit", "manager": "rpm", "kind": "config"},
            {"path": HOOK, "package": "nvidia-container-toolkit", "manager": "rpm", "kind": "plain"},
        ])
    );
    // The package's hook runs the same binary: left alone, so no fight and
    // no note; config.toml changes, and the note says what an upgrade does.
    assert_eq!(changed_paths(&v), [DROPIN, NV_CONFIG]);
    assert_eq!(
        package_notes(&v),
        [format!("`{NV_CONFIG}` belongs to package nvidia-container-toolkit (rpm): an rpm %config file: an upgrade of nvidia-container-toolkit that changes it installs the package's copy and keeps this one as {NV_CONFIG}.rpmsave; erasing nvidia-container-toolkit saves it as .rpmsave")]
    );
}

#[test]
fn an_empty_rpm_database_dir_is_not_queried() {
    // Debian's rpm package leaves an empty /var/lib/rpm: no rpm run, no
    // owner, no error.
    let tree = Tree::stock();
    fs::create_dir_all(tree.real("/var/lib/rpm")).unwrap();
    let v = plan_json(&tree);
    assert_eq!(v["packages"], json!([]));
}

#[test]
fn rpm_does_to_each_kind_of_file_what_gpu_setup_says() {
    if !have_tool("rpm", "rpm") || !have_tool("rpmbuild", "rpm") {
        return;
    }
    // Real rpm, installing into the tree: config.toml `%config` (as in
    // NVIDIA's v1.10-v1.13 RPMs), the drop-in `%config(noreplace)`, the hook
    // file plain (as NVIDIA's hook file).
    let tree = Tree::stock();
    let top = tempfile::tempdir().unwrap();
    let files = |v: &'static str| {
        [
            (NV_CONFIG, v, "%config"),
            (DROPIN, v, "%config(noreplace)"),
            (HOOK, v, ""),
        ]
    };
    let v1 = build_rpm(top.path(), "1.0", &files("shipped = 1"));
    let v2 = build_rpm(top.path(), "2.0", &files("shipped = 2"));
    rpm_in(&tree, &["--initdb"]);
    rpm_in(
        &tree,
        &["-i", "--nodeps", "--noscripts", v1.to_str().unwrap()],
    );
    // gpu-setup names each kind from the real database.
    let v = plan_json(&tree);
    let kinds: Vec<(String, String)> = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["path"].as_str().unwrap().to_owned(),
                o["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (DROPIN.to_owned(), "config-noreplace".to_owned()),
            (NV_CONFIG.to_owned(), "config".to_owned()),
            (HOOK.to_owned(), "plain".to_owned()),
        ]
    );
    let read = |p: &str| fs::read_to_string(tree.real(p)).ok();
    let ours = "ours = 1\n";
    for p in [NV_CONFIG, DROPIN, HOOK] {
        tree.write(p, ours);
    }
    // An upgrade that changes each file.
    rpm_in(
        &tree,
        &["-U", "--nodeps", "--noscripts", v2.to_str().unwrap()],
    );
    // %config: the package's copy, ours kept as .rpmsave.
    assert_eq!(read(NV_CONFIG).as_deref(), Some("shipped = 2\n"));
    assert_eq!(read(&format!("{NV_CONFIG}.rpmsave")).as_deref(), Some(ours));
    // %config(noreplace): ours kept, the package's as .rpmnew.
    assert_eq!(read(DROPIN).as_deref(), Some(ours));
    assert_eq!(
        read(&format!("{DROPIN}.rpmnew")).as_deref(),
        Some("shipped = 2\n")
    );
    // Plain: overwritten.
    assert_eq!(read(HOOK).as_deref(), Some("shipped = 2\n"));
    // Erasing: a modified %config file is saved as .rpmsave, a plain file
    // is deleted.
    fs::remove_file(tree.real(&format!("{NV_CONFIG}.rpmsave"))).unwrap();
    tree.write(NV_CONFIG, ours);
    rpm_in(
        &tree,
        &["-e", "--nodeps", "--noscripts", "nvidia-container-toolkit"],
    );
    assert_eq!(read(NV_CONFIG), None);
    assert_eq!(read(&format!("{NV_CONFIG}.rpmsave")).as_deref(), Some(ours));
    assert_eq!(read(HOOK), None);
}

#[test]
fn dpkg_does_to_each_kind_of_file_what_gpu_setup_says() {
    if !need_root("dpkg in a private mount namespace") || !have_tool("dpkg-deb", "dpkg") {
        return;
    }
    // Two versions of a package with a conffile (config.toml, as NVIDIA's
    // v1.13 deb installs it into /etc) and a plain file.
    let conf = "/etc/gpu-setup-test/config.toml";
    let plain = "/usr/share/gpu-setup-test/hook.json";
    let debs = tempfile::tempdir().unwrap();
    for v in ["1", "2"] {
        let root = debs.path().join(format!("p{v}"));
        let put = |p: &str, text: &str| {
            let f = root.join(p.trim_start_matches('/'));
            fs::create_dir_all(f.parent().unwrap()).unwrap();
            fs::write(f, text).unwrap();
        };
        put("/DEBIAN/control", &format!("Package: gpu-setup-test\nVersion: {v}\nArchitecture: all\nMaintainer: t <t@example.invalid>\nDescription: t\n"));
        put("/DEBIAN/conffiles", &format!("{conf}\n"));
        put(conf, &format!("shipped = {v}\n"));
        put(plain, &format!("shipped = {v}\n"));
        run_ok(
            Command::new("dpkg-deb")
                .args(["--root-owner-group", "-b"])
                .arg(&root)
                .arg(debs.path().join(format!("{v}.deb"))),
        );
    }
    let host = Overlay::new();
    let script = format!(
        r#"dpkg -i "$D/1.deb" >/dev/null
"$G" --color never --format json plan --nvidia-config {conf} >"$H/plan.json" || true
echo "ours = 1" >{conf}; echo "ours = 1" >{plain}
if dpkg -i "$D/2.deb" </dev/null >/dev/null 2>"$H/upgrade.err"; then echo "upgrade: ok"; else echo "upgrade: failed"; fi
echo "conf: $(cat {conf})"; echo "plain: $(cat {plain})"
dpkg --force-confold --configure gpu-setup-test >/dev/null && echo "confold: $(cat {conf})"
dpkg --remove gpu-setup-test >/dev/null
echo "removed: $(cat {conf}) $(test -e {plain} && echo plain-left || echo plain-gone)"
dpkg --purge gpu-setup-test >/dev/null
echo "purged: $(test -e {conf} && echo conf-left || echo conf-gone)"
"#
    );
    let out = host.sh(
        &script,
        &[("D", debs.path().as_os_str()), ("G", bin().as_os_str())],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        // A conffile changed locally and by the package: dpkg asks, and
        // without a terminal it fails to configure the package (the
        // package's copy waits as .dpkg-new); --force-confold keeps ours.
        // A plain file is overwritten. Removing keeps a conffile, purging
        // deletes it.
        "upgrade: failed\nconf: ours = 1\nplain: shipped = 2\nconfold: ours = 1\nremoved: ours = 1 plain-gone\npurged: conf-gone\n"
    );
    let err = fs::read_to_string(host.path().join("upgrade.err")).unwrap();
    assert!(
        err.contains("end of file on stdin at conffile prompt"),
        "{err}"
    );
    // gpu-setup read the real dpkg database and said as much.
    let plan: Value =
        serde_json::from_str(&fs::read_to_string(host.path().join("plan.json")).unwrap()).unwrap();
    assert_eq!(
        plan["packages"],
        json!([{"path": conf, "package": "gpu-setup-test", "manager": "dpkg", "kind": "conffile"}])
    );
    let note = package_notes(&plan).join("\n");
    assert!(
        note.contains("without a terminal dpkg fails to configure gpu-setup-test"),
        "{note}"
    );
    assert!(note.contains("--force-confold keeps this one"), "{note}");
    assert!(
        note.contains("`dpkg --remove` keeps it, `dpkg --purge` deletes it"),
        "{note}"
    );
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {out:?}");
}

/// Names and contents of the files in a directory.
fn dir_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn r18_rpm_reads_a_copy_of_an_images_database_under_a_relative_root_too() {
    // The review: a relative --root made rpm fail and the plan show no
    // packages; a read-only plan made rpm's sqlite backend create
    // rpmdb.sqlite-wal and -shm in the image.
    let Some(tree) = rpm_tree() else { return };
    let db = tree.real("/var/lib/rpm");
    let before = dir_files(&db);
    let parent = tree.root().parent().unwrap();
    let name = tree.root().file_name().unwrap().to_str().unwrap();
    let out = gpu_setup()
        .current_dir(parent)
        .args([
            "--color", "never", "--root", name, "plan", "--format", "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["packages"].as_array().unwrap().len(), 2, "{v:#}");
    assert_eq!(
        dir_files(&db),
        before,
        "the image's rpm database is untouched"
    );
    // And the toolkit's version comes from that database (host facts).
    let out = gpu_setup()
        .args(["--color", "never", "--log-level", "debug", "--root"])
        .arg(tree.root())
        .args(["plan"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("toolkit=Some(ToolkitVersion(Version { major: 1, minor: 13, patch: 5 }))"),
        "{log}"
    );
}
