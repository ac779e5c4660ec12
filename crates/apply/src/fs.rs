//! The filesystem seam for everything that changes the host. Every step of a
//! transaction (each write, fsync, chown, chmod, xattr, rename, unlink, mkdir)
//! is one call on [`Fs`], so tests can fail or crash at any single step.
//! Every step acts on a directory descriptor from the checked walk
//! ([`crate::safe_path`]) or on a file it opened, never on a path string.
//!
//! Reading is not a step: [`read_file`] reads through a directory
//! descriptor directly.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::UnlinkatFlags;
use serde::{Deserialize, Serialize};

use crate::safe_path::{Dir, MAX_FILE_BYTES};

/// One step that changes the filesystem.
pub trait Fs {
    /// Creates `name` in `dir` (never an existing file, never through a
    /// link) with mode 0600, writes `bytes` to it and returns it open.
    fn write_new(&self, dir: &Dir, name: &str, bytes: &[u8]) -> io::Result<File>;
    /// Flushes a file's data and metadata to disk (`shown` names it in logs).
    fn sync_file(&self, file: &File, shown: &Path) -> io::Result<()>;
    /// Sets a file's (or directory's) owner and group.
    fn set_owner(&self, file: &File, shown: &Path, uid: u32, gid: u32) -> io::Result<()>;
    /// Sets a file's (or directory's) permission bits.
    fn set_mode(&self, file: &File, shown: &Path, mode: u32) -> io::Result<()>;
    /// Sets one extended attribute.
    fn set_xattr(&self, file: &File, shown: &Path, name: &str, value: &[u8]) -> io::Result<()>;
    /// Renames `from` over `to`, both in `dir`, atomically.
    fn rename(&self, dir: &Dir, from: &str, to: &str) -> io::Result<()>;
    /// Flushes a directory (its entries) to disk.
    fn sync_dir(&self, dir: &Dir) -> io::Result<()>;
    /// Removes the file `name` from `dir`.
    fn remove_file(&self, dir: &Dir, name: &str) -> io::Result<()>;
    /// Creates the directory `name` in `dir`, mode 0700.
    fn create_dir(&self, dir: &Dir, name: &str) -> io::Result<()>;
    /// Removes the empty directory `name` from `dir`.
    fn remove_dir(&self, dir: &Dir, name: &str) -> io::Result<()>;
}

/// The real filesystem.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsFs;

impl Fs for OsFs {
    fn write_new(&self, dir: &Dir, name: &str, bytes: &[u8]) -> io::Result<File> {
        let fd = nix::fcntl::openat(
            dir.as_fd(),
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )?;
        let mut file = File::from(fd);
        file.write_all(bytes)?;
        Ok(file)
    }

    fn sync_file(&self, file: &File, _: &Path) -> io::Result<()> {
        file.sync_all()
    }

    fn set_owner(&self, file: &File, _: &Path, uid: u32, gid: u32) -> io::Result<()> {
        std::os::unix::fs::fchown(file, Some(uid), Some(gid))
    }

    fn set_mode(&self, file: &File, _: &Path, mode: u32) -> io::Result<()> {
        file.set_permissions(std::fs::Permissions::from_mode(mode))
    }

    fn set_xattr(&self, file: &File, _: &Path, name: &str, value: &[u8]) -> io::Result<()> {
        xattr::FileExt::set_xattr(file, name, value)
    }

    fn rename(&self, dir: &Dir, from: &str, to: &str) -> io::Result<()> {
        Ok(nix::fcntl::renameat(dir.as_fd(), from, dir.as_fd(), to)?)
    }

    fn sync_dir(&self, dir: &Dir) -> io::Result<()> {
        dir.reopen()?.sync_all()
    }

    fn remove_file(&self, dir: &Dir, name: &str) -> io::Result<()> {
        Ok(nix::unistd::unlinkat(
            dir.as_fd(),
            name,
            UnlinkatFlags::NoRemoveDir,
        )?)
    }

