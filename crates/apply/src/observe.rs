//! Observing the host: [`RootFs`] reads files under a root directory (`/` or
//! `--root`) for the planner, and never writes. Every read goes through a
//! directory descriptor from the walk in [`crate::safe_path`], is bounded
//! ([`MAX_FILE_BYTES`]) and never blocks on a FIFO or reads a kernel
//! filesystem.

use std::io;
use std::path::Path;

use gpu_setup_plan::{Kind, Meta, Observe, ObserveError, Observed, TargetPath};
use nix::sys::stat::SFlag;

use crate::safe_path::{kind, Root, MAX_FILE_BYTES};

/// The host as seen under a root.
#[derive(Clone, Debug)]
pub struct RootFs {
    root: Root,
}

impl RootFs {
    /// A view of the filesystem with `root` treated as `/`: opens it once.
    pub fn open(root: &Path) -> io::Result<Self> {
        Ok(Self {
            root: Root::open(root)?,
        })
    }

    /// Like [`RootFs::open`], with `--root`'s trusted walk
    /// ([`Root::open_checked`]).
    pub fn open_checked(root: &Path) -> Result<Self, crate::trust::TrustError> {
        Ok(Self {
            root: Root::open_checked(root)?,
        })
    }

    /// Whether the root is the machine's own `/`.
    pub fn is_real_root(&self) -> bool {
        self.root.is_real_root()
    }

    /// The root directory as given.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The opened root.
    pub fn opened(&self) -> &Root {
        &self.root
    }
}

fn to_meta(st: &nix::sys::stat::FileStat) -> Meta {
    let kind = match kind(st) {
        SFlag::S_IFREG => Kind::File,
        SFlag::S_IFDIR => Kind::Dir,
        _ => Kind::Other,
    };
    Meta {
        kind,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
    }
}

impl RootFs {
    fn read_up_to(&self, path: &TargetPath, limit: u64) -> Result<Observed, ObserveError> {
        let walked = self.root.resolve_for_reading(path)?;
        let Some(dir) = walked.parent() else {
            return Ok(Observed::Absent);
        };
        let opened = match dir.read(&walked.name, limit) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(Observed::Absent),
            Err(e) => return Err(e.observe(path)),
        };
        tracing::debug!(path = %path, len = opened.bytes.len(), "read");
        Ok(Observed::File {
            bytes: opened.bytes,
            mode: opened.stat.st_mode & 0o7777,
            uid: opened.stat.st_uid,
            gid: opened.stat.st_gid,
        })
    }
}

impl Observe for RootFs {
    fn file(&self, path: &TargetPath) -> Result<Observed, ObserveError> {
        self.read_up_to(path, MAX_FILE_BYTES)
    }

    fn large_file(&self, path: &TargetPath, limit: u64) -> Result<Observed, ObserveError> {
        self.read_up_to(path, limit)
    }

    fn meta(&self, path: &TargetPath) -> Result<Option<Meta>, ObserveError> {
        let walked = self.root.resolve_for_reading(path)?;
        let Some(dir) = walked.parent() else {
            return Ok(None);
        };
        match dir.stat(&walked.name) {
            Ok(st) => Ok(st.as_ref().map(to_meta)),
            Err(e) => Err(ObserveError::Io {
                path: path.clone(),
                source: e,
            }),
        }
    }

    fn link_meta(&self, path: &TargetPath) -> Result<Option<Meta>, ObserveError> {
        let Some(parent) = path.parent() else {
            return self.meta(path);
        };
        let walked = self.root.resolve_for_reading(&parent)?;
        let Some(dir) = walked.parent() else {
            return Ok(None);
        };
        let dir = match dir.open_dir(&walked.name) {
            Ok(d) => d,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(nix::libc::ENOENT) | Some(nix::libc::ENOTDIR)
                ) =>
            {
                return Ok(None)
            }
            Err(source) => {
                return Err(ObserveError::Io {
                    path: path.clone(),
                    source,
                })
            }
        };
        match dir.stat(path.file_name()) {
            Ok(st) => Ok(st.as_ref().map(to_meta)),
            Err(source) => Err(ObserveError::Io {
                path: path.clone(),
                source,
            }),
        }
    }

    fn kernel_file(&self, path: &TargetPath, limit: u64) -> Result<Option<Vec<u8>>, ObserveError> {
        let walked = self.root.resolve_for_reading(path)?;
        let Some(dir) = walked.parent() else {
            return Ok(None);
        };
        match dir.read_kernel(&walked.name, limit) {
            Ok(bytes) => Ok(bytes),
            Err(e) => Err(e.observe(path)),
        }
    }

    fn resolve(&self, path: &TargetPath, follow_target: bool) -> Result<TargetPath, ObserveError> {
        Ok(self.root.resolve(path, follow_target)?.path)
    }

    fn real_path(&self, path: &TargetPath) -> Result<Option<TargetPath>, ObserveError> {
        let walked = self.root.resolve_for_reading(path)?;
        let Some(dir) = walked.parent() else {
            return Ok(None);
        };
        match dir.stat(&walked.name) {
            Ok(Some(_)) => Ok(Some(walked.path)),
            Ok(None) => Ok(None),
            Err(source) => Err(ObserveError::Io {
                path: path.clone(),
                source,
            }),
        }
    }

    fn list(&self, dir: &TargetPath) -> Result<Option<Vec<String>>, ObserveError> {
        let walked = self.root.resolve_for_reading(dir)?;
        let Some(parent) = walked.parent() else {
            return Ok(None);
        };
        let io = |source: io::Error| ObserveError::Io {
            path: dir.clone(),
            source,
        };
        let opened = match parent.open_dir(&walked.name) {
            Ok(d) => d,
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => return Ok(None),
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => {
                return Err(ObserveError::NotADirectory { path: dir.clone() })
            }
            Err(e) => return Err(io(e)),
        };
        opened.names().map(Some).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tp(s: &str) -> TargetPath {
        TargetPath::new(s).unwrap()
    }

    #[test]
    fn reads_under_root_only() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc/x")).unwrap();
        fs::write(root.path().join("etc/x/a.conf"), "a = 1\n").unwrap();
        let host = RootFs::open(root.path()).unwrap();
        match host.file(&tp("/etc/x/a.conf")).unwrap() {
            Observed::File { bytes, .. } => assert_eq!(bytes, b"a = 1\n"),
            Observed::Absent => panic!("file not seen"),
        }
        assert_eq!(host.file(&tp("/etc/x/missing")).unwrap(), Observed::Absent);
        assert_eq!(
            host.file(&tp("/etc/x/a.conf/below")).unwrap(),
            Observed::Absent
        );
        assert_eq!(host.list(&tp("/etc/x")).unwrap().unwrap(), ["a.conf"]);
        assert_eq!(host.list(&tp("/nope")).unwrap(), None);
        assert_eq!(host.meta(&tp("/etc/x")).unwrap().unwrap().kind, Kind::Dir);
    }

    #[test]
    fn a_directory_is_not_a_file() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc/x.conf")).unwrap();
        let err = RootFs::open(root.path())
            .unwrap()
            .file(&tp("/etc/x.conf"))
            .unwrap_err();
        assert_eq!(err.to_string(), "`/etc/x.conf` is not a regular file");
        let err = RootFs::open(root.path())
            .unwrap()
            .list(&tp("/etc"))
            .map(|_| ());
        assert!(err.is_ok());
    }
}
