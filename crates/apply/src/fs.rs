//! The filesystem seam for everything that changes the host. Every step of a
//! transaction (each write, fsync, chown, chmod, xattr, rename, unlink, mkdir)
//! is one call on [`Fs`], so tests can fail or crash at any single step.
//!
//! Reading is not a step: [`read_file`] and [`read_dir`] read the real
//! filesystem directly.

use std::cell::Cell;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::OFlag;
use serde::{Deserialize, Serialize};

/// One step that changes the filesystem.
pub trait Fs {
    /// Creates a new file (never an existing one, never through a symlink)
    /// with mode 0600 and writes `bytes` to it.
    fn write_new(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Flushes a file's data and metadata to disk.
    fn sync_file(&self, path: &Path) -> io::Result<()>;
    /// Sets a file's owner and group (not following a symlink).
    fn set_owner(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()>;
    /// Sets a file's permission bits.
    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// Sets one extended attribute.
    fn set_xattr(&self, path: &Path, name: &str, value: &[u8]) -> io::Result<()>;
    /// Renames `from` over `to`, atomically.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Flushes a directory (its entries) to disk.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Creates one directory (its parent must exist).
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Removes an empty directory.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
}

/// The real filesystem.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsFs;

impl Fs for OsFs {
    fn write_new(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
            .open(path)?;
        file.write_all(bytes)
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        open_nofollow(path)?.sync_all()
    }

    fn set_owner(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
    }

    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        // Through a descriptor opened without following links: chmod(2)
        // follows them.
        open_nofollow(path)?.set_permissions(fs::Permissions::from_mode(mode))
    }

    fn set_xattr(&self, path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
        xattr::set(path, name, value)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        fs::DirBuilder::new().mode(0o700).create(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir(path)
    }
}

fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
        .open(path)
}

/// What the test hooks do at one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Step `n` (counting from 0) fails with an I/O error; later steps work.
    FailAt(usize),
    /// Step `n` and every later step fail (a disk that went away).
    FailFrom(usize),
    /// The process aborts before step `n`, like `kill -9`.
    CrashAt(usize),
}

/// An [`Fs`] that counts steps and can fail, crash or slow down at any of
/// them: the seam for failure and crash tests.
#[derive(Debug)]
pub struct FaultyFs<F: Fs> {
    inner: F,
    fault: Option<Fault>,
    delay: Option<Duration>,
    steps: Cell<usize>,
    log: std::cell::RefCell<Vec<String>>,
}

impl<F: Fs> FaultyFs<F> {
    /// Wraps `inner`.
    pub fn new(inner: F, fault: Option<Fault>, delay: Option<Duration>) -> Self {
        FaultyFs {
            inner,
            fault,
            delay,
            steps: Cell::new(0),
            log: Default::default(),
        }
    }

    /// How many steps have been attempted.
    pub fn steps(&self) -> usize {
        self.steps.get()
    }

    /// The steps attempted, as `name path`.
    pub fn log(&self) -> Vec<String> {
        self.log.borrow().clone()
    }

    fn step<T>(
        &self,
        name: &str,
        path: &Path,
        op: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        let n = self.steps.get();
        self.steps.set(n + 1);
        self.log
            .borrow_mut()
            .push(format!("{name} {}", path.display()));
        tracing::trace!("step {n}: {name} {}", path.display());
        if let Some(delay) = self.delay {
            std::thread::sleep(delay);
        }
        match self.fault {
            Some(Fault::CrashAt(at)) if at == n => {
                tracing::error!(step = n, name, path = %path.display(), "test crash");
                std::process::abort()
            }
            Some(Fault::FailAt(at)) if at == n => Err(injected()),
            Some(Fault::FailFrom(at)) if n >= at => Err(injected()),
            _ => op(),
        }
    }
}

fn injected() -> io::Error {
    io::Error::other("injected test failure")
}

impl<F: Fs> Fs for FaultyFs<F> {
    fn write_new(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.step("write", path, || self.inner.write_new(path, bytes))
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.step("fsync", path, || self.inner.sync_file(path))
    }
    fn set_owner(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        self.step("chown", path, || self.inner.set_owner(path, uid, gid))
    }
    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        self.step("chmod", path, || self.inner.set_mode(path, mode))
    }
    fn set_xattr(&self, path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
        self.step("setxattr", path, || self.inner.set_xattr(path, name, value))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.step("rename", to, || self.inner.rename(from, to))
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.step("fsync-dir", path, || self.inner.sync_dir(path))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.step("unlink", path, || self.inner.remove_file(path))
    }
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.step("mkdir", path, || self.inner.create_dir(path))
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.step("rmdir", path, || self.inner.remove_dir(path))
    }
}

/// One extended attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    /// Its name, e.g. `security.selinux`.
    pub name: String,
    /// Its value, as lowercase hex (values are bytes).
    pub hex: String,
}

impl Xattr {
    /// The value's bytes; `None` if the hex is malformed.
    pub fn value(&self) -> Option<Vec<u8>> {
        if self.hex.len() % 2 != 0 {
            return None;
        }
        (0..self.hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(self.hex.get(i..i + 2)?, 16).ok())
            .collect()
    }

    fn new(name: String, value: &[u8]) -> Self {
        let hex = value.iter().map(|b| format!("{b:02x}")).collect();
        Xattr { name, hex }
    }
}

/// Mode, owner and extended attributes of a file: what a replacement keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attrs {
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Extended attributes, in the order listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<Xattr>,
}

/// A regular file as read from disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskFile {
    /// Content.
    pub bytes: Vec<u8>,
    /// Mode, owner, xattrs.
    pub attrs: Attrs,
}

/// Reads a regular file without following a final symlink; `None` when
/// nothing is there. A symlink, directory or device is an error.
pub fn read_file(path: &Path) -> io::Result<Option<DiskFile>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    if !meta.is_file() {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            if meta.file_type().is_symlink() {
                "is a symbolic link"
            } else {
                "is not a regular file"
            },
        ));
    }
    let bytes = fs::read(path)?;
    let mut xattrs = Vec::new();
    if let Ok(names) = xattr::list(path) {
        for name in names {
            let Some(name) = name.to_str().map(str::to_owned) else {
                continue;
            };
            if let Some(value) = xattr::get(path, &name)? {
                xattrs.push(Xattr::new(name, &value));
            }
        }
    }
    Ok(Some(DiskFile {
        bytes,
        attrs: Attrs {
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            xattrs,
        },
    }))
}

/// Whether something (anything, even a dangling symlink) exists at `path`.
pub fn exists(path: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Names in a directory, sorted; `None` when it does not exist.
pub fn read_dir(path: &Path) -> io::Result<Option<Vec<PathBuf>>> {
    let entries = match fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        out.push(entry?.path());
    }
    // By bytes: every entry has the same parent, and comparing paths
    // component by component costs far more (it shows in a long journal).
    out.sort_unstable_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
    Ok(Some(out))
}
