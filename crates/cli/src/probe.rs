//! Probing the running system for `doctor`: versions from `--version`, the
//! files `nvidia-container-cli` would mount. Programs are run only when the
//! root is `/` (a binary under another root may not run here), each with a
//! time limit, with no input.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use gpu_setup_apply::RootFs;
use gpu_setup_plan::doctor::{find_executable, Probes, TOOLKIT_BINARIES};

/// How long one probe may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Gathers the probes. `podman_version` (from `--podman-version`) wins over
/// running Podman.
pub fn gather(host: &RootFs, real_root: bool, podman_version: Option<String>) -> Probes {
    let mut probes = Probes {
        podman_version,
        rootless: !nix::unistd::geteuid().is_root(),
        real_root,
        ..Probes::default()
    };
    if !real_root {
        return probes;
    }
    if probes.podman_version.is_none() {
        if let Some(podman) = find_executable(host, "podman") {
            match run(podman.as_str(), &["--version"]) {
                Ok(out) => probes.podman_version = first_line(&out),
                Err(e) => probes.podman_version_error = Some(e),
            }
        }
    }
    for name in TOOLKIT_BINARIES {
        if let Some(bin) = find_executable(host, name) {
            match run(bin.as_str(), &["--version"]) {
                Ok(out) => {
                    if let Some(line) = first_line(&out) {
                        probes.tool_versions.insert(name.to_owned(), line);
                    }
                }
                Err(e) => tracing::debug!(%bin, error = %e, "no version"),
            }
        }
    }
    if let Some(cli) = find_executable(host, "nvidia-container-cli") {
        probes.cli_list = Some(run(cli.as_str(), &["-k", "list"]).map(|out| {
            out.lines()
                .map(str::to_owned)
                .filter(|l| !l.is_empty())
                .collect()
        }));
    }
    probes
}

fn first_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// Runs a program and returns its stdout, or why it failed (its first line
/// of stderr, a signal, or the time limit).
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    run_within(program, args, TIMEOUT)
}

fn run_within(program: &str, args: &[&str], timeout: Duration) -> Result<String, String> {
    tracing::debug!(program, ?args, "probe");
    let mut child = Command::new(program)
        .args(args)
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
        Ok((Ok(status), out, _)) if status.success() => Ok(out),
        Ok((Ok(status), _, err)) => {
            Err(first_line(&err).unwrap_or_else(|| format!("{program} exited with {status}")))
        }
        Ok((Err(e), _, _)) => Err(format!("{program}: {e}")),
        Err(_) => {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Err(format!("{program} did not answer within {timeout:?}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_report_output_errors_and_hangs() {
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
            "sh did not answer within 200ms"
        );
        assert!(run_within("/nonexistent/podman", &[], TIMEOUT)
            .unwrap_err()
            .starts_with("cannot run /nonexistent/podman: No such file or directory"));
    }
}
