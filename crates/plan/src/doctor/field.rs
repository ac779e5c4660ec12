//! The failures GPU users report most, outside the three files gpu-setup
//! manages: the `selinux`, `uvm`, `cdi-devices` and `ldconfig` checks
//! (docs/doctor.md cites the report or document each comes from). Every
//! one reads the host through [`Observe`], so under `--root` too: a test
//! tree or an image states `/sys/fs/selinux`, `/dev` and the specs.

use super::{Check, Context, Status};
use crate::observe::Observe;
use crate::paths::TargetPath;
use crate::toml_doc::Expect;

/// Where SELinux shows itself (selinuxfs).
const SELINUX: &str = "/sys/fs/selinux";
/// The boolean that lets containers use host devices (container-selinux).
const DEVICE_BOOLEAN: &str = "container_use_devices";

fn read_small(host: &dyn Observe, path: &str) -> Option<String> {
    let p = TargetPath::new(path).ok()?;
    let bytes = host.kernel_file(&p, 64).ok()??;
    Some(String::from_utf8_lossy(&bytes).trim().to_owned())
}

/// SELinux enforcing with `container_use_devices` off: containers get
/// `Failed to initialize NVML: Insufficient Permissions` (NVIDIA's
/// troubleshooting guide, "NVML: Insufficient Permissions and SELinux";
/// nvidia-container-toolkit issue 210: `setsebool -P container_use_devices
/// true` fixed it on Fedora 43).
pub(crate) fn selinux_check(cx: &Context<'_>) -> Check {
    let host = cx.host;
    let Some(enforce) = read_small(host, &format!("{SELINUX}/enforce")) else {
        return Check::new("selinux", Status::Ok, "SELinux is not enabled");
    };
    if enforce != "1" {
        return Check::new(
            "selinux",
            Status::Ok,
            "SELinux is permissive: it logs denials but blocks nothing",
        );
    }
    // `/sys/fs/selinux/booleans/NAME` holds "CURRENT PENDING".
    let boolean = read_small(host, &format!("{SELINUX}/booleans/{DEVICE_BOOLEAN}"));
    match boolean.as_deref().and_then(|b| b.split_whitespace().next()) {
        Some("1") => Check::new(
            "selinux",
            Status::Ok,
            format!("SELinux is enforcing and {DEVICE_BOOLEAN} is on: containers may use the GPU device nodes"),
        ),
        Some(_) => Check::new(
            "selinux",
            Status::Fail,
            format!("SELinux is enforcing and {DEVICE_BOOLEAN} is off: GPU containers fail with `Failed to initialize NVML: Insufficient Permissions`"),
        )
        .hint(format!(
            "setsebool -P {DEVICE_BOOLEAN} true (or run GPU containers with --security-opt label=disable)"
        )),
        None => Check::new(
            "selinux",
            Status::Warn,
            format!("SELinux is enforcing and has no {DEVICE_BOOLEAN} boolean (container-selinux missing or too old): containers may be denied the GPU device nodes"),
        )
        .hint("install container-selinux, or run GPU containers with --security-opt label=disable"),
    }
}

/// `/dev/nvidia0` without `/dev/nvidia-uvm`: `nvidia-smi` works, CUDA says
/// there is no device (nvidia-container-runtime issue 142, toolkit issue
/// 50). The UVM nodes appear only when something creates them.
pub(crate) fn uvm_check(cx: &Context<'_>) -> Check {
    let host = cx.host;
    let exists = |p: &str| {
        TargetPath::new(p)
            .ok()
            .is_some_and(|t| matches!(host.meta(&t), Ok(Some(_))))
    };
    let gpu = exists("/dev/nvidia0") || exists("/dev/nvidiactl");
    if !gpu {
        return Check::new(
            "uvm",
            Status::Skip,
            "no NVIDIA GPU device node (see gpu-devices)",
        );
    }
    let missing: Vec<&str> = ["/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"]
        .into_iter()
        .filter(|p| !exists(p))
        .collect();
    if missing.is_empty() {
        return Check::new("uvm", Status::Ok, "the UVM device nodes exist");
    }
    Check::new(
        "uvm",
        Status::Warn,
        format!(
            "{} missing while the driver's nodes exist: CUDA in containers reports no device although nvidia-smi works",
            missing.join(" and ")
        ),
    )
    .hint("create them: `nvidia-ctk system create-device-nodes --control-devices --load-kernel-modules` (or `nvidia-modprobe -u -c=0`), and at boot with a udev rule or the toolkit's nvidia-cdi-refresh units")
}

