//! How Podman finds its configuration and its runtimes: the containers.conf
//! files it reads, in order, for a version (or for any released version
//! when it is unknown), their merged settings, and which runtime executable
//! an entry or the default resolves to. Version rules and their sources are
//! in [`crate::upstream`].

use std::collections::BTreeMap;

use crate::containers_conf::{self, AttrSlice, ConfView};
use crate::error::{decode, PlanError};
use crate::facts::HostFacts;
use crate::observe::{Kind, Observe, Observed};
use crate::paths::{well_known, TargetPath};
use crate::upstream::Podman;

pub use crate::upstream::PodmanVersion;

/// One containers.conf file in the order Podman reads it.
#[derive(Clone, Debug)]
pub struct ConfFile {
    /// The file.
    pub path: TargetPath,
    /// What it sets.
    pub view: ConfView,
}

/// The containers.conf files Podman reads, in order (later files win key by
/// key), and whether `ours` (a path and its planned text, `None` when it
/// will not exist) is among them.
///
/// Up to 5.x (containers/common `pkg/config/new.go` `systemConfigs`):
/// `$CONTAINERS_CONF` alone when set; else `/usr/share/containers/
/// containers.conf`, `/etc/containers/containers.conf`, the `*.conf` files
/// of `/etc/containers/containers.conf.d` (3.3+) by name, for rootless users
/// `/etc/containers/containers.rootless.conf{,.d,.d/<UID>}` (5.7+), then the
/// user's `containers.conf` and `.d` (rootless users; root too from 5.0).
/// 6.x (provisional): one main file (the first of the user's, /etc's,
/// /usr/share's that exists), then every drop-in directory as one
/// name→file map. `$CONTAINERS_CONF_OVERRIDE` (4.5+) comes last in any
/// case. Directories named `*.conf` are skipped; links are read.
pub fn conf_files(
    facts: &HostFacts,
    host: &dyn Observe,
    ours: Option<(&TargetPath, Option<&str>)>,
) -> Result<(Vec<ConfFile>, bool), PlanError> {
    let paths = conf_paths(facts, host, ours.map(|(p, _)| p))?;
    let ours_path = ours.map(|(p, _)| p);
    let ours_read = ours_path.is_some_and(|o| paths.contains(o));
    let mut files = Vec::new();
    for path in paths {
        let text = match ours {
            Some((p, planned)) if *p == path => planned.map(str::to_owned),
            _ => match host.file(&path)? {
                Observed::Absent => None,
                Observed::File { bytes, .. } => Some(decode(&path, &bytes)?.to_owned()),
            },
        };
        if let Some(text) = text {
            let view = containers_conf::view(&path, &text)?;
            files.push(ConfFile { path, view });
        }
    }
    Ok((files, ours_read))
}

/// The paths of [`conf_files`], in order, whether they exist or not.
pub fn conf_paths(
    facts: &HostFacts,
    host: &dyn Observe,
    ours: Option<&TargetPath>,
) -> Result<Vec<TargetPath>, PlanError> {
    let rules = Podman::new(facts.podman_version);
    let mut paths = Vec::new();
    if let Some(env) = &facts.containers_conf_env {
        paths.push(env.clone());
    } else if rules.single_main_file() {
        paths.extend(v6_paths(facts, host, ours)?);
    } else {
        paths.push(known(well_known::USR_CONTAINERS_CONF)?);
        paths.push(known(well_known::ETC_CONTAINERS_CONF)?);
        if rules.reads_dropins() {
            paths.extend(dropins(&[known(well_known::ETC_DROPIN_DIR)?], ours, host)?);
        }
        if facts.rootless() && rules.reads_rootless_system_files() {
            paths.push(known(well_known::ROOTLESS_MAIN)?);
            let dir = known(well_known::ROOTLESS_DROPIN_DIR)?;
            paths.extend(dropins(std::slice::from_ref(&dir), ours, host)?);
            paths.extend(dropins(&[join(&dir, &facts.uid.to_string())?], ours, host)?);
        }
        if let Some(dir) = &facts.user_config_dir {
            if facts.rootless() || rules.root_reads_user_config() {
                paths.push(join(dir, "containers.conf")?);
                if rules.reads_dropins() {
                    paths.extend(dropins(&[join(dir, "containers.conf.d")?], ours, host)?);
                }
            }
        }
    }
    if let Some(o) = &facts.containers_conf_override_env {
        if rules.reads_conf_override() {
            paths.push(o.clone());
        }
    }
    Ok(paths)
}

