//! Running a program with a time limit and no input: its stdout, or why it
//! failed (the first line of its stderr, its exit status, or the limit).
//! Used for `doctor`'s probes and for `nvidia-ctk cdi generate`.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Why a program gpu-setup ran gave no output to use. The messages name
/// the program.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// It, or a directory above it, could be changed by someone else.
    #[error("refusing to run `{program}`: {what} `{}` {problem}", path.display())]
    Untrusted {
        /// The program as given.
        program: String,
        /// `binary` or `directory`.
        what: &'static str,
        /// The path at fault.
        path: std::path::PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// It could not be started.
    #[error("cannot run {program}: {error}")]
    Spawn {
        /// The program.
        program: String,
        /// The operating system's error (in the message, so not a source
        /// the cause chain would repeat).
        error: std::io::Error,
    },
    /// Waiting for it failed.
    #[error("{program}: {error}")]
    Wait {
        /// The program.
        program: String,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// It ran past the time limit and was killed with what it started.
    #[error("{program} did not answer within {} s", limit.as_secs_f32())]
    Timeout {
        /// The program.
        program: String,
        /// The limit.
        limit: Duration,
    },
    /// It exited with a failure: the line of its output that says why.
    #[error("{why}")]
    Failed {
        /// The program.
        program: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The line that says why (its stderr's error, else its first
        /// line, else the exit status).
        why: String,
    },
}

/// The first non-empty line of a text.
pub fn first_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// Runs `program args`, killing it after `timeout` (tests).
#[cfg(test)]
pub fn run_within(program: &str, args: &[&str], timeout: Duration) -> Result<String, ProcessError> {
    let mut cmd = Command::new(program);
    cmd.args(args).env_remove("GPU_SETUP_LOG");
    run_command(cmd, program, timeout)
}

/// Runs a program of the host (`--version`, a probe): vetted first like
/// every program gpu-setup runs as root (it and every directory above it
/// root's or the caller's, not writable by others), in a clean
/// environment, with no input and a time limit. Its stdout, or why not.
pub fn run_vetted(program: &str, args: &[&str], timeout: Duration) -> Result<String, ProcessError> {
    let real = crate::vet::program(std::path::Path::new(program), &crate::vet::trusted_uids())
        .map_err(|u| ProcessError::Untrusted {
            program: program.to_owned(),
            what: u.what,
            path: u.path,
            problem: u.problem,
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
        .env(
            "PATH",
            gpu_setup_plan::well_known::DEFAULT_PATH_DIRS.join(":"),
        )
        .env("LC_ALL", "C")
}

/// Runs a prepared command (`program` names it in messages), killing it
/// after `timeout`: its stdout, or why it failed.
pub fn run_command(cmd: Command, program: &str, timeout: Duration) -> Result<String, ProcessError> {
    let (status, out, err) = run_output(cmd, program, timeout)?;
    if status.success() {
        Ok(out)
    } else {
        Err(ProcessError::Failed {
            program: program.to_owned(),
            status,
            why: error_line(&err)
                .or_else(|| first_line(&out))
                .unwrap_or_else(|| format!("{program} exited with {status}")),
        })
    }
}

/// The line of a failed program's stderr that says why: the last
/// `level=error` (or `fatal`) line of a logrus logger (nvidia-ctk prints
/// several `level=warning` and `level=info` lines first, the error last),
/// else the first line.
pub fn error_line(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.contains("level=error") || l.contains("level=fatal"))
        .map(|l| logrus_msg(l).unwrap_or_else(|| l.to_owned()))
        .or_else(|| first_line(stderr))
}

/// The `msg="..."` of a logrus text line, unquoted (`\"` and `\n` as
/// logrus escapes them).
fn logrus_msg(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("msg=\"")?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push_str("; "),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// The most of a child's stdout or stderr gpu-setup keeps (a CDI spec is at
/// most 1 MiB; versions and rpm's answers are far smaller).
pub const OUTPUT_LIMIT: u64 = 4 << 20;

/// Reads a child's stream in a thread: at most [`OUTPUT_LIMIT`] bytes kept
/// (lossy UTF-8), the rest read and dropped until the child closes it.
fn bounded_reader(mut stream: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let _ = (&mut stream).take(OUTPUT_LIMIT).read_to_end(&mut kept);
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
        String::from_utf8_lossy(&kept).into_owned()
    })
}

/// Runs a prepared command, killing it after `timeout`: its exit status,
/// stdout and stderr, or why it could not run or finish.
pub fn run_output(
    mut cmd: Command,
    program: &str,
    timeout: Duration,
) -> Result<(std::process::ExitStatus, String, String), ProcessError> {
    tracing::debug!(?cmd, "run");
    // Its own process group, so that a hang kills what it started too.
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| ProcessError::Spawn {
            program: program.to_owned(),
            error,
        })?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    // Each stream in its own thread: a child that fills its stderr pipe
    // while gpu-setup waits on its stdout would otherwise block both. Each
    // keeps at most OUTPUT_LIMIT bytes and drains the rest, so a child
    // cannot make gpu-setup hold unbounded output.
    let stdout = child.stdout.take().map(bounded_reader);
    let stderr = child.stderr.take().map(bounded_reader);
    std::thread::spawn(move || {
        let collect = |h: Option<std::thread::JoinHandle<String>>| {
            h.and_then(|h| h.join().ok()).unwrap_or_default()
        };
        let out = collect(stdout);
        let err = collect(stderr);
        let _ = tx.send((child.wait(), out, err));
    });
    match rx.recv_timeout(timeout) {
        Ok((Ok(status), out, err)) => Ok((status, out, err)),
        Ok((Err(error), _, _)) => Err(ProcessError::Wait {
            program: program.to_owned(),
            error,
        }),
        Err(_) => {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Err(ProcessError::Timeout {
                program: program.to_owned(),
                limit: timeout,
            })
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
            run_within("sh", &["-c", "echo; echo boom >&2; exit 3"], TIMEOUT)
                .unwrap_err()
                .to_string(),
            "boom"
        );
        // nvidia-ctk's way: warnings first, the error last.
        let ctk = "level=warning msg=\"Could not locate libcuda.so\"\nlevel=info msg=\"Auto-detected mode as 'nvml'\"\nlevel=error msg=\"failed to generate CDI spec: failed to initialize NVML: ERROR_LIBRARY_NOT_FOUND\"\n";
        assert_eq!(
            error_line(ctk).unwrap(),
            "failed to generate CDI spec: failed to initialize NVML: ERROR_LIBRARY_NOT_FOUND"
        );
        assert_eq!(
            error_line("time=\"x\" level=error msg=\"a \\\"b\\\"\\nc\"\n").unwrap(),
            "a \"b\"; c"
        );
        assert_eq!(
            run_within("sh", &["-c", "exec sleep 30"], Duration::from_millis(200))
                .unwrap_err()
                .to_string(),
            "sh did not answer within 0.2 s"
        );
        // More than a pipe's worth on stderr before stdout ends: no
        // deadlock; and output beyond the limit is dropped, not kept.
        let noisy = "head -c 200000 /dev/zero >&2; echo done";
        assert_eq!(run_within("sh", &["-c", noisy], TIMEOUT).unwrap(), "done\n");
        let huge = format!("head -c {} /dev/zero; echo", OUTPUT_LIMIT + 1000);
        assert_eq!(
            run_within("sh", &["-c", &huge], TIMEOUT).unwrap().len() as u64,
            OUTPUT_LIMIT
        );
        assert!(run_within("/nonexistent/podman", &[], TIMEOUT)
            .unwrap_err()
            .to_string()
            .starts_with("cannot run /nonexistent/podman: No such file or directory"));
    }
}
