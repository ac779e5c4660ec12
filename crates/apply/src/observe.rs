//! Observing the host: [`RootFs`] reads files under a root directory (`/` or
//! `--root`) for the planner, and never writes.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use gpu_setup_plan::{Kind, Meta, Observe, ObserveError, Observed, TargetPath};

/// The host as seen under `root`.
#[derive(Clone, Debug)]
pub struct RootFs {
    root: PathBuf,
}

impl RootFs {
    /// A view of the filesystem with `root` treated as `/`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `path` is under the root, symbolic links resolved inside it
    /// (so an absolute link never reaches the machine's own files).
    fn real(&self, path: &TargetPath) -> Result<PathBuf, ObserveError> {
        Ok(crate::safe_path::resolve_for_reading(&self.root, path)?.under(&self.root))
    }

    fn io(path: &TargetPath, source: std::io::Error) -> ObserveError {
        ObserveError::Io {
            path: path.clone(),
            source,
        }
    }
}

/// Whether an error means "nothing there" (including a parent that is a file).
fn is_missing(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

fn to_meta(m: &fs::Metadata) -> Meta {
    let ft = m.file_type();
    let kind = if ft.is_file() {
        Kind::File
    } else if ft.is_dir() {
        Kind::Dir
    } else {
        debug_assert!(
            ft.is_block_device() || ft.is_char_device() || ft.is_fifo() || ft.is_socket()
        );
        Kind::Other
    };
    Meta {
        kind,
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
    }
}

/// Reads a file, refusing a symbolic link (the path was just resolved; a
/// link here means it changed since).
fn read_nofollow(real: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut bytes = Vec::new();
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(real)?
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

impl Observe for RootFs {
    fn file(&self, path: &TargetPath) -> Result<Observed, ObserveError> {
        let real = self.real(path)?;
        let meta = match fs::symlink_metadata(&real) {
            Ok(m) => m,
            Err(e) if is_missing(&e) => return Ok(Observed::Absent),
            Err(e) => return Err(Self::io(path, e)),
        };
        if !meta.is_file() {
            return Err(ObserveError::NotAFile { path: path.clone() });
        }
        let bytes = read_nofollow(&real).map_err(|e| Self::io(path, e))?;
        tracing::debug!(path = %path, len = bytes.len(), "read");
        Ok(Observed::File {
            bytes,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        })
    }

    fn meta(&self, path: &TargetPath) -> Result<Option<Meta>, ObserveError> {
        match fs::symlink_metadata(self.real(path)?) {
            Ok(m) => Ok(Some(to_meta(&m))),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(Self::io(path, e)),
        }
    }

    fn resolve(&self, path: &TargetPath, follow_target: bool) -> Result<TargetPath, ObserveError> {
        crate::safe_path::resolve(&self.root, path, follow_target)
    }

    fn list(&self, dir: &TargetPath) -> Result<Option<Vec<String>>, ObserveError> {
        let entries = match fs::read_dir(self.real(dir)?) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == ErrorKind::NotADirectory => {
                return Err(ObserveError::NotADirectory { path: dir.clone() })
            }
            Err(e) => return Err(Self::io(dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Self::io(dir, e))?;
            match entry.file_name().into_string() {
                Ok(name) => names.push(name),
                Err(name) => tracing::debug!(dir = %dir, ?name, "skipping non-UTF-8 name"),
            }
        }
        names.sort();
        Ok(Some(names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(s: &str) -> TargetPath {
        TargetPath::new(s).unwrap()
    }

    #[test]
    fn reads_under_root_only() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc/x")).unwrap();
        fs::write(root.path().join("etc/x/a.conf"), "a = 1\n").unwrap();
        let host = RootFs::new(root.path());
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
        let err = RootFs::new(root.path())
            .file(&tp("/etc/x.conf"))
            .unwrap_err();
        assert_eq!(err.to_string(), "`/etc/x.conf` is not a regular file");
        let err = RootFs::new(root.path()).list(&tp("/etc")).map(|_| ());
        assert!(err.is_ok());
    }
}
