//! Every file in the corpus, planned and checked: the edited text parses with
//! a second, independent TOML parser (basic-toml), means the original plus
//! our setting, and differs from the original only in the intended lines.

use gpu_setup_plan::{plan, DesiredState, MemHost, Presence, Settings};
use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use crate::util::*;

/// Lines removed and added between two texts.
fn line_changes(before: &str, after: &str) -> (Vec<String>, Vec<String>) {
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    for change in TextDiff::from_lines(before, after).iter_all_changes() {
        match change.tag() {
            ChangeTag::Delete => removed.push(change.value().to_owned()),
            ChangeTag::Insert => added.push(change.value().to_owned()),
            ChangeTag::Equal => {}
        }
    }
    (removed, added)
}

/// The planned content of `path`.
fn after_text(p: &gpu_setup_plan::Plan, path: &str) -> String {
    let change = p.changes.iter().find(|c| c.path.as_str() == path).unwrap();
    String::from_utf8(change.after.clone().unwrap()).unwrap()
}

fn independent_parse(text: &str) -> Value {
    basic_toml::from_str(text)
        .unwrap_or_else(|e| panic!("second parser rejects the result: {e}\n{text}"))
}

fn in_place(conf: &str) -> DesiredState {
    DesiredState::from_settings(&Settings {
        containers_conf: Some(conf.into()),
        ..Settings::default()
    })
    .unwrap()
}

#[test]
fn every_containers_conf_gets_exactly_one_line_inside_engine_runtimes() {
    let names = fixture_names("containers.conf");
    assert_eq!(names.len(), 6);
    for name in names {
        let original = fixture(&format!("containers.conf/{name}"));
        let host = MemHost::new().with_file(USR_CONF, original.clone());
        let desired = in_place(USR_CONF);
        let p = plan(&desired, &host).unwrap();
        let after = after_text(&p, USR_CONF);

        let (removed, added) = line_changes(&original, &after);
        assert!(removed.is_empty(), "{name}: removed {removed:?}");
        assert_eq!(
            added,
            ["nvidia = [\"/usr/bin/nvidia-container-runtime\"]\n"],
            "{name}"
        );
        // The new line sits right below the existing [engine.runtimes] header.
        let header = after.find("\n[engine.runtimes]\n").unwrap();
        assert!(
            after[header..].starts_with("\n[engine.runtimes]\nnvidia = ["),
            "{name}"
        );

        let mut before_v = independent_parse(&original);
        let after_v = independent_parse(&after);
        assert_eq!(
            after_v["engine"]["runtimes"]["nvidia"],
            serde_json::json!(["/usr/bin/nvidia-container-runtime"]),
            "{name}"
        );
        let engine = before_v["engine"].as_object_mut().unwrap();
        let runtimes = engine.entry("runtimes").or_insert(serde_json::json!({}));
        runtimes["nvidia"] = serde_json::json!(["/usr/bin/nvidia-container-runtime"]);
        assert_eq!(
            before_v, after_v,
            "{name}: only the runtime entry may differ"
        );

        let mut host = host;
        host.apply(&p);
        assert!(
            plan(&desired, &host).unwrap().is_empty(),
            "{name}: second plan not empty"
        );
    }
}

#[test]
fn every_nvidia_config_gets_no_cgroups_in_its_table() {
    let names = fixture_names("nvidia-config.toml");
    assert_eq!(names.len(), 8);
    for name in names {
        let original = fixture(&format!("nvidia-config.toml/{name}"));
        let host = MemHost::new().with_file(NV_CONFIG, original.clone());
        let p = plan(&DesiredState::default(), &host).unwrap();
        let after = after_text(&p, NV_CONFIG);

        let (removed, added) = line_changes(&original, &after);
        assert_eq!(added, ["no-cgroups = true\n"], "{name}");
        if original.contains("#no-cgroups = false\n") {
            assert_eq!(
                removed,
                ["#no-cgroups = false\n"],
                "{name}: stock line uncommented in place"
            );
        } else {
            assert!(removed.is_empty(), "{name}: {removed:?}");
        }

        let mut before_v = independent_parse(&original);
        let after_v = independent_parse(&after);
        assert_eq!(
            after_v["nvidia-container-cli"]["no-cgroups"], true,
            "{name}"
        );
        before_v["nvidia-container-cli"]["no-cgroups"] = Value::Bool(true);
        assert_eq!(before_v, after_v, "{name}");

        let mut host = host;
        host.apply(&p);
        assert!(
            plan(&DesiredState::default(), &host).unwrap().is_empty(),
            "{name}"
        );
    }
}

