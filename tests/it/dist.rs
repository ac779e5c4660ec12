//! The artefacts of `make dist` (docs/install.md): the portable binary, the
//! .deb, the .rpm, the tarball and SHA256SUMS, checked with the tools each
//! distribution uses. They are checked where they exist; CI runs `make
//! dist` first and sets `GPU_SETUP_REQUIRE_DIST`, so there they must.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::heal::have_tool;
use crate::util::*;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `dist/`, when `make dist` has built it.
fn dist() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist");
    if dir.join("gpu-setup").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("GPU_SETUP_REQUIRE_DIST").is_none(),
        "GPU_SETUP_REQUIRE_DIST is set, so `make dist` must have built dist/"
    );
    eprintln!("skipped: dist/ is not built (make dist)");
    None
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// One architecture `make dist` builds for.
struct Arch {
    /// The kernel's and rpm's name (`uname -m`).
    name: &'static str,
    /// Debian's name.
    deb: &'static str,
    /// The binary, in dist/.
    bin: &'static str,
    /// The ELF machine, as readelf names it.
    machine: &'static str,
    /// glibc's dynamic loader on this architecture.
    loader: &'static str,
    /// The segment alignment the binary must have at least (64 KiB on
    /// aarch64, whose kernels may use 64K pages, as Grace's do).
    align: u64,
}

const ARCHES: [Arch; 2] = [
    Arch {
        name: "x86_64",
        deb: "amd64",
        bin: "gpu-setup",
        machine: "Advanced Micro Devices X86-64",
        loader: "ld-linux-x86-64.so.2",
        align: 0x1000,
    },
    Arch {
        name: "aarch64",
        deb: "arm64",
        bin: "aarch64/gpu-setup",
        machine: "AArch64",
        loader: "ld-linux-aarch64.so.1",
        align: 0x10000,
    },
];

fn deb(dist: &Path, arch: &Arch) -> PathBuf {
    dist.join(format!("gpu-setup_{VERSION}-1_{}.deb", arch.deb))
}

fn rpm(dist: &Path, arch: &Arch) -> PathBuf {
    dist.join(format!("gpu-setup-{VERSION}-1.{}.rpm", arch.name))
}

/// Whether this machine runs aarch64 binaries (qemu-user through
/// binfmt_misc, docs/testing.md); CI sets GPU_SETUP_REQUIRE_QEMU, so there
/// it must.
pub fn runs_aarch64() -> bool {
    let registered = fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64")
        .is_ok_and(|s| s.starts_with("enabled"));
    assert!(
        registered || std::env::var_os("GPU_SETUP_REQUIRE_QEMU").is_none(),
        "GPU_SETUP_REQUIRE_QEMU is set, so binfmt_misc must run aarch64 binaries (apt-get install qemu-user-static binfmt-support)"
    );
    if !registered {
        eprintln!("skipped running the aarch64 binary: binfmt_misc has no qemu-aarch64");
    }
    registered
}

