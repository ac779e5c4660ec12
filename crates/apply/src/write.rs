//! Atomic replacement of one file in the systemd order (`src/basic/fileio.c`):
//! temp file in the same directory (exclusive, 0600), write, fsync, owner,
//! mode, extended attributes, rename over the target, fsync the directory.
//! The target holds the old or the new bytes at every moment, never a mix.

use std::io;
use std::path::{Path, PathBuf};

use crate::fs::{self, Attrs, Fs};

/// A failed step: its name, the path it acted on, and the error.
pub type Failure = (&'static str, PathBuf, io::Error);

/// Replaces (or creates) `target` with `bytes` and `attrs`, writing through
/// `temp` (in the same directory). With `chown`, the owner is set too. On
/// any error before the rename, the temp file is removed.
pub fn atomic(
    fs: &dyn Fs,
    target: &Path,
    temp: &Path,
    bytes: &[u8],
    attrs: &Attrs,
    chown: bool,
) -> Result<(), Failure> {
    // A temp file of this name can only be left over from an earlier run of
    // this same write that died: it is ours to remove.
    if fs::exists(temp).map_err(|e| ("inspect", temp.to_owned(), e))? {
        fs.remove_file(temp)
            .map_err(|e| ("remove stale temp file", temp.to_owned(), e))?;
    }
    fs.write_new(temp, bytes)
        .map_err(|e| ("write", temp.to_owned(), e))?;
    if let Err(failure) = finish_temp(fs, temp, attrs, chown) {
        let _ = fs.remove_file(temp);
        return Err(failure);
    }
    if let Err(e) = fs.rename(temp, target) {
        let _ = fs.remove_file(temp);
        return Err(("rename", target.to_owned(), e));
    }
    sync_parent(fs, target)
}

fn finish_temp(fs: &dyn Fs, temp: &Path, attrs: &Attrs, chown: bool) -> Result<(), Failure> {
    let fail = |step: &'static str| move |e| (step, temp.to_owned(), e);
    fs.sync_file(temp).map_err(fail("fsync"))?;
    if chown {
        fs.set_owner(temp, attrs.uid, attrs.gid)
            .map_err(fail("chown"))?;
    }
    // After chown: changing the owner clears set-ID bits.
    fs.set_mode(temp, attrs.mode).map_err(fail("chmod"))?;
    for x in &attrs.xattrs {
        let value = x.value().ok_or_else(|| {
            (
                "set extended attribute",
                temp.to_owned(),
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad value of {}", x.name),
                ),
            )
        })?;
        fs.set_xattr(temp, &x.name, &value)
            .map_err(fail("set extended attribute"))?;
    }
    Ok(())
}

/// Removes `target` and makes the removal durable.
pub fn remove(fs: &dyn Fs, target: &Path) -> Result<(), Failure> {
    fs.remove_file(target)
        .map_err(|e| ("remove", target.to_owned(), e))?;
    sync_parent(fs, target)
}

/// Fsyncs the directory holding `path`.
pub fn sync_parent(fs: &dyn Fs, path: &Path) -> Result<(), Failure> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    fs.sync_dir(dir)
        .map_err(|e| ("fsync directory", dir.to_owned(), e))
}