#[test]
fn debug_logs_replace_the_stock_commented_paths() {
    let settings = Settings {
        cli_debug_log: Some("/var/log/nvidia-container-toolkit.log".into()),
        runtime_debug_log: Some("/var/log/nvidia-container-runtime.log".into()),
        ..Settings::default()
    };
    let desired = DesiredState::from_settings(&settings).unwrap();
    for name in fixture_names("nvidia-config.toml") {
        let original = fixture(&format!("nvidia-config.toml/{name}"));
        let host = MemHost::new()
            .with_file(NV_CONFIG, original.clone())
            .with_dir("/var/log", 0o755);
        let p = plan(&desired, &host).unwrap();
        let after = after_text(&p, NV_CONFIG);
        let v = independent_parse(&after);
        assert_eq!(
            v["nvidia-container-cli"]["debug"], "/var/log/nvidia-container-toolkit.log",
            "{name}"
        );
        assert_eq!(
            v["nvidia-container-runtime"]["debug"], "/var/log/nvidia-container-runtime.log",
            "{name}"
        );
        let (removed, _) = line_changes(&original, &after);
        for line in &removed {
            assert!(
                line.starts_with('#'),
                "{name}: only commented lines may go, not {line:?}"
            );
        }
    }
}

#[test]
fn corpus_hooks_compare_by_meaning() {
    let v10 = fixture("hooks/nvidia-container-toolkit-v1.10.0-oci-nvidia-hook.json");
    let host = MemHost::new().with_file(HOOK, v10);
    let p = plan(&DesiredState::default(), &host).unwrap();
    assert!(
        !p.changes.iter().any(|c| c.path.as_str() == HOOK),
        "v1.10 hook equals ours in meaning"
    );

    let v13 = fixture("hooks/nvidia-container-toolkit-v1.13.5-oci-nvidia-hook.json");
    let modern = DesiredState::from_settings(&Settings {
        hook_path: Some("/usr/bin/nvidia-container-runtime-hook".into()),
        ..Settings::default()
    })
    .unwrap();
    let host = MemHost::new().with_file(HOOK, v13);
    assert!(!plan(&modern, &host)
        .unwrap()
        .changes
        .iter()
        .any(|c| c.path.as_str() == HOOK));

    let seccomp = fixture("hooks/oci-seccomp-bpf-hook-v1.3.0-oci-seccomp-bpf-hook.json");
    let host = MemHost::new().with_file(HOOK, seccomp);
    let p = plan(&DesiredState::default(), &host).unwrap();
    assert!(
        p.changes.iter().any(|c| c.path.as_str() == HOOK),
        "a different hook is replaced"
    );
}

#[test]
fn present_then_absent_restores_containers_conf_and_removes_the_dropin() {
    for name in fixture_names("containers.conf") {
        let original = fixture(&format!("containers.conf/{name}"));
        for conf in [USR_CONF, DROPIN] {
            let mut host = MemHost::new().with_file(USR_CONF, original.clone());
            let present = in_place(conf);
            host.apply(&plan(&present, &host).unwrap());
            let absent = DesiredState {
                presence: Presence::Absent,
                ..present
            };
            host.apply(&plan(&absent, &host).unwrap());
            use gpu_setup_plan::Observe;
            let t = |p: &str| {
                host.file(&gpu_setup_plan::TargetPath::new(p).unwrap())
                    .unwrap()
            };
            assert_eq!(
                t(USR_CONF).bytes(),
                Some(original.as_bytes()),
                "{name} via {conf}"
            );
            assert_eq!(t(DROPIN).bytes(), None, "{name} via {conf}");
            assert_eq!(t(HOOK).bytes(), None, "{name} via {conf}");
        }
    }
}

