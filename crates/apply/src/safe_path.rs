//! Resolving a managed path under the root without following symbolic
//! links out of it.
//!
//! The walk opens each parent directory with `openat(O_PATH | O_NOFOLLOW |
//! O_DIRECTORY)` relative to the one before, starting at the root, and looks
//! at every name with `fstatat(AT_SYMLINK_NOFOLLOW)`. A symbolic link is read
//! with `readlinkat` and resolved as the host would see it: an absolute
//! target starts again at the root (never at the machine's `/`), and `..`
//! may not climb above the root. A link is followed only when
//!
//! - it is owned by root (or by the user running gpu-setup, who could write
//!   the files anyway),
//! - it stays inside the root, and
//! - for a parent directory, the directory it leads to is owned by root (or
//!   that user) and not writable by group or others;
//!
//! and a link at the managed file itself is followed only with
//! `--follow-symlinks`. The result is the path of the real file, every
//! component of which was a real directory when it was checked.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use gpu_setup_plan::{ObserveError, TargetPath};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};

/// Links followed before giving up (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// Resolves `path` under `root`; `follow_target` allows the managed file
/// itself to be a link. Returns the real file's path as the host sees it.
pub fn resolve(
    root: &Path,
    path: &TargetPath,
    follow_target: bool,
) -> Result<TargetPath, ObserveError> {
    Walk {
        root_path: root,
        asked: path,
        trusted: [0, nix::unistd::geteuid().as_raw()],
        strict: true,
    }
    .run(follow_target)
}

/// Resolves any path under `root` for reading, as a process chrooted there
/// would: every link followed, absolute targets start at the root, and
/// `..` stops at the root. Never refuses a link (only loops and I/O
/// errors): gpu-setup reads what Podman would read, and writes nothing
/// through this.
pub fn resolve_for_reading(root: &Path, path: &TargetPath) -> Result<TargetPath, ObserveError> {
    Walk {
        root_path: root,
        asked: path,
        trusted: [0, 0],
        strict: false,
    }
    .run(true)
}

struct Walk<'a> {
    root_path: &'a Path,
    asked: &'a TargetPath,
    trusted: [u32; 2],
    strict: bool,
}

/// A link still to be checked: once the walk has consumed its target (the
/// queue is down to `rest` names), the directory reached must be trusted.
struct PendingDir {
    rest: usize,
    link: String,
    to: String,
}

