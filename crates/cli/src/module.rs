//! Ansible module mode. Ansible runs a binary module with one argument: a
//! file holding a JSON object of arguments. gpu-setup then plans (in
//! process, for the diff) and, unless in check mode, runs its own `apply`
//! with the same settings as flags, and prints exactly one JSON object:
//! `changed`, `failed` (on error), `msg`, `warnings`, `transaction`, and
//! with `_ansible_diff` a `diff` list of `{before, after, before_header,
//! after_header}`.

use std::path::{Path, PathBuf};

use gpu_setup_apply::RootFs;
use gpu_setup_plan::desired::{Presence, Strategy};
use gpu_setup_plan::{plan_with, DesiredState, Settings};
use serde_json::{json, Map, Value};

/// The arguments that are settings, with their command-line flag.
const SETTINGS: &[(&str, &str)] = &[
    ("containers_conf", "--containers-conf"),
    ("runtime_name", "--runtime-name"),
    ("runtime_path", "--runtime-path"),
    ("nvidia_config", "--nvidia-config"),
    ("no_cgroups", "--no-cgroups"),
    ("hook_file", "--hook-file"),
    ("hook_path", "--hook-path"),
    ("cli_debug_log", "--cli-debug-log"),
    ("runtime_debug_log", "--runtime-debug-log"),
    ("state", "--state"),
    ("allow_unsafe_log_path", "--allow-unsafe-log-path"),
    ("follow_symlinks", "--follow-symlinks"),
    ("strategy", "--strategy"),
    ("cdi_spec", "--cdi-spec"),
    ("nvidia_ctk", "--nvidia-ctk"),
];
/// Arguments that are global options.
const GLOBALS: &[(&str, &str)] = &[("root", "--root"), ("state_dir", "--state-dir")];
/// Arguments of a rollback (`rollback: true`), which take no settings.
const ROLLBACK: &[&str] = &["rollback", "transaction", "force"];

/// The names Ansible runs a binary module by: the module file as installed
/// (`library/gpu_setup`), and the copy ansible-core makes on the managed
/// host (`AnsiballZ_gpu_setup`, checked with ansible-core 2.19 in
/// tests/it/ansible.rs).
pub const MODULE_NAMES: [&str; 2] = ["gpu_setup", "AnsiballZ_gpu_setup"];

/// The module's arguments, when this is an Ansible module run: the program
/// is named as Ansible runs it ([`MODULE_NAMES`]), and its only argument is
/// not a subcommand and names a readable file holding a JSON object. The
/// program name is the signal: a file an attacker leaves in the working
/// directory cannot turn `gpu-setup plan` into a module run, and a
/// subcommand word is always a subcommand.
pub fn arguments(args: &[std::ffi::OsString]) -> Option<(PathBuf, Map<String, Value>)> {
    let [program, file] = args else { return None };
    let name = Path::new(program).file_name()?.to_str()?;
    if !MODULE_NAMES.contains(&name) {
        return None;
    }
    if is_subcommand(file) {
        return None;
    }
    let path = PathBuf::from(file);
    if !path.is_file() {
        return None;
    }
    let text = std::fs::read(&path).ok()?;
    match serde_json::from_slice(&text) {
        Ok(Value::Object(map)) => Some((path, map)),
        _ => None,
    }
}

/// Whether a word is one of the subcommands (or a flag).
fn is_subcommand(word: &std::ffi::OsStr) -> bool {
    use clap::CommandFactory;
    let Some(word) = word.to_str() else {
        return false;
    };
    word.starts_with('-')
        || crate::args::Cli::command()
            .get_subcommands()
            .any(|c| c.get_name() == word || c.get_all_aliases().any(|a| a == word))
}

/// Runs the module and returns its one JSON object and whether it failed.
pub fn run(args: &Map<String, Value>) -> Value {
    match run_inner(args) {
        Ok(v) => v,
        Err(msg) => json!({"failed": true, "changed": false, "msg": msg}),
    }
}

