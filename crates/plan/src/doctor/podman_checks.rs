//! Podman, its configuration and its runtimes: the `podman` and `runtimes`
//! checks, and the [`PodmanView`] doctor reports.

use super::{find_executable, Check, Context, PodmanView, Status};
use crate::paths::well_known;
use crate::podman::{self, Found};

/// `"4.3.1"`-style rules name for messages and JSON.
fn rules_name(cx: &Context<'_>) -> String {
    match cx.rules.version {
        Some(v) if cx.rules.single_main_file() => {
            format!("{v} (provisional: Podman 6 is unreleased)")
        }
        Some(v) => v.to_string(),
        None => "any released version".to_owned(),
    }
}

/// What doctor reports about Podman.
pub(super) fn view(cx: &Context<'_>) -> PodmanView {
    let mut v = PodmanView {
        version: cx.rules.version,
        rules: rules_name(cx),
        default_runtime: cx.default_runtime.clone(),
        ..PodmanView::default()
    };
    if let Ok(files) = &cx.conf {
        v.config_files = files.iter().map(|f| f.path.clone()).collect();
    }
    if let Some(eff) = &cx.effective {
        let dirs = cx.path_dirs();
        let builtin = ["crun", "runc", "runj", "kata", "runsc", "krun"];
        let names = eff.runtimes.keys().map(String::as_str).chain(builtin);
        v.runtimes = names
            .filter_map(|name| {
                let paths = podman::runtime_paths(eff, name)?;
                let found = podman::resolve_runtime(cx.host, name, &paths, &dirs).map(|(p, _)| p);
                // A built-in entry that resolves to nothing is not listed
                // by Podman either.
                (found.is_some() || eff.runtimes.contains_key(name))
                    .then(|| (name.to_owned(), found))
            })
            .collect();
        v.hooks_dirs = eff.hooks_dirs();
        v.cdi_spec_dirs = eff.cdi_dirs(cx.rules);
    }
    v
}