/// The files both packages install (directories aside), by their paths in
/// the deb; the rpm differs where the distributions do (`rpm_files`).
fn deb_files() -> BTreeSet<String> {
    let mut files: BTreeSet<String> = [
        "/usr/bin/gpu-setup",
        "/usr/lib/systemd/system/gpu-setup-heal.path",
        "/usr/lib/systemd/system/gpu-setup-heal.service",
        "/usr/lib/systemd/system/gpu-setup-heal.timer",
        "/usr/share/bash-completion/completions/gpu-setup",
        "/usr/share/fish/vendor_completions.d/gpu-setup.fish",
        "/usr/share/zsh/vendor-completions/_gpu-setup",
        "/usr/share/doc/gpu-setup/README.md.gz",
        "/usr/share/doc/gpu-setup/install.md.gz",
        "/usr/share/doc/gpu-setup/heal.md.gz",
        "/usr/share/doc/gpu-setup/plan.md.gz",
        "/usr/share/doc/gpu-setup/journal.md.gz",
        "/usr/share/doc/gpu-setup/doctor.md.gz",
        "/usr/share/doc/gpu-setup/security.md.gz",
        "/usr/share/doc/gpu-setup/provisioning.md.gz",
        "/usr/share/doc/gpu-setup/examples/provision.sh",
        "/usr/share/doc/gpu-setup/copyright",
        "/usr/share/doc/gpu-setup/changelog.Debian.gz",
        "/usr/share/doc/gpu-setup/examples/gpu-setup.toml",
        "/usr/share/doc/gpu-setup/examples/apt/90gpu-setup-heal",
        "/usr/share/doc/gpu-setup/examples/dnf/gpu-setup.action",
        "/usr/share/lintian/overrides/gpu-setup",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for page in man_pages() {
        let section = page.rsplit('.').next().unwrap();
        files.insert(format!("/usr/share/man/man{section}/{page}.gz"));
    }
    files
}

fn rpm_files() -> BTreeSet<String> {
    let mut files: BTreeSet<String> = deb_files()
        .into_iter()
        .filter(|f| {
            !f.contains("/lintian/")
                && !f.ends_with("/copyright")
                && !f.ends_with("/changelog.Debian.gz")
        })
        .map(|f| {
            f.replace("/zsh/vendor-completions/", "/zsh/site-functions/")
                .replace(".md.gz", ".md")
        })
        .collect();
    files.insert("/usr/share/licenses/gpu-setup/LICENSE".to_owned());
    // The rpm owns its own directories (`%dir`): nothing is left after
    // `rpm -e`.
    for dir in [
        "/usr/share/doc/gpu-setup",
        "/usr/share/doc/gpu-setup/examples",
        "/usr/share/doc/gpu-setup/examples/apt",
        "/usr/share/doc/gpu-setup/examples/dnf",
        "/usr/share/licenses/gpu-setup",
    ] {
        files.insert(dir.to_owned());
    }
    files
}

/// docs/man's pages: every one is packaged.
fn man_pages() -> Vec<String> {
    let mut pages: Vec<String> =
        fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/man"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
    pages.sort();
    assert!(pages.len() >= 8, "{pages:?}");
    pages
}

#[test]
fn the_portable_binaries_need_glibc_2_17_and_nothing_else() {
    let Some(dist) = dist() else { return };
    if !have_tool("readelf", "binutils") {
        return;
    }
    for arch in &ARCHES {
        let bin = dist.join(arch.bin);
        let header = run(Command::new("readelf").arg("-h").arg(&bin));
        assert!(
            header
                .lines()
                .any(|l| l.trim() == format!("Machine:                           {}", arch.machine)),
            "{}: {header}",
            arch.name
        );
        // Every versioned glibc symbol, as `readelf --dyn-syms` shows them
        // (`memcpy@GLIBC_2.14 (3)`).
        let symbols = run(Command::new("readelf").args(["--dyn-syms", "-W"]).arg(&bin));
        let mut versions: Vec<Vec<u32>> = symbols
            .split("@GLIBC_")
            .skip(1)
            .filter_map(|s| {
                let v: String = s
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                let parts: Vec<u32> = v.split('.').filter_map(|p| p.parse().ok()).collect();
                (!parts.is_empty()).then_some(parts)
            })
            .collect();
        versions.sort();
        let highest = versions.last().unwrap();
        assert!(
            highest <= &vec![2, 17],
            "{}: needs GLIBC_{highest:?}",
            arch.name
        );
        // Only glibc's own libraries, and this architecture's loader.
        let dynamic = run(Command::new("readelf").args(["-d", "-W"]).arg(&bin));
        let needed: Vec<&str> = dynamic
            .lines()
            .filter(|l| l.contains("(NEEDED)"))
            .filter_map(|l| l.split('[').nth(1)?.split(']').next())
            .collect();
        assert!(needed.contains(&"libc.so.6"), "{}: {needed:?}", arch.name);
        for lib in &needed {
            assert!(
                [
                    "libc.so.6",
                    "libpthread.so.0",
                    "libdl.so.2",
                    "libm.so.6",
                    "librt.so.1",
                    "libgcc_s.so.1",
                    arch.loader
                ]
                .contains(lib),
                "{}: {lib} in {needed:?}",
                arch.name
            );
        }
        let program = run(Command::new("readelf").args(["-l", "-W"]).arg(&bin));
        assert!(
            program.contains(&format!(
                "[Requesting program interpreter: /lib{}/{}]",
                if arch.name == "x86_64" { "64" } else { "" },
                arch.loader
            )),
            "{}: {program}",
            arch.name
        );
        // Each LOAD segment's alignment (the last column).
        for load in program
            .lines()
            .filter(|l| l.trim_start().starts_with("LOAD"))
        {
            let align = load.split_whitespace().last().unwrap();
            let align = u64::from_str_radix(align.trim_start_matches("0x"), 16).unwrap();
            assert!(align >= arch.align, "{}: {load}", arch.name);
        }
    }
    assert_eq!(
        run(Command::new(dist.join("gpu-setup")).arg("--version")),
        format!("gpu-setup {VERSION}\n")
    );
    if runs_aarch64() {
        // Under qemu-user: the same output as the x86_64 binary.
        for args in [
            &["--version"][..],
            &["completions", "bash"],
            &["plan", "--help"],
        ] {
            assert_eq!(
                run(Command::new(dist.join("aarch64/gpu-setup")).args(args)),
                run(Command::new(dist.join("gpu-setup")).args(args)),
                "{args:?}"
            );
        }
    }
}

#[test]
fn r12_the_release_binary_has_no_test_hooks() {
    let Some(dist) = dist() else { return };
    let hooks = b"GPU_SETUP_TEST_";
    let has = |p: &Path| {
        let bytes = fs::read(p).unwrap();
        bytes.windows(hooks.len()).any(|w| w == hooks)
    };
    // The test build has them (so this check can fail) ...
    assert!(has(&assert_cmd::cargo::cargo_bin("gpu-setup")));
    // ... the shipped binaries do not (docs/security.md, R12).
    for arch in &ARCHES {
        assert!(!has(&dist.join(arch.bin)), "{}", arch.name);
    }
}

#[test]
fn the_deb_holds_every_file_with_its_metadata_and_lintian_finds_no_error() {
    let Some(dist) = dist() else { return };
    if !have_tool("dpkg-deb", "dpkg") {
        return;
    }
    for arch in &ARCHES {
        let deb = deb(&dist, arch);
        let info = run(Command::new("dpkg-deb").arg("--info").arg(&deb));
        for field in [
            "Package: gpu-setup".to_owned(),
            format!("Version: {VERSION}-1"),
            format!("Architecture: {}", arch.deb),
            "Depends: libc6 (>= 2.17)".to_owned(),
            "Section: admin".to_owned(),
            "Homepage: https://example.invalid/gpu-setup".to_owned(),
            "Description: configure Podman for NVIDIA GPU containers, and keep it so".to_owned(),
        ] {
            assert!(info.contains(&format!("\n {field}\n")), "{field}\n{info}");
        }
        // Maintainer scripts for the heal units (as dh_installsystemd writes
        // them: nothing enabled or started by default; purged cleanly), and
        // the relations a distribution package has.
        for script in ["postinst", "prerm", "postrm"] {
            assert!(info.contains(script), "{script}: {info}");
        }
        assert!(info.contains("\n Recommends: podman\n"), "{info}");
        assert!(
            info.contains("\n Suggests: nvidia-container-toolkit\n"),
            "{info}"
        );
        let contents = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
        let files: BTreeSet<String> = contents
            .lines()
            .filter(|l| l.starts_with('-'))
            .map(|l| {
                l.rsplit(' ')
                    .next()
                    .unwrap()
                    .trim_start_matches('.')
                    .to_owned()
            })
            .collect();
        assert_eq!(files, deb_files());
        for line in contents.lines() {
            assert!(line.contains(" root/root "), "{line}");
        }
        if have_tool("lintian", "lintian") {
            let out = Command::new("lintian")
                .args(["--fail-on", "error,warning"])
                .arg(&deb)
                .output()
                .unwrap();
            let report = String::from_utf8_lossy(&out.stdout);
            // The two accepted warnings are overridden in the package, each with
            // its reason (packaging/deb/lintian-overrides).
            assert!(out.status.success() && report.trim().is_empty(), "{report}");
        }
    }
}

#[test]
fn the_deb_installs_works_and_purges_without_a_trace() {
    let Some(dist) = dist() else { return };
    if !need_root("dpkg -i in a private mount namespace") || !have_tool("dpkg", "dpkg") {
        return;
    }
    // /etc, /usr and /var as overlays: dpkg writes only to the upper
    // layers, which vanish with the namespace's temp dir.
    let host = Overlay::new();
    let script = r#"dpkg -i "$DEB" >/dev/null
dpkg -L gpu-setup | while read -r p; do
  if [ -d "$p" ]; then echo "D $p"; elif [ -e "$p" ]; then echo "F $p"; else echo "MISSING $p"; fi
done >"$H/installed"
echo "version: $(gpu-setup --version)"
echo "man: $(man -w gpu-setup)"
echo "completion: $(bash -c '. /usr/share/bash-completion/completions/gpu-setup; complete -p gpu-setup')"
links() { find /etc/systemd -name 'gpu-setup*' | sort; }
links >"$H/links-installed"
# The admin enables the heal units; an upgrade keeps them enabled; purge
# leaves no link behind (what dh_installsystemd's scripts do).
systemctl --root=/ enable gpu-setup-heal.path gpu-setup-heal.timer >/dev/null 2>&1
links >"$H/links-enabled"
dpkg -i "$DEB" >/dev/null
links >"$H/links-upgraded"
dpkg --purge gpu-setup >/dev/null
links >"$H/links-purged"
find /var/lib/systemd -name 'gpu-setup*' >>"$H/links-purged" 2>/dev/null || true
while read -r kind p; do
  if [ -e "$p" ] || [ -L "$p" ]; then echo "$kind $p"; fi
done <"$H/installed" >"$H/left"
if dpkg -s gpu-setup >/dev/null 2>&1; then echo "still known to dpkg"; fi
ls /var/lib/dpkg/info | grep '^gpu-setup\.' || true
"#;
    // The install cycle runs this machine's architecture's package.
    let out = host.sh(script, &[("DEB", deb(&dist, &ARCHES[0]).as_os_str())]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout,
        format!(
            "version: gpu-setup {VERSION}\nman: /usr/share/man/man1/gpu-setup.1.gz\ncompletion: complete -o bashdefault -o default -o nosort -F _gpu__setup gpu-setup\n"
        )
    );
    // The units: not enabled by the package; enabled by the admin, kept
    // enabled by an upgrade; nothing left after purge.
    let links = |name: &str| fs::read_to_string(host.path().join(name)).unwrap();
    assert_eq!(links("links-installed"), "", "the package enables nothing");
    let enabled = links("links-enabled");
    assert!(
        enabled.contains("timers.target.wants/gpu-setup-heal.timer"),
        "{enabled}"
    );
    assert!(enabled.contains("gpu-setup-heal.path"), "{enabled}");
    assert_eq!(links("links-upgraded"), enabled);
    assert_eq!(links("links-purged"), "", "dangling after purge");
    // Every file in place while installed.
    let installed = fs::read_to_string(host.path().join("installed")).unwrap();
    let files: BTreeSet<String> = installed
        .lines()
        .filter_map(|l| l.strip_prefix("F "))
        .map(str::to_owned)
        .collect();
    assert_eq!(files, deb_files());
    assert!(!installed.contains("MISSING"), "{installed}");
    // After --purge: no file left, and only directories this machine has
    // anyway (/usr/share/man, ...), none of the package's own.
    let left = fs::read_to_string(host.path().join("left")).unwrap();
    for line in left.lines() {
        let (kind, path) = line.split_once(' ').unwrap();
        assert_eq!(kind, "D", "left behind: {path}");
        assert!(Path::new(path).is_dir(), "left behind: {path}");
    }
}

#[test]
fn the_rpm_holds_the_same_files_needs_only_glibc_and_verifies() {
    let Some(dist) = dist() else { return };
    if !have_tool("rpm", "rpm") {
        return;
    }
    for arch in &ARCHES {
        let rpm = rpm(&dist, arch);
        let rpm_q = |args: &[&str]| run(Command::new("rpm").args(args).arg(&rpm));
        let files: BTreeSet<String> = rpm_q(&["-qpl"]).lines().map(str::to_owned).collect();
        assert_eq!(files, rpm_files());
        let info = rpm_q(&["-qpi"]);
        for field in [
            "Name        : gpu-setup".to_owned(),
            format!("Version     : {VERSION}"),
            "Release     : 1".to_owned(),
            format!("Architecture: {}", arch.name),
            "License     : Apache-2.0".to_owned(),
            "URL         : https://example.invalid/gpu-setup".to_owned(),
            "Summary     : Make a Linux host able to run NVIDIA GPU containers under Podman"
                .to_owned(),
        ] {
            assert!(info.lines().any(|l| l == field), "{field}\n{info}");
        }
        // glibc's libraries and rpm's own features, nothing else.
        let requires = rpm_q(&["-qp", "--requires"]);
        for req in requires.lines() {
            let glibc = ["libc.so.6", "libpthread.so.0", "libdl.so.2"]
                .iter()
                .any(|lib| req.starts_with(lib));
            // /bin/sh runs the scriptlets.
            assert!(
                glibc || req.starts_with("rpmlib(") || req == "/bin/sh",
                "{req}"
            );
        }
        assert!(
            requires.contains("libc.so.6(GLIBC_2.17)(64bit)"),
            "{requires}"
        );
        // The %systemd_* scriptlets' equivalent: presets on first install,
        // disable and stop on erase, reload after.
        let scripts = rpm_q(&["-qp", "--scripts"]);
        for needle in [
            "postinstall scriptlet",
            "systemctl --no-reload preset gpu-setup-heal.path",
            "preuninstall scriptlet",
            "systemctl --no-reload disable --now gpu-setup-heal.path",
            "postuninstall scriptlet",
            "systemctl daemon-reload",
        ] {
            assert!(scripts.contains(needle), "{needle}: {scripts}");
        }
        let deps = rpm_q(&["-qp", "--recommends"]) + &rpm_q(&["-qp", "--suggests"]);
        assert_eq!(deps, "podman\nnvidia-container-toolkit\n");
        // Installed into a test root and erased again, it leaves no directory
        // of its own behind (it owns them).
        let root = tempfile::tempdir().unwrap();
        for args in [
            vec!["--initdb"],
            vec![
                "-i",
                "--nodeps",
                "--noscripts",
                "--ignorearch",
                rpm.to_str().unwrap(),
            ],
            vec!["-e", "--nodeps", "--noscripts", "gpu-setup"],
        ] {
            let out = Command::new("rpm")
                .arg("--root")
                .arg(root.path())
                .args(["--dbpath", "/var/lib/rpm"])
                .args(&args)
                .output()
                .unwrap();
            assert!(out.status.success(), "rpm {args:?}: {out:?}");
        }
        for dir in ["usr/share/doc/gpu-setup", "usr/share/licenses/gpu-setup"] {
            assert!(!root.path().join(dir).exists(), "left behind: /{dir}");
        }
        assert_eq!(rpm_q(&["-K"]), format!("{}: digests OK\n", rpm.display()));
    }
}

#[test]
fn the_tarball_and_the_checksums() {
    let Some(dist) = dist() else { return };
    let out = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&dist)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    let checked: BTreeSet<&str> = report
        .lines()
        .filter_map(|l| l.strip_suffix(": OK"))
        .collect();
    let tarball =
        |arch: &Arch| format!("gpu-setup-{VERSION}-{}-unknown-linux-gnu.tar.gz", arch.name);
    let mut expected: BTreeSet<String> = [format!("gpu_setup-podman_nvidia-{VERSION}.tar.gz")]
        .into_iter()
        .collect();
    for arch in &ARCHES {
        expected.insert(arch.bin.to_owned());
        expected.insert(tarball(arch));
        expected.insert(format!("gpu-setup_{VERSION}-1_{}.deb", arch.deb));
        expected.insert(format!("gpu-setup-{VERSION}-1.{}.rpm", arch.name));
    }
    assert_eq!(checked, expected.iter().map(String::as_str).collect());
    // Each tarball: its binary, the man pages, completions, units,
    // examples, docs and licence under gpu-setup-VERSION/.
    for arch in &ARCHES {
        let tmp = tempfile::tempdir().unwrap();
        run(Command::new("tar")
            .arg("-xzf")
            .arg(dist.join(tarball(arch)))
            .arg("-C")
            .arg(tmp.path()));
        let top = tmp.path().join(format!("gpu-setup-{VERSION}"));
        assert_eq!(
            fs::read(top.join("gpu-setup")).unwrap(),
            fs::read(dist.join(arch.bin)).unwrap()
        );
        for page in man_pages() {
            assert!(top.join("man").join(&page).is_file(), "{page}");
        }
        for f in [
            "completions/gpu-setup",
            "completions/_gpu-setup",
            "completions/gpu-setup.fish",
            "systemd/gpu-setup-heal.service",
            "systemd/gpu-setup-heal.path",
            "systemd/gpu-setup-heal.timer",
            "examples/gpu-setup.toml",
            "examples/apt/90gpu-setup-heal",
            "examples/dnf/gpu-setup.action",
            "README.md",
            "LICENSE",
            "install.md",
            "heal.md",
        ] {
            assert!(top.join(f).is_file(), "{f}");
        }
        // The packaged completion is what `gpu-setup completions` prints now.
        assert_eq!(
            fs::read_to_string(top.join("completions/gpu-setup")).unwrap(),
            ok_stdout(gpu_setup().args(["completions", "bash"]))
        );
    }
}