fn run_inner(args: &Map<String, Value>) -> Result<Value, String> {
    let unknown: Vec<&str> = args
        .keys()
        .map(String::as_str)
        .filter(|k| !k.starts_with('_'))
        .filter(|k| !SETTINGS.iter().chain(GLOBALS).any(|(name, _)| name == k))
        .filter(|k| !ROLLBACK.contains(k))
        .collect();
    if !unknown.is_empty() {
        let mut supported: Vec<&str> = SETTINGS
            .iter()
            .chain(GLOBALS)
            .map(|(n, _)| *n)
            .chain(ROLLBACK.iter().copied())
            .collect();
        supported.sort_unstable();
        return Err(format!(
            "Unsupported parameters for (gpu_setup) module: {}. Supported parameters include: {}.",
            unknown.join(", "),
            supported.join(", ")
        ));
    }
    let check = flag(args, "_ansible_check_mode")?;
    let want_diff = flag(args, "_ansible_diff")?;

    // Every argument as a command-line word; the values are checked by the
    // same parser as the command line.
    let mut globals = vec![
        "--format".to_owned(),
        "json".to_owned(),
        "--color".to_owned(),
        "never".to_owned(),
    ];
    for (name, opt) in GLOBALS {
        if let Some(v) = text(args, name)? {
            globals.extend([opt.to_string(), v]);
        }
    }
    if flag(args, "rollback")? {
        return rollback(args, &globals, check);
    }
    for key in ["transaction", "force"] {
        if args.contains_key(key) {
            return Err(format!("argument {key} needs rollback: true"));
        }
    }
    let mut settings_args = Vec::new();
    for (name, opt) in SETTINGS {
        match (*name, text(args, name)?) {
            (_, None) => {}
            ("allow_unsafe_log_path" | "follow_symlinks", Some(v)) => {
                if parse_bool(name, &v)? {
                    settings_args.push(opt.to_string());
                }
            }
            ("no_cgroups", Some(v)) => {
                settings_args.extend([opt.to_string(), parse_bool(name, &v)?.to_string()])
            }
            (_, Some(v)) => settings_args.extend([opt.to_string(), v]),
        }
    }

    // Checked here, with the module's own messages, before anything runs.
    let settings = settings_of(args)?;
    let root = text(args, "root")?.unwrap_or_else(|| "/".to_owned());
    let state_dir =
        text(args, "state_dir")?.unwrap_or_else(|| crate::args::DEFAULT_STATE_DIR.to_owned());
    let diff = if want_diff {
        Some(planned_diff(&settings, Path::new(&root), &state_dir)?)
    } else {
        None
    };

    let command = if check { "plan" } else { "apply" };
    let mut argv = globals.clone();
    argv.push(command.to_owned());
    argv.extend(settings_args);
    let result = gpu_setup(&argv)?;
    let changed = result["changed"].as_bool().unwrap_or(false);
    let warnings: Vec<String> = result["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|w| w["level"] == "warning")
        .map(|w| {
            format!(
                "{}: {}",
                w["code"].as_str().unwrap_or(""),
                w["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    let files = result["files"].as_array().map_or(0, Vec::len);
    let msg = match (changed, check) {
        (false, _) => "the host is configured: nothing to change".to_owned(),
        (true, true) => format!("{files} file(s) would change (check mode)"),
        (true, false) => format!(
            "transaction {} changed {files} file(s); undo with `gpu-setup rollback {}`",
            result["transaction"], result["transaction"]
        ),
    };
    let mut v = json!({
        "changed": changed,
        "msg": msg,
        "warnings": warnings,
        "transaction": result.get("transaction").cloned().unwrap_or(Value::Null),
        "files": result["files"].clone(),
    });
    if let Some(diff) = diff {
        v["diff"] = Value::Array(diff);
    }
    Ok(v)
}

/// Runs `gpu-setup ARGS` (this same binary) and reads its one JSON object;
/// a failure becomes the module's message (with the hint).
fn gpu_setup(args: &[String]) -> Result<Value, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find gpu-setup itself: {e}"))?;
    let out = std::process::Command::new(exe)
        .args(args)
        .env_remove("GPU_SETUP_LOG")
        .output()
        .map_err(|e| format!("cannot run gpu-setup: {e}"))?;
    let result: Value = serde_json::from_slice(&out.stdout)
        .map_err(|_| String::from_utf8_lossy(&out.stderr).trim().to_owned())?;
    if !out.status.success() {
        let mut msg = result["error"]
            .as_str()
            .unwrap_or("gpu-setup failed")
            .to_owned();
        if let Some(hint) = result["hint"].as_str() {
            msg.push_str(&format!(" (hint: {hint})"));
        }
        return Err(msg);
    }
    Ok(result)
}

/// `rollback: true`: undoes the last transaction when it is an applied
/// `apply` (or `transaction: ID` when that one is still applied), and
/// otherwise changes nothing, so running the rollback playbook twice undoes
/// one transaction, not two.
fn rollback(args: &Map<String, Value>, globals: &[String], check: bool) -> Result<Value, String> {
    let settings: Vec<&str> = SETTINGS
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| args.contains_key(*n))
        .collect();
    if !settings.is_empty() {
        return Err(format!(
            "rollback takes no settings (given: {})",
            settings.join(", ")
        ));
    }
    let force = flag(args, "force")?;
    let wanted = match args.get("transaction") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .ok_or("argument transaction must be a transaction ID")?,
        ),
        Some(Value::String(s)) => Some(
            s.parse::<u64>()
                .map_err(|_| format!("argument transaction must be a transaction ID, not {s:?}"))?,
        ),
        Some(other) => {
            return Err(format!(
                "argument transaction must be a transaction ID, not {other}"
            ))
        }
    };
    let mut history_args = globals.to_vec();
    history_args.push("history".to_owned());
    let history = gpu_setup(&history_args)?;
    let txs = history["transactions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let target = match wanted {
        Some(id) => txs.iter().find(|t| t["id"] == id).cloned(),
        None => txs.first().cloned(),
    };
    let undoable = target
        .as_ref()
        .filter(|t| t["kind"] == "apply" && t["status"] == "applied");
    let Some(target) = undoable else {
        let msg = match (&target, wanted) {
            (None, Some(id)) => return Err(format!("no transaction {id} (see gpu-setup history)")),
            (None, None) => "no transaction yet: nothing to roll back".to_owned(),
            (Some(t), _) => {
                format!(
                "the last transaction ({}, {} {}) is not an applied apply: nothing to roll back",
                t["id"], t["kind"].as_str().unwrap_or(""), t["status"].as_str().unwrap_or("")
            )
            }
        };
        return Ok(json!({"changed": false, "msg": msg, "transaction": Value::Null}));
    };
    let id = target["id"].as_u64().unwrap_or_default();
    if check {
        return Ok(json!({
            "changed": true,
            "msg": format!("transaction {id} would be rolled back (check mode)"),
            "transaction": Value::Null,
        }));
    }
    let mut rollback_args = globals.to_vec();
    rollback_args.extend(["rollback".to_owned(), id.to_string()]);
    if force {
        rollback_args.push("--force".to_owned());
    }
    let result = gpu_setup(&rollback_args)?;
    Ok(json!({
        "changed": true,
        "msg": format!("rolled back transaction {id} as transaction {}", result["transaction"]),
        "transaction": result["transaction"],
        "rolled_back": id,
        "files": result["files"],
        "kept": result.get("kept").cloned().unwrap_or(Value::Null),
    }))
}

/// The settings the arguments give.
fn settings_of(args: &Map<String, Value>) -> Result<Settings, String> {
    let mut s = Settings::default();
    let get = |name: &str| text(args, name);
    s.containers_conf = get("containers_conf")?;
    s.runtime_name = get("runtime_name")?;
    s.runtime_path = get("runtime_path")?;
    s.nvidia_config = get("nvidia_config")?;
    s.hook_file = get("hook_file")?;
    s.hook_path = get("hook_path")?;
    s.cli_debug_log = get("cli_debug_log")?;
    s.runtime_debug_log = get("runtime_debug_log")?;
    s.cdi_spec = get("cdi_spec")?;
    s.nvidia_ctk = get("nvidia_ctk")?;
    s.strategy = match get("strategy")?.as_deref() {
        None => None,
        Some("hook") => Some(Strategy::Hook),
        Some("cdi") => Some(Strategy::Cdi),
        Some(other) => return Err(format!("strategy must be hook or cdi, not {other:?}")),
    };
    s.no_cgroups = get("no_cgroups")?
        .map(|v| parse_bool("no_cgroups", &v))
        .transpose()?;
    s.allow_unsafe_log_path = get("allow_unsafe_log_path")?
        .map(|v| parse_bool("allow_unsafe_log_path", &v))
        .transpose()?;
    s.follow_symlinks = get("follow_symlinks")?
        .map(|v| parse_bool("follow_symlinks", &v))
        .transpose()?;
    s.state = match get("state")?.as_deref() {
        None => None,
        Some("present") => Some(Presence::Present),
        Some("absent") => Some(Presence::Absent),
        Some(other) => return Err(format!("state must be present or absent, not {other:?}")),
    };
    Ok(s)
}

/// The plan's changes as Ansible diffs (the same plan `apply` makes, unless
/// the host changes in between).
fn planned_diff(s: &Settings, root: &Path, state_dir: &str) -> Result<Vec<Value>, String> {
    let real_root = crate::env::is_real_root(root);
    let host =
        RootFs::open(root).map_err(|e| format!("cannot open root `{}`: {e}", root.display()))?;
    let mut facts = crate::facts::versions(&host, real_root, None).map_err(|e| format!("{e:#}"))?;
    let mut desired =
        DesiredState::resolve(s, &facts).map_err(|e| gpu_setup_plan::error_text(&e))?;
    facts.packages = crate::packages::owners(&host, &desired);
    let state_dir = gpu_setup_plan::TargetPath::new(state_dir)
        .map_err(|e| format!("invalid state_dir: {}", gpu_setup_plan::error_text(&e)))?;
    let state = gpu_setup_apply::journal::StateDir::new(host.opened(), &state_dir);
    crate::cdi::prepare(&mut desired, &host, &state, real_root).map_err(|e| {
        match crate::error::hint_of(&e, false) {
            Some(hint) => format!("{e} (hint: {hint})"),
            None => e.to_string(),
        }
    })?;
    let plan = plan_with(&desired, &facts, &host).map_err(|e| gpu_setup_plan::error_text(&e))?;
    Ok(plan
        .changes
        .iter()
        .map(|c| {
            let text =
                |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
            json!({
                "before_header": c.path.as_str(),
                "after_header": c.path.as_str(),
                "before": text(c.before.bytes()),
                "after": text(c.after.as_deref()),
            })
        })
        .collect())
}

/// A string argument (numbers and booleans given unquoted are accepted as
/// their text).
fn text(args: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(format!("argument {name} must be a string, not {other}")),
    }
}

