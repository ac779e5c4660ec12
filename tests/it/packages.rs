//! Package awareness: which package owns each managed file (dpkg's lists
//! under the root, checked against `dpkg -S` itself; rpm's database under
//! the root, queried with the real `rpm`), reported when a change to the
//! file is planned and always in JSON.

use std::fs;
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
        [format!("`{NV_CONFIG}` belongs to package nvidia-container-toolkit-base (dpkg): a dpkg conffile: an upgrade of nvidia-container-toolkit-base that ships a new version asks whether to keep this one (--force-confold keeps it); `apt remove` keeps it, `apt purge` deletes it")]
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

/// Builds an RPM like NVIDIA's v1.13.5 `nvidia-container-toolkit` (the
/// hook file as a plain file) and `-base` (config.toml as %config), and
/// registers it in the tree's rpm database without installing files.
fn rpm_tree() -> Option<Tree> {
    if !have_tool("rpm", "rpm") || !have_tool("rpmbuild", "rpm") {
        return None;
    }
    let tree = Tree::stock();
    let top = tempfile::tempdir().unwrap();
    fs::create_dir_all(top.path().join("SPECS")).unwrap();
    let spec = top.path().join("SPECS/toolkit.spec");
    fs::write(
        &spec,
        format!(
            "Name: nvidia-container-toolkit\nVersion: 1.13.5\nRelease: 1\nSummary: stand-in\nLicense: Apache-2.0\nBuildArch: noarch\n%description\nstand-in\n%install\nmkdir -p %{{buildroot}}/usr/share/containers/oci/hooks.d %{{buildroot}}/etc/nvidia-container-runtime\necho '{{}}' > %{{buildroot}}{HOOK}\necho '' > %{{buildroot}}{NV_CONFIG}\n%files\n%config {NV_CONFIG}\n{HOOK}\n"
        ),
    )
    .unwrap();
    let out = Command::new("rpmbuild")
        .args(["--quiet", "-bb", "--define"])
        .arg(format!("_topdir {}", top.path().display()))
        .arg(&spec)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rpm = top
        .path()
        .join("RPMS/noarch/nvidia-container-toolkit-1.13.5-1.noarch.rpm");
    let rpm_cmd = |args: &[&str]| {
        let out = Command::new("rpm")
            .arg("--root")
            .arg(tree.root())
            .args(["--dbpath", "/var/lib/rpm"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "rpm {args:?}: {out:?}");
    };
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
