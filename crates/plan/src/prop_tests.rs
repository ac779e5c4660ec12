//! Property tests on generated TOML documents: edits touch only the lines they
//! are about, are idempotent, and removal after adding restores the bytes.

use proptest::prelude::*;
use similar::{ChangeTag, TextDiff};

use crate::containers_conf::{remove_runtime, set_runtime};
use crate::paths::TargetPath;
use crate::toml_doc::{self, Expect};

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "# [a-z =\"\\[\\]]{0,12}",
        Just("#nvidia = [\"/opt/x\"]".to_owned()),
        Just("#no-cgroups = false".to_owned()),
        "[a-z][a-z_-]{0,5} = [0-9]{1,3}",
        "[a-z][a-z_-]{0,5} = \"[a-z/ ]{0,8}\"",
        "[a-z][a-z_-]{0,5} = \\[\"[a-z/]{1,6}\"\\] # [a-z]{0,4}",
        "  [a-z][a-z_-]{0,5} = true",
        // Dotted keys (toml_edit keeps them dotted; they define tables
        // implicitly, including the ones gpu-setup edits).
        "[a-z]{1,4}\\.[a-z]{1,4} = [0-9]{1,2}",
        prop::sample::select(vec![
            "runtimes.crun = [\"/usr/bin/crun\"]",
            "engine.runtimes.crun = [\"/usr/bin/crun\"]",
            "engine.runtime = \"crun\"",
            "nvidia-container-cli.debug = \"/var/log/x.log\"",
            "nvidia-container-cli.no-cgroups = false",
            "modes.cdi.default-kind = \"nvidia.com/gpu\"",
        ])
        .prop_map(str::to_owned),
        prop::sample::select(vec![
            "[containers]",
            "[engine]",
            "[engine.runtimes]",
            "[engine.volume_plugins]",
            "[machine]",
            "[nvidia-container-cli]",
            "  [nvidia-container-runtime.modes.csv]",
        ])
        .prop_map(str::to_owned),
    ]
}

/// A document of generated lines with LF or CRLF endings, with or without a
/// final newline; only documents that parse are kept.
fn document() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(line(), 0..30),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_filter_map("must parse", |(lines, crlf, final_newline)| {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = lines.join(eol);
            if final_newline && !text.is_empty() {
                text.push_str(eol);
            }
            text.parse::<toml_edit::DocumentMut>()
                .is_ok()
                .then_some(text)
        })
}

/// Lines removed and added, compared without their line endings.
fn removed_and_added(before: &str, after: &str) -> (Vec<String>, Vec<String>) {
    let lines = |t: &str| {
        let mut t = t.replace("\r\n", "\n");
        if !t.is_empty() && !t.ends_with('\n') {
            t.push('\n');
        }
        t
    };
    let (a, b) = (lines(before), lines(after));
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    for change in TextDiff::from_lines(&a, &b).iter_all_changes() {
        let line = change.value().trim_end_matches('\n').to_owned();
        match change.tag() {
            ChangeTag::Delete => removed.push(line),
            ChangeTag::Insert => added.push(line),
            ChangeTag::Equal => {}
        }
    }
    (removed, added)
}

fn path() -> TargetPath {
    TargetPath::new("/etc/containers/containers.conf").unwrap()
}

fn runtime() -> TargetPath {
    TargetPath::new("/usr/bin/nvidia-container-runtime").unwrap()
}

/// Whether a line of `doc` is a dotted key (`a.b = 1`): toml_edit groups
/// a table's dotted keys when it writes a document, so only such documents
/// may fail to round-trip, and then gpu-setup refuses to rewrite them.
fn has_dotted_key(doc: &str) -> bool {
    doc.lines().any(|l| {
        l.split_once('=').is_some_and(|(key, _)| {
            let key = key.trim();
            !key.starts_with('#') && !key.starts_with('[') && key.contains('.')
        })
    })
}

/// An editor's result: `None` when it refused; a refusal to move lines
/// ([`crate::PlanError::Layout`]) only where a dotted key can move.
fn edited(
    doc: &str,
    result: Result<String, crate::PlanError>,
) -> Result<Option<String>, TestCaseError> {
    match result {
        Ok(after) => Ok(Some(after)),
        Err(crate::PlanError::Layout { line, text, .. }) => {
            prop_assert!(
                has_dotted_key(doc),
                "refused line {line} {text:?} of {doc:?}"
            );
            Ok(None)
        }
        Err(_) => Ok(None),
    }
}

