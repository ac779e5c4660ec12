//! `--sudo`: re-running this same binary as root through `sudo`.
//!
//! Everything goes on the command line (`sudo` resets the environment, and
//! gpu-setup never asks for `-E`); `-n` is added when standard input is not
//! a terminal, so a provisioning script gets sudo's refusal instead of a
//! password prompt that hangs. A binary that a non-root user could replace
//! is refused: running it through sudo would hand root to that user. That
//! means the binary and every directory from `/` down to it (sudo's own
//! rule for its secure path): a user who owns any of them could swap the
//! binary while sudo waits for a password.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::Hinted;

/// Re-executes through sudo when `--sudo` was given and the effective user
/// is not root; returns only on an error. Already root: does nothing.
pub fn elevate_if_asked(sudo: bool) -> Result<()> {
    if !sudo || nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(|e| {
        Hinted::new(
            format!("cannot find this program's own path for --sudo: {e}"),
            "run gpu-setup as root instead",
        )
    })?;
    check_binary(&exe)?;
    let sudo = find_in_path("sudo").ok_or_else(|| {
        Hinted::new(
            "--sudo needs `sudo`, which is not installed (or not on PATH)",
            "install sudo (apt-get install sudo), or run gpu-setup as root",
        )
    })?;
    let mut cmd = std::process::Command::new(&sudo);
    if !std::io::stdin().is_terminal() {
        cmd.arg("-n");
    }
    cmd.arg("--")
        .arg(&exe)
        .args(without_sudo(std::env::args_os()));
    tracing::debug!(?cmd, "re-running through sudo");
    let err = cmd.exec();
    Err(Hinted::new(
        format!("cannot run `{}`: {err}", sudo.display()),
        "run gpu-setup as root instead",
    )
    .into())
}

/// The arguments after the program name, without `--sudo`.
fn without_sudo(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    args.skip(1).filter(|a| a != "--sudo").collect()
}

/// Refuses a binary when it, or any directory from `/` down to it, is owned
/// by a user other than root or writable by group or others.
fn check_binary(exe: &Path) -> Result<()> {
    crate::vet::program(exe, &[0]).map(drop).map_err(|u| {
        Hinted::new(
            format!(
                "refusing --sudo: the {} `{}` {}, so running it as root would give root to whoever can change it",
                u.what,
                u.path.display(),
                u.problem
            ),
            "install gpu-setup owned by root in a root-only directory (e.g. `sudo install -o root -g root -m 0755 target/release/gpu-setup /usr/local/bin/`), or run it as root",
        )
        .into()
    })
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_sudo_flag_is_dropped() {
        let args = [
            "gpu-setup",
            "--root",
            "/x",
            "apply",
            "--sudo",
            "--format",
            "json",
        ]
        .map(OsString::from);
        assert_eq!(
            without_sudo(args.into_iter()),
            ["--root", "/x", "apply", "--format", "json"].map(OsString::from)
        );
    }
}