/// Every device node an NVIDIA CDI spec names exists: a spec can be valid
/// and unusable after a reboot renumbers `/dev/dri/renderD*` or a GPU goes
/// (`failed to stat CDI host device "/dev/dri/renderD129"`, toolkit issue
/// 885).
pub(crate) fn cdi_devices_check(cx: &Context<'_>, specs: &super::hooks::Specs) -> Check {
    let Ok(specs) = specs else {
        return Check::new(
            "cdi-devices",
            Status::Skip,
            "the CDI specs could not be read (see cdi)",
        );
    };
    if specs.is_empty() {
        return Check::new("cdi-devices", Status::Skip, "no NVIDIA CDI spec");
    }
    let mut missing = Vec::new();
    let mut checked = 0;
    for (path, bytes) in specs {
        let Ok(summary) = crate::cdi::check_spec(bytes) else {
            continue;
        };
        for node in &summary.device_nodes {
            checked += 1;
            let Ok(t) = TargetPath::new(node) else {
                continue;
            };
            if !matches!(cx.host.meta(&t), Ok(Some(_))) {
                missing.push(format!("`{node}` (in `{path}`)"));
            }
        }
    }
    if missing.is_empty() {
        return Check::new(
            "cdi-devices",
            Status::Ok,
            format!("the {checked} device node(s) the NVIDIA CDI specs name exist"),
        );
    }
    let hint = if cx.refresh.installed() {
        "regenerate the spec: systemctl restart nvidia-cdi-refresh.service".to_owned()
    } else {
        "regenerate the spec: gpu-setup apply --strategy cdi (or `nvidia-ctk cdi generate`)"
            .to_owned()
    };
    Check::new(
        "cdi-devices",
        Status::Fail,
        format!(
            "{} do not exist: Podman fails `--device nvidia.com/gpu=...` with `failed to stat CDI host device`",
            missing.join(", ")
        ),
    )
    .hint(hint)
}

/// config.toml's `ldconfig` names a program that exists: Ubuntu's
/// `@/sbin/ldconfig.real` on a host with only `/sbin/ldconfig` (or the
/// reverse) breaks the legacy hook's library injection. A leading `@` means
/// a path on the host (nvidia-container-cli's `--ldconfig`).
pub(crate) fn ldconfig_check(cx: &Context<'_>, config: &super::toolkit::ConfigResult) -> Check {
    if cx.desired.strategy == crate::Strategy::Cdi {
        return Check::new(
            "ldconfig",
            Status::Skip,
            "the CDI strategy does not run nvidia-container-cli",
        );
    }
    let Ok(Some(cfg)) = config else {
        return Check::new(
            "ldconfig",
            Status::Skip,
            "no config.toml (see nvidia-config)",
        );
    };
    let value = match cfg.get("nvidia-container-cli", "ldconfig", Expect::Str) {
        Ok(Some(v)) => v.as_str().map(str::to_owned),
        Ok(None) => None,
        Err(e) => return Check::error("ldconfig", &e),
    };
    let Some(value) = value else {
        return Check::new(
            "ldconfig",
            Status::Ok,
            "ldconfig is not set: nvidia-container-cli uses its default",
        );
    };
    let Some(host_path) = value.strip_prefix('@') else {
        // A path inside the container: not on the host to check.
        return Check::new(
            "ldconfig",
            Status::Ok,
            format!("ldconfig = \"{value}\" (a path in the container)"),
        );
    };
    let exists = TargetPath::new(host_path)
        .ok()
        .is_some_and(|t| super::is_executable(cx.host, &t));
    if exists {
        return Check::new(
            "ldconfig",
            Status::Ok,
            format!("ldconfig = \"{value}\" exists"),
        );
    }
    let other = [
        "/sbin/ldconfig",
        "/sbin/ldconfig.real",
        "/usr/sbin/ldconfig",
    ]
    .into_iter()
    .find(|p| {
        TargetPath::new(p)
            .ok()
            .is_some_and(|t| super::is_executable(cx.host, &t))
    });
    let hint = match other {
        Some(p) => format!(
            "set `ldconfig = \"@{p}\"` under [nvidia-container-cli] in `{}` (this host has {p})",
            cfg.path
        ),
        None => format!(
            "install ldconfig (libc-bin), or fix `ldconfig` in `{}`",
            cfg.path
        ),
    };
    // The hooks of toolkit 1.17.9 and 1.20.0 pass `--ldconfig=@/sbin/ldconfig`
    // when the configured `@/sbin/ldconfig.real` is missing (seen here, in
    // the matrix's Debian chroots, with Ubuntu's config.toml); old hooks
    // passed the path as configured, and nvidia-container-cli then failed
    // every GPU container (`ldcache error: open failed: /sbin/ldconfig.real`,
    // NVIDIA/nvidia-docker issue 614). Which release brought the fallback
    // is not known here: before 1.17 it is a warning.
    let falls_back = value == "@/sbin/ldconfig.real"
        && other == Some("/sbin/ldconfig")
        && cx.toolkit.version.is_some_and(|v| v.at_least(1, 17));
    if falls_back {
        return Check::new(
            "ldconfig",
            Status::Ok,
            format!("config.toml's ldconfig = \"{value}\" does not exist, and this toolkit's hook uses /sbin/ldconfig instead"),
        );
    }
    // Ubuntu's name on a host with the other ldconfig, before 1.17: the old
    // hooks failed (issue 614), which release changed that is not known.
    // Any other missing program fails with every version.
    let maybe_fallback = value == "@/sbin/ldconfig.real" && other == Some("/sbin/ldconfig");
    let status = if maybe_fallback {
        Status::Warn
    } else {
        Status::Fail
    };
    Check::new(
        "ldconfig",
        status,
        format!("config.toml's ldconfig = \"{value}\" does not exist on this host: the NVIDIA hook cannot update the container's library cache (`ldcache error: open failed`)"),
    )
    .hint(hint)
}
