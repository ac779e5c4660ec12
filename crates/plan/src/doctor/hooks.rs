//! OCI hooks and CDI: the `hooks` and `cdi` checks.
//!
//! Podman loads hooks when it creates a container (containers/common
//! `pkg/hooks/hooks.go` `New`, `read.go` `ReadDir`): for each hooks dir in
//! order it reads every `*.json` file by name, keeps the valid ones (a
//! later dir's file replaces a same-named earlier one), and joins the
//! errors of the invalid ones. The first dir whose joined error is not an
//! `os.ErrNotExist` stops it: container creation fails. A hook whose
//! executable does not exist fails with such an error, so when the FIRST
//! failing file of a dir (by name) only lacks its executable, Podman
//! ignores every failure of that dir, even a file that does not parse.

use std::collections::BTreeMap;

use super::{Check, Context, Status};
use crate::error::{decode, ObserveError};
use crate::hook::{self, HookError, HookInfo};
use crate::observe::{Kind, Observed};
use crate::paths::{well_known, TargetPath};
use crate::warnings::nvidia_cdi_specs;

/// A hook file Podman would read.
pub(crate) struct HookFile {
    pub path: TargetPath,
    pub result: Result<HookInfo, HookError>,
}

/// One hooks dir as Podman reads it.
pub(crate) struct DirScan {
    pub dir: TargetPath,
    pub files: Vec<HookFile>,
}

impl DirScan {
    /// The files Podman would not load.
    fn failures(&self) -> impl Iterator<Item = &HookFile> {
        self.files.iter().filter(|f| f.result.is_err())
    }

    /// Whether Podman stops at this dir: it has a failure, and the first
    /// one (by name) is not a missing executable.
    pub fn breaks_podman(&self) -> bool {
        matches!(
            self.failures().next(),
            Some(HookFile {
                result: Err(HookError::Invalid(_)),
                ..
            })
        )
    }
}

/// The hook files Podman would load from its hooks dirs.
pub(crate) struct HookScan {
    pub dirs: Vec<DirScan>,
}

use crate::warnings::is_nvidia_hook as is_nvidia_executable;

impl HookScan {
    pub(crate) fn read(cx: &Context<'_>) -> Result<Self, ObserveError> {
        let dirs = cx
            .effective
            .as_ref()
            .map(|e| e.hooks_dirs())
            .unwrap_or_else(|| vec![well_known::DEFAULT_HOOKS_DIR.to_owned()]);
        let exists =
            |p: &str| TargetPath::new(p).is_ok_and(|t| matches!(cx.host.meta(&t), Ok(Some(_))));
        let mut out = Vec::new();
        for dir in dirs.iter().filter_map(|d| TargetPath::new(d).ok()) {
            let names = cx.host.list(&dir)?.unwrap_or_default();
            let mut files = Vec::new();
            for name in names.into_iter().filter(|n| n.ends_with(".json")) {
                let Ok(path) = dir.join(&name) else { continue };
                let result = match cx.host.link_meta(&path)? {
                    Some(m) if m.kind == Kind::Dir => {
                        Err(HookError::Invalid("is a directory".to_owned()))
                    }
                    _ => match cx.host.file(&path) {
                        Ok(Observed::File { bytes, .. }) => decode(&path, &bytes)
                            .map_err(|e| HookError::Invalid(crate::error::error_text(&e)))
                            .and_then(|text| hook::validate(&path, text, &exists)),
                        // Gone since it was listed: Podman skips it.
                        Ok(Observed::Absent) => continue,
                        Err(e) => Err(HookError::Invalid(crate::error::error_text(&e))),
                    },
                };
                files.push(HookFile { path, result });
            }
            out.push(DirScan { dir, files });
        }
        Ok(HookScan { dirs: out })
    }

    /// The hooks Podman loads: name -> file, a later dir's file replacing
    /// an earlier one's; and the files so masked.
    fn loaded(&self) -> (BTreeMap<&str, &HookFile>, Vec<&TargetPath>) {
        let mut by_name: BTreeMap<&str, &HookFile> = BTreeMap::new();
        let mut masked = Vec::new();
        for d in &self.dirs {
            for f in &d.files {
                if f.result.is_ok() {
                    if let Some(old) = by_name.insert(f.path.file_name(), f) {
                        masked.push(&old.path);
                    }
                }
            }
        }
        (by_name, masked)
    }

