//! Ansible module mode. Ansible runs a binary module with one argument: a
//! file holding a JSON object of arguments. gpu-setup then runs the same
//! engine as its commands, in process (plan in check mode, else apply; or
//! rollback), and prints exactly one JSON object: `changed`, `failed` (on
//! error), `msg`, `warnings`, `transaction`, and with `_ansible_diff` a
//! `diff` list of `{before, after, before_header, after_header}`.

use std::path::{Path, PathBuf};

use gpu_setup_apply::journal::{Status, TxKind};
use gpu_setup_plan::settings::{Kind, Setting, SETTINGS};
use gpu_setup_plan::Settings;
use serde_json::{json, Map, Value};

use crate::args::{ColorChoice, Format, GlobalArgs};
use crate::printer::{Printer, TxReport};

/// The module arguments that are settings (the one declaration of each:
/// [`gpu_setup_plan::settings::SETTINGS`]).
fn settings() -> impl Iterator<Item = &'static Setting> {
    SETTINGS.iter().filter(|s| s.module)
}
/// Arguments that are global options.
const GLOBALS: &[&str] = &["root", "state_dir", "profile"];
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
    // `help` too: clap's word for help, whether or not it is a subcommand.
    word.starts_with('-')
        || word == "help"
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
        .filter(|k| !settings().any(|s| s.key == *k) && !GLOBALS.contains(k))
        .filter(|k| !ROLLBACK.contains(k))
        .collect();
    if !unknown.is_empty() {
        let mut supported: Vec<&str> = settings()
            .map(|s| s.key)
            .chain(GLOBALS.iter().copied())
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
    let g = globals(args)?;
    // The engine's own output is the module's JSON: nothing else is printed.
    let printer = Printer::new(Format::Json, ColorChoice::Never, true, true);
    if flag(args, "rollback")? {
        return rollback(args, &g, &printer, check);
    }
    for key in ["transaction", "force"] {
        if args.contains_key(key) {
            return Err(format!("argument {key} needs rollback: true"));
        }
    }
    // Checked here, with the module's own messages, before anything runs.
    // The arguments overlay the profile: the host's own (under `root`)
    // unless `profile` names another, as for the commands.
    let wanted = crate::commands::Wanted {
        profile: match text(args, "profile")? {
            Some(p) => crate::commands::Profile::File(PathBuf::from(p)),
            None => crate::commands::Profile::Host,
        },
        flags: settings_of(args)?,
    };
    let (plan, manifest, recovered) = if check {
        let p = crate::commands::planned(&g, &wanted, None, &printer).map_err(message)?;
        (p.plan, None, Vec::new())
    } else {
        let a = crate::commands::applied(&g, &wanted, None, &printer).map_err(message)?;
        (a.plan, a.manifest, a.recovered)
    };
    let changed = !plan.is_empty();
    let warnings: Vec<String> = plan
        .warnings
        .iter()
        .filter(|w| w.level == gpu_setup_plan::Level::Warning)
        .map(|w| format!("{}: {}", w.code, w.message))
        .collect();
    let files = match &manifest {
        Some(_) => TxReport {
            plan: &plan,
            manifest: manifest.as_ref(),
            recovered: &recovered,
            kept: &[],
        }
        .json()["files"]
            .clone(),
        None => serde_json::to_value(gpu_setup_plan::PlanReport::new(&plan))
            .map_err(|e| e.to_string())?["files"]
            .clone(),
    };
    let count = plan.changes.len();
    let transaction = manifest.as_ref().map(|m| m.id);
    let msg = match (changed, transaction) {
        (false, _) => "the host is configured: nothing to change".to_owned(),
        (true, None) => format!("{count} file(s) would change (check mode)"),
        (true, Some(id)) => {
            format!("transaction {id} changed {count} file(s); undo with `gpu-setup rollback {id}`")
        }
    };
    let mut v = json!({
        "changed": changed,
        "msg": msg,
        "warnings": warnings,
        "transaction": transaction,
        "files": files,
    });
    if want_diff {
        v["diff"] = Value::Array(diff_of(&plan));
    }
    Ok(v)
}

