//! containers.conf: the runtime entry gpu-setup manages, and what the other
//! containers.conf files Podman reads say about runtimes and hooks dirs.

use std::collections::{BTreeMap, BTreeSet};

use toml_edit::{Array, Value};

use crate::error::PlanError;
use crate::paths::TargetPath;
use crate::toml_doc::{self, Expect};

/// The drop-in template shipped in `templates/99-nvidia.conf`.
pub const DROPIN_TEMPLATE: &str = include_str!("../../../templates/99-nvidia.conf");

const RUNTIMES: [&str; 2] = ["engine", "runtimes"];
const RUNTIMES_FLAGS: [&str; 2] = ["engine", "runtimes_flags"];
const ENGINE: [&str; 1] = ["engine"];

/// Whether `path` is a drop-in (lives in a `containers.conf.d` directory).
pub fn is_dropin(path: &TargetPath) -> bool {
    path.parent()
        .is_some_and(|d| d.file_name().ends_with("containers.conf.d"))
}

/// Sets `[engine.runtimes] name = [runtime_path]`.
pub(crate) fn set_runtime(
    path: &TargetPath,
    text: &str,
    name: &str,
    runtime_path: &TargetPath,
) -> Result<String, PlanError> {
    let mut paths = Array::new();
    paths.push(runtime_path.as_str());
    toml_doc::set(
        path,
        text,
        &RUNTIMES,
        name,
        Value::Array(paths),
        Expect::StrArray,
    )
}

/// Removes the runtime entry `name`, and its `[engine.runtimes_flags]`
/// entry in the same file: Podman 5.7+ refuses flags for a runtime that
/// has no entry (every podman command fails).
pub(crate) fn remove_runtime(
    path: &TargetPath,
    text: &str,
    name: &str,
) -> Result<String, PlanError> {
    // Reading first reports a malformed table instead of skipping it.
    view(path, text)?;
    let text = toml_doc::remove(path, text, &RUNTIMES, name)?;
    toml_doc::remove(path, &text, &RUNTIMES_FLAGS, name)
}

/// Whether the file sets anything at all once comments are ignored.
pub(crate) fn has_settings(path: &TargetPath, text: &str) -> Result<bool, PlanError> {
    Ok(toml_doc::has_values(
        toml_doc::parse_mut(path, text)?.as_table(),
    ))
}

/// A string array that may carry an `append` attribute
/// (`["/x", {append=true}]`, Podman 4.8+).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttrSlice {
    /// The strings, in order.
    pub values: Vec<String>,
    /// The `append` attribute, when the array sets one.
    pub append: Option<bool>,
}

/// What one containers.conf says about the settings gpu-setup cares about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfView {
    /// `[engine.runtimes]`: name -> candidate paths.
    pub runtimes: BTreeMap<String, Vec<String>>,
    /// `[engine.runtimes_flags]` names (Podman 5.7+).
    pub runtimes_flags: BTreeSet<String>,
    /// `[engine] hooks_dir`, when set.
    pub hooks_dir: Option<AttrSlice>,
    /// `[engine] cdi_spec_dirs`, when set (honoured by Podman 5.5+).
    pub cdi_spec_dirs: Option<AttrSlice>,
    /// `[engine] runtime`, when set.
    pub default_runtime: Option<String>,
}

fn attr_slice(v: &Value) -> AttrSlice {
    let mut out = AttrSlice::default();
    for item in v.as_array().into_iter().flatten() {
        if let Some(s) = item.as_str() {
            out.values.push(s.to_owned());
        } else if let Some(t) = item.as_inline_table() {
            if let Some(b) = t.get("append").and_then(Value::as_bool) {
                out.append = Some(b);
            }
        }
    }
    out
}

/// The keys of a table at `keys`, checking it is a table.
fn table_keys(
    path: &TargetPath,
    text: &str,
    doc: &toml_edit::Document<&str>,
    keys: &[&str],
) -> Result<Vec<String>, PlanError> {
    let Some(engine) = doc.get(keys[0]).and_then(|e| e.as_table_like()) else {
        return Ok(Vec::new());
    };
    match engine.get(keys[1]) {
        Some(r) => match r.as_table_like() {
            Some(t) => Ok(t.iter().map(|(k, _)| k.to_owned()).collect()),
            None => Err(toml_doc::wrong_type(
                path,
                text,
                keys,
                "a table",
                r.type_name(),
            )),
        },
        None => Ok(Vec::new()),
    }
}

