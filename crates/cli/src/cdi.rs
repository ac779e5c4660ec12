//! `--strategy cdi`: running `nvidia-ctk cdi generate` to learn what the
//! managed CDI spec should hold. The program is the one on the running
//! system (not under `--root`), vetted like the binary `--sudo` runs, run
//! with a clean environment, no input and a time limit, writing into a
//! private scratch directory; what it wrote is checked before the plan
//! uses it. Nothing is written to the host here.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use gpu_setup_apply::journal::{StateDir, Status};
use gpu_setup_apply::{local, MAX_FILE_BYTES};
use gpu_setup_plan::desired::{Presence, Strategy};
use gpu_setup_plan::{sha256, DesiredState, Level, Observe, Plan, TargetPath, Warning};

use crate::error::Hinted;

/// How long `nvidia-ctk cdi generate` may take (it loads NVML and walks the
/// driver's files: a second or two on a GPU host).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Fills `desired.cdi_generated` when the plan needs it: `--strategy cdi`,
/// state present, and no NVIDIA refresh units owning the spec; and
/// `desired.cdi_spec_written` from the journal in `state`. `real_root`:
/// whether `--root` is `/` (for the hint when nvidia-ctk fails).
pub(crate) fn prepare(
    desired: &mut DesiredState,
    host: &dyn Observe,
    state: &StateDir,
    real_root: bool,
) -> Result<()> {
    desired.cdi_spec_written = written_by_gpu_setup(state, host, &desired.cdi_spec);
    let needed = desired.presence == Presence::Present
        && desired.strategy == Strategy::Cdi
        && !gpu_setup_plan::cdi::refresh_units(host).installed();
    if !needed {
        return Ok(());
    }
    let ctk = Path::new(desired.nvidia_ctk.as_str());
    let json = desired.cdi_spec.file_name().ends_with(".json");
    let spec = generate(ctk, json).map_err(|e| e.explained(ctk, real_root))?;
    desired.cdi_generated = Some(spec);
    Ok(())
}

/// A note for a plan that writes a generated spec under a `--root` other
/// than `/`: it describes this machine.
pub(crate) fn note(plan: &Plan, desired: &DesiredState, real_root: bool) -> Option<Warning> {
    let writes = plan
        .changes
        .iter()
        .any(|c| c.path == desired.cdi_spec && c.after.is_some());
    (writes && !real_root && desired.cdi_generated.is_some()).then(|| Warning {
        code: gpu_setup_plan::warnings::Code::CdiSpecFromThisMachine,
        level: Level::Info,
        message: format!(
            "the CDI spec is what `{} cdi generate` prints on this machine: it lists this machine's GPUs and driver files, not necessarily those of the system under --root",
            desired.nvidia_ctk
        ),
        hint: None,
    })
}

/// Whether the file at `path` holds what gpu-setup's last write to it (an
/// apply or a rollback) left there. A journal this user cannot read says
/// no.
pub(crate) fn written_by_gpu_setup(
    state: &StateDir,
    host: &dyn Observe,
    path: &TargetPath,
) -> bool {
    let Some(now) = host.file(path).ok().and_then(|o| o.bytes().map(sha256)) else {
        return false;
    };
    let Ok(history) = state.history() else {
        return false;
    };
    history
        .iter()
        // Writes that stood (a rolled-back one was followed by the
        // rollback's own, newer record).
        .filter(|m| matches!(m.status, Status::Applied | Status::RolledBack))
        .find_map(|m| m.files.iter().find(|f| f.path == *path))
        .and_then(|f| f.after.as_ref())
        .is_some_and(|after| after.sha256 == now)
}

