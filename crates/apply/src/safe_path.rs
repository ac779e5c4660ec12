//! Resolving paths under the root once, into directory file descriptors.
//!
//! [`Root`] opens the root directory once. [`Root::resolve`] walks a path
//! from it one name at a time with `openat(O_PATH | O_NOFOLLOW |
//! O_DIRECTORY)`, looking at every name with `fstatat(AT_SYMLINK_NOFOLLOW)`,
//! and returns a [`Walked`]: the descriptor of the deepest directory that
//! exists, the names still to create below it, and the final name. Every
//! later read, write, rename and unlink happens relative to that
//! descriptor (the `*at` system calls), never on a path string: a directory
//! swapped after the walk cannot redirect a write (systemd's `chase()` does
//! the same; `openat2(RESOLVE_IN_ROOT)` is not used because it cannot check
//! owners on the way, and this walk works on every kernel).
//!
//! A symbolic link is resolved as the host would see it: an absolute target
//! starts again at the root (never at the machine's `/`), and `..` may not
//! climb above the root. For files gpu-setup writes (strict walk), every
//! directory on the way, the root included, and every link must be owned by
//! root or the user running gpu-setup, and no directory may be writable by
//! group or others; a link at the managed file itself is followed only with
//! `--follow-symlinks`, and the file it leads to must pass the same owner
//! test. docs/security.md states these rules with their tests.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gpu_setup_plan::{ObserveError, TargetPath};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};