    /// The first loaded hook that runs NVIDIA's hook executable (named as
    /// NVIDIA names it, or the `--hook-path` given, `ours`).
    pub(crate) fn nvidia(&self, ours: &TargetPath) -> Option<(&TargetPath, &HookInfo)> {
        self.loaded().0.into_values().find_map(|f| match &f.result {
            Ok(info)
                if is_nvidia_executable(&info.executable) || info.executable == ours.as_str() =>
            {
                Some((&f.path, info))
            }
            _ => None,
        })
    }

    /// The dir that makes Podman refuse every container, if any.
    pub(crate) fn breaking(&self) -> Option<&DirScan> {
        self.dirs.iter().find(|d| d.breaks_podman())
    }
}

pub(crate) fn hooks_check(cx: &Context<'_>, scan: &Result<HookScan, ObserveError>) -> Check {
    let scan = match scan {
        Ok(s) => s,
        Err(e) => return Check::error("hooks", e),
    };
    let shown: Vec<&str> = scan.dirs.iter().map(|d| d.dir.as_str()).collect();
    let mut details = vec![format!("hooks dirs (lowest priority first): {shown:?}")];
    for d in &scan.dirs {
        for f in &d.files {
            details.push(match &f.result {
                Ok(info) => format!(
                    "{}: runs {} in {:?} (schema {})",
                    f.path, info.executable, info.stages, info.schema
                ),
                Err(HookError::MissingExecutable(_)) => format!(
                    "{}: skipped: {}",
                    f.path,
                    f.result
                        .as_ref()
                        .err()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ),
                Err(e) => format!("{}: INVALID: {e}", f.path),
            });
        }
    }
    let (_, masked) = scan.loaded();
    for m in &masked {
        details.push(format!(
            "{m}: masked by a same-named file in a higher-priority dir"
        ));
    }
    if let Some(d) = scan.breaking() {
        let invalid: Vec<String> = d
            .failures()
            .filter_map(|f| match &f.result {
                Err(HookError::Invalid(e)) => Some(format!("`{}`: {e}", f.path)),
                _ => None,
            })
            .collect();
        return Check::new(
            "hooks",
            Status::Fail,
            format!(
                "invalid hook file {}: Podman refuses to create any container while it exists",
                invalid.join("; ")
            ),
        )
        .hint("fix or remove the invalid file (gpu-setup never leaves a partial hook; another tool did)")
        .details(details);
    }
    if let Some(m) = masked.iter().find(|m| ***m == cx.desired.hook_file) {
        return Check::new(
            "hooks",
            Status::Fail,
            format!("`{m}` is masked by a file of the same name in a higher-priority hooks dir"),
        )
        .hint(format!(
            "remove the masking file, or install the hook there with gpu-setup apply --hook-file DIR/{}",
            m.file_name()
        ))
        .details(details);
    }
    let skipped_nvidia = scan
        .dirs
        .iter()
        .flat_map(|d| &d.files)
        .find_map(|f| match &f.result {
            Err(HookError::MissingExecutable(exe)) if is_nvidia_executable(exe) => {
                Some((&f.path, exe))
            }
            _ => None,
        });
    let cdi = cx.desired.strategy == crate::Strategy::Cdi;
    let Some((path, info)) = scan.nvidia(&cx.desired.hook_path) else {
        if cdi {
            return Check::new(
                "hooks",
                Status::Ok,
                "no NVIDIA OCI hook, as the CDI strategy wants (CDI gives containers their GPUs)",
            )
            .details(details);
        }
        if let Some((path, exe)) = skipped_nvidia {
            return Check::new(
                "hooks",
                Status::Fail,
                format!("the NVIDIA hook `{path}` runs `{exe}`, which does not exist: Podman skips the hook quietly"),
            )
            .hint(format!(
                "install the NVIDIA Container Toolkit, or gpu-setup apply --hook-path {}",
                cx.toolkit.hook_binary()
            ))
            .details(details);
        }
        return Check::new(
            "hooks",
            Status::Fail,
            "no NVIDIA OCI hook in Podman's hooks dirs: containers get no GPU unless they use CDI or --runtime nvidia",
        )
        .hint("gpu-setup apply")
        .details(details);
    };
    if cx.rules.hooks_as_create_runtime() {
        details.push("Podman 5.0 and later pass hooks.d prestart hooks to the runtime as createRuntime hooks".to_owned());
    }
    if cdi {
        let hint = if *path == cx.desired.hook_file {
            "gpu-setup apply --strategy cdi removes it".to_owned()
        } else {
            format!("remove `{path}` (a package may own it: `dpkg -S` or `rpm -qf` says which)")
        };
        return Check::new(
            "hooks",
            Status::Warn,
            format!("NVIDIA hook `{path}` runs `{}` for every container beside CDI: NVIDIA documents the two as conflicting", info.executable),
        )
        .hint(hint)
        .details(details);
    }
    Check::new(
        "hooks",
        Status::Ok,
        format!(
            "NVIDIA hook `{path}` runs `{}` ({})",
            info.executable,
            info.stages.join(", ")
        ),
    )
    .details(details)
}