/// Podman installed, its version, and whether it can read its
/// configuration at all (a file it cannot parse, an attribute it does not
/// know, flags for a runtime that has no entry: every podman command fails).
pub(super) fn podman_check(cx: &Context<'_>) -> Check {
    let binary = find_executable(cx.host, "podman");
    let files = match &cx.conf {
        Ok(files) => files,
        Err(e) => {
            return Check::new(
                "podman",
                Status::Fail,
                format!(
                    "Podman cannot read its configuration: {}",
                    crate::error::error_text(e)
                ),
            )
            .hint(format!(
                "every podman command fails until this is fixed; {}",
                e.hint().unwrap_or_else(|| "fix the file".to_owned())
            ))
        }
    };
    let mut details: Vec<String> = files.iter().map(|f| format!("reads {}", f.path)).collect();
    if let Some(env) = &cx.facts.containers_conf_env {
        details.push(format!(
            "$CONTAINERS_CONF={env}: no other main file, drop-in or user file is read"
        ));
    }
    if let Some(eff) = &cx.effective {
        if !cx.rules.accepts_append_attribute() && !eff.attributed.is_empty() {
            let v = cx.rules.version.map(|v| v.to_string()).unwrap_or_default();
            return Check::new(
                "podman",
                Status::Fail,
                format!(
                    "Podman {v} does not accept `{{append=true}}` in arrays (4.8 and later do), which {} use: every podman command fails",
                    eff.attributed.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
                ),
            )
            .hint("remove the `{append=...}` table from those arrays, or upgrade Podman to 4.8 or later")
            .details(details);
        }
        if cx.rules.has_runtimes_flags() {
            let orphans: Vec<String> = eff
                .runtimes_flags
                .iter()
                .filter(|(name, _)| !eff.runtimes.contains_key(*name))
                .map(|(name, from)| format!("`{name}` (in {from})"))
                .collect();
            if !orphans.is_empty() {
                return Check::new(
                    "podman",
                    Status::Fail,
                    format!(
                        "[engine.runtimes_flags] sets flags for {}, which has no [engine.runtimes] entry: Podman 5.7 and later refuse this, and every podman command fails",
                        orphans.join(", ")
                    ),
                )
                .hint("remove those keys from [engine.runtimes_flags], or add the runtime")
                .details(details);
            }
        }
    }
    let Some(v) = cx.rules.version else {
        return match (&binary, &cx.probes.podman_version_error) {
            (None, _) => Check::new("podman", Status::Fail, "Podman is not installed")
                .hint("install Podman: `apt-get install podman` (Debian, Ubuntu) or `dnf install podman` (Fedora, RHEL)"),
            // Podman reads its configuration before it prints its version:
            // when even that fails, so does every podman command.
            (Some(b), Some(e)) => Check::new(
                "podman",
                Status::Fail,
                format!("`{b} --version` fails, and so does every podman command: {e}"),
            )
            .hint("fix what Podman names; pass --podman-version VERSION so the other checks follow that version's rules")
            .details(details),
            (Some(b), None) => Check::new(
                "podman",
                Status::Skip,
                format!("`{b}` is installed; its version is unknown under --root, so the checks follow the rules of any released Podman"),
            )
            .hint("pass --podman-version VERSION to check against one version's rules")
            .details(details),
        };
    };
    let model = if cx.rules.single_main_file() {
        "reads one main containers.conf plus drop-ins (6.0, provisional: Podman 6 is unreleased)"
    } else {
        "merges every containers.conf it finds (up to 5.x)"
    };
    details.insert(0, format!("config model: {model}"));
    if !cx.rules.reads_dropins() {
        let ours = &cx.desired.containers_conf;
        if cx.desired.manage_runtime
            && ours
                .parent()
                .is_some_and(|d| d.as_str() == well_known::ETC_DROPIN_DIR)
        {
            return Check::new(
                "podman",
                Status::Warn,
                format!("Podman {v} does not read containers.conf.d drop-ins (3.3 and later do), and `{ours}` is one"),
            )
            .hint(format!(
                "upgrade Podman, or edit the main file: gpu-setup apply --containers-conf {}",
                well_known::ETC_CONTAINERS_CONF
            ))
            .details(details);
        }
        return Check::new(
            "podman",
            Status::Ok,
            format!("Podman {v}: {model}, no drop-ins (3.3 and later read them)"),
        )
        .details(details);
    }
    Check::new(
        "podman",
        Status::Ok,
        format!("Podman {v}: {model}, drop-ins read"),
    )
    .details(details)
}