#[test]
fn make_dist_names_each_missing_tool_and_how_to_get_it() {
    // Only the shell's own tools on PATH: dist.sh stops before building
    // or touching dist/.
    let bin = tempfile::tempdir().unwrap();
    for tool in ["sed", "head", "git", "date", "dirname", "python3", "bash"] {
        if let Some(p) = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists())
        {
            std::os::unix::fs::symlink(p, bin.path().join(tool)).unwrap();
        }
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dist_before = fs::read_dir(repo.join("dist")).map(|d| d.count()).ok();
    let out = Command::new(bin.path().join("bash"))
        .arg(repo.join("packaging/dist.sh"))
        .env_clear()
        .env("PATH", bin.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    for line in [
        "make dist needs `dpkg-deb`: apt-get install dpkg",
        "make dist needs `readelf`: apt-get install binutils",
        "make dist needs `rpmbuild`: apt-get install rpm",
        "make dist needs `gzip`: apt-get install gzip",
        "make dist needs `sha256sum`: apt-get install coreutils",
        "make dist needs `mmdebstrap`: apt-get install mmdebstrap (the aarch64 build's Debian chroot; or GPU_SETUP_DIST_ARCHES=x86_64)",
    ] {
        assert!(err.contains(line), "{line}\n{err}");
    }
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(
        fs::read_dir(repo.join("dist")).map(|d| d.count()).ok(),
        dist_before
    );
}

#[test]
fn the_ansible_collection_holds_the_module_its_docs_and_the_playbooks() {
    let Some(dist) = dist() else { return };
    let collection = dist.join(format!("gpu_setup-podman_nvidia-{VERSION}.tar.gz"));
    let listing = run(Command::new("tar").arg("-tzf").arg(&collection));
    let files: BTreeSet<&str> = listing.lines().collect();
    for f in [
        "MANIFEST.json",
        "FILES.json",
        "README.md",
        "meta/runtime.yml",
        "plugins/modules/gpu_setup.py",
        "plugins/modules/gpu_setup.yml",
        "playbooks/configure.yml",
        "playbooks/rollback.yml",
    ] {
        assert!(files.contains(f), "{f} not in {listing}");
    }
    // No binary inside: the module runs the host's packaged gpu-setup.
    assert!(
        !files.iter().any(|f| f.ends_with("/gpu_setup")),
        "{listing}"
    );
    let tmp = tempfile::tempdir().unwrap();
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&collection)
        .arg("-C")
        .arg(tmp.path())
        .arg("MANIFEST.json"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(tmp.path().join("MANIFEST.json")).unwrap()).unwrap();
    let info = &manifest["collection_info"];
    assert_eq!(info["namespace"], "gpu_setup");
    assert_eq!(info["name"], "podman_nvidia");
    assert_eq!(info["version"], VERSION);
    assert_eq!(info["license"], serde_json::json!(["Apache-2.0"]));
}

#[test]
fn the_aarch64_build_refuses_to_run_without_root_and_touches_nothing() {
    if !need_root("switching to the nobody user with setpriv") {
        return;
    }
    // A cache directory of its own: the refusal must come before anything
    // is built or created there.
    let cache = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "bash",
        ])
        .arg(repo.join("packaging/aarch64.sh"))
        .env("GPU_SETUP_CHROOT_CACHE", cache.path().join("chroots"))
        .output()
        .unwrap();
    let (code, stdout, stderr) = outcome(&out);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr,
        "packaging/aarch64.sh needs root (mmdebstrap, chroot, mount)\n"
    );
    assert_eq!(stdout, "");
    assert!(!cache.path().join("chroots").exists());
}
