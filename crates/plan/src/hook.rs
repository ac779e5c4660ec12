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
    fn syntax_errors_are_located() {
        let e = parse(
            &TargetPath::new("/h.json").unwrap(),
            "{\n  \"version\": \"1.0.0\",\n}\n",
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "`/h.json` line 3, column 1: trailing comma");
    }
}