/// The global options the arguments give (`root`, `state_dir`).
fn globals(args: &Map<String, Value>) -> Result<GlobalArgs, String> {
    let root = text(args, "root")?.unwrap_or_else(|| "/".to_owned());
    let state_dir = text(args, "state_dir")?
        .unwrap_or_else(|| gpu_setup_plan::well_known::DEFAULT_STATE_DIR.to_owned());
    // Checked with the module's own words (the engine would say
    // `--state-dir`, a flag the module does not have).
    gpu_setup_plan::TargetPath::new(&state_dir)
        .map_err(|e| format!("invalid state_dir: {}", gpu_setup_plan::error_text(&e)))?;
    Ok(GlobalArgs {
        root: PathBuf::from(root),
        format: Format::Json,
        color: ColorChoice::Never,
        quiet: true,
        log_level: crate::args::LogLevel::Warn,
        state_dir,
        lock_timeout: 30,
    })
}

/// An engine error as the module's message, with its hint.
fn message(e: anyhow::Error) -> String {
    match crate::error::hint_of(&e, false) {
        Some(hint) => format!("{e} (hint: {hint})"),
        None => e.to_string(),
    }
}

/// `rollback: true`: undoes the last transaction when it is an applied
/// `apply` (or `transaction: ID` when that one is still applied), and
/// otherwise changes nothing, so running the rollback playbook twice undoes
/// one transaction, not two.
fn rollback(
    args: &Map<String, Value>,
    g: &GlobalArgs,
    printer: &Printer,
    check: bool,
) -> Result<Value, String> {
    let given: Vec<&str> = settings()
        .map(|s| s.key)
        .filter(|n| args.contains_key(*n))
        .collect();
    if !given.is_empty() {
        return Err(format!(
            "rollback takes no settings (given: {})",
            given.join(", ")
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
    let history = crate::commands::history(g).map_err(message)?;
    let target = match wanted {
        Some(id) => history.iter().find(|t| t.id == id),
        None => history.first(),
    };
    let undoable = target.filter(|t| t.kind == TxKind::Apply && t.status == Status::Applied);
    let Some(target) = undoable else {
        let msg = match (target, wanted) {
            (None, Some(id)) => return Err(format!("no transaction {id} (see gpu-setup history)")),
            (None, None) => "no transaction yet: nothing to roll back".to_owned(),
            (Some(t), _) => format!(
                "the last transaction ({}, {} {}) is not an applied apply: nothing to roll back",
                t.id,
                t.kind.as_str(),
                t.status.as_str()
            ),
        };
        return Ok(json!({"changed": false, "msg": msg, "transaction": Value::Null}));
    };
    let id = target.id;
    if check {
        return Ok(json!({
            "changed": true,
            "msg": format!("transaction {id} would be rolled back (check mode)"),
            "transaction": Value::Null,
        }));
    }
    let r = crate::commands::rolled_back(g, Some(id), force, printer).map_err(message)?;
    let report = TxReport {
        plan: &r.plan,
        manifest: Some(&r.manifest),
        recovered: &r.recovered,
        kept: &r.kept,
    }
    .json();
    Ok(json!({
        "changed": true,
        "msg": format!("rolled back transaction {id} as transaction {}", r.manifest.id),
        "transaction": r.manifest.id,
        "rolled_back": id,
        "files": report["files"],
        "kept": report.get("kept").cloned().unwrap_or(Value::Null),
    }))
}

/// The settings the arguments give. Booleans take Ansible's spellings.
fn settings_of(args: &Map<String, Value>) -> Result<Settings, String> {
    let mut out = Settings::default();
    for s in settings() {
        let Some(mut value) = text(args, s.key)? else {
            continue;
        };
        if matches!(s.kind, Kind::Bool | Kind::Switch) {
            value = parse_bool(s.key, &value)?.to_string();
        }
        out.set(s.key, &value).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// The plan's changes as Ansible diffs.
fn diff_of(plan: &gpu_setup_plan::Plan) -> Vec<Value> {
    plan.changes
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
        .collect()
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
    fn r20_only_a_program_named_as_ansible_runs_it_is_a_module() {
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
        assert!(is_subcommand(std::ffi::OsStr::new("help")));
        assert!(arguments(&argv("gpu_setup", std::path::Path::new("help"))).is_none());
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