    fn create_dir(&self, dir: &Dir, name: &str) -> io::Result<()> {
        Ok(nix::sys::stat::mkdirat(
            dir.as_fd(),
            name,
            Mode::from_bits_truncate(0o700),
        )?)
    }

    fn remove_dir(&self, dir: &Dir, name: &str) -> io::Result<()> {
        Ok(nix::unistd::unlinkat(
            dir.as_fd(),
            name,
            UnlinkatFlags::RemoveDir,
        )?)
    }
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

/// The filesystem a run writes through. With the `test-hooks` feature (the
/// test build only; `cargo build --release` leaves it out) the
/// `GPU_SETUP_TEST_*` variables of `test_hooks` inject faults; a shipped
/// binary has no such code.
pub fn for_run() -> FaultyFs<OsFs> {
    #[cfg(feature = "test-hooks")]
    {
        test_hooks::from_env()
    }
    #[cfg(not(feature = "test-hooks"))]
    {
        FaultyFs::new(OsFs, None, None)
    }
}

/// How long `nvidia-ctk cdi generate` may run. With the `test-hooks`
/// feature, `GPU_SETUP_TEST_CTK_TIMEOUT_MS` shortens it (to test a hang).
pub fn nvidia_ctk_timeout(default: Duration) -> Duration {
    #[cfg(feature = "test-hooks")]
    {
        test_hooks::ctk_timeout().unwrap_or(default)
    }
    #[cfg(not(feature = "test-hooks"))]
    {
        default
    }
}

/// Test-only fault injection from the environment.
#[cfg(feature = "test-hooks")]
pub mod test_hooks {
    use std::time::Duration;

    use super::{Fault, FaultyFs, OsFs};

    /// Abort the process (like `kill -9`) before filesystem step N of a
    /// transaction, counting from 0.
    pub const GPU_SETUP_TEST_CRASH_AT: &str = "GPU_SETUP_TEST_CRASH_AT";
    /// Make filesystem step N fail with an I/O error.
    pub const GPU_SETUP_TEST_FAIL_AT: &str = "GPU_SETUP_TEST_FAIL_AT";
    /// Sleep this many milliseconds before every filesystem step.
    pub const GPU_SETUP_TEST_STEP_DELAY_MS: &str = "GPU_SETUP_TEST_STEP_DELAY_MS";

    /// How long `nvidia-ctk` may run, in milliseconds.
    pub const GPU_SETUP_TEST_CTK_TIMEOUT_MS: &str = "GPU_SETUP_TEST_CTK_TIMEOUT_MS";

    /// The time limit `GPU_SETUP_TEST_CTK_TIMEOUT_MS` asks for.
    pub fn ctk_timeout() -> Option<Duration> {
        std::env::var(GPU_SETUP_TEST_CTK_TIMEOUT_MS)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis)
    }

    /// The faults the variables ask for.
    pub fn from_env() -> FaultyFs<OsFs> {
        let number = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        let step = |name: &str| number(name).and_then(|n| usize::try_from(n).ok());
        let fault = step(GPU_SETUP_TEST_CRASH_AT)
            .map(Fault::CrashAt)
            .or_else(|| step(GPU_SETUP_TEST_FAIL_AT).map(Fault::FailAt));
        let delay = number(GPU_SETUP_TEST_STEP_DELAY_MS).map(Duration::from_millis);
        FaultyFs::new(OsFs, fault, delay)
    }
}

fn injected() -> io::Error {
    io::Error::other("injected test failure")
}