fn flag(args: &Map<String, Value>, name: &str) -> Result<bool, String> {
    text(args, name)?.map_or(Ok(false), |v| parse_bool(name, &v))
}

/// Ansible's spellings of a boolean.
fn parse_bool(name: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("argument {name} must be a boolean, not {v:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn unknown_arguments_are_named() {
        let out = run(&args(
            json!({"runtime_nmae": "x", "_ansible_check_mode": true}),
        ));
        assert_eq!(out["failed"], true);
        let msg = out["msg"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with("Unsupported parameters for (gpu_setup) module: runtime_nmae."),
            "{msg}"
        );
    }

    #[test]
    fn only_a_program_named_as_ansible_runs_it_is_a_module() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("args");
        std::fs::write(&file, r#"{"root": "/x"}"#).unwrap();
        let plan = dir.path().join("plan");
        std::fs::write(&plan, r#"{"root": "/x"}"#).unwrap();
        let argv = |program: &str, arg: &std::path::Path| {
            vec![
                std::ffi::OsString::from(program),
                arg.as_os_str().to_owned(),
            ]
        };
        assert!(arguments(&argv("/usr/bin/gpu-setup", &file)).is_none());
        assert!(arguments(&argv("/tmp/ansible-tmp-1/AnsiballZ_gpu_setup", &file)).is_some());
        assert!(arguments(&argv("library/gpu_setup", &file)).is_some());
        // A subcommand word is always a subcommand, even as a file.
        assert!(arguments(&argv("gpu_setup", std::path::Path::new("plan"))).is_none());
        assert!(is_subcommand(std::ffi::OsStr::new("history")));
        assert!(!is_subcommand(plan.as_os_str()));
    }

    #[test]
    fn bad_booleans_are_refused() {
        let out = run(&args(json!({"no_cgroups": "maybe"})));
        assert_eq!(
            out["msg"],
            "argument no_cgroups must be a boolean, not \"maybe\""
        );
    }
}
