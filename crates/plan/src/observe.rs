//! What the planner may learn about a host: the read-only `Observe` seam, the
//! observed state of one file, and an in-memory host for tests.

use std::collections::BTreeMap;

use crate::error::ObserveError;
use crate::paths::TargetPath;

/// Ownership and permission bits of a file or directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Meta {
    /// What kind of node this is.
    pub kind: Kind,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// The owning user (`st_uid`).
    pub uid: u32,
    /// The owning group (`st_gid`).
    pub gid: u32,
}

/// Kinds of filesystem node the planner distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Anything else (device, socket, fifo).
    Other,
}

/// The observed state of one managed path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Nothing exists at the path.
    Absent,
    /// A regular file with these bytes and metadata.
    File {
        /// The file's content.
        bytes: Vec<u8>,
        /// Permission bits.
        mode: u32,
        /// The owning user (`st_uid`).
        uid: u32,
        /// The owning group (`st_gid`).
        gid: u32,
    },
}

impl Observed {
    /// The file's bytes, or `None` when absent.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Observed::Absent => None,
            Observed::File { bytes, .. } => Some(bytes),
        }
    }
}

/// Read-only access to a host, as the host sees its paths. The planner never
/// touches the filesystem except through this trait.
pub trait Observe {
    /// Reads a regular file (symlinks followed). A missing file is
    /// `Observed::Absent`; a directory or device is an error.
    fn file(&self, path: &TargetPath) -> Result<Observed, ObserveError>;
    /// Metadata of a path (symlinks followed), `None` when it does not exist.
    fn meta(&self, path: &TargetPath) -> Result<Option<Meta>, ObserveError>;
    /// Names in a directory, sorted; `None` when the directory does not exist.
    fn list(&self, dir: &TargetPath) -> Result<Option<Vec<String>>, ObserveError>;
    /// Metadata of a path without following a link at its last name (a
    /// link is `Kind::Other`); `None` when nothing is there. Hosts without
    /// links (the in-memory one) answer like [`Observe::meta`].
    fn link_meta(&self, path: &TargetPath) -> Result<Option<Meta>, ObserveError> {
        self.meta(path)
    }
    /// A small file on a kernel filesystem (`/sys/fs/cgroup/...`), which
    /// [`Observe::file`] refuses: at most `limit` bytes. Only for fixed
    /// paths `doctor` inspects.
    fn kernel_file(&self, path: &TargetPath, limit: u64) -> Result<Option<Vec<u8>>, ObserveError> {
        let _ = limit;
        Ok(self.file(path)?.bytes().map(<[u8]>::to_vec))
    }
    /// Reads a regular file of up to `limit` bytes, for the few files
    /// larger than a managed file may be (a package database such as
    /// `/var/lib/dpkg/status`). Otherwise like [`Observe::file`].
    fn large_file(&self, path: &TargetPath, limit: u64) -> Result<Observed, ObserveError> {
        let _ = limit;
        self.file(path)
    }
    /// The real path of a file gpu-setup manages: symbolic links on the way
    /// resolved inside the root, or refused (see `gpu-setup-apply`'s
    /// `safe_path`). `follow_target` allows the file itself to be a link.
    /// Hosts without links (the in-memory one) return the path as is.
    fn resolve(&self, path: &TargetPath, follow_target: bool) -> Result<TargetPath, ObserveError> {
        let _ = follow_target;
        Ok(path.clone())
    }
    /// Where a path leads with every symbolic link followed inside the root
    /// (as a process chrooted there sees it); `None` when nothing is there.
    /// Two paths lead to the same file when their real paths are equal.
    fn real_path(&self, path: &TargetPath) -> Result<Option<TargetPath>, ObserveError> {
        Ok(self.meta(path)?.map(|_| path.clone()))
    }
}

/// A host as it will be after some files change: `changed` maps a path to
/// its new content (`None`: removed); every other read goes to `host`. For
/// checking what a command would leave behind before it runs (rollback).
pub struct Overlay<'a> {
    host: &'a dyn Observe,
    changed: BTreeMap<TargetPath, Option<Vec<u8>>>,
}

