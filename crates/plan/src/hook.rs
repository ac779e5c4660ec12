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

/// What a valid hook file runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookInfo {
    /// `1.0.0`, or `0.1.0` for the old schema (no `version`).
    pub schema: &'static str,
    /// The executable (`hook.path`, or `hook` in 0.1.0).
    pub executable: String,
    /// The stages it runs in.
    pub stages: Vec<String>,
}

const STAGES_1_0_0: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];
const STAGES_0_1_0: [&str; 3] = ["prestart", "poststart", "poststop"];

/// Validates a hook file the way Podman reads it (oci-hooks(5), containers/
/// common `pkg/hooks`): schema 1.0.0, or the old 0.1.0 schema when there is
/// no `version`. An invalid hook file makes Podman refuse to create any
/// container. Whether the executable exists is not checked here (Podman
/// skips such a hook quietly).
pub fn validate(path: &TargetPath, text: &str) -> Result<HookInfo, String> {
    let v = parse(path, text).map_err(|e| e.to_string())?;
    let obj = v.as_object().ok_or("the file is not a JSON object")?;
    match obj.get("version") {
        Some(Value::String(s)) if s == "1.0.0" => validate_1_0_0(obj),
        Some(other) => Err(format!(
            "unexpected hook version {other} (expecting \"1.0.0\")"
        )),
        None => validate_0_1_0(obj),
    }
}

type Object = serde_json::Map<String, Value>;

fn strings<'a>(obj: &'a Object, key: &str, what: &str) -> Result<Vec<&'a str>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().ok_or(format!("`{what}` must hold only strings")))
            .collect(),
        Some(_) => Err(format!("`{what}` must be an array of strings")),
    }
}

fn boolean(obj: &Object, key: &str, what: &str) -> Result<(), String> {
    match obj.get(key) {
        None | Some(Value::Null) | Some(Value::Bool(_)) => Ok(()),
        Some(_) => Err(format!("`{what}` must be true or false")),
    }
}

fn regex(pattern: &str, what: &str) -> Result<(), String> {
    regex::Regex::new(pattern)
        .map(drop)
        .map_err(|e| format!("`{what}` holds an invalid regular expression {pattern:?}: {e}"))
}

fn stages(list: Vec<&str>, valid: &[&str], key: &str) -> Result<Vec<String>, String> {
    if list.is_empty() {
        return Err(format!("missing required property: {key}"));
    }
    for s in &list {
        if !valid.contains(s) {
            return Err(format!("unknown stage {s:?} (known: {})", valid.join(", ")));
        }
    }
    Ok(list.into_iter().map(str::to_owned).collect())
}

fn validate_1_0_0(obj: &Object) -> Result<HookInfo, String> {
    let hook = match obj.get("hook") {
        Some(Value::Object(h)) => h,
        Some(_) => return Err("`hook` must be an object".to_owned()),
        None => return Err("missing required property: hook".to_owned()),
    };
    let executable = match hook.get("path") {
        Some(Value::String(p)) if !p.is_empty() => p.clone(),
        Some(Value::String(_)) | None => {
            return Err("missing required property: hook.path".to_owned())
        }
        Some(_) => return Err("`hook.path` must be a string".to_owned()),
    };
    strings(hook, "args", "hook.args")?;
    strings(hook, "env", "hook.env")?;
    match hook.get("timeout") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64().is_some_and(|t| t > 0) => {}
        Some(_) => return Err("`hook.timeout` must be a positive integer".to_owned()),
    }
    match obj.get("when") {
        None | Some(Value::Null) => {}
        Some(Value::Object(when)) => {
            boolean(when, "always", "when.always")?;
            boolean(when, "hasBindMounts", "when.hasBindMounts")?;
            for c in strings(when, "commands", "when.commands")? {
                regex(c, "when.commands")?;
            }
            match when.get("annotations") {
                None | Some(Value::Null) => {}
                Some(Value::Object(a)) => {
                    for (k, v) in a {
                        regex(k, "when.annotations")?;
                        regex(
                            v.as_str()
                                .ok_or("`when.annotations` values must be strings")?,
                            "when.annotations",
                        )?;
                    }
                }
                Some(_) => return Err("`when.annotations` must be an object".to_owned()),
            }
        }
        Some(_) => return Err("`when` must be an object".to_owned()),
    }
    let stages = stages(strings(obj, "stages", "stages")?, &STAGES_1_0_0, "stages")?;
    Ok(HookInfo {
        schema: "1.0.0",
        executable,
        stages,
    })
}

