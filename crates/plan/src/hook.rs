//! The NVIDIA OCI hook file: built from the embedded template, compared with
//! what is on disk by meaning (whitespace and key order do not matter).

use serde::Serialize;
use serde_json::Value;

use crate::error::PlanError;
use crate::paths::TargetPath;

/// The hook template shipped in `templates/oci-nvidia-hook.json`.
pub const TEMPLATE: &str = include_str!("../../../templates/oci-nvidia-hook.json");

/// The hook JSON gpu-setup wants: the template with `hook.path` set to
/// `hook_path` and `argv[0]` (`hook.args[0]`) to its file name, as NVIDIA's
/// own hook files do.
pub fn desired(hook_path: &TargetPath) -> Value {
    // The template is part of the binary and checked by a unit test.
    let mut v: Value = serde_json::from_str(TEMPLATE).unwrap_or(Value::Null);
    if let Some(hook) = v.get_mut("hook").and_then(Value::as_object_mut) {
        hook.insert(
            "path".to_owned(),
            Value::String(hook_path.as_str().to_owned()),
        );
        if let Some(argv0) = hook.get_mut("args").and_then(|a| a.get_mut(0)) {
            *argv0 = Value::String(hook_path.file_name().to_owned());
        }
    }
    v
}

/// The executable `have` runs when it is `want` but for its executable
/// (`hook.path`) and `argv[0]` (`hook.args[0]`): the same stages, `when`,
/// environment, timeout and other arguments. `None` otherwise.
pub fn same_but_executable(have: &Value, want: &Value) -> Option<String> {
    let exe = have.get("hook")?.get("path")?.as_str()?.to_owned();
    let want_hook = want.get("hook")?;
    let mut norm = have.clone();
    let hook = norm.get_mut("hook")?.as_object_mut()?;
    hook.insert("path".to_owned(), want_hook.get("path")?.clone());
    *hook.get_mut("args")?.get_mut(0)? = want_hook.get("args")?.get(0)?.clone();
    (norm == *want).then_some(exe)
}

/// The text of a new hook file: the template with `hook.path` replaced, so
/// the file keeps the template's layout (NVIDIA's own).
pub fn render_desired(hook_path: &TargetPath) -> String {
    let want = desired(hook_path);
    let default_path = crate::paths::well_known::DEFAULT_HOOK_PATH;
    let default_argv0 = format!("[\"{}\",", default_path.rsplit('/').next().unwrap_or(""));
    let quoted = |s: &str| Value::String(s.to_owned()).to_string();
    let text = TEMPLATE
        .replacen(
            &format!("\"{default_path}\""),
            &quoted(hook_path.as_str()),
            1,
        )
        .replacen(
            &default_argv0,
            &format!("[{},", quoted(hook_path.file_name())),
            1,
        );
    match serde_json::from_str::<Value>(&text) {
        Ok(v) if v == want => text,
        _ => render(&want),
    }
}

/// Renders hook JSON with a 4-space indent and a final newline.
pub fn render(v: &Value) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    // Serialising a Value into memory cannot fail.
    let _ = v.serialize(&mut ser);
    let mut s = String::from_utf8(out).unwrap_or_default();
    s.push('\n');
    s
}

/// Parses an existing hook file, locating syntax errors.
pub fn parse(path: &TargetPath, text: &str) -> Result<Value, PlanError> {
    serde_json::from_str(text).map_err(|e| PlanError::Syntax {
        path: path.clone(),
        line: e.line().max(1),
        column: e.column().max(1),
        message: strip_position(&e.to_string()),
        language: "JSON",
    })
}