impl<'a> Overlay<'a> {
    /// `host` with `changed` applied.
    pub fn new(host: &'a dyn Observe, changed: BTreeMap<TargetPath, Option<Vec<u8>>>) -> Self {
        Overlay { host, changed }
    }
}

impl Observe for Overlay<'_> {
    fn file(&self, path: &TargetPath) -> Result<Observed, ObserveError> {
        match self.changed.get(path) {
            Some(Some(bytes)) => Ok(Observed::File {
                bytes: bytes.clone(),
                mode: 0o644,
                uid: 0,
                gid: 0,
            }),
            Some(None) => Ok(Observed::Absent),
            None => self.host.file(path),
        }
    }
    fn meta(&self, path: &TargetPath) -> Result<Option<Meta>, ObserveError> {
        match self.changed.get(path) {
            Some(Some(_)) => Ok(Some(Meta {
                kind: Kind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
            })),
            Some(None) => Ok(None),
            None => self.host.meta(path),
        }
    }
    fn list(&self, dir: &TargetPath) -> Result<Option<Vec<String>>, ObserveError> {
        let mut names = self.host.list(dir)?;
        for (path, content) in &self.changed {
            if path.parent().as_ref() != Some(dir) {
                continue;
            }
            let list = names.get_or_insert_with(Vec::new);
            let name = path.file_name().to_owned();
            list.retain(|n| *n != name);
            if content.is_some() {
                list.push(name);
            }
        }
        if let Some(l) = &mut names {
            l.sort();
        }
        Ok(names)
    }
    fn link_meta(&self, path: &TargetPath) -> Result<Option<Meta>, ObserveError> {
        if self.changed.contains_key(path) {
            return self.meta(path);
        }
        self.host.link_meta(path)
    }
    fn real_path(&self, path: &TargetPath) -> Result<Option<TargetPath>, ObserveError> {
        if self.changed.contains_key(path) {
            return Ok(self.meta(path)?.map(|_| path.clone()));
        }
        self.host.real_path(path)
    }
}

/// An in-memory host for tests: files and directories added by hand.
#[derive(Clone, Debug, Default)]
pub struct MemHost {
    nodes: BTreeMap<TargetPath, (Meta, Vec<u8>)>,
    /// Symbolic links (at the last name only): link -> absolute target.
    links: BTreeMap<TargetPath, TargetPath>,
}

impl MemHost {
    /// An empty host (only `/` exists).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a regular file (mode 0644, root-owned) and its parent directories.
    pub fn with_file(mut self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.add(path, Kind::File, 0o644, content.into());
        self
    }

    /// Adds an executable file (mode 0755).
    pub fn with_exe(mut self, path: &str) -> Self {
        self.add(path, Kind::File, 0o755, Vec::new());
        self
    }

    /// Adds a directory with the given mode.
    pub fn with_dir(mut self, path: &str, mode: u32) -> Self {
        self.add(path, Kind::Dir, mode, Vec::new());
        self
    }

    /// Writes (or replaces) a regular file, keeping its mode when it exists.
    pub fn put(&mut self, path: &TargetPath, bytes: Vec<u8>) {
        let mode = self.nodes.get(path).map_or(0o644, |(m, _)| m.mode);
        self.add(path.as_str(), Kind::File, mode, bytes);
    }

    /// Removes a node (not its children), or a link.
    pub fn remove(&mut self, path: &TargetPath) {
        self.nodes.remove(path);
        self.links.remove(path);
    }

    /// Adds a symbolic link at `path` to the absolute `target` (only the
    /// last name of a path is looked up as a link).
    pub fn with_link(mut self, path: &str, target: &str) -> Self {
        #[allow(clippy::unwrap_used)] // test helper: a bad literal path is a bug in the test
        let (path, target) = (
            TargetPath::new(path).unwrap(),
            TargetPath::new(target).unwrap(),
        );
        if let Some(parent) = path.parent() {
            if !self.nodes.contains_key(&parent) {
                self.add(parent.as_str(), Kind::Dir, 0o755, Vec::new());
            }
        }
        self.nodes.remove(&path);
        self.links.insert(path, target);
        self
    }