fn validate_0_1_0(obj: &Object) -> Result<HookInfo, String> {
    let executable = match obj.get("hook") {
        Some(Value::String(p)) if !p.is_empty() => p.clone(),
        Some(Value::String(_)) | None => return Err("missing required property: hook".to_owned()),
        Some(_) => return Err("`hook` must be a string (schema 0.1.0, no `version`)".to_owned()),
    };
    strings(obj, "arguments", "arguments")?;
    for key in ["cmd", "cmds"] {
        for c in strings(obj, key, key)? {
            regex(c, key)?;
        }
    }
    for key in ["annotation", "annotations"] {
        for a in strings(obj, key, key)? {
            regex(a, key)?;
        }
    }
    boolean(obj, "hasbindmounts", "hasbindmounts")?;
    let stages = stages(strings(obj, "stage", "stage")?, &STAGES_0_1_0, "stage")?;
    Ok(HookInfo {
        schema: "0.1.0",
        executable,
        stages,
    })
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

    #[test]
    fn hooks_are_validated_like_podman_does() {
        let p = TargetPath::new("/h.json").unwrap();
        let ok = validate(&p, TEMPLATE).unwrap();
        assert_eq!(ok.schema, "1.0.0");
        assert_eq!(ok.executable, "/usr/bin/nvidia-container-toolkit");
        assert_eq!(ok.stages, ["prestart"]);
        let old = validate(
            &p,
            r#"{"hook": "/usr/bin/x", "stage": ["prestart"], "cmd": [".*"]}"#,
        )
        .unwrap();
        assert_eq!(
            (old.schema, old.executable.as_str()),
            ("0.1.0", "/usr/bin/x")
        );
        let bad = |text: &str| validate(&p, text).unwrap_err();
        assert_eq!(bad("[]"), "the file is not a JSON object");
        assert_eq!(
            bad(r#"{"version": "2.0.0"}"#),
            "unexpected hook version \"2.0.0\" (expecting \"1.0.0\")"
        );
        assert_eq!(
            bad(r#"{"version": "1.0.0", "hook": {}, "stages": ["prestart"]}"#),
            "missing required property: hook.path"
        );
        assert_eq!(
            bad(r#"{"version": "1.0.0", "hook": {"path": "/x"}, "stages": []}"#),
            "missing required property: stages"
        );
        assert!(
            bad(r#"{"version": "1.0.0", "hook": {"path": "/x"}, "stages": ["prestrat"]}"#)
                .starts_with("unknown stage \"prestrat\"")
        );
        assert!(bad(
            r#"{"version": "1.0.0", "hook": {"path": "/x"}, "when": {"commands": ["("]}, "stages": ["prestart"]}"#
        )
        .starts_with("`when.commands` holds an invalid regular expression \"(\""));
        assert_eq!(
            bad(
                r#"{"version": "1.0.0", "hook": {"path": "/x", "timeout": -1}, "stages": ["prestart"]}"#
            ),
            "`hook.timeout` must be a positive integer"
        );
        assert_eq!(
            bad(r#"{"stage": ["prestart"]}"#),
            "missing required property: hook"
        );
        assert_eq!(
            bad("{"),
            "`/h.json` line 1, column 1: EOF while parsing an object"
        );
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