impl<F: Fs> Fs for FaultyFs<F> {
    fn write_new(&self, dir: &Dir, name: &str, bytes: &[u8]) -> io::Result<File> {
        self.step("write", &dir.child_real(name), || {
            self.inner.write_new(dir, name, bytes)
        })
    }
    fn sync_file(&self, file: &File, shown: &Path) -> io::Result<()> {
        self.step("fsync", shown, || self.inner.sync_file(file, shown))
    }
    fn set_owner(&self, file: &File, shown: &Path, uid: u32, gid: u32) -> io::Result<()> {
        self.step("chown", shown, || {
            self.inner.set_owner(file, shown, uid, gid)
        })
    }
    fn set_mode(&self, file: &File, shown: &Path, mode: u32) -> io::Result<()> {
        self.step("chmod", shown, || self.inner.set_mode(file, shown, mode))
    }
    fn set_xattr(&self, file: &File, shown: &Path, name: &str, value: &[u8]) -> io::Result<()> {
        self.step("setxattr", shown, || {
            self.inner.set_xattr(file, shown, name, value)
        })
    }
    fn rename(&self, dir: &Dir, from: &str, to: &str) -> io::Result<()> {
        self.step("rename", &dir.child_real(to), || {
            self.inner.rename(dir, from, to)
        })
    }
    fn sync_dir(&self, dir: &Dir) -> io::Result<()> {
        self.step("fsync-dir", dir.real(), || self.inner.sync_dir(dir))
    }
    fn remove_file(&self, dir: &Dir, name: &str) -> io::Result<()> {
        self.step("unlink", &dir.child_real(name), || {
            self.inner.remove_file(dir, name)
        })
    }
    fn create_dir(&self, dir: &Dir, name: &str) -> io::Result<()> {
        self.step("mkdir", &dir.child_real(name), || {
            self.inner.create_dir(dir, name)
        })
    }
    fn remove_dir(&self, dir: &Dir, name: &str) -> io::Result<()> {
        self.step("rmdir", &dir.child_real(name), || {
            self.inner.remove_dir(dir, name)
        })
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
        hex::decode(&self.hex).ok()
    }

    fn new(name: String, value: &[u8]) -> Self {
        Xattr {
            name,
            hex: hex::encode(value),
        }
    }
}

/// Mode, owner and extended attributes of a file: what a replacement keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attrs {
    /// Permission bits.
    pub mode: u32,
    /// The owning user (`st_uid`), restored with the content.
    pub uid: u32,
    /// The owning group (`st_gid`).
    pub gid: u32,
    /// Extended attributes, in the order listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<Xattr>,
}

/// A regular file as read from disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskFile {
    /// The file's bytes, read through its descriptor.
    pub bytes: Vec<u8>,
    /// Mode, owner, xattrs.
    pub attrs: Attrs,
}

/// Reads the regular file `name` in `dir` (not through a link) with its
/// mode, owner and extended attributes; `None` when nothing is there. A
/// link, directory or device is an error, as is a file larger than
/// [`MAX_FILE_BYTES`].
pub fn read_file(dir: &Dir, name: &str) -> io::Result<Option<DiskFile>> {
    let Some(opened) = dir.read(name, MAX_FILE_BYTES).map_err(|e| e.into_io())? else {
        return Ok(None);
    };
    let mut xattrs = Vec::new();
    if let Ok(names) = xattr::FileExt::list_xattr(&opened.file) {
        for name in names {
            let Some(name) = name.to_str().map(str::to_owned) else {
                continue;
            };
            if let Some(value) = xattr::FileExt::get_xattr(&opened.file, &name)? {
                xattrs.push(Xattr::new(name, &value));
            }
        }
    }
    Ok(Some(DiskFile {
        bytes: opened.bytes,
        attrs: Attrs {
            mode: opened.stat.st_mode & 0o7777,
            uid: opened.stat.st_uid,
            gid: opened.stat.st_gid,
            xattrs,
        },
    }))
}

/// Whether anything (even a dangling symlink) is at `name` in `dir`.
pub fn exists(dir: &Dir, name: &str) -> io::Result<bool> {
    Ok(dir.stat(name)?.is_some())
}

/// Whether `name` in `dir` is a directory (not through a link).
pub fn is_dir(dir: &Dir, name: &str) -> io::Result<bool> {
    Ok(dir
        .stat(name)?
        .is_some_and(|st| crate::safe_path::kind(&st) == nix::sys::stat::SFlag::S_IFDIR))
}