#[test]
fn every_corpus_pair_plans_then_is_configured_through_the_cli() {
    for conf in fixture_names("containers.conf") {
        for nv in fixture_names("nvidia-config.toml") {
            let tree = Tree::new();
            tree.write(USR_CONF, fixture(&format!("containers.conf/{conf}")));
            tree.write(NV_CONFIG, fixture(&format!("nvidia-config.toml/{nv}")));
            // The toolkit installed: no warning about the host remains.
            tree.exe("/usr/bin/nvidia-container-runtime");
            tree.exe("/usr/bin/nvidia-container-toolkit");
            for mode in [DROPIN, USR_CONF] {
                let args = ["plan", "--detailed-exitcode", "--containers-conf", mode];
                let out = tree.cmd(&args).output().unwrap();
                assert_eq!(out.status.code(), Some(2), "{conf} + {nv} via {mode}");
                let stdout = String::from_utf8(out.stdout).unwrap();
                let action = if mode == DROPIN { "create" } else { "modify" };
                assert!(
                    stdout.contains(&format!("{action} {mode}\n")),
                    "{conf} + {nv}"
                );
                // The first round configures config.toml too; the second only moves the entry.
                let nv_changes = stdout.contains(&format!("modify {NV_CONFIG}\n"));
                assert_eq!(nv_changes, mode == DROPIN, "{conf} + {nv} via {mode}");
                tree.apply(&tree.plan(&in_place(mode)));
                tree.cmd(&args)
                    .assert()
                    .code(0)
                    .stdout("The host is configured: nothing to change.\n");
            }
        }
    }
}

/// What the NVIDIA toolkit's own config package reads from each file
/// (`config-judge`, built from NVIDIA's source at the version given:
/// `../shared/tools/nvidia-container-toolkit`), one JSON object a file.
fn judge(version: &str, files: &[&std::path::Path]) -> Option<Vec<Value>> {
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/tools/nvidia-container-toolkit")
        .join(version)
        .join("config-judge");
    if !bin.exists() {
        assert!(
            std::env::var_os("GPU_SETUP_REQUIRE_E2E").is_none(),
            "CI has ../shared/tools/nvidia-container-toolkit: {} is missing",
            bin.display()
        );
        eprintln!("skipped: {} is missing", bin.display());
        return None;
    }
    let out = std::process::Command::new(&bin)
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    )
}

