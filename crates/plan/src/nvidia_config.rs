//! The NVIDIA Container Toolkit's `config.toml`: `no-cgroups` and the two
//! debug log paths.

use toml_edit::Value;

use crate::desired::{DesiredState, Presence};
use crate::error::PlanError;
use crate::paths::TargetPath;
use crate::toml_doc::{self, Expect};

/// The table holding `no-cgroups` and the CLI's `debug`.
pub const CLI_TABLE: &str = "nvidia-container-cli";
/// The table holding the runtime's `debug`.
pub const RUNTIME_TABLE: &str = "nvidia-container-runtime";

/// Applies the desired settings to `text`; returns the new text and one
/// reason per setting that changed.
pub(crate) fn edit(
    path: &TargetPath,
    text: &str,
    desired: &DesiredState,
) -> Result<(String, Vec<String>), PlanError> {
    let mut text = text.to_owned();
    let mut reasons = Vec::new();
    let mut step = |new: String, reason: String, text: &mut String| {
        if new != *text {
            *text = new;
            reasons.push(reason);
        }
    };
    let logs = [
        (CLI_TABLE, &desired.cli_debug_log),
        (RUNTIME_TABLE, &desired.runtime_debug_log),
    ];
    match desired.presence {
        Presence::Present => {
            // `no-cgroups = false` is the toolkit's default (its stock
            // file says `#no-cgroups = false`; config.go's default
            // NoCgroups is false), and toolkit <= 1.19's package scripts
            // (`nvidia-ctk config --in-place`, on every install and
            // upgrade) comment out a key set to its default: an absent or
            // commented key already means false, so it is as desired, and
            // no upgrade makes it drift.
            let default_already = !desired.no_cgroups && {
                let doc = toml_doc::parse_mut(path, &text)?;
                toml_doc::get(
                    path,
                    &text,
                    doc.as_item(),
                    &[CLI_TABLE],
                    "no-cgroups",
                    Expect::Bool,
                )?
                .is_none()
            };
            // `--strategy cdi` leaves no-cgroups alone unless it is given.
            if desired.manage_no_cgroups && !default_already {
                let new = toml_doc::set(
                    path,
                    &text,
                    &[CLI_TABLE],
                    "no-cgroups",
                    Value::from(desired.no_cgroups),
                    Expect::Bool,
                )?;
                step(
                    new,
                    format!("set [{CLI_TABLE}] no-cgroups = {}", desired.no_cgroups),
                    &mut text,
                );
            }
            for (table, log) in logs {
                if let Some(log) = log {
                    let new = toml_doc::set(
                        path,
                        &text,
                        &[table],
                        "debug",
                        Value::from(log.as_str()),
                        Expect::Str,
                    )?;
                    step(new, format!("set [{table}] debug = \"{log}\""), &mut text);
                }
            }
        }
        Presence::Absent => {
            if desired.manage_no_cgroups {
                let new = toml_doc::remove(path, &text, &[CLI_TABLE], "no-cgroups")?;
                step(new, format!("remove [{CLI_TABLE}] no-cgroups"), &mut text);
            }
            for (table, log) in logs {
                let Some(log) = log else { continue };
                // Only a log path gpu-setup was asked to manage is removed.
                let doc = toml_doc::parse_mut(path, &text)?;
                let current =
                    toml_doc::get(path, &text, doc.as_item(), &[table], "debug", Expect::Str)?
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                if current.as_deref() == Some(log.as_str()) {
                    let new = toml_doc::remove(path, &text, &[table], "debug")?;
                    step(new, format!("remove [{table}] debug"), &mut text);
                }
            }
        }
    }
    Ok((text, reasons))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::Settings;

    const STOCK: &str = "disable-require = false\n\n[nvidia-container-cli]\n#root = \"/run/nvidia/driver\"\nenvironment = []\n#debug = \"/var/log/nvidia-container-toolkit.log\"\nload-kmods = true\n#no-cgroups = false\n#user = \"root:video\"\nldconfig = \"@/sbin/ldconfig\"\n\n[nvidia-container-runtime]\n#debug = \"/var/log/nvidia-container-runtime.log\"\n";

    fn desired(s: Settings) -> DesiredState {
        DesiredState::from_settings(&s).unwrap()
    }
    fn p() -> TargetPath {
        TargetPath::new("/etc/nvidia-container-runtime/config.toml").unwrap()
    }

    #[test]
    fn stock_file_gets_no_cgroups_uncommented_in_place() {
        let (out, reasons) = edit(&p(), STOCK, &desired(Settings::default())).unwrap();
        assert_eq!(
            out,
            STOCK.replace("#no-cgroups = false", "no-cgroups = true")
        );
        assert_eq!(reasons, ["set [nvidia-container-cli] no-cgroups = true"]);
        let (again, reasons) = edit(&p(), &out, &desired(Settings::default())).unwrap();
        assert_eq!(again, out);
        assert!(reasons.is_empty());
    }

    #[test]
    fn no_cgroups_false_is_the_default_an_absent_or_commented_key_already_means() {
        let off = desired(Settings {
            no_cgroups: Some(false),
            ..Settings::default()
        });
        // The stock `#no-cgroups = false`: as desired, untouched.
        let (out, reasons) = edit(&p(), STOCK, &off).unwrap();
        assert_eq!((out.as_str(), reasons.len()), (STOCK, 0));
        // true is changed to false; an explicit false stays.
        let on = STOCK.replace("#no-cgroups = false", "no-cgroups = true");
        let (out, _) = edit(&p(), &on, &off).unwrap();
        assert_eq!(
            out,
            STOCK.replace("#no-cgroups = false", "no-cgroups = false")
        );
        let (again, reasons) = edit(&p(), &out, &off).unwrap();
        assert_eq!((again, reasons.len()), (out, 0));
    }

    #[test]
    fn debug_logs_replace_their_commented_defaults() {
        let s = Settings {
            cli_debug_log: Some("/var/log/cli.log".into()),
            runtime_debug_log: Some("/var/log/rt.log".into()),
            ..Settings::default()
        };
        let (out, reasons) = edit(&p(), STOCK, &desired(s.clone())).unwrap();
        let expected = STOCK
            .replace("#no-cgroups = false", "no-cgroups = true")
            .replace(
                "#debug = \"/var/log/nvidia-container-toolkit.log\"",
                "debug = \"/var/log/cli.log\"",
            )
            .replace(
                "#debug = \"/var/log/nvidia-container-runtime.log\"",
                "debug = \"/var/log/rt.log\"",
            );
        assert_eq!(out, expected);
        assert_eq!(reasons.len(), 3);

        let absent = Settings {
            state: Some(Presence::Absent),
            ..s
        };
        let (removed, _) = edit(&p(), &out, &desired(absent)).unwrap();
        let lines: Vec<&str> = removed.lines().collect();
        assert!(!removed.contains("no-cgroups = true") && !removed.contains("debug = \"/var/log/"));
        assert_eq!(lines.len(), STOCK.lines().count() - 3);
    }

    #[test]
    fn missing_table_is_created() {
        let (out, _) = edit(
            &p(),
            "disable-require = false\n",
            &desired(Settings::default()),
        )
        .unwrap();
        assert_eq!(
            out,
            "disable-require = false\n\n[nvidia-container-cli]\nno-cgroups = true\n"
        );
        let (out, _) = edit(&p(), "", &desired(Settings::default())).unwrap();
        assert_eq!(out, "[nvidia-container-cli]\nno-cgroups = true\n");
    }

    #[test]
    fn absent_leaves_foreign_debug_paths() {
        let text = "[nvidia-container-runtime]\ndebug = \"/var/log/mine.log\"\n";
        let s = Settings {
            state: Some(Presence::Absent),
            runtime_debug_log: Some("/var/log/rt.log".into()),
            ..Settings::default()
        };
        let (out, reasons) = edit(&p(), text, &desired(s)).unwrap();
        assert_eq!(out, text);
        assert!(reasons.is_empty());
    }
}