/// Podman 6 (provisional): the first main file that exists, then one
/// name→file map of every drop-in directory
/// (containers/podman `contrib/design-docs/config-file-parsing.md`).
fn v6_paths(
    facts: &HostFacts,
    host: &dyn Observe,
    ours: Option<&TargetPath>,
) -> Result<Vec<TargetPath>, PlanError> {
    let mut candidates = Vec::new();
    if let Some(dir) = &facts.user_config_dir {
        candidates.push(join(dir, "containers.conf")?);
    }
    candidates.push(known(well_known::ETC_CONTAINERS_CONF)?);
    candidates.push(known(well_known::USR_CONTAINERS_CONF)?);
    let mut out = Vec::new();
    for c in candidates {
        if Some(&c) == ours || host.file(&c)? != Observed::Absent {
            out.push(c);
            break;
        }
    }
    let mut dirs = Vec::new();
    for base in [
        well_known::USR_CONTAINERS_DIR,
        well_known::ETC_CONTAINERS_DIR,
    ] {
        let base = known(base)?;
        dirs.push(join(&base, "containers.conf.d")?);
        if facts.rootless() {
            let rootless = join(&base, "containers.rootless.conf.d")?;
            dirs.push(join(&rootless, &facts.uid.to_string())?);
            dirs.insert(dirs.len() - 1, rootless);
        } else {
            dirs.push(join(&base, "containers.rootful.conf.d")?);
        }
    }
    if let Some(dir) = &facts.user_config_dir {
        dirs.push(join(dir, "containers.conf.d")?);
    }
    out.extend(dropins(&dirs, ours, host)?);
    Ok(out)
}