/// Reads the runtime table, `hooks_dir`, `cdi_spec_dirs`, the runtime flags
/// and the default runtime, checking their types the way Podman does (a
/// wrong type breaks every podman command). String arrays may carry an
/// `{append=true}` table (Podman 4.8+; older versions reject it, which the
/// warnings and `doctor` report for a known version).
pub fn view(path: &TargetPath, text: &str) -> Result<ConfView, PlanError> {
    // Read-only: the spanned parse, without the editable document's
    // clean-up pass (this runs on every containers.conf Podman reads).
    let doc = toml_doc::parse_spanned(path, text)?;
    let mut out = ConfView::default();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    for (key, slot) in [
        ("hooks_dir", &mut out.hooks_dir),
        ("cdi_spec_dirs", &mut out.cdi_spec_dirs),
    ] {
        if let Some(v) = toml_doc::get(
            path,
            text,
            doc.as_item(),
            &ENGINE,
            key,
            Expect::AttrStrArray,
        )? {
            *slot = Some(attr_slice(v));
        }
    }
    if let Some(v) = toml_doc::get(path, text, doc.as_item(), &ENGINE, "runtime", Expect::Str)? {
        out.default_runtime = v.as_str().map(str::to_owned);
    }
    for name in table_keys(path, text, &doc, &RUNTIMES)? {
        if let Some(v) = toml_doc::get(
            path,
            text,
            doc.as_item(),
            &RUNTIMES,
            &name,
            Expect::StrArray,
        )? {
            out.runtimes.insert(name, strings(v));
        }
    }
    for name in table_keys(path, text, &doc, &RUNTIMES_FLAGS)? {
        toml_doc::get(
            path,
            text,
            doc.as_item(),
            &RUNTIMES_FLAGS,
            &name,
            Expect::StrArray,
        )?;
        out.runtimes_flags.insert(name);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> TargetPath {
        TargetPath::new("/etc/containers/containers.conf").unwrap()
    }
    fn rt() -> TargetPath {
        TargetPath::new("/usr/bin/nvidia-container-runtime").unwrap()
    }
    fn add(text: &str) -> String {
        set_runtime(&p(), text, "nvidia", &rt()).unwrap()
    }
    const ENTRY: &str = "nvidia = [\"/usr/bin/nvidia-container-runtime\"]";

    #[test]
    fn table_absent() {
        assert_eq!(
            add("[engine]\ncgroup_manager = \"systemd\"\n"),
            format!("[engine]\ncgroup_manager = \"systemd\"\n\n[engine.runtimes]\n{ENTRY}\n")
        );
        assert_eq!(
            add("[containers]\nlog_driver = \"k8s-file\"\n"),
            format!("[containers]\nlog_driver = \"k8s-file\"\n\n[engine.runtimes]\n{ENTRY}\n")
        );
    }

    #[test]
    fn table_present_but_empty_or_only_comments() {
        assert_eq!(
            add("[engine.runtimes]\n\n[machine]\ncpus = 1\n"),
            format!("[engine.runtimes]\n{ENTRY}\n\n[machine]\ncpus = 1\n")
        );
        let stock = "[engine.runtimes]\n#crun = [\n#  \"/usr/bin/crun\",\n#]\n\n[engine.volume_plugins]\n#x = \"y\"\n\n[machine]\n";
        assert_eq!(
            add(stock),
            format!("[engine.runtimes]\n{ENTRY}\n#crun = [\n#  \"/usr/bin/crun\",\n#]\n\n[engine.volume_plugins]\n#x = \"y\"\n\n[machine]\n")
        );
    }

    #[test]
    fn table_with_entries_appends_after_them() {
        assert_eq!(
            add("[engine.runtimes]\nrunc = [\"/usr/bin/runc\"]\n# trailing\n\n[machine]\n"),
            format!(
                "[engine.runtimes]\nrunc = [\"/usr/bin/runc\"]\n{ENTRY}\n# trailing\n\n[machine]\n"
            )
        );
    }

    #[test]
    fn dotted_keys_and_inline_tables() {
        assert_eq!(
            add("[engine]\nruntimes.runc = [\"/usr/bin/runc\"]\n"),
            format!("[engine]\nruntimes.runc = [\"/usr/bin/runc\"]\nruntimes.{ENTRY}\n")
        );
        let out = add("[engine]\nruntimes = { runc = [\"/usr/bin/runc\"] }\n");
        let v = view(&p(), &out).unwrap();
        assert_eq!(v.runtimes["nvidia"], ["/usr/bin/nvidia-container-runtime"]);
        assert_eq!(v.runtimes["runc"], ["/usr/bin/runc"]);
        assert_eq!(out.lines().count(), 2);
    }

    #[test]
    fn existing_entry_with_other_paths_is_replaced_keeping_comments() {
        let text =
            "[engine.runtimes]\n# the GPU runtime\nnvidia = [\"/opt/old\"] # keep me\nrunc = []\n";
        assert_eq!(
            add(text),
            format!("[engine.runtimes]\n# the GPU runtime\n{ENTRY} # keep me\nrunc = []\n")
        );
    }

    #[test]
    fn configured_file_is_unchanged() {
        let text = format!("[engine.runtimes]\n{ENTRY}\n");
        assert_eq!(add(&text), text);
        let spaced = "[engine.runtimes]\nnvidia=[ '/usr/bin/nvidia-container-runtime', ]\n";
        assert_eq!(add(spaced), spaced);
    }

    #[test]
    fn empty_file_crlf_and_no_final_newline() {
        assert_eq!(add(""), format!("[engine.runtimes]\n{ENTRY}\n"));
        assert_eq!(
            add("[engine]\r\nx = 1\r\n\r\n[engine.runtimes]\r\nrunc = []"),
            format!("[engine]\r\nx = 1\r\n\r\n[engine.runtimes]\r\nrunc = []\r\n{ENTRY}")
        );
    }

    #[test]
    fn wrong_types_are_errors() {
        let e = set_runtime(&p(), "[engine]\nruntimes = 5\n", "nvidia", &rt()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`/etc/containers/containers.conf` line 2, column 12: `engine.runtimes` must be a table, found integer"
        );
        let e =
            set_runtime(&p(), "[engine.runtimes]\nnvidia = \"x\"\n", "nvidia", &rt()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`/etc/containers/containers.conf` line 2, column 10: `engine.runtimes.nvidia` must be an array of strings, found string"
        );
        let e = set_runtime(&p(), "engine = 1\n", "nvidia", &rt()).unwrap_err();
        assert!(
            e.to_string()
                .contains("`engine` must be a table, found integer"),
            "{e}"
        );
    }

    #[test]
    fn append_attributes_are_valid_arrays() {
        // containers/common v0.57.0 internal/attributedstring: a table
        // {append=true} anywhere in the array (Podman 4.8+).
        let v = view(&p(), "[engine]\nhooks_dir = [\"/x\", {append=true}]\ncdi_spec_dirs = [{append = false}, \"/y\"]\n").unwrap();
        assert_eq!(
            v.hooks_dir,
            Some(AttrSlice {
                values: vec!["/x".into()],
                append: Some(true)
            })
        );
        assert_eq!(
            v.cdi_spec_dirs,
            Some(AttrSlice {
                values: vec!["/y".into()],
                append: Some(false)
            })
        );
        let e = view(&p(), "[engine]\nhooks_dir = [\"/x\", {prepend=true}]\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`/etc/containers/containers.conf` line 2, column 13: `engine.hooks_dir` must be an array of strings (optionally with {append=true}), found array"
        );
    }

    #[test]
    fn removing_a_runtime_removes_its_flags_in_the_same_file() {
        // Podman 5.7+: runtimes_flags.NAME without runtimes.NAME fails
        // validation for every podman command.
        let text = format!("[engine.runtimes]\n{ENTRY}\n\n[engine.runtimes_flags]\nnvidia = [\"--debug\"]\nrunc = []\n");
        let out = remove_runtime(&p(), &text, "nvidia").unwrap();
        assert_eq!(
            out,
            "[engine.runtimes]\n\n[engine.runtimes_flags]\nrunc = []\n"
        );
        assert_eq!(
            view(&p(), &text)
                .unwrap()
                .runtimes_flags
                .into_iter()
                .collect::<Vec<_>>(),
            ["nvidia", "runc"]
        );
    }

    #[test]
    fn removal_keeps_everything_else() {
        let text = format!("[engine.runtimes]\nrunc = []\n{ENTRY}\n# after\n");
        assert_eq!(
            remove_runtime(&p(), &text, "nvidia").unwrap(),
            "[engine.runtimes]\nrunc = []\n# after\n"
        );
        assert_eq!(
            remove_runtime(&p(), "[engine]\n", "nvidia").unwrap(),
            "[engine]\n"
        );
        assert!(!has_settings(&p(), DROPIN_TEMPLATE).unwrap());
        assert!(has_settings(&p(), &add(DROPIN_TEMPLATE)).unwrap());
    }
}
