//! Files on the running system that steer gpu-setup but are not under
//! `--root`: a profile (`--profile`) and a saved plan (`plan --out`,
//! `apply FILE`). Either decides what root writes, so gpu-setup reads one
//! only when it and its directory belong to root or the caller and no one
//! else can write them, and writes a saved plan as a new private file.
//! docs/security.md states the rules.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::{fstat, FileStat, Mode, SFlag};

use crate::safe_path::kind;

/// Why a local file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalFileError {
    /// The operating system's error.
    #[error("cannot {step} `{path}`")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The file or its directory is not safe to trust.
    #[error("refusing `{path}`: {problem}")]
    Untrusted {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

impl LocalFileError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            LocalFileError::Untrusted { .. } => Some(
                "keep profiles and saved plans in a directory only root (or you) can write, such as /etc or your home, owned by you or root and not writable by others".to_owned(),
            ),
            LocalFileError::Io { source, .. } if source.raw_os_error() == Some(nix::libc::ELOOP) => {
                Some("the file is a symbolic link: name the file itself".to_owned())
            }
            LocalFileError::Io { .. } => None,
        }
    }
}

/// The directory holding `path` and the file's name in it.
fn split(path: &Path) -> Result<(PathBuf, std::ffi::OsString), LocalFileError> {
    let name = path.file_name().ok_or_else(|| LocalFileError::Untrusted {
        path: path.to_owned(),
        problem: "it does not name a file".to_owned(),
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name.to_owned()))
}