/// The default runtime, and the runtime entry gpu-setup manages.
pub(super) fn runtimes_check(cx: &Context<'_>) -> Check {
    let Some(eff) = &cx.effective else {
        let reason = match &cx.conf {
            Err(e) => e.to_string(),
            Ok(_) => "unknown".to_owned(),
        };
        return Check::new(
            "runtimes",
            Status::Skip,
            format!("Podman cannot read its configuration (see podman): {reason}"),
        );
    };
    let dirs = cx.path_dirs();
    let mut details: Vec<String> = eff
        .runtimes
        .iter()
        .map(|(name, (paths, from))| {
            let resolved = match podman::resolve_runtime(cx.host, name, paths, &dirs) {
                Some((p, Found::SearchPath)) => format!("{p}, found on $PATH"),
                Some((p, _)) => p.to_string(),
                None => "nothing: Podman drops it".to_owned(),
            };
            format!("{name} = {paths:?} (from {from}) -> {resolved}")
        })
        .collect();
    let default = match &cx.default_runtime {
        None => {
            let tried = cx.rules.default_runtime_candidates().join(", ");
            return Check::new(
                "runtimes",
                Status::Fail,
                format!("no OCI runtime is installed (Podman looks for {tried}): every podman command fails"),
            )
            .hint("install runc or crun (`apt-get install runc`)")
            .details(details);
        }
        Some(d) => d,
    };
    let (shown_default, where_set) = match &default.set_in {
        Some(file) => (default.name.clone(), format!("set in {file}")),
        None => (default.name.clone(), "the first installed".to_owned()),
    };
    details.push(format!(
        "default runtime: {shown_default} ({where_set}) -> {}",
        default
            .path
            .as_ref()
            .map_or("nothing".to_owned(), ToString::to_string)
    ));
    let Some(default_path) = &default.path else {
        return Check::new(
            "runtimes",
            Status::Fail,
            format!("the default runtime `{shown_default}` ({where_set}) is not installed: every podman command fails"),
        )
        .hint(format!("install {shown_default}, or set `[engine] runtime` to an installed runtime such as \"runc\""))
        .details(details);
    };
    let default_text = format!("default runtime {shown_default} (`{default_path}`, {where_set})");
    let name = &cx.desired.runtime_name;
    let Some((paths, from)) = eff.runtimes.get(name) else {
        if !cx.desired.manage_runtime {
            return Check::new(
                "runtimes",
                Status::Ok,
                format!("no `{name}` runtime entry, which the CDI strategy does not use; {default_text}"),
            )
            .details(details);
        }
        return Check::new(
            "runtimes",
            Status::Fail,
            format!("no `{name}` runtime in any containers.conf Podman reads: `--runtime {name}` fails with \"not found\"; {default_text}"),
        )
        .hint("gpu-setup apply")
        .details(details);
    };
    let resolved = podman::resolve_runtime(cx.host, name, paths, &dirs);
    // Another file than gpu-setup's sets the entry (later files win): say
    // which, and how to fix it.
    let overridden = *from != cx.desired.containers_conf
        && resolved.as_ref().map(|(p, _)| p) != Some(&cx.desired.runtime_path);
    if overridden {
        let hint = format!(
            "remove `{name}` from [engine.runtimes] in `{from}` (it is read after gpu-setup's `{}`), or make gpu-setup edit it: gpu-setup apply --containers-conf {from}",
            cx.desired.containers_conf
        );
        return match &resolved {
            Some((p, _)) => Check::new(
                "runtimes",
                Status::Warn,
                format!("`{name}` runs `{p}`, set in `{from}`, which overrides gpu-setup's `{}` (`{}`)", cx.desired.containers_conf, cx.desired.runtime_path),
            ),
            None => Check::new(
                "runtimes",
                Status::Fail,
                format!("`{name}` is set to {paths:?} in `{from}`, which overrides gpu-setup's `{}`, and none of them is a file: Podman drops the entry and `--runtime {name}` fails", cx.desired.containers_conf),
            ),
        }
        .hint(hint)
        .details(details);
    }
    match resolved {
        Some((p, how)) => {
            let via = if how == Found::SearchPath { ", found on $PATH" } else { "" };
            Check::new(
                "runtimes",
                Status::Ok,
                format!("`{name}` runs `{p}` (from {from}{via}); {default_text}"),
            )
            .details(details)
        }
        None => Check::new(
            "runtimes",
            Status::Fail,
            format!("`{name}` lists {paths:?} (in {from}) but none is a file, and `{name}` is not on $PATH: Podman drops the entry"),
        )
        .hint("install the NVIDIA Container Toolkit (package nvidia-container-toolkit)")
        .details(details),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn podman_missing_unknown_old_and_new() {
        let host = configured();
        let mut no_podman = host.clone();
        no_podman.remove(&tp("/usr/bin/podman"));
        let c = check(&no_podman, &Probes::default(), "podman");
        assert_check(&c, Status::Fail, "Podman is not installed");
        assert!(c.hint.unwrap().contains("apt-get install podman"));

        let c = check(&host, &Probes::default(), "podman");
        assert_check(
            &c,
            Status::Skip,
            "`/usr/bin/podman` is installed; its version is unknown",
        );
        let broken = Probes {
            podman_version_error: Some("podman exited with signal 9".to_owned()),
            ..Probes::default()
        };
        let c = check(&host, &broken, "podman");
        assert_check(
            &c,
            Status::Fail,
            "`/usr/bin/podman --version` fails, and so does every podman command: podman exited",
        );

        let old = Probes {
            podman_version: Some("3.2.3".to_owned()),
            ..Probes::default()
        };
        let c = check(&host, &old, "podman");
        assert_check(
            &c,
            Status::Warn,
            "Podman 3.2.3 does not read containers.conf.d drop-ins",
        );
        assert!(c
            .hint
            .unwrap()
            .contains("--containers-conf /etc/containers/containers.conf"));
        // ... and so the drop-in's runtime does not count.
        assert_check(
            &check(&host, &old, "runtimes"),
            Status::Fail,
            "no `nvidia` runtime",
        );

        // Podman 6 (provisional) reads only the first main file that exists.
        let six = Probes {
            podman_version: Some("6.0.0".to_owned()),
            ..Probes::default()
        };
        let host6 = host
            .clone()
            .with_file("/etc/containers/containers.conf", "[engine]\n");
        let c = check(&host6, &six, "podman");
        assert_check(
            &c,
            Status::Ok,
            "Podman 6.0.0: reads one main containers.conf plus drop-ins (6.0, provisional",
        );
        assert!(
            c.details
                .contains(&"reads /etc/containers/containers.conf".to_owned()),
            "{c:#?}"
        );
        assert!(
            !c.details
                .contains(&"reads /usr/share/containers/containers.conf".to_owned()),
            "{c:#?}"
        );
        assert!(c.details.contains(&format!("reads {DROPIN}")), "{c:#?}");
        assert_eq!(
            report(&host6, &six).podman.rules,
            "6.0.0 (provisional: Podman 6 is unreleased)"
        );
    }

    #[test]
    fn configurations_podman_refuses() {
        let host = configured();
        let broken = host
            .clone()
            .with_file("/etc/containers/containers.conf.d/50-bad.conf", "[engine\n");
        let c = check(&broken, &probes(), "podman");
        assert_check(
            &c,
            Status::Fail,
            "Podman cannot read its configuration: `/etc/containers/containers.conf.d/50-bad.conf` line 1, column 8",
        );
        assert!(c
            .hint
            .unwrap()
            .starts_with("every podman command fails until this is fixed"));

        // {append=true}: containers/common v0.57.0 (Podman 4.8) accepts it;
        // older Podman fails to decode the file.
        let appended = host.clone().with_file(
            "/etc/containers/containers.conf.d/50-hooks.conf",
            "[engine]\nhooks_dir = [\"/etc/containers/oci/hooks.d\", {append=true}]\n",
        );
        assert_check(
            &check(&appended, &probes(), "podman"),
            Status::Fail,
            "Podman 4.3.1 does not accept `{append=true}` in arrays (4.8 and later do)",
        );
        let p48 = Probes {
            podman_version: Some("4.8.0".into()),
            ..Probes::default()
        };
        assert_check(
            &check(&appended, &p48, "podman"),
            Status::Ok,
            "Podman 4.8.0",
        );
        let r = report(&appended, &p48);
        assert_eq!(
            r.podman.hooks_dirs,
            [
                "/usr/share/containers/oci/hooks.d",
                "/etc/containers/oci/hooks.d"
            ]
        );

        // runtimes_flags without the runtime (Podman 5.7+ validation).
        let flags = host.clone().with_file(
            "/etc/containers/containers.conf.d/50-flags.conf",
            "[engine.runtimes_flags]\nkata = [\"--debug\"]\n",
        );
        let p57 = Probes {
            podman_version: Some("5.7.0".into()),
            ..Probes::default()
        };
        assert_check(
            &check(&flags, &p57, "podman"),
            Status::Fail,
            "[engine.runtimes_flags] sets flags for `kata` (in /etc/containers/containers.conf.d/50-flags.conf), which has no [engine.runtimes] entry",
        );
    }

    #[test]
    fn the_default_runtime_is_the_one_podman_takes() {
        // containers/common pkg/config/config.go findRuntime(): with no
        // [engine] runtime, the first installed of crun, runc, ...
        let mut runc_only = configured();
        runc_only.remove(&tp("/usr/bin/crun"));
        let c = check(&runc_only, &probes(), "runtimes");
        assert_check(
            &c,
            Status::Ok,
            "`nvidia` runs `/usr/bin/nvidia-container-runtime`",
        );
        assert!(
            c.message
                .ends_with("default runtime runc (`/usr/sbin/runc`, the first installed)"),
            "{c:#?}"
        );
        let mut none = runc_only.clone();
        none.remove(&tp("/usr/sbin/runc"));
        assert_check(
            &check(&none, &probes(), "runtimes"),
            Status::Fail,
            "no OCI runtime is installed",
        );

        let kata = configured().with_file(
            "/etc/containers/containers.conf.d/10-kata.conf",
            "[engine]\nruntime = \"kata\"\n",
        );
        assert_check(
            &check(&kata, &probes(), "runtimes"),
            Status::Fail,
            "the default runtime `kata` (set in /etc/containers/containers.conf.d/10-kata.conf) is not installed",
        );
        // An absolute path is a valid [engine] runtime.
        let abs = configured().with_file(
            "/etc/containers/containers.conf.d/10-abs.conf",
            "[engine]\nruntime = \"/usr/sbin/runc\"\n",
        );
        let c = check(&abs, &probes(), "runtimes");
        assert!(c.message.ends_with("default runtime /usr/sbin/runc (`/usr/sbin/runc`, set in /etc/containers/containers.conf.d/10-abs.conf)"), "{c:#?}");
    }

    #[test]
    fn runtime_entries_resolve_like_podman() {
        let host = configured();
        let mut gone = host.clone();
        gone.remove(&tp("/usr/bin/nvidia-container-runtime"));
        let c = check(&gone, &probes(), "runtimes");
        assert_check(
            &c,
            Status::Fail,
            "`nvidia` lists [\"/usr/bin/nvidia-container-runtime\"]",
        );
        assert_eq!(
            c.hint.as_deref(),
            Some("install the NVIDIA Container Toolkit (package nvidia-container-toolkit)")
        );
        // libpod newConmonOCIRuntime: a listed regular file needs no exec
        // bit; else the name on $PATH.
        let plain = gone
            .clone()
            .with_file("/usr/bin/nvidia-container-runtime", "");
        assert_check(
            &check(&plain, &probes(), "runtimes"),
            Status::Ok,
            "`nvidia` runs `/usr/bin/nvidia-container-runtime`",
        );
        let on_path = gone.clone().with_exe("/usr/local/bin/nvidia");
        let c = check(&on_path, &probes(), "runtimes");
        assert_check(&c, Status::Ok, "`nvidia` runs `/usr/local/bin/nvidia`");
        assert!(c.message.contains("found on $PATH"), "{c:#?}");
    }

    #[test]
    fn a_later_file_overriding_the_entry_is_named_with_the_fix() {
        let later = "/etc/containers/containers.conf.d/zz-local.conf";
        let broken = configured().with_file(
            later,
            "[engine.runtimes]\nnvidia = [\"/opt/old/nvidia-container-runtime\"]\n",
        );
        let c = check(&broken, &probes(), "runtimes");
        assert_check(
            &c,
            Status::Fail,
            &format!("`nvidia` is set to [\"/opt/old/nvidia-container-runtime\"] in `{later}`, which overrides gpu-setup's `{DROPIN}`"),
        );
        assert_eq!(
            c.hint.unwrap(),
            format!("remove `nvidia` from [engine.runtimes] in `{later}` (it is read after gpu-setup's `{DROPIN}`), or make gpu-setup edit it: gpu-setup apply --containers-conf {later}")
        );
        let working = configured()
            .with_exe("/opt/nv")
            .with_file(later, "[engine.runtimes]\nnvidia = [\"/opt/nv\"]\n");
        assert_check(
            &check(&working, &probes(), "runtimes"),
            Status::Warn,
            &format!("`nvidia` runs `/opt/nv`, set in `{later}`"),
        );
    }
}