/// The `*.conf` files of `dirs` in the order Podman reads them: by file name,
/// a later directory's file masking a same-named one in an earlier directory.
/// `ours` counts even before it exists; directories are skipped.
fn dropins(
    dirs: &[TargetPath],
    ours: Option<&TargetPath>,
    host: &dyn Observe,
) -> Result<Vec<TargetPath>, PlanError> {
    let mut found: Vec<(String, TargetPath)> = Vec::new();
    for dir in dirs {
        let mut names = host.list(dir)?.unwrap_or_default();
        if let Some(ours) = ours {
            if ours.parent().as_ref() == Some(dir) && !names.iter().any(|n| n == ours.file_name()) {
                names.push(ours.file_name().to_owned());
            }
        }
        for name in names.into_iter().filter(|n| n.ends_with(".conf")) {
            let path = dir.join(&name).map_err(|source| PlanError::Path {
                setting: "drop-in name",
                source,
            })?;
            // `os.ReadDir` entries that are directories are skipped (a link
            // to a file is read).
            if host.link_meta(&path)?.is_some_and(|m| m.kind == Kind::Dir) {
                continue;
            }
            found.retain(|(n, _)| *n != name);
            found.push((name, path));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

fn join(dir: &TargetPath, name: &str) -> Result<TargetPath, PlanError> {
    dir.join(name).map_err(|source| PlanError::Path {
        setting: "config dir",
        source,
    })
}

/// A built-in path.
pub(crate) fn known(p: &str) -> Result<TargetPath, PlanError> {
    TargetPath::new(p).map_err(|source| PlanError::Path {
        setting: "built-in path",
        source,
    })
}

/// Podman's merged view of the settings gpu-setup cares about, each with the
/// file that set it.
#[derive(Clone, Debug, Default)]
pub struct Effective {
    /// Runtime name -> (candidate paths, file that set them). A later file
    /// replaces a runtime's whole list.
    pub runtimes: BTreeMap<String, (Vec<String>, TargetPath)>,
    /// `[engine.runtimes_flags]` names, and the file that set each.
    pub runtimes_flags: BTreeMap<String, TargetPath>,
    /// `[engine] runtime`, and where.
    pub default_runtime: Option<(String, TargetPath)>,
    /// `[engine] hooks_dir` after every file (arrays with `{append=true}`
    /// extend), and the last file that set it.
    pub hooks_dir: Option<(Vec<String>, TargetPath)>,
    /// `[engine] cdi_spec_dirs`, likewise.
    pub cdi_spec_dirs: Option<(Vec<String>, TargetPath)>,
    /// Files whose arrays carry `{append=...}` attributes.
    pub attributed: Vec<TargetPath>,
}

/// Merges `files` the way Podman does: per runtime name, and string arrays
/// with their `append` attribute (containers/common
/// `internal/attributedstring`: once a file sets `{append=true}`, the
/// attribute stays on the setting, so later plain arrays append too).
pub fn effective(files: &[ConfFile]) -> Effective {
    let mut out = Effective::default();
    // Arrays start from the built-in defaults (containers/common
    // `pkg/config/default.go`: DefaultHooksDirs, DefaultCdiSpecDirs), which
    // an `{append=true}` array extends.
    let mut hooks = Merge::starting(&[well_known::DEFAULT_HOOKS_DIR]);
    let mut cdi = Merge::starting(&well_known::CDI_DIRS);
    for f in files {
        for (name, paths) in &f.view.runtimes {
            out.runtimes
                .insert(name.clone(), (paths.clone(), f.path.clone()));
        }
        for name in &f.view.runtimes_flags {
            out.runtimes_flags.insert(name.clone(), f.path.clone());
        }
        if let Some(r) = &f.view.default_runtime {
            out.default_runtime = Some((r.clone(), f.path.clone()));
        }
        let mut attributed = false;
        if let Some(h) = &f.view.hooks_dir {
            hooks.apply(h, &f.path);
            attributed |= h.append.is_some();
        }
        if let Some(c) = &f.view.cdi_spec_dirs {
            cdi.apply(c, &f.path);
            attributed |= c.append.is_some();
        }
        if attributed {
            out.attributed.push(f.path.clone());
        }
    }
    out.hooks_dir = hooks.into();
    out.cdi_spec_dirs = cdi.into();
    out
}

/// One attributed string array being merged across files.
struct Merge {
    /// The values so far (the built-in default until a file sets them).
    current: Vec<String>,
    /// The last file that set them.
    from: Option<TargetPath>,
    append: Option<bool>,
}

impl Merge {
    fn starting(default: &[&str]) -> Self {
        Merge {
            current: default.iter().map(|s| s.to_string()).collect(),
            from: None,
            append: None,
        }
    }

    fn apply(&mut self, slice: &AttrSlice, from: &TargetPath) {
        if slice.append.is_some() {
            self.append = slice.append;
        }
        if self.append != Some(true) {
            self.current.clear();
        }
        self.current.extend(slice.values.iter().cloned());
        self.from = Some(from.clone());
    }
}

impl From<Merge> for Option<(Vec<String>, TargetPath)> {
    fn from(m: Merge) -> Self {
        m.from.map(|f| (m.current, f))
    }
}

impl Effective {
    /// The hooks dirs Podman uses, lowest priority first.
    pub fn hooks_dirs(&self) -> Vec<String> {
        match &self.hooks_dir {
            Some((dirs, _)) => dirs.clone(),
            None => vec![well_known::DEFAULT_HOOKS_DIR.to_owned()],
        }
    }

    /// The CDI spec dirs Podman reads (5.5+ honours `cdi_spec_dirs`),
    /// lowest priority first.
    pub fn cdi_dirs(&self, rules: Podman) -> Vec<String> {
        match &self.cdi_spec_dirs {
            Some((dirs, _)) if rules.honours_cdi_spec_dirs() => dirs.clone(),
            _ => rules
                .default_cdi_dirs()
                .iter()
                .map(|d| d.to_string())
                .collect(),
        }
    }
}

/// How a runtime executable was found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Found {
    /// A path listed in `[engine.runtimes]` that is a regular file.
    Listed,
    /// The runtime's name on `$PATH` (an executable file).
    SearchPath,
    /// `[engine] runtime` is itself an absolute path.
    Absolute,
}

/// The executable a runtime entry resolves to, as Podman picks it: the first
/// listed path that `stat()`s as a regular file (no executable-bit check),
/// else the runtime's name looked up on `$PATH` (which needs the
/// executable bit) (containers/podman `libpod/oci_conmon_common.go`
/// `newConmonOCIRuntime`). `None`: Podman drops the entry.
pub fn resolve_runtime(
    host: &dyn Observe,
    name: &str,
    paths: &[String],
    path_dirs: &[TargetPath],
) -> Option<(TargetPath, Found)> {
    for p in paths {
        if let Ok(t) = TargetPath::new(p) {
            if matches!(host.meta(&t), Ok(Some(m)) if m.kind == Kind::File) {
                return Some((t, Found::Listed));
            }
        }
    }
    look_path(host, name, path_dirs).map(|p| (p, Found::SearchPath))
}

/// `exec.LookPath(name)`: the first executable regular file `name` in
/// `path_dirs`.
pub fn look_path(host: &dyn Observe, name: &str, path_dirs: &[TargetPath]) -> Option<TargetPath> {
    if name.contains('/') {
        return None;
    }
    path_dirs.iter().filter_map(|d| d.join(name).ok()).find(
        |p| matches!(host.meta(p), Ok(Some(m)) if m.kind == Kind::File && m.mode & 0o111 != 0),
    )
}

/// Podman's default OCI runtime on this host.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DefaultRuntime {
    /// The runtime's name (or the absolute path `[engine] runtime` gives).
    pub name: String,
    /// The file that set `[engine] runtime`; `None` when Podman picked the
    /// first installed runtime.
    pub set_in: Option<TargetPath>,
    /// The executable it resolves to; `None` when it resolves to nothing,
    /// and then every podman command fails.
    pub path: Option<TargetPath>,
    /// How the executable was found.
    pub found: Option<Found>,
}

/// The default runtime: `[engine] runtime` when a file sets it (a name, or
/// an absolute path), else the first of [`Podman::default_runtime_candidates`]
/// that is installed: a listed path that exists, or the name on `$PATH`
/// (containers/common `pkg/config/config.go` `findRuntime()`;
/// containers/podman `libpod/runtime.go`: a name must be a configured
/// runtime, built in or from a file, else "default OCI runtime %q not
/// found").
pub fn default_runtime(
    eff: &Effective,
    rules: Podman,
    host: &dyn Observe,
    path_dirs: &[TargetPath],
) -> Option<DefaultRuntime> {
    let resolve = |name: &str| {
        runtime_paths(eff, name).and_then(|paths| resolve_runtime(host, name, &paths, path_dirs))
    };
    if let Some((name, from)) = &eff.default_runtime {
        let found = if name.starts_with('/') {
            TargetPath::new(name)
                .ok()
                .filter(|t| matches!(host.meta(t), Ok(Some(m)) if m.kind == Kind::File))
                .map(|t| (t, Found::Absolute))
        } else {
            resolve(name)
        };
        return Some(DefaultRuntime {
            name: name.clone(),
            set_in: Some(from.clone()),
            path: found.as_ref().map(|(p, _)| p.clone()),
            found: found.map(|(_, f)| f),
        });
    }
    for name in rules.default_runtime_candidates() {
        let paths = runtime_paths(eff, name).unwrap_or_default();
        // findRuntime: a listed path that exists at all, or the name on PATH.
        let exists = paths
            .iter()
            .any(|p| TargetPath::new(p).is_ok_and(|t| matches!(host.meta(&t), Ok(Some(_)))));
        if exists || look_path(host, name, path_dirs).is_some() {
            let found = resolve(name);
            return Some(DefaultRuntime {
                name: (*name).to_owned(),
                set_in: None,
                path: found.as_ref().map(|(p, _)| p.clone()),
                found: found.map(|(_, f)| f),
            });
        }
    }
    None
}

/// The candidate paths of runtime `name`: a file's entry, else the
/// built-in one; `None` when Podman has no such runtime at all.
pub fn runtime_paths(eff: &Effective, name: &str) -> Option<Vec<String>> {
    match eff.runtimes.get(name) {
        Some((paths, _)) => Some(paths.clone()),
        None => builtin_runtime_paths(name),
    }
}

/// The runtimes containers/common defines before any file is read
/// (`pkg/config/default.go` `OCIRuntimes`, v0.50.1 and later).
pub fn builtin_runtime_paths(name: &str) -> Option<Vec<String>> {
    let common = |bin: &str, extra: &[&str]| -> Vec<String> {
        let mut out: Vec<String> = [
            "/usr/bin",
            "/usr/sbin",
            "/usr/local/bin",
            "/usr/local/sbin",
            "/sbin",
            "/bin",
        ]
        .iter()
        .map(|d| format!("{d}/{bin}"))
        .collect();
        out.extend(extra.iter().map(|s| s.to_string()));
        out
    };
    Some(match name {
        "crun" => common("crun", &["/run/current-system/sw/bin/crun"]),
        "runc" => common(
            "runc",
            &[
                "/usr/lib/cri-o-runc/sbin/runc",
                "/run/current-system/sw/bin/runc",
            ],
        ),
        "runj" => vec!["/usr/local/bin/runj".to_owned()],
        "kata" => common("kata-runtime", &["/usr/bin/kata-qemu", "/usr/bin/kata-fc"]),
        "runsc" => common("runsc", &["/run/current-system/sw/bin/runsc"]),
        "krun" => vec!["/usr/bin/krun".to_owned(), "/usr/local/bin/krun".to_owned()],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::MemHost;

    fn tp(s: &str) -> TargetPath {
        TargetPath::new(s).unwrap()
    }

    fn facts(version: &str) -> HostFacts {
        HostFacts {
            podman_version: PodmanVersion::parse(version),
            ..HostFacts::default()
        }
    }

    fn shown(paths: &[TargetPath]) -> Vec<&str> {
        paths.iter().map(TargetPath::as_str).collect()
    }

    #[test]
    fn containers_conf_env_is_the_only_file_and_override_comes_last() {
        // containers/common v0.58.0 pkg/config/new.go systemConfigs: with
        // $CONTAINERS_CONF set, that file is returned alone; v0.53.0
        // config.go appends $CONTAINERS_CONF_OVERRIDE after everything.
        let host = MemHost::new().with_file("/etc/containers/containers.conf.d/50-x.conf", "");
        let mut f = facts("4.5.0");
        f.containers_conf_env = Some(tp("/opt/podman.conf"));
        f.containers_conf_override_env = Some(tp("/opt/override.conf"));
        f.user_config_dir = Some(tp("/root/.config/containers"));
        let paths = conf_paths(&f, &host, None).unwrap();
        assert_eq!(shown(&paths), ["/opt/podman.conf", "/opt/override.conf"]);
        f.podman_version = PodmanVersion::parse("4.4.1");
        let paths = conf_paths(&f, &host, None).unwrap();
        assert_eq!(shown(&paths), ["/opt/podman.conf"]);
    }

    #[test]
    fn root_reads_its_own_user_files_from_podman_5() {
        // containers/common v0.58.0 (Podman 5.0) pkg/config/new.go: the
        // user config path is added for every user; v0.57.0 only rootless.
        let host = MemHost::new();
        let mut f = facts("4.9.3");
        f.user_config_dir = Some(tp("/root/.config/containers"));
        assert!(!conf_paths(&f, &host, None)
            .unwrap()
            .contains(&tp("/root/.config/containers/containers.conf")));
        f.podman_version = PodmanVersion::parse("5.0.0");
        assert!(conf_paths(&f, &host, None)
            .unwrap()
            .contains(&tp("/root/.config/containers/containers.conf")));
    }

    #[test]
    fn rootless_system_files_from_podman_5_7() {
        // container-libs common v0.65 pkg/config/new.go: uid > 0 reads
        // /etc/containers/containers.rootless.conf, its .d and .d/<UID>.
        let host = MemHost::new()
            .with_file("/etc/containers/containers.rootless.conf.d/10-all.conf", "")
            .with_file(
                "/etc/containers/containers.rootless.conf.d/1000/20-me.conf",
                "",
            );
        let mut f = facts("5.7.0");
        f.uid = 1000;
        f.user_config_dir = Some(tp("/home/u/.config/containers"));
        let paths = conf_paths(&f, &host, None).unwrap();
        assert_eq!(
            shown(&paths),
            [
                "/usr/share/containers/containers.conf",
                "/etc/containers/containers.conf",
                "/etc/containers/containers.rootless.conf",
                "/etc/containers/containers.rootless.conf.d/10-all.conf",
                "/etc/containers/containers.rootless.conf.d/1000/20-me.conf",
                "/home/u/.config/containers/containers.conf",
            ]
        );
        f.podman_version = PodmanVersion::parse("5.6.0");
        assert_eq!(conf_paths(&f, &host, None).unwrap().len(), 3);
    }

    #[test]
    fn podman_5_never_reads_vendor_dropins_and_6_does() {
        // Podman <= 5.x systemConfigs has no /usr/share/containers/
        // containers.conf.d; Podman main (6.0, provisional) reads it first.
        let host = MemHost::new()
            .with_file("/usr/share/containers/containers.conf", "")
            .with_file("/usr/share/containers/containers.conf.d/10-vendor.conf", "")
            .with_file("/etc/containers/containers.conf.d/10-vendor.conf", "")
            .with_file("/etc/containers/containers.conf.d/20-admin.conf", "")
            .with_dir("/etc/containers/containers.conf.d/30-dir.conf", 0o755);
        let paths = conf_paths(&HostFacts::default(), &host, None).unwrap();
        assert!(!paths.iter().any(|p| p
            .as_str()
            .starts_with("/usr/share/containers/containers.conf.d")));
        // A directory named *.conf is skipped.
        assert!(!paths.contains(&tp("/etc/containers/containers.conf.d/30-dir.conf")));
        let paths = conf_paths(&facts("6.0.0"), &host, None).unwrap();
        assert_eq!(
            shown(&paths),
            [
                "/usr/share/containers/containers.conf",
                "/etc/containers/containers.conf.d/10-vendor.conf",
                "/etc/containers/containers.conf.d/20-admin.conf",
            ]
        );
    }

    #[test]
    fn append_attributes_extend_earlier_arrays_and_stay() {
        // containers/common internal/attributedstring/slice.go: append=true
        // appends, and the attribute stays set for later files.
        let files = |texts: &[&str]| -> Vec<ConfFile> {
            texts
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let path = tp(&format!("/etc/containers/containers.conf.d/{i}.conf"));
                    ConfFile {
                        view: containers_conf::view(&path, t).unwrap(),
                        path,
                    }
                })
                .collect()
        };
        let eff = effective(&files(&[
            "[engine]\nhooks_dir = [\"/a\"]\n",
            "[engine]\nhooks_dir = [\"/b\", {append=true}]\n",
            "[engine]\nhooks_dir = [\"/c\"]\n",
        ]));
        assert_eq!(eff.hooks_dirs(), ["/a", "/b", "/c"]);
        // Appending to no earlier file extends the built-in default.
        let eff = effective(&files(&["[engine]\nhooks_dir = [\"/b\", {append=true}]\n"]));
        assert_eq!(
            eff.hooks_dirs(),
            ["/usr/share/containers/oci/hooks.d", "/b"]
        );
        assert_eq!(eff.attributed.len(), 1);
        let eff = effective(&files(&[
            "[engine]\nhooks_dir = [\"/a\"]\n",
            "[engine]\nhooks_dir = [\"/b\"]\n",
        ]));
        assert_eq!(eff.hooks_dirs(), ["/b"]);
    }

    #[test]
    fn runtimes_resolve_like_podman() {
        // libpod newConmonOCIRuntime: a listed path that is a regular file
        // (no exec bit needed), else the name on $PATH (exec bit needed).
        let host = MemHost::new()
            .with_file("/opt/nv/runtime", "")
            .with_dir("/opt/dir", 0o755)
            .with_exe("/usr/bin/runc");
        let path = [tp("/usr/bin")];
        assert_eq!(
            resolve_runtime(
                &host,
                "nvidia",
                &["/opt/dir".into(), "/opt/nv/runtime".into()],
                &path
            ),
            Some((tp("/opt/nv/runtime"), Found::Listed))
        );
        assert_eq!(
            resolve_runtime(&host, "runc", &["/nope".into()], &path),
            Some((tp("/usr/bin/runc"), Found::SearchPath))
        );
        assert_eq!(
            resolve_runtime(&host, "nvidia", &["/nope".into()], &path),
            None
        );
    }

    #[test]
    fn the_default_runtime_is_the_first_installed_unless_a_file_sets_one() {
        // containers/common pkg/config/config.go findRuntime(): crun, runc,
        // runj, kata, runsc, ocijail; the first installed wins.
        let runc_only = MemHost::new().with_exe("/usr/sbin/runc");
        let path = [tp("/usr/sbin"), tp("/usr/bin")];
        let d =
            default_runtime(&Effective::default(), Podman::default(), &runc_only, &path).unwrap();
        assert_eq!(
            (d.name.as_str(), d.path.unwrap().as_str(), d.set_in),
            ("runc", "/usr/sbin/runc", None)
        );
        let both = runc_only.clone().with_exe("/usr/bin/crun");
        let d = default_runtime(&Effective::default(), Podman::default(), &both, &path).unwrap();
        assert_eq!(d.name, "crun");
        assert!(default_runtime(
            &Effective::default(),
            Podman::default(),
            &MemHost::new(),
            &path
        )
        .is_none());
        // Set in a file: that one, found or not; an absolute path is valid.
        let mut eff = Effective {
            default_runtime: Some(("kata".into(), tp("/etc/containers/containers.conf"))),
            ..Effective::default()
        };
        let d = default_runtime(&eff, Podman::default(), &both, &path).unwrap();
        assert_eq!((d.name.as_str(), d.path), ("kata", None));
        eff.default_runtime = Some((
            "/usr/sbin/runc".into(),
            tp("/etc/containers/containers.conf"),
        ));
        let d = default_runtime(&eff, Podman::default(), &both, &path).unwrap();
        assert_eq!(d.found, Some(Found::Absolute));
    }
}