/// Links followed before giving up (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// The largest file gpu-setup reads (docs/security.md): the managed files,
/// the containers.conf files, hooks and CDI specs Podman reads, journal
/// copies. A larger file is refused with a clear error instead of being
/// parsed into hundreds of megabytes of memory.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// An open directory, with the path it has as the host sees it (for
/// messages and logs only: access goes through the descriptor).
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    shown: TargetPath,
    real: PathBuf,
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Dir {
    /// The directory as the host sees it (`/etc/containers`).
    pub fn shown(&self) -> &TargetPath {
        &self.shown
    }

    /// Where it was on the machine when it was opened (for messages).
    pub fn real(&self) -> &Path {
        &self.real
    }

    /// A second descriptor of the same directory.
    pub fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.fd.try_clone()?,
            shown: self.shown.clone(),
            real: self.real.clone(),
        })
    }

    /// `name` in this directory as the host sees it.
    pub fn child(&self, name: &str) -> TargetPath {
        self.shown.join(name).unwrap_or_else(|_| self.shown.clone())
    }

    /// `name` in this directory on the machine (for messages and logs).
    pub fn child_real(&self, name: &str) -> PathBuf {
        self.real.join(name)
    }

    /// Opens the directory `name` in this one, not following a link.
    pub fn open_dir(&self, name: &str) -> io::Result<Dir> {
        let fd = nix::fcntl::openat(
            self.as_fd(),
            name,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Dir {
            fd,
            shown: self.child(name),
            real: self.child_real(name),
        })
    }

    /// The directory opened for reading (to fsync it, change its mode or
    /// owner, or list it).
    pub fn reopen(&self) -> io::Result<File> {
        let fd = nix::fcntl::openat(
            self.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(File::from(fd))
    }

    /// The directory's own status.
    pub fn stat_self(&self) -> io::Result<FileStat> {
        Ok(fstat(self.as_fd())?)
    }

    /// The status of `name` (a link is not followed); `None` when nothing
    /// is there.
    pub fn stat(&self, name: &str) -> io::Result<Option<FileStat>> {
        match fstatat(self.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Names in the directory (without `.` and `..`), sorted by bytes.
    /// Names that are not UTF-8 are skipped: gpu-setup never manages them.
    pub fn names(&self) -> io::Result<Vec<String>> {
        let fd = nix::fcntl::openat(
            self.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let mut dir = nix::dir::Dir::from_fd(fd)?;
        let mut out = Vec::new();
        for entry in dir.iter() {
            let entry = entry?;
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name != "." && name != ".." {
                out.push(name.to_owned());
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Reads the regular file `name` (not through a link), at most `limit`
    /// bytes; `None` when it does not exist. Opened without blocking (a
    /// FIFO would hang), checked to be a regular file not on a kernel
    /// filesystem (procfs, sysfs: a file there can be endless), read from
    /// the same descriptor.
    pub fn read(&self, name: &str, limit: u64) -> Result<Option<OpenedFile>, ReadError> {
        let Some((fd, stat)) = self.open_for_reading(name)? else {
            return Ok(None);
        };
        if kind(&stat) != SFlag::S_IFREG {
            return Err(if kind(&stat) == SFlag::S_IFDIR {
                ReadError::Directory
            } else {
                ReadError::NotRegular
            });
        }
        if let Some(fs) = kernel_filesystem(&fd) {
            return Err(ReadError::Kernel(fs));
        }
        let size = u64::try_from(stat.st_size).unwrap_or(u64::MAX);
        if size > limit {
            return Err(ReadError::TooLarge { size, limit });
        }
        let file = File::from(fd);
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        (&file)
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(ReadError::Io)?;
        if bytes.len() as u64 > limit {
            return Err(ReadError::TooLarge {
                size: bytes.len() as u64,
                limit,
            });
        }
        Ok(Some(OpenedFile { file, stat, bytes }))
    }
}

impl Dir {
    /// Opens `name` for reading, not through a link and without blocking
    /// (a FIFO would hang), with its status; `None` when it does not exist.
    fn open_for_reading(&self, name: &str) -> Result<Option<(OwnedFd, FileStat)>, ReadError> {
        let fd = match nix::fcntl::openat(
            self.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => return Err(ReadError::Link),
            Err(e) => return Err(ReadError::Io(e.into())),
        };
        let stat = fstat(&fd).map_err(|e| ReadError::Io(e.into()))?;
        Ok(Some((fd, stat)))
    }

    /// Reads a small file that may live on a kernel filesystem (a cgroup
    /// interface file), not through a link, without blocking, at most
    /// `limit` bytes (the rest is not read); `None` when it does not exist.
    pub fn read_kernel(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, ReadError> {
        let Some((fd, stat)) = self.open_for_reading(name)? else {
            return Ok(None);
        };
        if kind(&stat) != SFlag::S_IFREG {
            return Err(ReadError::NotRegular);
        }
        let mut bytes = Vec::new();
        File::from(fd)
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(ReadError::Io)?;
        Ok(Some(bytes))
    }
}

/// A file read by [`Dir::read`]: its descriptor, status and content.
#[derive(Debug)]
pub struct OpenedFile {
    /// The open file (for its extended attributes).
    pub file: File,
    /// Its status when opened.
    pub stat: FileStat,
    /// Its content.
    pub bytes: Vec<u8>,
}

/// Why a file could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The operating system's error.
    Io(io::Error),
    /// It is a directory.
    Directory,
    /// It is a device, FIFO or socket.
    NotRegular,
    /// It became a symbolic link after it was resolved.
    Link,
    /// It lives on a kernel filesystem.
    Kernel(&'static str),
    /// It is larger than gpu-setup reads.
    TooLarge {
        /// Its size (or what was read of it).
        size: u64,
        /// The limit.
        limit: u64,
    },
}

impl ReadError {
    /// The error as an observation error about `path`.
    pub fn observe(self, path: &TargetPath) -> ObserveError {
        let refused = |message: String, hint: &str| ObserveError::Unsafe {
            path: path.clone(),
            message,
            hint: hint.to_owned(),
        };
        match self {
            ReadError::Io(source) => ObserveError::Io {
                path: path.clone(),
                source,
            },
            ReadError::Directory | ReadError::NotRegular => {
                ObserveError::NotAFile { path: path.clone() }
            }
            ReadError::Link => refused(
                format!("`{path}` became a symbolic link while gpu-setup was reading it"),
                "run gpu-setup again; if it happens again, find who changes the file",
            ),
            ReadError::Kernel(fs) => refused(
                format!("`{path}` is on {fs}, a kernel interface, not a configuration file"),
                "point the path (or the link to it) at a regular file",
            ),
            ReadError::TooLarge { size, limit } => ObserveError::TooLarge {
                path: path.clone(),
                size,
                limit,
            },
        }
    }

    /// The error as an I/O error (for the journal's own files).
    pub fn into_io(self) -> io::Error {
        match self {
            ReadError::Io(e) => e,
            ReadError::Directory => io::Error::other("is a directory"),
            ReadError::NotRegular => io::Error::other("is not a regular file"),
            ReadError::Link => io::Error::other("is a symbolic link"),
            ReadError::Kernel(fs) => io::Error::other(format!("is on {fs}")),
            ReadError::TooLarge { size, limit } => io::Error::other(format!(
                "is {size} bytes, more than the {limit} bytes gpu-setup reads"
            )),
        }
    }
}

/// The kernel filesystem a descriptor is on, if it is one whose files are
/// not configuration (and can be endless, such as `/proc/kmsg`).
fn kernel_filesystem(fd: &OwnedFd) -> Option<&'static str> {
    use nix::sys::statfs::{self, fstatfs};
    let fs = fstatfs(fd).ok()?.filesystem_type();
    [
        (statfs::PROC_SUPER_MAGIC, "procfs"),
        (statfs::SYSFS_MAGIC, "sysfs"),
        (statfs::DEBUGFS_MAGIC, "debugfs"),
        (statfs::SECURITYFS_MAGIC, "securityfs"),
        (statfs::CGROUP_SUPER_MAGIC, "cgroupfs"),
        (statfs::CGROUP2_SUPER_MAGIC, "cgroup2fs"),
        (statfs::TRACEFS_MAGIC, "tracefs"),
    ]
    .into_iter()
    .find(|(magic, _)| *magic == fs)
    .map(|(_, name)| name)
}

pub use crate::trust::trusted_uids;

/// The root directory, opened once. Clones share the descriptor.
#[derive(Clone, Debug)]
pub struct Root {
    inner: Arc<RootInner>,
}

#[derive(Debug)]
struct RootInner {
    dir: Dir,
    path: PathBuf,
    trusted: [u32; 2],
    /// Whether the root is the machine's own `/` (same device and inode).
    real_root: bool,
}

impl Root {
    /// Opens `path` as the root (a link to it is followed: the admin named
    /// it). Nothing is checked yet: [`Root::resolve`] checks the root
    /// before anything is written under it.
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Self::from_fd(fd, path, path)
    }

    /// Opens `path` as the root by the trusted walk ([`crate::trust`]):
    /// every directory from `/` down to it, and the root itself, owned by
    /// root or the caller and not writable by others (a sticky directory
    /// above it, like /tmp, is fine), links only when root or the caller
    /// owns them. A root that resolves to the machine's `/` is the real
    /// root, whatever path named it.
    pub fn open_checked(path: &Path) -> Result<Root, crate::trust::TrustError> {
        let walked = crate::trust::open_dir(path)?;
        // Paths under the root are shown relative to the path as given.
        Self::from_fd(walked.fd, path, path).map_err(|source| crate::trust::TrustError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    fn from_fd(fd: std::os::fd::OwnedFd, path: &Path, real: &Path) -> io::Result<Root> {
        let shown = TargetPath::new("/").map_err(io::Error::other)?;
        let st = fstat(fd.as_fd())?;
        let slash = nix::sys::stat::stat("/")?;
        let real_root = (st.st_dev, st.st_ino) == (slash.st_dev, slash.st_ino);
        Ok(Root {
            inner: Arc::new(RootInner {
                dir: Dir {
                    fd,
                    shown,
                    real: real.to_path_buf(),
                },
                path: path.to_path_buf(),
                trusted: trusted_uids(),
                real_root,
            }),
        })
    }

    /// Whether this root is the machine's own `/`: the environment then
    /// describes it, programs can be asked, and undoing touches the host.
    pub fn is_real_root(&self) -> bool {
        self.inner.real_root
    }

    /// The root as given.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The root directory.
    pub fn dir(&self) -> &Dir {
        &self.inner.dir
    }

    /// The users whose files are trusted.
    pub fn trusted(&self) -> [u32; 2] {
        self.inner.trusted
    }

    /// Shows a path on the machine as the host sees it (paths outside the
    /// root as they are).
    pub fn show(&self, real: &Path) -> String {
        match real.strip_prefix(self.path()) {
            Ok(rest) => format!("/{}", rest.display()),
            Err(_) => real.display().to_string(),
        }
    }

    /// Resolves a path gpu-setup writes (the strict walk, see the module
    /// docs); `follow_target` allows the final name to be a link.
    pub fn resolve(&self, path: &TargetPath, follow_target: bool) -> Result<Walked, ObserveError> {
        Walk {
            root: self,
            asked: path,
            strict: true,
        }
        .run(follow_target)
    }

    /// Resolves a path gpu-setup only reads, as a process chrooted at the
    /// root would: every link followed, absolute targets start at the
    /// root, `..` stops at the root. Refuses nothing but loops.
    pub fn resolve_for_reading(&self, path: &TargetPath) -> Result<Walked, ObserveError> {
        Walk {
            root: self,
            asked: path,
            strict: false,
        }
        .run(true)
    }
}

/// Where a path leads: the deepest directory on it that exists, the
/// directories still missing below that, and the final name.
#[derive(Debug)]
pub struct Walked {
    /// The deepest existing directory (the parent when nothing is missing).
    pub dir: Dir,
    /// Directories to create below `dir`, outermost first.
    pub missing: Vec<String>,
    /// The final name (`.` for the root itself).
    pub name: String,
    /// The real path as the host sees it (links resolved).
    pub path: TargetPath,
}

impl Walked {
    /// The parent directory, when it exists.
    pub fn parent(&self) -> Option<&Dir> {
        self.missing.is_empty().then_some(&self.dir)
    }
}

struct Walk<'a> {
    root: &'a Root,
    asked: &'a TargetPath,
    strict: bool,
}

/// A link whose target is being walked: the directories reached through
/// it are reported under its name.
struct Through {
    /// The walk is inside the link's target until the queue is down to
    /// this many names.
    rest: usize,
    link: String,
    to: String,
}

/// Where a walk is: the mutable part, which each step advances.
struct State {
    /// The directories from the root to the current one, opened.
    dirs: Vec<Dir>,
    /// The names still to walk (a link's target is pushed in front).
    todo: VecDeque<String>,
    /// The names walked, as shown in messages.
    done: Vec<String>,
    /// The links whose targets are being walked, innermost last.
    through: Vec<Through>,
    /// How many links were followed.
    links: usize,
    /// The last link followed and its target (for a `..` out of the root).
    last_link: Option<(String, String)>,
}

/// What a step leads to.
enum Step {
    /// On to the next name.
    Next,
    /// The walk is over.
    Done(Walked),
}

impl Walk<'_> {
    /// Walks the path one name at a time; each kind of name has its own
    /// step.
    fn run(&self, follow_target: bool) -> Result<Walked, ObserveError> {
        let root = self.root.dir();
        let mut st = State {
            dirs: vec![root.try_clone().map_err(|e| self.io(self.asked, e))?],
            todo: names(self.asked.as_str()).collect(),
            done: Vec::new(),
            through: Vec::new(),
            links: 0,
            last_link: None,
        };
        if self.strict {
            self.check_dir(root, None)?;
        }
        while let Some(name) = st.todo.pop_front() {
            // Links whose target the walk has left behind.
            let left = st.todo.len();
            st.through.retain(|t| left >= t.rest);
            let step = if name == ".." {
                self.parent_step(&mut st)?
            } else {
                self.name_step(&mut st, name, follow_target)?
            };
            if let Step::Done(walked) = step {
                return Ok(walked);
            }
        }
        self.finish_at_dir(st.dirs, st.done)
    }

    /// `..`: back to the parent (only link targets hold `..`; the root has
    /// no parent here).
    fn parent_step(&self, st: &mut State) -> Result<Step, ObserveError> {
        if st.done.pop().is_none() {
            if !self.strict {
                return Ok(Step::Next); // `/..` is `/`
            }
            let link = st.last_link.as_ref();
            return Err(self.outside(link.map(|(l, t)| (&l[..], &t[..]))));
        }
        st.dirs.pop();
        if st.todo.is_empty() {
            // The path ends at a directory reached by `..`.
            let (dirs, done) = (std::mem::take(&mut st.dirs), std::mem::take(&mut st.done));
            return self.finish_at_dir(dirs, done).map(Step::Done);
        }
        Ok(Step::Next)
    }

    /// A name in the current directory: missing, a link, a directory on
    /// the way, or where the walk ends.
    fn name_step(
        &self,
        st: &mut State,
        name: String,
        follow_target: bool,
    ) -> Result<Step, ObserveError> {
        let cur = st
            .dirs
            .last()
            .ok_or_else(|| self.io(self.asked, Errno::EINVAL.into()))?;
        let stat = match fstatat(cur.as_fd(), name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            // The rest does not exist yet: gpu-setup creates it as real
            // directories.
            Err(Errno::ENOENT) => return self.end(st, name).map(Step::Done),
            Err(e) => return Err(self.io(&self.shown(&st.done, &[], &name), e.into())),
        };
        match kind(&stat) {
            SFlag::S_IFLNK => self.link_step(st, name, &stat, follow_target),
            SFlag::S_IFDIR if !st.todo.is_empty() => {
                let dir = cur
                    .open_dir(&name)
                    .map_err(|e| self.io(&self.shown(&st.done, &[], &name), e))?;
                if self.strict {
                    let via = st.through.last().map(|t| (t, st.todo.len() == t.rest));
                    self.check_dir(&dir, via)?;
                }
                st.dirs.push(dir);
                st.done.push(name);
                Ok(Step::Next)
            }
            _ => {
                // The final name (a file, a directory, a device), or a
                // parent that is a file (reading it reports that).
                if self.strict && st.todo.is_empty() {
                    self.check_reached_through_link(st, &stat)?;
                }
                self.end(st, name).map(Step::Done)
            }
        }
    }

    /// A symbolic link: refused where the rules say so, else its target's
    /// names go in front of the rest.
    fn link_step(
        &self,
        st: &mut State,
        name: String,
        stat: &FileStat,
        follow_target: bool,
    ) -> Result<Step, ObserveError> {
        let last = st.todo.is_empty();
        st.links += 1;
        let link = self.shown(&st.done, &[], &name);
        let cur = st
            .dirs
            .last()
            .ok_or_else(|| self.io(self.asked, Errno::EINVAL.into()))?;
        let to = nix::fcntl::readlinkat(cur.as_fd(), name.as_str())
            .map_err(|e| self.io(&link, e.into()))?;
        let to = to.into_string().map_err(|to| {
            unsafe_path(
                &link,
                format!("`{link}` is a symbolic link to a name that is not UTF-8 ({to:?})"),
                "replace the link with a real file or directory",
            )
        })?;
        if last && !follow_target {
            return Err(unsafe_path(
                &link,
                format!("`{link}` is a symbolic link (to `{to}`): gpu-setup does not write through links by default"),
                "replace the link with the file it points to, or pass --follow-symlinks to write through a link that stays inside the root",
            ));
        }
        if st.links > MAX_LINKS {
            return Err(unsafe_path(
                &link,
                format!("too many levels of symbolic links at `{link}`"),
                "remove the link loop",
            ));
        }
        if self.strict && !self.root.trusted().contains(&stat.st_uid) {
            return Err(unsafe_path(
                &link,
                format!("`{link}` is a symbolic link (to `{to}`) owned by user {}, not root: another user could point it anywhere", stat.st_uid),
                "replace the link with a real directory or file owned by root",
            ));
        }
        st.last_link = Some((link.to_string(), to.clone()));
        let rest = st.todo.len();
        if to.starts_with('/') {
            st.done.clear();
            st.dirs.truncate(1);
        }
        for n in names(&to).collect::<Vec<_>>().into_iter().rev() {
            st.todo.push_front(n);
        }
        st.through.push(Through {
            rest,
            link: link.to_string(),
            to,
        });
        if st.todo.len() == rest {
            // A link to `/` (or to nothing): its target is the current
            // directory, checked already.
            st.through.pop();
            if last {
                let (dirs, done) = (std::mem::take(&mut st.dirs), std::mem::take(&mut st.done));
                return self.finish_at_dir(dirs, done).map(Step::Done);
            }
        }
        Ok(Step::Next)
    }

    /// A file reached through a link must be as trusted as the link.
    fn check_reached_through_link(&self, st: &State, stat: &FileStat) -> Result<(), ObserveError> {
        let Some(t) = st.through.last() else {
            return Ok(());
        };
        if self.root.trusted().contains(&stat.st_uid) {
            return Ok(());
        }
        Err(unsafe_path(
            &TargetPath::new(&t.link).unwrap_or_else(|_| self.asked.clone()),
            format!(
                "`{}` is a symbolic link to `{}`, which is owned by user {}, not root",
                t.link, t.to, stat.st_uid
            ),
            "replace the link with the file it points to, owned by root",
        ))
    }

    /// The walk ends at `name` in the current directory, with the names
    /// left (which do not exist yet, or lie under a file) as missing
    /// directories before the last.
    fn end(&self, st: &mut State, name: String) -> Result<Walked, ObserveError> {
        let mut missing: Vec<String> = vec![name];
        missing.extend(st.todo.drain(..));
        let file = missing.pop().unwrap_or_default();
        let path = self.shown(&st.done, &missing, &file);
        let dir = st
            .dirs
            .pop()
            .ok_or_else(|| self.io(self.asked, Errno::EINVAL.into()))?;
        Ok(Walked {
            dir,
            missing,
            name: file,
            path,
        })
    }

    /// The walk ended on a directory (the root, or a link to a directory):
    /// its parent and its name.
    fn finish_at_dir(
        &self,
        mut dirs: Vec<Dir>,
        mut done: Vec<String>,
    ) -> Result<Walked, ObserveError> {
        match done.pop() {
            None => {
                let dir = dirs
                    .pop()
                    .ok_or_else(|| self.io(self.asked, Errno::EINVAL.into()))?;
                Ok(Walked {
                    dir,
                    missing: Vec::new(),
                    name: ".".to_owned(),
                    path: self.shown(&[], &[], ""),
                })
            }
            Some(name) => {
                dirs.pop();
                let dir = dirs
                    .pop()
                    .ok_or_else(|| self.io(self.asked, Errno::EINVAL.into()))?;
                let path = self.shown(&done, &[], &name);
                Ok(Walked {
                    dir,
                    missing: Vec::new(),
                    name,
                    path,
                })
            }
        }
    }

    /// A directory on a path gpu-setup writes must be owned by a trusted
    /// user and not writable by group or others.
    /// `via`: the link whose target is being walked, and whether `dir` is
    /// where that target ends.
    fn check_dir(&self, dir: &Dir, via: Option<(&Through, bool)>) -> Result<(), ObserveError> {
        let st = dir.stat_self().map_err(|e| self.io(dir.shown(), e))?;
        let mode = st.st_mode & 0o7777;
        let problem = if !self.root.trusted().contains(&st.st_uid) {
            Some((format!("owned by user {}, not root", st.st_uid), false))
        } else if mode & 0o022 != 0 {
            Some((
                format!("writable by group or others (mode {mode:04o})"),
                true,
            ))
        } else {
            None
        };
        let Some((problem, writable)) = problem else {
            return Ok(());
        };
        if let Some((t, end)) = via {
            let link = TargetPath::new(&t.link).unwrap_or_else(|_| self.asked.clone());
            let message = if end {
                format!(
                    "`{}` is a symbolic link to `{}`, a directory {problem}",
                    t.link, t.to
                )
            } else {
                format!(
                    "`{}` is a symbolic link to `{}`, which leads through `{}`, a directory {problem}",
                    t.link,
                    t.to,
                    dir.shown()
                )
            };
            return Err(unsafe_path(
                &link,
                message,
                if writable {
                    "make the directory writable by its owner only (chmod go-w), or replace the link with a real directory"
                } else {
                    "replace the link with a real directory owned by root"
                },
            ));
        }
        let shown = dir.shown();
        let what = if shown.as_str() == "/" {
            format!("the root `{}`", self.root.path().display())
        } else {
            format!("`{shown}`")
        };
        Err(unsafe_path(
            shown,
            format!("{what} is a directory {problem}: another user could swap the files gpu-setup writes in it"),
            if writable {
                "make the directory writable by its owner only (chmod go-w)"
            } else {
                "make root own the directory (chown root:root), or choose a path in a directory root owns"
            },
        ))
    }

    fn shown(&self, done: &[String], missing: &[String], last: &str) -> TargetPath {
        let mut s = String::new();
        for n in done
            .iter()
            .chain(missing)
            .map(String::as_str)
            .chain(Some(last).filter(|l| !l.is_empty()))
        {
            s.push('/');
            s.push_str(n);
        }
        if s.is_empty() {
            s.push('/');
        }
        TargetPath::new(&s).unwrap_or_else(|_| self.asked.clone())
    }

    fn outside(&self, link: Option<(&str, &str)>) -> ObserveError {
        let (link, to) = link.unwrap_or((self.asked.as_str(), ""));
        let path = TargetPath::new(link).unwrap_or_else(|_| self.asked.clone());
        unsafe_path(
            &path,
            format!("`{link}` is a symbolic link to `{to}`, which leads outside the root"),
            "gpu-setup writes only inside the root: replace the link with a real file or directory",
        )
    }

    fn io(&self, path: &TargetPath, source: io::Error) -> ObserveError {
        ObserveError::Io {
            path: path.clone(),
            source,
        }
    }
}

fn unsafe_path(path: &TargetPath, message: String, hint: &str) -> ObserveError {
    ObserveError::Unsafe {
        path: path.clone(),
        message,
        hint: hint.to_owned(),
    }
}

/// The file type bits of a status.
pub fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

fn names(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split('/')
        .filter(|n| !n.is_empty() && *n != ".")
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn tp(s: &str) -> TargetPath {
        TargetPath::new(s).unwrap()
    }

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("etc/real")).unwrap();
        fs::write(t.path().join("etc/real/a.conf"), "a").unwrap();
        t
    }

    fn resolve(root: &Path, p: &TargetPath, follow: bool) -> Result<TargetPath, ObserveError> {
        Root::open(root).unwrap().resolve(p, follow).map(|w| w.path)
    }

    fn message(e: ObserveError) -> String {
        e.to_string()
    }

    #[test]
    fn plain_paths_resolve_to_themselves() {
        let t = tree();
        for p in [
            "/etc/real/a.conf",
            "/etc/real/missing",
            "/etc/new/dir/x.json",
        ] {
            assert_eq!(resolve(t.path(), &tp(p), false).unwrap(), tp(p));
        }
        let root = Root::open(t.path()).unwrap();
        let w = root.resolve(&tp("/etc/new/dir/x.json"), false).unwrap();
        assert_eq!(
            (w.dir.shown().as_str(), &w.missing[..], &w.name[..]),
            ("/etc", &["new".to_owned(), "dir".to_owned()][..], "x.json")
        );
        let w = root.resolve(&tp("/etc/real/a.conf"), false).unwrap();
        assert_eq!(w.parent().unwrap().shown().as_str(), "/etc/real");
        let w = root.resolve(&tp("/"), false).unwrap();
        assert_eq!((w.name.as_str(), w.path.as_str()), (".", "/"));
    }

    #[test]
    fn a_parent_link_inside_the_root_is_followed() {
        let t = tree();
        symlink("real", t.path().join("etc/rel")).unwrap();
        symlink("/etc/real", t.path().join("etc/abs")).unwrap();
        for link in ["/etc/rel/a.conf", "/etc/abs/a.conf", "/etc/abs/new.conf"] {
            let got = resolve(t.path(), &tp(link), false).unwrap();
            assert!(got.as_str().starts_with("/etc/real/"), "{link} -> {got}");
        }
    }

    #[test]
    fn a_parent_link_out_of_the_root_is_refused() {
        let t = tree();
        symlink("../../../..", t.path().join("etc/up")).unwrap();
        let e = message(resolve(t.path(), &tp("/etc/up/a.conf"), false).unwrap_err());
        assert_eq!(
            e,
            "`/etc/up` is a symbolic link to `../../../..`, which leads outside the root"
        );
    }

    #[test]
    fn a_parent_link_to_a_writable_directory_is_refused() {
        let t = tree();
        fs::create_dir(t.path().join("tmp")).unwrap();
        fs::set_permissions(t.path().join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        symlink("/tmp", t.path().join("etc/containers")).unwrap();
        let e = message(resolve(t.path(), &tp("/etc/containers/x.conf"), false).unwrap_err());
        assert_eq!(
            e,
            "`/etc/containers` is a symbolic link to `/tmp`, a directory writable by group or others (mode 1777)"
        );
    }

    #[test]
    fn a_real_writable_directory_on_the_way_is_refused() {
        let t = tree();
        fs::set_permissions(t.path().join("etc/real"), fs::Permissions::from_mode(0o777)).unwrap();
        let e = message(resolve(t.path(), &tp("/etc/real/a.conf"), false).unwrap_err());
        assert_eq!(
            e,
            "`/etc/real` is a directory writable by group or others (mode 0777): another user could swap the files gpu-setup writes in it"
        );
        // Reading is not refused.
        let root = Root::open(t.path()).unwrap();
        assert!(root.resolve_for_reading(&tp("/etc/real/a.conf")).is_ok());
    }

    #[test]
    fn a_writable_root_is_refused() {
        let t = tree();
        fs::set_permissions(t.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let e = message(resolve(t.path(), &tp("/etc/real/a.conf"), false).unwrap_err());
        assert!(e.starts_with("the root `"), "{e}");
        assert!(
            e.contains("is a directory writable by group or others (mode 0777)"),
            "{e}"
        );
    }

    #[test]
    fn a_link_at_the_target_is_refused_unless_followed() {
        let t = tree();
        symlink("real/a.conf", t.path().join("etc/a.conf")).unwrap();
        let e = message(resolve(t.path(), &tp("/etc/a.conf"), false).unwrap_err());
        assert!(
            e.starts_with("`/etc/a.conf` is a symbolic link (to `real/a.conf`)"),
            "{e}"
        );
        assert_eq!(
            resolve(t.path(), &tp("/etc/a.conf"), true).unwrap(),
            tp("/etc/real/a.conf")
        );
        symlink("/../../etc/passwd", t.path().join("etc/b.conf")).unwrap();
        let e = message(resolve(t.path(), &tp("/etc/b.conf"), true).unwrap_err());
        assert!(e.contains("leads outside the root"), "{e}");
    }

    #[test]
    fn link_loops_stop() {
        let t = tree();
        symlink("loop2", t.path().join("etc/loop1")).unwrap();
        symlink("loop1", t.path().join("etc/loop2")).unwrap();
        let e = message(resolve(t.path(), &tp("/etc/loop1/a"), false).unwrap_err());
        assert!(e.starts_with("too many levels of symbolic links"), "{e}");
    }

    #[test]
    fn a_link_to_a_name_that_is_not_utf8_is_refused() {
        use std::os::unix::ffi::OsStrExt;
        let t = tree();
        symlink(
            std::ffi::OsStr::from_bytes(b"real\xff"),
            t.path().join("etc/odd"),
        )
        .unwrap();
        let e = message(resolve(t.path(), &tp("/etc/odd/a.conf"), false).unwrap_err());
        assert!(
            e.starts_with("`/etc/odd` is a symbolic link to a name that is not UTF-8"),
            "{e}"
        );
    }

    #[test]
    fn reads_are_bounded_and_refuse_what_is_not_a_regular_file() {
        let t = tree();
        let root = Root::open(t.path()).unwrap();
        let etc = root.resolve(&tp("/etc/real/a.conf"), false).unwrap();
        let dir = etc.parent().unwrap();
        assert_eq!(dir.read("a.conf", 10).unwrap().unwrap().bytes, b"a");
        assert!(dir.read("missing", 10).unwrap().is_none());
        fs::write(t.path().join("etc/real/big"), vec![b'x'; 11]).unwrap();
        assert!(matches!(
            dir.read("big", 10),
            Err(ReadError::TooLarge {
                size: 11,
                limit: 10
            })
        ));
        nix::unistd::mkfifo(
            &t.path().join("etc/real/fifo"),
            Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        // A FIFO is refused at once, not waited on.
        assert!(matches!(dir.read("fifo", 10), Err(ReadError::NotRegular)));
        symlink("a.conf", t.path().join("etc/real/link")).unwrap();
        assert!(matches!(dir.read("link", 10), Err(ReadError::Link)));
    }
}
