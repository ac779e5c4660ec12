//! Probing the running system for `doctor`: versions from `--version`, the
//! files `nvidia-container-cli` would mount. Programs are run only when the
//! root is `/` (a binary under another root may not run here), each with a
//! time limit, with no input.

use std::time::Duration;

use gpu_setup_apply::RootFs;
use gpu_setup_plan::{DesiredState, HostFacts, Observe, Observed, Presence, Strategy};

use crate::process::first_line;
use gpu_setup_plan::doctor::{find_executable, Probes, TOOLKIT_BINARIES};

/// How long one probe may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Gathers the probes. The Podman version comes from the host facts
/// (`--podman-version`, the package database); `podman --version` runs
/// only when they do not know it, to say why Podman fails if it does.
pub fn gather(host: &RootFs, desired: &DesiredState, facts: &HostFacts, real_root: bool) -> Probes {
    let mut probes = Probes {
        podman_version: facts.podman_version.map(|v| format!("podman version {v}")),
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
    probes.cdi_generated = cdi_now(host, desired);
    probes
}

/// What `nvidia-ctk cdi generate` prints now, when there is a CDI spec to
/// compare it with (the refresh units' spec when they are installed, else
/// the one `--strategy cdi` manages), or `--strategy cdi` needs it for the
/// desired-state check.
fn cdi_now(host: &RootFs, desired: &DesiredState) -> Option<Result<Vec<u8>, String>> {
    let units = gpu_setup_plan::cdi::refresh_units(host);
    let refresh = units.installed();
    let spec = if refresh {
        units.spec()
    } else {
        desired.cdi_spec.clone()
    };
    let needed =
        desired.strategy == Strategy::Cdi && desired.presence == Presence::Present && !refresh;
    let exists = matches!(host.file(&spec), Ok(Observed::File { .. }));
    let ctk = std::path::Path::new(desired.nvidia_ctk.as_str());
    if !needed && (!exists || !ctk.exists()) {
        return None;
    }
    let json = spec.file_name().ends_with(".json");
    Some(crate::cdi::generate(ctk, json).map_err(|e| e.to_string()))
}

/// Runs a program (vetted, clean environment, time limit) and returns its
/// stdout, or why it failed.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    crate::process::run_vetted(program, args, TIMEOUT).map_err(|e| e.to_string())
}