/// NVIDIA's CDI specs: which exist, whether they are valid, whether this
/// Podman reads CDI at all.
pub(crate) fn cdi_check(cx: &Context<'_>, specs: &Specs) -> Check {
    let specs = match specs {
        Ok(s) => s,
        Err(e) => return Check::error("cdi", e),
    };
    if specs.is_empty() {
        return Check::new("cdi", Status::Ok, "no NVIDIA CDI spec");
    }
    let mut details = Vec::new();
    let mut invalid = Vec::new();
    for (p, bytes) in specs {
        match crate::cdi::check_spec(bytes) {
            Ok(s) => details.push(format!(
                "{p}: {} devices of kind {} (cdiVersion {})",
                s.devices.len(),
                s.kind,
                s.cdi_version
            )),
            Err(e) => {
                details.push(format!("{p}: INVALID: {e}"));
                invalid.push(format!("`{p}`: {e}"));
            }
        }
    }
    if !invalid.is_empty() {
        return Check::new(
            "cdi",
            Status::Warn,
            format!(
                "invalid CDI spec {}: Podman cannot resolve its devices",
                invalid.join("; ")
            ),
        )
        .hint("regenerate it: gpu-setup apply --strategy cdi (or `nvidia-ctk cdi generate`)")
        .details(details);
    }
    let conflicts = crate::cdi::conflicts(specs);
    if let Some(c) = conflicts.first() {
        let shown: Vec<String> = c.specs.iter().map(|p| format!("`{p}`")).collect();
        return Check::new(
            "cdi",
            Status::Fail,
            format!(
                "{} define {} in one directory: Podman refuses it (`unresolvable CDI devices`) and `nvidia-ctk cdi list` says `conflicting device`",
                shown.join(" and "),
                c.device
            ),
        )
        .hint(format!(
            "keep one spec per device and directory: remove all of them but one (gpu-setup's is `{}`)",
            cx.desired.cdi_spec
        ))
        .details(details);
    }
    if !cx.rules.reads_cdi_specs() {
        let v = cx.rules.version.map(|v| v.to_string()).unwrap_or_default();
        return Check::new(
            "cdi",
            Status::Warn,
            format!(
                "NVIDIA CDI specs exist, but Podman {v} does not read CDI specs (3.2 and later do)"
            ),
        )
        .hint("upgrade Podman, or use the hook: gpu-setup apply --strategy hook")
        .details(details);
    }
    Check::new(
        "cdi",
        Status::Ok,
        format!(
            "{} NVIDIA CDI spec(s), valid (use `--device nvidia.com/gpu=all`)",
            specs.len()
        ),
    )
    .details(details)
}