proptest! {
    #[test]
    fn unedited_documents_keep_every_byte(doc in document()) {
        let rendered = toml_doc::parse_mut(&path(), &doc).unwrap().to_string();
        let round_trip = toml_doc::restore_layout(&doc, &rendered);
        prop_assert!(round_trip == doc || has_dotted_key(&doc), "{:?} became {:?}", doc, round_trip);
    }

    #[test]
    fn adding_the_runtime_only_adds_lines_and_is_idempotent(doc in document()) {
        // Documents where `nvidia` already exists, or a runtime table Podman
        // rejects, are covered by unit tests.
        if crate::containers_conf::view(&path(), &doc).is_err() {
            return Ok(());
        }
        let Some(after) = edited(&doc, set_runtime(&path(), &doc, "nvidia", &runtime()))? else {
            return Ok(());
        };
        let (removed, added) = removed_and_added(&doc, &after);
        if doc != after {
            prop_assert!(added.iter().any(|l| l.contains("nvidia = [\"/usr/bin/nvidia-container-runtime\"]")));
        }
        prop_assert!(
            removed.is_empty() || added.iter().any(|l| l.contains("nvidia =")),
            "removed {:?} added {:?}", removed, added
        );
        for line in &added {
            prop_assert!(
                line.contains("nvidia") || line.trim().is_empty() || line.contains("[engine.runtimes]"),
                "unexpected line {:?}", line
            );
        }
        prop_assert!(after.ends_with('\n') == (doc.ends_with('\n') || doc.is_empty()));
        prop_assert_eq!(&set_runtime(&path(), &after, "nvidia", &runtime()).unwrap(), &after);
        let v = crate::containers_conf::view(&path(), &after).unwrap();
        prop_assert_eq!(&v.runtimes["nvidia"], &vec![runtime().to_string()]);
    }

    #[test]
    fn removing_what_was_added_restores_the_document(doc in document()) {
        // A commented `#nvidia = ...` is uncommented in place: gpu-setup did
        // not create that line, so removal does not bring the comment back.
        let has_header = doc.lines().any(|l| l == "[engine.runtimes]") && !doc.contains("#nvidia");
        // Documents where `nvidia` already exists, or a runtime table Podman
        // rejects, are covered by unit tests.
        if crate::containers_conf::view(&path(), &doc).is_err() {
            return Ok(());
        }
        let Some(after) = edited(&doc, set_runtime(&path(), &doc, "nvidia", &runtime()))? else {
            return Ok(());
        };
        if has_header && after != doc {
            prop_assert_eq!(remove_runtime(&path(), &after, "nvidia").unwrap(), doc);
        }
    }

    #[test]
    fn setting_no_cgroups_touches_only_its_line(doc in document()) {
        let table = ["nvidia-container-cli"];
        let value = toml_edit::Value::from(true);
        let set = toml_doc::set(&path(), &doc, &table, "no-cgroups", value.clone(), Expect::Bool);
        let Some(after) = edited(&doc, set)? else {
            return Ok(());
        };
        let (removed, added) = removed_and_added(&doc, &after);
        for line in &removed {
            prop_assert!(line.trim_start().starts_with("#no-cgroups") || line.contains("no-cgroups"), "removed {:?}", line);
        }
        for line in &added {
            prop_assert!(
                line.contains("no-cgroups") || line.trim().is_empty() || line.contains("[nvidia-container-cli]"),
                "added {:?}", line
            );
        }
        prop_assert_eq!(
            &toml_doc::set(&path(), &after, &table, "no-cgroups", value, Expect::Bool).unwrap(),
            &after
        );
    }

    #[test]
    fn removing_no_cgroups_after_setting_it_restores_the_document(doc in document()) {
        // Only where gpu-setup creates the key: the table exists, and there
        // is no commented `#no-cgroups` line to uncomment in place.
        let has_header = doc.lines().any(|l| l == "[nvidia-container-cli]");
        if !has_header || doc.contains("no-cgroups") {
            return Ok(());
        }
        let table = ["nvidia-container-cli"];
        let value = toml_edit::Value::from(true);
        let set = toml_doc::set(&path(), &doc, &table, "no-cgroups", value, Expect::Bool);
        let Some(after) = edited(&doc, set)? else {
            return Ok(());
        };
        prop_assert_ne!(&after, &doc);
        prop_assert_eq!(toml_doc::remove(&path(), &after, &table, "no-cgroups").unwrap(), doc);
    }
}