    /// Where `path` leads through links (at most 40, as the kernel).
    fn follow(&self, path: &TargetPath) -> TargetPath {
        let mut p = path.clone();
        for _ in 0..40 {
            match self.links.get(&p) {
                Some(t) => p = t.clone(),
                None => break,
            }
        }
        p
    }

    /// Carries out a plan in memory, as `apply` would on disk.
    pub fn apply(&mut self, plan: &crate::Plan) {
        for change in &plan.changes {
            match &change.after {
                Some(bytes) => self.put(&change.path, bytes.clone()),
                None => self.remove(&change.path),
            }
        }
    }

    /// Adds a node with this metadata (a device node, a file owned by
    /// someone else) and no content.
    pub fn with_meta(mut self, path: &str, meta: Meta) -> Self {
        self.add(path, meta.kind, meta.mode, Vec::new());
        #[allow(clippy::unwrap_used)] // test helper: a bad literal path is a bug in the test
        let path = TargetPath::new(path).unwrap();
        if let Some(node) = self.nodes.get_mut(&path) {
            node.0 = meta;
        }
        self
    }

    fn add(&mut self, path: &str, kind: Kind, mode: u32, bytes: Vec<u8>) {
        #[allow(clippy::unwrap_used)] // test helper: a bad literal path is a bug in the test
        let path = TargetPath::new(path).unwrap();
        for dir in path.ancestors() {
            self.nodes.entry(dir).or_insert((
                Meta {
                    kind: Kind::Dir,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                },
                Vec::new(),
            ));
        }
        self.nodes.insert(
            path,
            (
                Meta {
                    kind,
                    mode,
                    uid: 0,
                    gid: 0,
                },
                bytes,
            ),
        );
    }
}

impl Observe for MemHost {
    fn file(&self, path: &TargetPath) -> Result<Observed, ObserveError> {
        match self.nodes.get(&self.follow(path)) {
            None => Ok(Observed::Absent),
            Some((meta, bytes)) if meta.kind == Kind::File => Ok(Observed::File {
                bytes: bytes.clone(),
                mode: meta.mode,
                uid: meta.uid,
                gid: meta.gid,
            }),
            Some(_) => Err(ObserveError::NotAFile { path: path.clone() }),
        }
    }

    fn meta(&self, path: &TargetPath) -> Result<Option<Meta>, ObserveError> {
        if path.as_str() == "/" {
            return Ok(Some(Meta {
                kind: Kind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
            }));
        }
        Ok(self.nodes.get(&self.follow(path)).map(|(m, _)| *m))
    }

    fn link_meta(&self, path: &TargetPath) -> Result<Option<Meta>, ObserveError> {
        if self.links.contains_key(path) {
            return Ok(Some(Meta {
                kind: Kind::Other,
                mode: 0o777,
                uid: 0,
                gid: 0,
            }));
        }
        self.meta(path)
    }

    fn real_path(&self, path: &TargetPath) -> Result<Option<TargetPath>, ObserveError> {
        let real = self.follow(path);
        Ok(self.meta(&real)?.map(|_| real))
    }

    fn list(&self, dir: &TargetPath) -> Result<Option<Vec<String>>, ObserveError> {
        match self.meta(dir)? {
            Some(m) if m.kind == Kind::Dir => Ok(Some(
                self.nodes
                    .keys()
                    .chain(self.links.keys())
                    .filter(|p| p.parent().as_ref() == Some(dir))
                    .map(|p| p.file_name().to_owned())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            )),
            Some(_) => Err(ObserveError::NotADirectory { path: dir.clone() }),
            None => Ok(None),
        }
    }
}