/// A hook file as Podman reads it (containers/common `pkg/hooks`), both
/// schemas brought to the 1.0.0 shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookInfo {
    /// `1.0.0`, or `0.1.0` for the old schema (`version` absent, empty or
    /// `"0.1.0"`).
    pub schema: &'static str,
    /// The executable (`hook.path`, or `hook` in 0.1.0).
    pub executable: String,
    /// Its arguments, `argv[0]` first (empty: none given).
    pub args: Vec<String>,
    /// Its environment.
    pub env: Vec<String>,
    /// The stages it runs in.
    pub stages: Vec<String>,
    /// `when.always`.
    pub always: Option<bool>,
    /// `when.commands` (regular expressions).
    pub commands: Vec<String>,
    /// `when.annotations` (regular expressions, key to value).
    pub annotations: Vec<(String, String)>,
    /// `when.hasBindMounts`.
    pub has_bind_mounts: Option<bool>,
    /// 0.1.0 hooks match when any condition does (1.0.0: all).
    pub any_of: bool,
}

/// Why Podman will not load a hook file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookError {
    /// The file is invalid: Podman refuses to create containers while it
    /// is in a hooks dir (unless an earlier file of the dir only lacks its
    /// executable: [`crate::doctor`] explains).
    Invalid(String),
    /// `hook.path` does not exist: Podman skips the hook (the error is an
    /// `os.ErrNotExist`, which it ignores).
    MissingExecutable(String),
}

impl std::fmt::Display for HookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HookError::Invalid(m) => f.write_str(m),
            HookError::MissingExecutable(p) => {
                write!(f, "its executable `{p}` does not exist, so Podman skips it")
            }
        }
    }
}

/// The stages Podman accepts: the OCI ones (1.0.0 `Validate`) and the
/// extension stages Podman passes (`precreate`, and `poststop` again).
pub const STAGES: [&str; 7] = [
    "createContainer",
    "createRuntime",
    "prestart",
    "poststart",
    "poststop",
    "startContainer",
    "precreate",
];

type Object = serde_json::Map<String, Value>;

/// A field of a JSON object as Go's `encoding/json` finds it: the key
/// matched without regard to ASCII case, the last match winning; JSON
/// `null` is as good as absent.
fn field<'a>(obj: &'a Object, name: &str) -> Option<&'a Value> {
    obj.iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .next_back()
        .filter(|v| !v.is_null())
}

fn string(obj: &Object, name: &str, shown: &str) -> Result<Option<String>, String> {
    match field(obj, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("`{shown}` must be a string")),
    }
}

/// A string array (`None` when absent or null: Go's nil slice; a null
/// element is an empty string, as Go decodes it).
fn strings(obj: &Object, name: &str, shown: &str) -> Result<Option<Vec<String>>, String> {
    match field(obj, name) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                Value::Null => Ok(String::new()),
                _ => Err(format!("`{shown}` must hold only strings")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(format!("`{shown}` must be an array of strings")),
    }
}

fn boolean(obj: &Object, name: &str, shown: &str) -> Result<Option<bool>, String> {
    match field(obj, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("`{shown}` must be true or false")),
    }
}

fn object<'a>(obj: &'a Object, name: &str, shown: &str) -> Result<Option<&'a Object>, String> {
    match field(obj, name) {
        None => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(format!("`{shown}` must be an object")),
    }
}

/// Reads a hook file the way Podman does (`pkg/hooks/read.go` `read`):
/// the JSON, the version (`"1.0.0"`; `"0.1.0"`, empty or absent for the
/// old schema), then the schema's fields with their types. What it returns
/// still has to pass [`validate`].
pub fn read(path: &TargetPath, text: &str) -> Result<(HookInfo, bool), String> {
    let v = parse(path, text).map_err(|e| e.to_string())?;
    let obj = v.as_object().ok_or("the file is not a JSON object")?;
    let version = string(obj, "version", "version")
        .map_err(|_| "version check: `version` must be a string".to_owned())?
        .unwrap_or_default();
    match version.as_str() {
        "1.0.0" => read_1_0_0(obj),
        "0.1.0" | "" => read_0_1_0(obj),
        other => Err(format!("unrecognized hook version: {other:?}")),
    }
}