/// Which GPU path the host is set up for (the hook, CDI, both, none), and
/// which one this toolkit version suits.
pub(crate) fn strategy_check(
    cx: &Context<'_>,
    hooks: &Result<HookScan, ObserveError>,
    specs: &Specs,
) -> Check {
    let tk = cx.toolkit;
    let refresh = &cx.refresh;
    let version = tk.version.map_or("unknown".to_owned(), |v| v.to_string());
    let recommended = if !cx.rules.reads_nvidia_cdi_specs() {
        "hook: this Podman cannot use NVIDIA's CDI specs (4.3 and later can)"
    } else if refresh.installed() || tk.refreshes_cdi_spec() {
        "cdi: NVIDIA's nvidia-cdi-refresh units (toolkit 1.18+) keep the spec current"
    } else if tk.version.is_some() && !tk.generates_cdi() {
        "hook: this toolkit (before 1.12) cannot generate CDI specs"
    } else {
        "cdi: gpu-setup apply --strategy cdi generates the spec; the heal units regenerate it after a driver upgrade"
    };
    let mut details = vec![format!(
        "{}, toolkit {version}: recommended strategy {recommended}",
        cx.rules.describe()
    )];
    let hook = hooks
        .as_ref()
        .ok()
        .and_then(|s| s.nvidia(&cx.desired.hook_path))
        .map(|(p, _)| p.clone());
    let specs: &[(TargetPath, Vec<u8>)] = specs.as_deref().unwrap_or_default();
    if let Some(h) = &hook {
        details.push(format!("hook: {h}"));
    }
    details.extend(specs.iter().map(|(s, _)| format!("CDI spec: {s}")));
    if let Some(Err(e)) = &cx.probes.cdi_generated {
        details.push(format!(
            "cannot tell whether the spec is stale: nvidia-ctk cdi generate: {e}"
        ));
    }
    match (&hook, specs.is_empty()) {
        (Some(h), false) => {
            let hint = if refresh.installed() {
                format!(
                    "choose one: gpu-setup apply --strategy cdi (removes the hook), or keep the hook and point the refresh units elsewhere ({} in {}: disabling them does not last, their package turns them back on), then remove the spec",
                    crate::cdi::REFRESH_OUTPUT_VAR,
                    crate::paths::well_known::REFRESH_ENV
                )
            } else {
                "choose one: gpu-setup apply --strategy cdi (removes the hook), or gpu-setup apply --strategy hook and remove the specs".to_owned()
            };
            Check::new("strategy", Status::Warn, format!("both GPU paths are set up, the NVIDIA hook `{h}` and CDI: NVIDIA documents them as conflicting"))
                .hint(hint)
                .details(details)
        }
        (Some(_), true) => {
            let returning = crate::warnings::refresh_conflict(cx.host, &cdi_dirs(cx), refresh)
                .ok()
                .flatten();
            if let Some(problem) = returning {
                return Check::new("strategy", Status::Warn, format!("hook, but {problem}"))
                    .hint(crate::warnings::refresh_redirect_hint())
                    .details(details);
            }
            Check::new(
            "strategy",
            Status::Ok,
            if cx.rules.gpus_flag_means_cdi() {
                "hook: containers get GPUs through the NVIDIA OCI hook (run them without `--gpus`: Podman 5.0 and later turn it into a CDI request, which fails without a spec)"
            } else {
                "hook: containers get GPUs through the NVIDIA OCI hook"
            },
        )
        .details(details)
        }
        (None, false) => {
            if let Some(stale) = stale_spec(cx) {
                let hint = if refresh.installed() {
                    "systemctl restart nvidia-cdi-refresh.service".to_owned()
                } else {
                    "gpu-setup apply --strategy cdi".to_owned()
                };
                return Check::new("strategy", Status::Warn, format!("cdi, but `{stale}` differs from what `nvidia-ctk cdi generate` prints now (a driver upgrade since?)"))
                    .hint(hint)
                    .details(details);
            }
            if refresh.installed() && !refresh.enabled {
                return Check::new("strategy", Status::Warn, "cdi, but nvidia-cdi-refresh.path is not enabled: the spec is not regenerated at boot or after a driver upgrade")
                    .hint("systemctl enable --now nvidia-cdi-refresh.path")
                    .details(details);
            }
            Check::new(
                "strategy",
                Status::Ok,
                "cdi: containers get GPUs with `--device nvidia.com/gpu=all`",
            )
            .details(details)
        }
        (None, true) => Check::new(
            "strategy",
            Status::Fail,
            "no GPU path: neither the NVIDIA hook nor an NVIDIA CDI spec",
        )
        .hint(if recommended.starts_with("hook") || !can_generate(cx) {
            "gpu-setup apply --strategy hook"
        } else {
            "gpu-setup apply --strategy cdi"
        })
        .details(details),
    }
}

