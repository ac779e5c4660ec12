//! One trusted walk on the running system, from `/`, for the paths gpu-setup
//! acts on that are not under `--root`: `--root` itself, and the directory
//! of a profile or saved plan (`--profile`, `plan --out`, `apply FILE`).
//!
//! Every directory on the way must be owned by root or the caller and not
//! writable by group or others, except that one may be sticky (like `/tmp`,
//! mode 1777: others cannot rename or remove what is not theirs, so a
//! root-owned entry stays put); the last directory may not be writable by
//! others at all. A symbolic link on the way is followed only when root or
//! the caller owns it (its directory has passed the check, so no one else
//! can swap it). The walk yields a descriptor, and everything after acts on
//! it: the path string is for messages only (a directory swapped for a link
//! after the walk is not followed).

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};

use crate::safe_path::kind;

/// The users whose files, directories and links gpu-setup trusts: root and
/// the user running it (who could write the files anyway). The one list
/// the walk under `--root`, the walk on the running system, local files
/// and program vetting all use.
pub fn trusted_uids() -> [u32; 2] {
    [0, nix::unistd::geteuid().as_raw()]
}

/// The one trust rule, for a node with owner `uid` and mode `mode`: owned
/// by a trusted user and not writable by group or others, except that a
/// directory may be sticky (`sticky_ok`; like /tmp, mode 1777: others
/// cannot rename or remove what is not theirs). `None` when trusted, else
/// what is wrong.
pub fn problem(uid: u32, mode: u32, sticky_ok: bool) -> Option<String> {
    let mode = mode & 0o7777;
    if !trusted_uids().contains(&uid) {
        Some(format!("is owned by user {uid}, not root or you"))
    } else if mode & 0o022 != 0 && !(sticky_ok && mode & 0o1000 != 0) {
        Some(format!("is writable by group or others (mode {mode:04o})"))
    } else {
        None
    }
}

/// Why a trusted walk stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The operating system's error at one step.
    #[error("cannot open `{}`", path.display())]
    Io {
        /// The path being opened.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A directory or link on the way could be changed by someone else.
    #[error("`{}` {problem}", path.display())]
    Untrusted {
        /// The directory or link at fault.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
}

impl TrustError {
    /// The errno of an I/O step, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            TrustError::Io { source, .. } => source.raw_os_error(),
            TrustError::Untrusted { .. } => None,
        }
    }
}

/// A directory reached by the trusted walk.
#[derive(Debug)]
pub struct TrustedDir {
    /// Its descriptor (`O_PATH`).
    pub fd: OwnedFd,
    /// Where it is, every link resolved (for messages).
    pub real: PathBuf,
    /// Whether it is the machine's own `/` (same device and inode).
    pub is_real_root: bool,
}

/// How many links a walk follows before giving up (the kernel's limit).
const MAX_LINKS: usize = 40;

/// What makes a directory on the way untrusted, if anything. `last`: the
/// directory walked to (it may not be sticky-writable either).
pub fn dir_problem(st: &FileStat, last: bool) -> Option<String> {
    problem(st.st_uid, st.st_mode, !last)
}