impl Walk<'_> {
    fn run(&self, follow_target: bool) -> Result<TargetPath, ObserveError> {
        let root = nix::fcntl::open(
            self.root_path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.io(self.asked, e))?;
        let mut todo: VecDeque<String> = names(self.asked.as_str()).collect();
        let mut done: Vec<String> = Vec::new();
        let mut dirs: Vec<OwnedFd> = vec![root];
        let mut pending: Vec<PendingDir> = Vec::new();
        let mut links = 0;
        let mut last_link: Option<(String, String)> = None;

        while let Some(name) = todo.pop_front() {
            let last = todo.is_empty();
            if name == ".." {
                // Only link targets hold `..`; the root has no parent here.
                if done.pop().is_none() {
                    if !self.strict {
                        continue; // `/..` is `/`
                    }
                    let link = last_link.as_ref();
                    return Err(self.outside(link.map(|(l, t)| (&l[..], &t[..]))));
                }
                dirs.pop();
                self.check_pending(&mut pending, &todo, &dirs)?;
                continue;
            }
            let cur = dirs.last().map(|d| d.as_fd()).ok_or_else(|| {
                self.io(self.asked, Errno::EINVAL) // unreachable: the root stays
            })?;
            let st = match fstatat(cur, name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::ENOENT) => {
                    // The rest does not exist yet: gpu-setup creates it as
                    // real directories.
                    done.push(name);
                    done.extend(todo.drain(..));
                    break;
                }
                Err(e) => return Err(self.io(&self.shown(&done, Some(&name)), e)),
            };
            match kind(&st) {
                SFlag::S_IFLNK => {
                    links += 1;
                    let link = self.shown(&done, Some(&name));
                    let to = nix::fcntl::readlinkat(cur, name.as_str())
                        .map_err(|e| self.io(&link, e))?;
                    let to = to.into_string().map_err(|to| {
                        unsafe_path(
                            &link,
                            format!(
                                "`{link}` is a symbolic link to a name that is not UTF-8 ({to:?})"
                            ),
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
                    if links > MAX_LINKS {
                        return Err(unsafe_path(
                            &link,
                            format!("too many levels of symbolic links at `{link}`"),
                            "remove the link loop",
                        ));
                    }
                    if self.strict && !self.trusted.contains(&st.st_uid) {
                        return Err(unsafe_path(
                            &link,
                            format!("`{link}` is a symbolic link (to `{to}`) owned by user {}, not root: another user could point it anywhere", st.st_uid),
                            "replace the link with a real directory or file owned by root",
                        ));
                    }
                    last_link = Some((link.to_string(), to.clone()));
                    if to.starts_with('/') {
                        done.clear();
                        dirs.truncate(1);
                    }
                    let rest = todo.len();
                    for n in names(&to).collect::<Vec<_>>().into_iter().rev() {
                        todo.push_front(n);
                    }
                    if !last && self.strict {
                        pending.push(PendingDir {
                            rest,
                            link: link.to_string(),
                            to,
                        });
                    }
                }
                SFlag::S_IFDIR if !last => {
                    let fd = nix::fcntl::openat(
                        cur,
                        name.as_str(),
                        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| self.io(&self.shown(&done, Some(&name)), e))?;
                    dirs.push(fd);
                    done.push(name);
                    self.check_pending(&mut pending, &todo, &dirs)?;
                }
                _ => {
                    // The managed file itself, or a parent that is a file
                    // (reading it reports that): nothing more to resolve.
                    done.push(name);
                    done.extend(todo.drain(..));
                    break;
                }
            }
        }
        // Links whose targets do not exist (yet): the deepest existing
        // directory they reach must be trusted.
        while let Some(p) = pending.pop() {
            self.check_dir(&p, dirs.last())?;
        }
        Ok(self.shown(&done, None))
    }

    fn check_pending(
        &self,
        pending: &mut Vec<PendingDir>,
        todo: &VecDeque<String>,
        dirs: &[OwnedFd],
    ) -> Result<(), ObserveError> {
        while pending.last().is_some_and(|p| p.rest == todo.len()) {
            if let Some(p) = pending.pop() {
                self.check_dir(&p, dirs.last())?;
            }
        }
        Ok(())
    }

    fn check_dir(&self, p: &PendingDir, dir: Option<&OwnedFd>) -> Result<(), ObserveError> {
        let link = TargetPath::new(&p.link).unwrap_or_else(|_| self.asked.clone());
        let Some(dir) = dir else { return Ok(()) };
        let st = fstat(dir.as_fd()).map_err(|e| self.io(&link, e))?;
        let mode = st.st_mode & 0o7777;
        if !self.trusted.contains(&st.st_uid) {
            return Err(unsafe_path(
                &link,
                format!(
                    "`{}` is a symbolic link to `{}`, a directory owned by user {}, not root",
                    p.link, p.to, st.st_uid
                ),
                "replace the link with a real directory owned by root",
            ));
        }
        if mode & 0o022 != 0 {
            return Err(unsafe_path(
                &link,
                format!(
                    "`{}` is a symbolic link to `{}`, a directory writable by group or others (mode {mode:04o})",
                    p.link, p.to
                ),
                "make the directory writable by its owner only (chmod go-w), or replace the link with a real directory",
            ));
        }
        Ok(())
    }

    fn shown(&self, done: &[String], next: Option<&str>) -> TargetPath {
        let mut s = String::new();
        for n in done.iter().map(String::as_str).chain(next) {
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

    fn io(&self, path: &TargetPath, e: Errno) -> ObserveError {
        ObserveError::Io {
            path: path.clone(),
            source: std::io::Error::from(e),
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

fn kind(st: &FileStat) -> SFlag {
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
}