#[test]
fn the_toolkits_own_reader_sees_our_settings_and_nothing_else_changed() {
    // Every corpus config.toml, also with CRLF line endings and without
    // its final newline, edited as gpu-setup edits it; then read by the
    // real toolkit (v1.17.9 and v1.20.0) before and after.
    let settings = Settings {
        cli_debug_log: Some("/var/log/nvidia-container-toolkit.log".into()),
        runtime_debug_log: Some("/var/log/nvidia-container-runtime.log".into()),
        ..Settings::default()
    };
    let desired = DesiredState::from_settings(&settings).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut pairs = Vec::new();
    for name in fixture_names("nvidia-config.toml") {
        let stock = fixture(&format!("nvidia-config.toml/{name}"));
        let crlf = stock.replace('\n', "\r\n");
        let bare = stock.trim_end_matches('\n').to_owned();
        for (variant, original) in [("lf", stock.clone()), ("crlf", crlf), ("no-eol", bare)] {
            let host = MemHost::new()
                .with_file(NV_CONFIG, original.clone())
                .with_dir("/var/log", 0o755);
            let p = plan(&desired, &host).unwrap();
            let after = after_text(&p, NV_CONFIG);
            let before_file = dir.path().join(format!("{name}.{variant}.before.toml"));
            let after_file = dir.path().join(format!("{name}.{variant}.after.toml"));
            std::fs::write(&before_file, &original).unwrap();
            std::fs::write(&after_file, &after).unwrap();
            pairs.push((format!("{name} ({variant})"), before_file, after_file));
        }
    }
    assert_eq!(pairs.len(), 24);
    for version in ["v1.17.9", "v1.20.0"] {
        let files: Vec<&std::path::Path> = pairs
            .iter()
            .flat_map(|(_, b, a)| [b.as_path(), a.as_path()])
            .collect();
        let Some(read) = judge(version, &files) else {
            return;
        };
        for ((name, _, _), pair) in pairs.iter().zip(read.chunks(2)) {
            let (before, after) = (&pair[0], &pair[1]);
            assert!(before.get("error").is_none(), "{version} {name}: {before}");
            assert!(after.get("error").is_none(), "{version} {name}: {after}");
            let mut expected = before["config"].clone();
            let cli = &mut expected["NVIDIAContainerCLIConfig"];
            cli["NoCgroups"] = Value::Bool(true);
            cli["Debug"] = "/var/log/nvidia-container-toolkit.log".into();
            expected["NVIDIAContainerRuntimeConfig"]["DebugFilePath"] =
                "/var/log/nvidia-container-runtime.log".into();
            assert_eq!(after["config"], expected, "{version} {name}");
        }
    }
}

#[test]
fn a_toolkit_upgrade_does_not_make_no_cgroups_drift() {
    // Toolkit <= 1.19's package scripts run `nvidia-ctk config --in-place`
    // on every install and upgrade, which comments out a key set to its
    // default (`no-cgroups = false`). With the real nvidia-ctk (1.17.9 and
    // 1.20.0) as the upgrade, on every corpus config.toml and either
    // value: once configured, the upgraded file is still as desired, so
    // neither plan nor heal changes it again.
    let tools = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/tools/nvidia-container-toolkit");
    if !tools.join("v1.17.9/nvidia-ctk").exists() {
        assert!(
            std::env::var_os("GPU_SETUP_REQUIRE_E2E").is_none(),
            "CI has ../shared/tools/nvidia-container-toolkit"
        );
        eprintln!("skipped: {} is missing", tools.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for version in ["v1.17.9", "v1.20.0"] {
        for no_cgroups in [true, false] {
            let desired = DesiredState::from_settings(&Settings {
                no_cgroups: Some(no_cgroups),
                ..Settings::default()
            })
            .unwrap();
            for name in fixture_names("nvidia-config.toml") {
                let original = fixture(&format!("nvidia-config.toml/{name}"));
                let host = MemHost::new().with_file(NV_CONFIG, original.clone());
                let p = plan(&desired, &host).unwrap();
                let configured = p
                    .changes
                    .iter()
                    .find(|c| c.path.as_str() == NV_CONFIG)
                    .and_then(|c| c.after.clone())
                    .unwrap_or_else(|| original.clone().into_bytes());
                let file = dir.path().join(format!("{version}-{no_cgroups}-{name}"));
                std::fs::write(&file, &configured).unwrap();
                let out = std::process::Command::new(tools.join(version).join("nvidia-ctk"))
                    .args(["--quiet", "config", "--in-place", "--config-file"])
                    .arg(&file)
                    .env_clear()
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{version} {name}: {out:?}");
                let upgraded = std::fs::read(&file).unwrap();
                let host = MemHost::new().with_file(NV_CONFIG, upgraded.clone());
                let again = plan(&desired, &host).unwrap();
                assert!(
                    !again.changes.iter().any(|c| c.path.as_str() == NV_CONFIG),
                    "{version} no_cgroups={no_cgroups} {name}: drift after the upgrade:\n{}",
                    String::from_utf8_lossy(&upgraded)
                );
            }
        }
    }
}