/// Why generating failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GenerateError {
    /// The program does not exist.
    #[error("`{}` does not exist", path.display())]
    Missing {
        /// The `nvidia-ctk` given.
        path: std::path::PathBuf,
    },
    /// The program, or a directory above it, could be changed by someone
    /// else.
    #[error("refusing to run `{}`: {} `{}` {} (whoever can change it would choose what gpu-setup writes)", program.display(), why.what, why.path.display(), why.problem)]
    Untrusted {
        /// The `nvidia-ctk` given.
        program: std::path::PathBuf,
        /// What is wrong, and where.
        why: crate::vet::Untrusted,
    },
    /// No safe place for its output.
    #[error("{0}")]
    Scratch(String),
    /// It ran and failed, or hung.
    #[error("{0}")]
    Failed(crate::process::ProcessError),
    /// It exited successfully without writing a spec.
    #[error("it exited successfully but wrote no spec to --output")]
    NoOutput,
    /// What it wrote cannot be read back safely.
    #[error("{0}")]
    Unreadable(String),
    /// What it wrote is not a usable spec (`cdi::check_spec`).
    #[error("{0}")]
    Invalid(gpu_setup_plan::cdi::SpecError),
}

impl GenerateError {
    /// The user-facing error, with a hint.
    fn explained(self, ctk: &Path, real_root: bool) -> Hinted {
        let run = format!("`{} cdi generate`", ctk.display());
        let elsewhere = "--root is not `/`, and nvidia-ctk describes the GPUs of the machine it runs on: run `gpu-setup apply --strategy cdi` on the booted host (or use toolkit 1.18+, whose nvidia-cdi-refresh units generate the spec at boot), or use --strategy hook for the image";
        match self {
            e @ (GenerateError::Missing { .. } | GenerateError::Untrusted { .. }) => Hinted::new(
                format!("cannot generate the CDI spec: {e}"),
                "install the NVIDIA Container Toolkit 1.12 or later (it ships nvidia-ctk), or pass --nvidia-ctk PATH; or use --strategy hook",
            ),
            GenerateError::Scratch(why) => Hinted::new(
                format!("cannot generate the CDI spec: {why}"),
                "set TMPDIR to a directory only root or you can write, or unset it to use /tmp",
            ),
            GenerateError::Failed(why) => Hinted::new(
                format!("cannot generate the CDI spec: {run} failed: {why}"),
                if real_root {
                    "nvidia-ctk needs the NVIDIA driver loaded and a GPU it can see (check `nvidia-smi -L`); nothing was written"
                } else {
                    elsewhere
                },
            ),
            e @ (GenerateError::NoOutput
            | GenerateError::Unreadable(_)
            | GenerateError::Invalid(_)) => Hinted::new(
                format!("cannot use the CDI spec {run} printed: {e}"),
                "run it by hand to see what it prints; nothing was written",
            ),
        }
    }
}

/// Runs `nvidia-ctk cdi generate` and returns the spec it wrote (YAML, or
/// JSON when `json`), checked.
pub(crate) fn generate(ctk: &Path, json: bool) -> Result<Vec<u8>, GenerateError> {
    let trusted = crate::vet::trusted_uids();
    if !ctk.exists() {
        return Err(GenerateError::Missing {
            path: ctk.to_owned(),
        });
    }
    let real = crate::vet::program(ctk, &trusted).map_err(|why| GenerateError::Untrusted {
        program: ctk.to_owned(),
        why,
    })?;
    let scratch = crate::vet::scratch_dir("gpu-setup-cdi.").map_err(GenerateError::Scratch)?;
    let (name, format) = if json {
        ("nvidia.json", "json")
    } else {
        ("nvidia.yaml", "yaml")
    };
    let out = scratch.path().join(name);
    let mut cmd = Command::new(&real);
    crate::process::clean_env(&mut cmd);
    cmd.args(["cdi", "generate", "--format", format, "--output"])
        .arg(&out);
    let timeout = gpu_setup_apply::fs::nvidia_ctk_timeout(TIMEOUT);
    crate::process::run_command(cmd, &ctk.display().to_string(), timeout)
        .map_err(GenerateError::Failed)?;
    let bytes = match local::read_trusted(&out, MAX_FILE_BYTES) {
        Ok(b) => b,
        Err(local::LocalFileError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return Err(GenerateError::NoOutput)
        }
        Err(e) => {
            let causes: Vec<String> = anyhow::Error::new(e)
                .chain()
                .map(ToString::to_string)
                .collect();
            return Err(GenerateError::Unreadable(causes.join(": ")));
        }
    };
    gpu_setup_plan::cdi::check_spec(&bytes).map_err(GenerateError::Invalid)?;
    Ok(bytes)
}
