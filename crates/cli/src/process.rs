//! Running a program with a time limit and no input: its stdout, or why it
//! failed (the first line of its stderr, its exit status, or the limit).
//! Used for `doctor`'s probes and for `nvidia-ctk cdi generate`.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The first non-empty line of a text.
pub fn first_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// Runs `program args`, killing it after `timeout` (tests).
#[cfg(test)]
pub fn run_within(program: &str, args: &[&str], timeout: Duration) -> Result<String, String> {
    let mut cmd = Command::new(program);
    cmd.args(args).env_remove("GPU_SETUP_LOG");
    run_command(cmd, program, timeout)
}

/// Runs a program of the host (`--version`, a probe): vetted first like
/// every program gpu-setup runs as root (it and every directory above it
/// root's or the caller's, not writable by others), in a clean
/// environment, with no input and a time limit. Its stdout, or why not.
pub fn run_vetted(program: &str, args: &[&str], timeout: Duration) -> Result<String, String> {
    let real = crate::vet::program(std::path::Path::new(program), &crate::vet::trusted_uids())
        .map_err(|u| {
            format!(
                "refusing to run `{program}`: {} `{}` {}",
                u.what,
                u.path.display(),
                u.problem
            )
        })?;
    let mut cmd = Command::new(real);
    clean_env(&mut cmd);
    cmd.args(args);
    run_command(cmd, program, timeout)
}

/// The environment of a program whose output gpu-setup writes as root: none
/// of the caller's variables (`NVIDIA_CTK_*` would change what
/// `nvidia-ctk` prints), a fixed `PATH`.
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    cmd.env_clear()
        .env("PATH", gpu_setup_plan::facts::DEFAULT_PATH_DIRS.join(":"))
        .env("LC_ALL", "C")
}

/// Runs a prepared command (`program` names it in messages), killing it
/// after `timeout`: its stdout, or why it failed.
pub fn run_command(cmd: Command, program: &str, timeout: Duration) -> Result<String, String> {
    let (status, out, err) = run_output(cmd, program, timeout)?;
    if status.success() {
        Ok(out)
    } else {
        Err(first_line(&err)
            .or_else(|| first_line(&out))
            .unwrap_or_else(|| format!("{program} exited with {status}")))
    }
}

/// Runs a prepared command, killing it after `timeout`: its exit status,
/// stdout and stderr, or why it could not run or finish.
pub fn run_output(
    mut cmd: Command,
    program: &str,
    timeout: Duration,
) -> Result<(std::process::ExitStatus, String, String), String> {
    tracing::debug!(?cmd, "run");
    // Its own process group, so that a hang kills what it started too.
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    std::thread::spawn(move || {
        let mut out = String::new();
        let mut err = String::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_string(&mut out);
        }
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_string(&mut err);
        }
        let _ = tx.send((child.wait(), out, err));
    });
    match rx.recv_timeout(timeout) {
        Ok((Ok(status), out, err)) => Ok((status, out, err)),
        Ok((Err(e), _, _)) => Err(format!("{program}: {e}")),
        Err(_) => {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Err(format!(
                "{program} did not answer within {} s",
                timeout.as_secs_f32()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    #[test]
    fn programs_report_output_errors_and_hangs() {
        assert_eq!(
            run_within("sh", &["-c", "echo 4.3.1"], TIMEOUT).unwrap(),
            "4.3.1\n"
        );
        assert_eq!(
            run_within("sh", &["-c", "echo; echo boom >&2; exit 3"], TIMEOUT).unwrap_err(),
            "boom"
        );
        assert_eq!(
            run_within("sh", &["-c", "exec sleep 30"], Duration::from_millis(200)).unwrap_err(),
            "sh did not answer within 0.2 s"
        );
        assert!(run_within("/nonexistent/podman", &[], TIMEOUT)
            .unwrap_err()
            .starts_with("cannot run /nonexistent/podman: No such file or directory"));
    }
}
