//! What every planner fuzz target checks: on a host holding the fuzzer's
//! bytes at one path, planning never panics; a plan it makes, once carried
//! out, leaves nothing more to do (for adding and for removing); and every
//! TOML file it writes parses.

use gpu_setup_plan::desired::{Presence, Settings};
use gpu_setup_plan::{plan, DesiredState, MemHost, Plan};

/// The stock host of the tests, with `bytes` written at `path`.
pub fn host_with(path: &str, bytes: &[u8]) -> MemHost {
    MemHost::new()
        .with_file(
            "/usr/share/containers/containers.conf",
            "[engine]\n#hooks_dir = []\n\n[engine.runtimes]\n#crun = [\n#  \"/usr/bin/crun\",\n#]\n\n[machine]\n",
        )
        .with_file(
            "/etc/nvidia-container-runtime/config.toml",
            "[nvidia-container-cli]\nload-kmods = true\n#no-cgroups = false\n",
        )
        .with_exe("/usr/bin/nvidia-container-runtime")
        .with_exe("/usr/bin/nvidia-container-toolkit")
        .with_file(path, bytes.to_vec())
}

/// Plans `settings` (present, then absent) on `host` and checks the
/// properties above; panics (a finding) when one fails.
pub fn check(mut host: MemHost, settings: Settings) {
    for presence in [Presence::Present, Presence::Absent] {
        let desired = DesiredState::from_settings(&Settings {
            state: Some(presence),
            ..settings.clone()
        })
        .expect("the fuzz settings are valid");
        let Ok(first) = plan(&desired, &host) else {
            return; // refused: an error message, nothing written
        };
        check_written(&first);
        host.apply(&first);
        match plan(&desired, &host) {
            Ok(second) => assert!(
                second.is_empty(),
                "not idempotent ({presence:?}): second plan {:?}",
                second.changes
            ),
            Err(e) => panic!("a host gpu-setup wrote is refused ({presence:?}): {e}"),
        }
    }
}

fn check_written(p: &Plan) {
    for change in &p.changes {
        let Some(after) = &change.after else { continue };
        let text = std::str::from_utf8(after).expect("written files are UTF-8");
        if change.path.as_str().ends_with(".json") {
            serde_json::from_str::<serde_json::Value>(text).expect("written hook is JSON");
        } else {
            text.parse::<toml_edit::DocumentMut>()
                .unwrap_or_else(|e| panic!("written TOML does not parse: {e}\n{text}"));
        }
    }
}

/// Settings that edit `containers_conf` in place (`None`: the drop-in).
pub fn settings(containers_conf: Option<&str>) -> Settings {
    Settings {
        containers_conf: containers_conf.map(str::to_owned),
        cli_debug_log: Some("/var/log/nvidia-container-toolkit.log".to_owned()),
        ..Settings::default()
    }
}