/// Whether `--strategy cdi` can work here: NVIDIA's refresh units own the
/// spec, or the nvidia-ctk it would run exists.
fn can_generate(cx: &Context<'_>) -> bool {
    cx.refresh.installed()
        || TargetPath::new(cx.desired.nvidia_ctk.as_str())
            .ok()
            .is_some_and(|p| super::is_executable(cx.host, &p))
}

/// The GPU path the host is set up for, when one is: the NVIDIA hook (in
/// Podman's hooks dirs, running either of the hook binaries) or, without
/// it, an NVIDIA CDI spec Podman reads. `doctor` judges the host by it
/// when no strategy is given.
pub fn strategy_in_use(
    cx_desired: &crate::DesiredState,
    facts: &crate::HostFacts,
    host: &dyn crate::Observe,
) -> Option<crate::Strategy> {
    let probes = super::Probes::default();
    let rules = crate::upstream::Podman::new(facts.podman_version);
    let conf = crate::podman::conf_files(facts, host, None).map(|(f, _)| f);
    let effective = conf.as_ref().ok().map(|f| crate::podman::effective(f));
    let cx = Context {
        desired: cx_desired,
        facts: facts.clone(),
        host,
        probes: &probes,
        rules,
        toolkit: crate::upstream::Toolkit::new(facts.toolkit_version),
        conf,
        effective,
        default_runtime: None,
        refresh: crate::cdi::refresh_units(host),
    };
    let hook = HookScan::read(&cx)
        .ok()
        .is_some_and(|s| s.nvidia(&cx_desired.hook_path).is_some());
    if hook {
        return Some(crate::Strategy::Hook);
    }
    let specs = nvidia_specs(&cx).ok().unwrap_or_default();
    (!specs.is_empty()).then_some(crate::Strategy::Cdi)
}

/// The CDI spec that differs from what `nvidia-ctk cdi generate` printed
/// (when doctor could run it).
fn stale_spec(cx: &Context<'_>) -> Option<TargetPath> {
    let Some(Ok(generated)) = &cx.probes.cdi_generated else {
        return None;
    };
    let path = if cx.refresh.installed() {
        cx.refresh.spec()
    } else {
        cx.desired.cdi_spec.clone()
    };
    let bytes = cx.host.file(&path).ok()?.bytes()?.to_vec();
    let body = bytes
        .strip_prefix(crate::cdi::MARKER.as_bytes())
        .unwrap_or(&bytes);
    (body != &generated[..]).then_some(path)
}

/// NVIDIA's CDI specs in the dirs Podman reads here, with their content.
pub(crate) type Specs = Result<Vec<(TargetPath, Vec<u8>)>, crate::PlanError>;

/// Reads [`Specs`] once for the checks that need them.
pub(crate) fn nvidia_specs(cx: &Context<'_>) -> Specs {
    nvidia_cdi_specs(cx.host, &cdi_dirs(cx))
}