/// Returns the hook, and whether `stages` was given at all (a missing or
/// null `stages` is an error of [`validate`]; `[]` is valid).
fn read_1_0_0(obj: &Object) -> Result<(HookInfo, bool), String> {
    let empty = Object::new();
    let hook = object(obj, "hook", "hook")?.unwrap_or(&empty);
    let executable = string(hook, "path", "hook.path")?.unwrap_or_default();
    let args = strings(hook, "args", "hook.args")?.unwrap_or_default();
    let env = strings(hook, "env", "hook.env")?.unwrap_or_default();
    // `timeout` is an int; Podman does not range-check it.
    match field(hook, "timeout") {
        None => {}
        Some(Value::Number(n)) if n.as_i64().is_some() => {}
        Some(_) => return Err("`hook.timeout` must be an integer".to_owned()),
    }
    let when = object(obj, "when", "when")?.unwrap_or(&empty);
    let always = boolean(when, "always", "when.always")?;
    let has_bind_mounts = boolean(when, "hasBindMounts", "when.hasBindMounts")?;
    let commands = strings(when, "commands", "when.commands")?.unwrap_or_default();
    let annotations = match object(when, "annotations", "when.annotations")? {
        None => Vec::new(),
        Some(a) => a
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Null => Ok((k.clone(), String::new())),
                _ => Err("`when.annotations` values must be strings".to_owned()),
            })
            .collect::<Result<_, _>>()?,
    };
    let stages = strings(obj, "stages", "stages")?;
    let given = stages.is_some();
    Ok((
        HookInfo {
            schema: "1.0.0",
            executable,
            args,
            env,
            stages: stages.unwrap_or_default(),
            always,
            commands,
            annotations,
            has_bind_mounts,
            any_of: false,
        },
        given,
    ))
}

/// The 0.1.0 schema (`pkg/hooks/0.1.0/hook.go`): `hook` (required),
/// `arguments`, `stage`/`stages`, `cmd`/`cmds`,
/// `annotation`/`annotations` (setting both of a pair is an error),
/// `hasbindmounts`; any one condition is enough.
fn read_0_1_0(obj: &Object) -> Result<(HookInfo, bool), String> {
    let hook = string(obj, "hook", "hook")?.ok_or("missing required property: hook")?;
    let arguments = strings(obj, "arguments", "arguments")?;
    let pair = |a: &str, b: &str| -> Result<Option<Vec<String>>, String> {
        match (strings(obj, b, b)?, strings(obj, a, a)?) {
            (Some(_), Some(_)) => Err(format!("cannot set both '{a}' and '{b}'")),
            (plural, single) => Ok(plural.or(single)),
        }
    };
    let stages = pair("stage", "stages")?.ok_or("missing required property: stages")?;
    let commands = pair("cmd", "cmds")?.unwrap_or_default();
    let annotations = pair("annotation", "annotations")?
        .map(|a| vec![(".*".to_owned(), a.join("|"))])
        .unwrap_or_default();
    let args = match arguments {
        Some(a) => std::iter::once(hook.clone()).chain(a).collect(),
        None => Vec::new(),
    };
    Ok((
        HookInfo {
            schema: "0.1.0",
            executable: hook,
            args,
            env: Vec::new(),
            stages,
            always: None,
            commands,
            annotations,
            has_bind_mounts: boolean(obj, "hasbindmounts", "hasbindmounts")?,
            any_of: true,
        },
        true,
    ))
}

fn regex(pattern: &str, what: &str) -> Result<(), String> {
    regex::Regex::new(pattern)
        .map(drop)
        .map_err(|e| format!("invalid {what} {pattern:?}: {e}"))
}