/// The directory holding `path`, reached by the trusted walk from `/`
/// ([`crate::trust`]: every directory on the way owned by root or the
/// caller and not writable by others, a sticky one above excepted; the
/// file's own directory strictly), and the file's name in it.
fn trusted_dir(path: &Path) -> Result<(std::os::fd::OwnedFd, std::ffi::OsString), LocalFileError> {
    let (dir, name) = split(path)?;
    match crate::trust::open_dir(&dir) {
        Ok(walked) => Ok((walked.fd, name)),
        Err(crate::trust::TrustError::Untrusted { path: at, problem }) => {
            // Which directory: the file's own, or one above it.
            let own = std::fs::canonicalize(&dir).is_ok_and(|d| d == at);
            let what = if own {
                "its directory".to_owned()
            } else {
                format!("`{}` on the way to it", at.display())
            };
            Err(LocalFileError::Untrusted {
                path: path.to_owned(),
                problem: format!("{what} {problem}, so another user could change what root does"),
            })
        }
        Err(crate::trust::TrustError::Io { source, .. }) => Err(LocalFileError::Io {
            step: "open the directory of",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Refuses a node another user owns or that group or others can write.
fn check(path: &Path, what: &str, st: &FileStat) -> Result<(), LocalFileError> {
    let Some(problem) = crate::trust::problem(st.st_uid, st.st_mode, false) else {
        return Ok(());
    };
    Err(LocalFileError::Untrusted {
        path: path.to_owned(),
        problem: format!("{what} {problem}, so another user could change what root does"),
    })
}

/// Reads a local file that decides what gpu-setup writes, at most `limit`
/// bytes: its directory and the file must be owned by root or the caller
/// and not writable by group or others, and the file must be a regular
/// file reached without a symbolic link at its name.
pub fn read_trusted(path: &Path, limit: u64) -> Result<Vec<u8>, LocalFileError> {
    use std::io::Read;
    let (dir_fd, name) = trusted_dir(path)?;
    let fd = nix::fcntl::openat(
        dir_fd.as_fd(),
        name.as_os_str(),
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| LocalFileError::Io {
        step: "read",
        path: path.to_owned(),
        source: e.into(),
    })?;
    let st = fstat(&fd).map_err(|e| LocalFileError::Io {
        step: "inspect",
        path: path.to_owned(),
        source: e.into(),
    })?;
    if kind(&st) != SFlag::S_IFREG {
        return Err(LocalFileError::Untrusted {
            path: path.to_owned(),
            problem: "it is not a regular file".to_owned(),
        });
    }
    check(path, "it", &st)?;
    let mut bytes = Vec::new();
    File::from(fd)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| LocalFileError::Io {
            step: "read",
            path: path.to_owned(),
            source: e,
        })?;
    if bytes.len() as u64 > limit {
        return Err(LocalFileError::Untrusted {
            path: path.to_owned(),
            problem: format!("it is larger than {limit} bytes"),
        });
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` as a new file, mode 0600 whatever the umask,
/// owned by the caller: written to a temp file in the same directory, then
/// renamed over `path` (a link or a file another user made there is
/// replaced, never written through). The directory must pass the same test
/// as for [`read_trusted`], since the file will be read back from it.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), LocalFileError> {
    let (dir_fd, name) = trusted_dir(path)?;
    let io = |step: &'static str| {
        move |e: io::Error| LocalFileError::Io {
            step,
            path: path.to_owned(),
            source: e,
        }
    };
    let mut temp = std::ffi::OsString::from(".");
    temp.push(&name);
    temp.push(format!(".gpu-setup-{}~", std::process::id()));
    let fd = nix::fcntl::openat(
        dir_fd.as_fd(),
        temp.as_os_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| io("create a temp file for")(e.into()))?;
    let mut file = File::from(fd);
    let result = (|| {
        file.write_all(bytes).map_err(io("write"))?;
        nix::sys::stat::fchmod(file.as_fd(), Mode::from_bits_truncate(0o600))
            .map_err(|e| io("chmod")(e.into()))?;
        file.sync_all().map_err(io("fsync"))?;
        nix::fcntl::renameat(
            dir_fd.as_fd(),
            temp.as_os_str(),
            dir_fd.as_fd(),
            name.as_os_str(),
        )
        .map_err(|e| io("rename a temp file over")(e.into()))
    })();
    if result.is_err() {
        let _ = nix::unistd::unlinkat(
            dir_fd.as_fd(),
            temp.as_os_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }
    result?;
    if let Ok(d) = nix::fcntl::openat(
        dir_fd.as_fd(),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        let _ = nix::unistd::fsync(&d);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    #[test]
    fn a_private_file_round_trips_with_mode_0600() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("plan.json");
        write_private(&p, b"{}\n").unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o600);
        assert_eq!(read_trusted(&p, 10).unwrap(), b"{}\n");
        // Rewriting replaces the file.
        write_private(&p, b"[]\n").unwrap();
        assert_eq!(read_trusted(&p, 10).unwrap(), b"[]\n");
        let e = read_trusted(&p, 1).unwrap_err();
        assert!(e.to_string().ends_with("it is larger than 1 bytes"), "{e}");
    }

    #[test]
    fn links_and_writable_files_are_refused_and_never_written_through() {
        let t = tempfile::tempdir().unwrap();
        let secret = t.path().join("secret");
        fs::write(&secret, "root only\n").unwrap();
        let link = t.path().join("plan.json");
        symlink(&secret, &link).unwrap();
        let e = read_trusted(&link, 100).unwrap_err();
        assert_eq!(
            e.hint().unwrap(),
            "the file is a symbolic link: name the file itself"
        );
        write_private(&link, b"{}\n").unwrap();
        assert_eq!(fs::read_to_string(&secret).unwrap(), "root only\n");
        assert!(!fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());

        let p = t.path().join("open.json");
        fs::write(&p, "{}").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o666)).unwrap();
        let e = read_trusted(&p, 100).unwrap_err();
        assert!(
            e.to_string().ends_with("it is writable by group or others (mode 0666), so another user could change what root does"),
            "{e}"
        );
        let shared = t.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
        let e = write_private(&shared.join("p.json"), b"{}").unwrap_err();
        assert!(
            e.to_string()
                .contains("its directory is writable by group or others (mode 1777)"),
            "{e}"
        );
        assert!(fs::read_dir(&shared).unwrap().next().is_none());
    }
}
