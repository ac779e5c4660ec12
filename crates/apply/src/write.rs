//! Atomic replacement of one file in the systemd order (`src/basic/fileio.c`):
//! temp file in the same directory (exclusive, 0600), write, fsync, owner,
//! mode, extended attributes, rename over the target, fsync the directory.
//! The target holds the old or the new bytes at every moment, never a mix.
//! Every step acts on the directory's descriptor or on the temp file's own.

use std::io;
use std::path::PathBuf;

use crate::fs::{self, Attrs, Fs};
use crate::safe_path::Dir;

/// A failed step: its name, the path it acted on (on the machine), and the
/// error.
pub type Failure = (&'static str, PathBuf, io::Error);

/// Replaces (or creates) `target` in `dir` with `bytes` and `attrs`,
/// writing through `temp` (in the same directory). With `chown`, the owner
/// is set too. On any error before the rename, the temp file is removed.
pub fn atomic(
    fs: &dyn Fs,
    dir: &Dir,
    target: &str,
    temp: &str,
    bytes: &[u8],
    attrs: &Attrs,
    chown: bool,
) -> Result<(), Failure> {
    let temp_path = dir.child_real(temp);
    // A temp file of this name can only be left over from an earlier run of
    // this same write that died: it is ours to remove.
    if fs::exists(dir, temp).map_err(|e| ("inspect", temp_path.clone(), e))? {
        fs.remove_file(dir, temp)
            .map_err(|e| ("remove stale temp file", temp_path.clone(), e))?;
    }
    let file = fs
        .write_new(dir, temp, bytes)
        .map_err(|e| ("write", temp_path.clone(), e))?;
    if let Err(failure) = finish_temp(fs, &file, &temp_path, attrs, chown) {
        let _ = fs.remove_file(dir, temp);
        return Err(failure);
    }
    drop(file);
    if let Err(e) = fs.rename(dir, temp, target) {
        let _ = fs.remove_file(dir, temp);
        return Err(("rename", dir.child_real(target), e));
    }
    sync(fs, dir)
}

fn finish_temp(
    fs: &dyn Fs,
    file: &std::fs::File,
    temp: &std::path::Path,
    attrs: &Attrs,
    chown: bool,
) -> Result<(), Failure> {
    let fail = |step: &'static str| move |e| (step, temp.to_owned(), e);
    fs.sync_file(file, temp).map_err(fail("fsync"))?;
    if chown {
        fs.set_owner(file, temp, attrs.uid, attrs.gid)
            .map_err(fail("chown"))?;
    }
    // After chown: changing the owner clears set-ID bits.
    fs.set_mode(file, temp, attrs.mode).map_err(fail("chmod"))?;
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
        fs.set_xattr(file, temp, &x.name, &value)
            .map_err(fail("set extended attribute"))?;
    }
    Ok(())
}

/// Removes `name` from `dir` and makes the removal durable.
pub fn remove(fs: &dyn Fs, dir: &Dir, name: &str) -> Result<(), Failure> {
    fs.remove_file(dir, name)
        .map_err(|e| ("remove", dir.child_real(name), e))?;
    sync(fs, dir)
}

/// Fsyncs a directory.
pub fn sync(fs: &dyn Fs, dir: &Dir) -> Result<(), Failure> {
    fs.sync_dir(dir)
        .map_err(|e| ("fsync directory", dir.real().to_owned(), e))
}