/// Validates a hook file in the order Podman does (`pkg/hooks/1.0.0/
/// hook.go` `Validate`): the executable path is given, it exists (asked of
/// `exists`: a missing one makes Podman skip the hook), the annotation and
/// command regular expressions compile, `stages` is given (`[]` is
/// valid) and names known stages. `timeout` is not range-checked.
pub fn validate(
    path: &TargetPath,
    text: &str,
    exists: &dyn Fn(&str) -> bool,
) -> Result<HookInfo, HookError> {
    let (info, stages_given) = read(path, text).map_err(HookError::Invalid)?;
    let invalid = |m: String| HookError::Invalid(m);
    if info.executable.is_empty() {
        return Err(invalid("missing required property: hook.path".to_owned()));
    }
    if !exists(&info.executable) {
        return Err(HookError::MissingExecutable(info.executable));
    }
    for (k, v) in &info.annotations {
        regex(k, "annotation key").map_err(invalid)?;
        regex(v, "annotation value").map_err(invalid)?;
    }
    for c in &info.commands {
        regex(c, "command").map_err(invalid)?;
    }
    if !stages_given {
        return Err(invalid("missing required property: stages".to_owned()));
    }
    if let Some(s) = info.stages.iter().find(|s| !STAGES.contains(&s.as_str())) {
        return Err(invalid(format!(
            "unknown stage {s:?} (known: {})",
            STAGES.join(", ")
        )));
    }
    Ok(info)
}