/// Walks from `/` to the directory `path` (relative paths from the current
/// directory, whose own path is walked too), checking every directory and
/// link on the way (see the module docs), and returns it opened.
pub fn open_dir(path: &Path) -> Result<TrustedDir, TrustError> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|source| TrustError::Io {
                path: path.to_path_buf(),
                source,
            })?
            .join(path)
    };
    let io = |p: &Path, e: Errno| TrustError::Io {
        path: p.to_path_buf(),
        source: e.into(),
    };
    let open_root = || {
        nix::fcntl::open(
            "/",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io(Path::new("/"), e))
    };
    let check = |fd: &OwnedFd, p: &Path, last: bool| -> Result<(), TrustError> {
        let st = fstat(fd.as_fd()).map_err(|e| io(p, e))?;
        match dir_problem(&st, last) {
            Some(problem) => Err(TrustError::Untrusted {
                path: p.to_path_buf(),
                problem,
            }),
            None => Ok(()),
        }
    };
    // The stack of directories walked: (fd, real path). Each is checked as
    // it is entered (sticky allowed), the last again strictly.
    let root = open_root()?;
    check(&root, Path::new("/"), false)?;
    let mut stack: Vec<(OwnedFd, PathBuf)> = vec![(root, PathBuf::from("/"))];
    let mut pending: Vec<OsString> = components(&abs);
    pending.reverse();
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        let Some((dir_fd, dir_path)) = stack.last() else {
            return Err(io(Path::new("/"), Errno::ENOENT));
        };
        let here = dir_path.join(&name);
        let st = fstatat(
            dir_fd.as_fd(),
            name.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| io(&here, e))?;
        if kind(&st) == SFlag::S_IFLNK {
            links += 1;
            if links > MAX_LINKS {
                return Err(io(&here, Errno::ELOOP));
            }
            if !trusted_uids().contains(&st.st_uid) {
                return Err(TrustError::Untrusted {
                    path: here,
                    problem: format!(
                        "is a symbolic link owned by user {}, not root or you",
                        st.st_uid
                    ),
                });
            }
            let target = PathBuf::from(
                nix::fcntl::readlinkat(dir_fd.as_fd(), name.as_os_str())
                    .map_err(|e| io(&here, e))?,
            );
            if target.is_absolute() {
                stack.truncate(1);
            }
            let mut more = components(&target);
            more.reverse();
            pending.extend(more);
            continue;
        }
        let fd = nix::fcntl::openat(
            dir_fd.as_fd(),
            name.as_os_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io(&here, e))?;
        check(&fd, &here, false)?;
        stack.push((fd, here));
    }
    let (fd, real) = stack.pop().ok_or_else(|| io(&abs, Errno::ENOENT))?;
    check(&fd, &real, true)?;
    let st = fstat(fd.as_fd()).map_err(|e| io(&real, e))?;
    let root_st = nix::sys::stat::stat("/").map_err(|e| io(Path::new("/"), e))?;
    let is_real_root = (st.st_dev, st.st_ino) == (root_st.st_dev, root_st.st_ino);
    Ok(TrustedDir {
        fd,
        real,
        is_real_root,
    })
}

/// The names of a path, `.` dropped, `..` kept.
fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// The directory holding `path` (walked and checked by [`open_dir`]) and
/// the file's name in it.
pub fn open_parent(path: &Path) -> Result<(TrustedDir, OsString), TrustError> {
    let name = path
        .file_name()
        .filter(|n| !n.as_bytes().is_empty())
        .ok_or_else(|| TrustError::Untrusted {
            path: path.to_path_buf(),
            problem: "does not name a file".to_owned(),
        })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    Ok((open_dir(&dir)?, name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_trusted_chain_opens_and_an_untrusted_one_is_named() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        std::fs::create_dir_all(a.join("b")).unwrap();
        let d = open_dir(&a.join("b")).unwrap();
        assert_eq!(d.real, std::fs::canonicalize(a.join("b")).unwrap());
        assert!(!d.is_real_root);
        assert!(open_dir(Path::new("/")).unwrap().is_real_root);
        // A directory on the way others can write, without the sticky bit.
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = open_dir(&a.join("b")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "`{}` is writable by group or others (mode 0777)",
                std::fs::canonicalize(&a).unwrap().display()
            )
        );
        // Sticky above is fine; sticky as the last directory is not.
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(open_dir(&a.join("b")).is_ok());
        assert!(open_dir(&a).is_err());
        // A link (owned by whoever runs the test) is followed; `..` too.
        std::os::unix::fs::symlink("a/b", t.path().join("l")).unwrap();
        let d = open_dir(&t.path().join("l/../b")).unwrap();
        assert_eq!(d.real, std::fs::canonicalize(a.join("b")).unwrap());
        std::os::unix::fs::symlink("/", t.path().join("slash")).unwrap();
        assert!(open_dir(&t.path().join("slash")).unwrap().is_real_root);
    }
}
