//! How Podman finds its configuration: its version, and the containers.conf
//! files it reads, in order, for that version (or for any version when it is
//! unknown). Facts and sources: `../shared/docs/podman-nvidia-facts.md`.

use std::cmp::Ordering;
use std::fmt;

use crate::containers_conf::{self, ConfView};
use crate::error::{decode, PlanError};
use crate::facts::HostFacts;
use crate::observe::{Observe, Observed};
use crate::paths::{well_known, TargetPath};

/// A Podman version, `major.minor.patch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodmanVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl PodmanVersion {
    /// Parses `4.3.1`, `podman version 4.3.1` or `5.0.0-rc1`; `None` when no
    /// version is found.
    pub fn parse(text: &str) -> Option<Self> {
        let word = text
            .split_whitespace()
            .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
        let mut nums = word
            .split(['.', '-', '+', '~'])
            .map(|p| p.parse::<u32>().ok());
        let major = nums.next()??;
        let minor = nums.next().flatten().unwrap_or(0);
        let patch = nums.next().flatten().unwrap_or(0);
        Some(PodmanVersion {
            major,
            minor,
            patch,
        })
    }

    fn at_least(self, major: u32, minor: u32) -> bool {
        (self.major, self.minor).cmp(&(major, minor)) != Ordering::Less
    }

    /// Whether it reads `containers.conf.d` drop-ins (3.3 and later).
    pub fn reads_dropins(self) -> bool {
        self.at_least(3, 3)
    }

    /// Whether it reads one main file plus drop-ins (6.0 and later) rather
    /// than merging every file.
    pub fn single_main_file(self) -> bool {
        self.major >= 6
    }
}

impl fmt::Display for PodmanVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

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
/// For a known version: up to 5.x both main files and the /etc drop-ins (from
/// 3.3); from 6.0 the first main file that exists, then drop-ins from
/// /usr/share and /etc (a same-named /etc drop-in masks /usr/share). For an
/// unknown version, the union (both main files and both drop-in dirs).
/// `$CONTAINERS_CONF` replaces the main files; a rootless user's files come
/// last.
pub fn conf_files(
    version: Option<PodmanVersion>,
    facts: &HostFacts,
    host: &dyn Observe,
    ours: Option<(&TargetPath, Option<&str>)>,
) -> Result<(Vec<ConfFile>, bool), PlanError> {
    let ours_path = ours.map(|(p, _)| p);
    let user_main = match &facts.user_config_dir {
        Some(dir) => Some(join(dir, "containers.conf")?),
        None => None,
    };
    let mut paths = match &facts.containers_conf_env {
        Some(env) => vec![env.clone()],
        None => {
            let usr = known(well_known::USR_CONTAINERS_CONF)?;
            let etc = known(well_known::ETC_CONTAINERS_CONF)?;
            match version {
                Some(v) if v.single_main_file() => {
                    let mut candidates: Vec<TargetPath> = user_main.iter().cloned().collect();
                    candidates.extend([etc, usr]);
                    let mut first = None;
                    for c in candidates {
                        if Some(&c) == ours_path || host.file(&c)? != Observed::Absent {
                            first = Some(c);
                            break;
                        }
                    }
                    first.into_iter().collect()
                }
                _ => vec![usr, etc],
            }
        }
    };
    let dropin_dirs = match version {
        Some(v) if !v.reads_dropins() => vec![],
        Some(v) if !v.single_main_file() => vec![known(well_known::ETC_DROPIN_DIR)?],
        _ => vec![
            known(well_known::USR_DROPIN_DIR)?,
            known(well_known::ETC_DROPIN_DIR)?,
        ],
    };
    paths.extend(dropins(&dropin_dirs, ours_path, host)?);
    if let Some(dir) = &facts.user_config_dir {
        let single = version.is_some_and(PodmanVersion::single_main_file);
        if let Some(main) = &user_main {
            if !single && facts.containers_conf_env.is_none() {
                paths.push(main.clone());
            }
        }
        if version.is_none_or(PodmanVersion::reads_dropins) {
            paths.extend(dropins(
                &[join(dir, "containers.conf.d")?],
                ours_path,
                host,
            )?);
        }
    }

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

/// The `*.conf` files of `dirs` in the order Podman reads them: by file name,
/// a later directory's file masking a same-named one in an earlier directory.
/// `ours` counts even before it exists.
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
            found.retain(|(n, _)| *n != name);
            found.push((name, path));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

fn join(dir: &TargetPath, name: &str) -> Result<TargetPath, PlanError> {
    dir.join(name).map_err(|source| PlanError::Path {
        setting: "user config dir",
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

/// The runtime table after merging `files` (later files win per runtime
/// name), the default runtime (`[engine] runtime`, last one set), and the
/// hooks dirs (`[engine] hooks_dir`, last one set, else the default).
pub fn effective(files: &[ConfFile]) -> Effective {
    let mut out = Effective::default();
    for f in files {
        for (name, paths) in &f.view.runtimes {
            out.runtimes
                .insert(name.clone(), (paths.clone(), f.path.clone()));
        }
        if let Some(r) = &f.view.default_runtime {
            out.default_runtime = Some((r.clone(), f.path.clone()));
        }
        if let Some(h) = &f.view.hooks_dir {
            out.hooks_dir = Some((h.clone(), f.path.clone()));
        }
    }
    out
}

/// Podman's merged view of the settings gpu-setup cares about, each with the
/// file that set it.
#[derive(Clone, Debug, Default)]
pub struct Effective {
    /// Runtime name -> (candidate paths, file that set them).
    pub runtimes: std::collections::BTreeMap<String, (Vec<String>, TargetPath)>,
    /// `[engine] runtime`, and where.
    pub default_runtime: Option<(String, TargetPath)>,
    /// `[engine] hooks_dir`, and where.
    pub hooks_dir: Option<(Vec<String>, TargetPath)>,
}

impl Effective {
    /// The hooks dirs Podman uses, lowest priority first.
    pub fn hooks_dirs(&self) -> Vec<String> {
        match &self.hooks_dir {
            Some((dirs, _)) => dirs.clone(),
            None => vec![well_known::DEFAULT_HOOKS_DIR.to_owned()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_podman_output() {
        let v = PodmanVersion::parse("podman version 4.3.1").unwrap();
        assert_eq!(v.to_string(), "4.3.1");
        assert!(v.reads_dropins() && !v.single_main_file());
        assert!(PodmanVersion::parse("6.0.0-rc1")
            .unwrap()
            .single_main_file());
        assert!(!PodmanVersion::parse("3.2.3").unwrap().reads_dropins());
        assert!(PodmanVersion::parse("3.3").unwrap().reads_dropins());
        assert_eq!(PodmanVersion::parse("podman"), None);
    }
}