/// serde_json appends " at line L column C"; we report those separately.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_the_documented_hook() {
        let v = desired(&TargetPath::new("/usr/bin/nvidia-container-toolkit").unwrap());
        let expected: Value = serde_json::from_str(
            r#"{"version": "1.0.0",
                "hook": {"path": "/usr/bin/nvidia-container-toolkit",
                         "args": ["nvidia-container-toolkit", "prestart"],
                         "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
                "when": {"always": true, "commands": [".*"]},
                "stages": ["prestart"]}"#,
        )
        .unwrap();
        assert_eq!(v, expected);
        assert_eq!(
            parse(&TargetPath::new("/h.json").unwrap(), &render(&v)).unwrap(),
            v
        );
        assert_eq!(
            render_desired(&TargetPath::new("/usr/bin/nvidia-container-toolkit").unwrap()),
            TEMPLATE
        );
    }

    #[test]
    fn other_hook_paths_keep_the_template_layout() {
        let odd = TargetPath::new("/opt/nv \"hook\"").unwrap();
        let text = render_desired(&odd);
        let expected = TEMPLATE
            .replace(
                "\"/usr/bin/nvidia-container-toolkit\"",
                r#""/opt/nv \"hook\"""#,
            )
            .replace("[\"nvidia-container-toolkit\",", r#"["nv \"hook\"","#);
        assert_eq!(text, expected);
        assert_eq!(
            parse(&TargetPath::new("/h.json").unwrap(), &text).unwrap(),
            desired(&odd)
        );
    }

    fn ok(text: &str) -> HookInfo {
        validate(&TargetPath::new("/h.json").unwrap(), text, &|_| true).unwrap()
    }

    fn bad(text: &str) -> String {
        validate(&TargetPath::new("/h.json").unwrap(), text, &|_| true)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn hooks_are_validated_like_podman_does() {
        // containers/common v0.64.1 pkg/hooks/read.go, 1.0.0/hook.go,
        // 0.1.0/hook.go.
        let t = ok(TEMPLATE);
        assert_eq!(
            (t.schema, t.executable.as_str()),
            ("1.0.0", "/usr/bin/nvidia-container-toolkit")
        );
        assert_eq!(t.stages, ["prestart"]);
        assert_eq!(t.args, ["nvidia-container-toolkit", "prestart"]);
        // Old schema: no version, "", or "0.1.0"; `stage`/`stages`,
        // `cmd`/`cmds`; any stage Podman knows.
        for version in ["", r#""version": "", "#, r#""version": "0.1.0", "#] {
            let old = ok(&format!(
                r#"{{{version}"hook": "/usr/bin/x", "stage": ["prestart", "createRuntime"], "cmd": [".*"]}}"#
            ));
            assert_eq!(
                (old.schema, old.executable.as_str()),
                ("0.1.0", "/usr/bin/x")
            );
            assert!(old.any_of);
        }
        assert_eq!(
            ok(r#"{"hook": "/x", "stages": ["poststop"], "arguments": ["a"]}"#).args,
            ["/x", "a"]
        );
        assert_eq!(
            bad(r#"{"hook": "/x", "stage": ["prestart"], "stages": ["prestart"]}"#),
            "cannot set both 'stage' and 'stages'"
        );
        assert_eq!(
            bad(r#"{"hook": "/x", "stages": ["prestart"], "cmd": [], "cmds": []}"#),
            "cannot set both 'cmd' and 'cmds'"
        );
        assert_eq!(
            bad(r#"{"stage": ["prestart"]}"#),
            "missing required property: hook"
        );
        // `precreate` is one of Podman's extension stages; `[]` is valid.
        assert_eq!(
            ok(r#"{"version": "1.0.0", "hook": {"path": "/x"}, "stages": ["precreate"]}"#).stages,
            ["precreate"]
        );
        assert!(
            ok(r#"{"version": "1.0.0", "hook": {"path": "/x"}, "stages": []}"#)
                .stages
                .is_empty()
        );
        // Keys match without regard to case (Go's encoding/json).
        let shouty = ok(
            r#"{"VERSION": "1.0.0", "Hook": {"PATH": "/x"}, "When": {"Always": true}, "STAGES": ["prestart"]}"#,
        );
        assert_eq!(
            (shouty.executable.as_str(), shouty.always),
            ("/x", Some(true))
        );
        // `timeout` is not range-checked, but must be an integer.
        assert!(
            ok(r#"{"version": "1.0.0", "hook": {"path": "/x", "timeout": -1}, "stages": []}"#)
                .stages
                .is_empty()
        );
        assert_eq!(
            bad(r#"{"version": "1.0.0", "hook": {"path": "/x", "timeout": 1.5}, "stages": []}"#),
            "`hook.timeout` must be an integer"
        );
        assert_eq!(bad("[]"), "the file is not a JSON object");
        assert_eq!(
            bad(r#"{"version": "2.0.0"}"#),
            "unrecognized hook version: \"2.0.0\""
        );
        assert_eq!(
            bad(r#"{"version": "1.0.0", "hook": {}, "stages": ["prestart"]}"#),
            "missing required property: hook.path"
        );
        assert_eq!(
            bad(r#"{"version": "1.0.0", "hook": {"path": "/x"}}"#),
            "missing required property: stages"
        );
        assert_eq!(
            bad(r#"{"version": "1.0.0", "hook": {"path": "/x"}, "stages": null}"#),
            "missing required property: stages"
        );
        assert!(
            bad(r#"{"version": "1.0.0", "hook": {"path": "/x"}, "stages": ["prestrat"]}"#)
                .starts_with("unknown stage \"prestrat\"")
        );
        assert!(bad(r#"{"version": "1.0.0", "hook": {"path": "/x"}, "when": {"commands": ["("]}, "stages": ["prestart"]}"#).starts_with("invalid command \"(\""));
        assert_eq!(
            bad(
                r#"{"version": "1.0.0", "hook": {"path": "/x"}, "when": {"always": "yes"}, "stages": []}"#
            ),
            "`when.always` must be true or false"
        );
        assert_eq!(
            bad("{"),
            "`/h.json` line 1, column 1: EOF while parsing an object"
        );
    }

    #[test]
    fn a_missing_executable_comes_before_later_checks() {
        // 1.0.0 Validate: path empty, path exists, regexes, stages: a hook
        // whose executable is missing is skipped even if its stages are bad.
        let e = validate(
            &TargetPath::new("/h.json").unwrap(),
            r#"{"version": "1.0.0", "hook": {"path": "/gone"}, "stages": ["nope"]}"#,
            &|_| false,
        )
        .unwrap_err();
        assert_eq!(e, HookError::MissingExecutable("/gone".into()));
    }

    #[test]
    fn syntax_errors_are_located() {
        let e = parse(
            &TargetPath::new("/h.json").unwrap(),
            "{\n  \"version\": \"1.0.0\",\n}\n",
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "`/h.json` line 3, column 1: trailing comma");
    }
}