/// The CDI spec dirs Podman reads here.
pub(crate) fn cdi_dirs(cx: &Context<'_>) -> Vec<TargetPath> {
    let dirs = match &cx.effective {
        Some(e) => e.cdi_dirs(cx.rules),
        None => cx
            .rules
            .default_cdi_dirs()
            .iter()
            .map(|d| d.to_string())
            .collect(),
    };
    dirs.iter()
        .filter_map(|d| TargetPath::new(d).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    const OTHER_HOOK: &str = r#"{"version": "1.0.0", "hook": {"path": "/usr/libexec/other-hook"}, "when": {"always": true}, "stages": ["prestart"]}"#;

    #[test]
    fn hook_problems() {
        let host = configured();
        let mut none = host.clone();
        none.remove(&tp(HOOK));
        assert_check(
            &check(&none, &probes(), "hooks"),
            Status::Fail,
            "no NVIDIA OCI hook",
        );

        // Another hook file that is invalid breaks every container.
        let bad = host.clone().with_exe("/usr/libexec/other-hook").with_file(
            "/usr/share/containers/oci/hooks.d/seccomp.json",
            OTHER_HOOK.replace("prestart", "prestrat"),
        );
        let c = check(&bad, &probes(), "hooks");
        assert_check(
            &c,
            Status::Fail,
            "invalid hook file `/usr/share/containers/oci/hooks.d/seccomp.json`: unknown stage \"prestrat\"",
        );
        assert!(c
            .message
            .ends_with("Podman refuses to create any container while it exists"));
        let half = host.clone().with_file(
            "/usr/share/containers/oci/hooks.d/x.json",
            "{\"version\": \"1.0",
        );
        let c = check(&half, &probes(), "hooks");
        assert!(
            c.message
                .contains("`/usr/share/containers/oci/hooks.d/x.json` line 1, column 16"),
            "{c:#?}"
        );
        // A valid foreign hook is fine; files not ending in .json are ignored.
        let fine = host
            .clone()
            .with_file(
                "/usr/share/containers/oci/hooks.d/seccomp.json",
                SECCOMP_HOOK,
            )
            .with_file("/usr/share/containers/oci/hooks.d/notes.txt", "{");
        assert_check(&check(&fine, &probes(), "hooks"), Status::Ok, "NVIDIA hook");

        // A higher-priority dir masks the hook with a same-named file.
        let masked = host
            .clone()
            .with_file(
                "/etc/containers/containers.conf.d/20-hooks.conf",
                "[engine]\nhooks_dir = [\"/usr/share/containers/oci/hooks.d\", \"/etc/containers/oci/hooks.d\"]\n",
            )
            .with_file("/etc/containers/oci/hooks.d/oci-nvidia-hook.json", OTHER_HOOK)
            .with_exe("/usr/libexec/other-hook");
        assert_check(
            &check(&masked, &probes(), "hooks"),
            Status::Fail,
            &format!("`{HOOK}` is masked by a file of the same name"),
        );
        // A same-named file Podman skips (its executable is missing) masks
        // nothing: ReadDir adds only the hooks it loads.
        let mut skipped = masked.clone();
        skipped.remove(&tp("/usr/libexec/other-hook"));
        assert_check(
            &check(&skipped, &probes(), "hooks"),
            Status::Ok,
            "NVIDIA hook",
        );

        // NVIDIA's own hook (v1.13.5) runs nvidia-container-runtime-hook.
        let mut vendor = host.clone();
        vendor.put(&tp(HOOK), NVIDIA_HOOK_1_13.as_bytes().to_vec());
        assert_check(
            &check(&vendor, &probes(), "hooks"),
            Status::Ok,
            "NVIDIA hook",
        );
        vendor.remove(&tp("/usr/bin/nvidia-container-runtime-hook"));
        let c = check(&vendor, &probes(), "hooks");
        assert_check(&c, Status::Fail, &format!("the NVIDIA hook `{HOOK}` runs `/usr/bin/nvidia-container-runtime-hook`, which does not exist: Podman skips the hook quietly"));

        // The old 0.1.0 schema.
        let mut old = host.clone();
        old.put(
            &tp(HOOK),
            br#"{"hook": "/usr/bin/nvidia-container-toolkit", "arguments": ["prestart"], "stage": ["prestart"]}"#.to_vec(),
        );
        let c = check(&old, &probes(), "hooks");
        assert_check(&c, Status::Ok, "NVIDIA hook");
        assert!(
            c.details.iter().any(|d| d.ends_with("(schema 0.1.0)")),
            "{c:#?}"
        );
    }

    #[test]
    fn the_first_failing_file_of_a_dir_decides_whether_podman_goes_on() {
        // containers/common pkg/hooks/read.go ReadDir joins a dir's errors
        // wrapping the first; hooks.go New ignores an os.ErrNotExist, which
        // a missing executable is (1.0.0/hook.go Validate).
        let missing_first = configured()
            .with_file(
                "/usr/share/containers/oci/hooks.d/a.json",
                r#"{"version": "1.0.0", "hook": {"path": "/gone"}, "stages": ["prestart"]}"#,
            )
            .with_file("/usr/share/containers/oci/hooks.d/b.json", "{");
        let c = check(&missing_first, &probes(), "hooks");
        assert_check(&c, Status::Ok, "NVIDIA hook");
        assert!(
            c.details.iter().any(|d| d.contains("b.json: INVALID")),
            "{c:#?}"
        );
        let invalid_first = configured()
            .with_file("/usr/share/containers/oci/hooks.d/a.json", "{")
            .with_file(
                "/usr/share/containers/oci/hooks.d/b.json",
                r#"{"version": "1.0.0", "hook": {"path": "/gone"}, "stages": ["prestart"]}"#,
            );
        assert_check(
            &check(&invalid_first, &probes(), "hooks"),
            Status::Fail,
            "invalid hook file `/usr/share/containers/oci/hooks.d/a.json`",
        );
    }

    const SPEC: &str = "cdiVersion: \"0.5.0\"\nkind: nvidia.com/gpu\ndevices:\n- name: all\n  containerEdits: {}\n";

    #[test]
    fn cdi_specs_are_json_or_yaml_in_the_dirs_podman_reads() {
        let host = configured();
        assert_check(
            &check(&host, &probes(), "cdi"),
            Status::Ok,
            "no NVIDIA CDI spec",
        );
        // *.yml is not a CDI spec (tags.cncf.io/container-device-interface
        // pkg/cdi/spec-dirs.go reads .json and .yaml).
        let yml = host.clone().with_file("/etc/cdi/nvidia.yml", SPEC);
        assert_check(
            &check(&yml, &probes(), "cdi"),
            Status::Ok,
            "no NVIDIA CDI spec",
        );
        let spec = host.clone().with_file("/var/run/cdi/nvidia.yaml", SPEC);
        let c = check(&spec, &probes(), "cdi");
        assert_check(&c, Status::Ok, "1 NVIDIA CDI spec(s), valid");
        assert_eq!(
            c.details,
            ["/var/run/cdi/nvidia.yaml: 1 devices of kind nvidia.com/gpu (cdiVersion 0.5.0)"]
        );
        let broken = host
            .clone()
            .with_file("/var/run/cdi/nvidia.yaml", "kind: nvidia.com/gpu\n");
        assert_check(
            &check(&broken, &probes(), "cdi"),
            Status::Warn,
            "invalid CDI spec `/var/run/cdi/nvidia.yaml`: it has no `cdiVersion`",
        );
        // Podman before 3.2 reads no CDI spec (RELEASE_NOTES.md, 3.2.0).
        let p31 = Probes {
            podman_version: Some("3.1.2".into()),
            ..Probes::default()
        };
        assert_check(
            &check(&spec, &p31, "cdi"),
            Status::Warn,
            "NVIDIA CDI specs exist, but Podman 3.1.2 does not read CDI specs",
        );
        // cdi_spec_dirs counts from Podman 5.5 only.
        let custom = host
            .clone()
            .with_file("/etc/containers/containers.conf.d/50-cdi.conf", "[engine]\ncdi_spec_dirs = [\"/opt/cdi\"]\n")
            .with_file("/opt/cdi/nvidia.json", "{\"cdiVersion\": \"0.5.0\", \"kind\": \"nvidia.com/gpu\", \"devices\": [{\"name\": \"all\"}]}");
        assert_check(
            &check(&custom, &probes(), "cdi"),
            Status::Ok,
            "no NVIDIA CDI spec",
        );
        let p55 = Probes {
            podman_version: Some("5.5.0".into()),
            ..Probes::default()
        };
        assert_check(
            &check(&custom, &p55, "cdi"),
            Status::Ok,
            "1 NVIDIA CDI spec(s)",
        );
    }

    #[test]
    fn the_strategy_line_says_which_path_and_which_suits_the_toolkit() {
        let hook = configured();
        let c = check(&hook, &toolkit("1.13.5"), "strategy");
        assert_check(
            &c,
            Status::Ok,
            "hook: containers get GPUs through the NVIDIA OCI hook",
        );
        assert!(
            c.details[0].starts_with(
                "Podman 4.3.1, toolkit 1.13.5: recommended strategy cdi: gpu-setup apply --strategy cdi"
            ),
            "{c:#?}"
        );
        let c = check(&hook, &toolkit("1.10.0"), "strategy");
        assert!(c.details[0].contains("recommended strategy hook"), "{c:#?}");
        // Both: a conflict, with a hint that works when NVIDIA's refresh
        // units would bring a deleted spec back.
        let both = hook.clone().with_file("/var/run/cdi/nvidia.yaml", SPEC);
        assert_check(
            &check(&both, &toolkit("1.17.0"), "strategy"),
            Status::Warn,
            "both GPU paths are set up",
        );
        let refresh = both.clone().with_file(
            "/usr/lib/systemd/system/nvidia-cdi-refresh.path",
            "[Path]\n",
        );
        let c = check(&refresh, &toolkit("1.18.0"), "strategy");
        assert!(c.hint.unwrap().contains(
            "NVIDIA_CTK_CDI_OUTPUT_FILE_PATH in /etc/nvidia-container-toolkit/nvidia-cdi-refresh.env"
        ));
        // CDI only, and stale against what nvidia-ctk prints now.
        let mut cdi = both.clone();
        cdi.remove(&tp(HOOK));
        assert_check(
            &check(&cdi, &toolkit("1.17.0"), "strategy"),
            Status::Ok,
            "cdi: containers get GPUs",
        );
        let mut cdi_etc = cdi.clone();
        cdi_etc.remove(&tp("/var/run/cdi/nvidia.yaml"));
        let cdi_etc = cdi_etc.with_file(
            "/etc/cdi/nvidia.yaml",
            format!("{}{SPEC}", crate::cdi::MARKER),
        );
        let now = Probes {
            cdi_generated: Some(Ok(SPEC.replace("all", "gpu0").into_bytes())),
            ..toolkit("1.17.0")
        };
        let c = check(&cdi_etc, &now, "strategy");
        assert_check(&c, Status::Warn, "cdi, but `/etc/cdi/nvidia.yaml` differs from what `nvidia-ctk cdi generate` prints now");
        assert_eq!(c.hint.as_deref(), Some("gpu-setup apply --strategy cdi"));
        let same = Probes {
            cdi_generated: Some(Ok(SPEC.as_bytes().to_vec())),
            ..toolkit("1.17.0")
        };
        assert_check(&check(&cdi_etc, &same, "strategy"), Status::Ok, "cdi");
        // NVIDIA's refresh units own the spec, but the .path unit is off.
        let mut refreshed = cdi.clone().with_file(
            "/usr/lib/systemd/system/nvidia-cdi-refresh.path",
            "[Path]\n",
        );
        let c = check(&refreshed, &toolkit("1.18.0"), "strategy");
        assert_check(
            &c,
            Status::Warn,
            "cdi, but nvidia-cdi-refresh.path is not enabled",
        );
        assert_eq!(
            c.hint.as_deref(),
            Some("systemctl enable --now nvidia-cdi-refresh.path")
        );
        refreshed = refreshed.with_file(
            "/etc/systemd/system/multi-user.target.wants/nvidia-cdi-refresh.path",
            "",
        );
        assert_check(
            &check(&refreshed, &toolkit("1.18.0"), "strategy"),
            Status::Ok,
            "cdi",
        );
        // The hook, and the refresh units an upgrade turned back on.
        let units = hook.clone().with_file(
            "/usr/lib/systemd/system/nvidia-cdi-refresh.path",
            "[Path]\n",
        );
        assert_check(
            &check(&units, &toolkit("1.18.0"), "strategy"),
            Status::Ok,
            "hook",
        );
        let on = units.with_file(
            "/etc/systemd/system/multi-user.target.wants/nvidia-cdi-refresh.path",
            "",
        );
        let c = check(&on, &toolkit("1.18.0"), "strategy");
        assert_check(&c, Status::Warn, "hook, but nvidia-cdi-refresh.path is enabled (a toolkit upgrade turns it back on): at the next boot or driver change it writes `/var/run/cdi/nvidia.yaml`");
        assert!(c
            .hint
            .as_deref()
            .unwrap()
            .contains("/etc/nvidia-container-toolkit/nvidia-cdi-refresh.env"));
        let moved = on.with_file(
            "/etc/nvidia-container-toolkit/nvidia-cdi-refresh.env",
            "NVIDIA_CTK_CDI_OUTPUT_FILE_PATH=/var/lib/nvidia-cdi/nvidia.yaml\n",
        );
        assert_check(
            &check(&moved, &toolkit("1.18.0"), "strategy"),
            Status::Ok,
            "hook",
        );
        // Neither.
        let mut none = hook.clone();
        none.remove(&tp(HOOK));
        assert_check(
            &check(&none, &toolkit("1.17.0"), "strategy"),
            Status::Fail,
            "no GPU path",
        );
    }
}
