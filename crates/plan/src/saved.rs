//! A plan saved to a file by `gpu-setup plan --out FILE`, for
//! `gpu-setup apply FILE`: each file's expected state before (hash, mode,
//! owner) and its exact new content.

use serde::{Deserialize, Serialize};

use crate::desired::Settings;
use crate::observe::Observed;
use crate::paths::TargetPath;
use crate::plan::{Action, Plan};
use crate::render::sha256;
use crate::warnings::Warning;

/// The `format` of files this build writes and reads.
pub const SAVED_PLAN_FORMAT: &str = "gpu-setup-plan/2";

/// What a file must be when the saved plan is applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedBefore {
    /// SHA-256 of the content.
    pub sha256: String,
    /// Permission bits.
    pub mode: u32,
    /// The owning user, when planned.
    pub uid: u32,
    /// The owning group, when planned.
    pub gid: u32,
}

/// One planned change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedChange {
    /// The file, as the host sees it.
    pub path: TargetPath,
    /// Create, modify or delete.
    pub action: Action,
    /// The file when the plan was made; `null` when it did not exist.
    pub before: Option<SavedBefore>,
    /// The new content; `null` when the file is deleted.
    pub after: Option<String>,
    /// Why the file changes, one line each, as the plan shows them.
    pub reasons: Vec<String>,
}

/// A saved plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    /// Always [`SAVED_PLAN_FORMAT`].
    pub format: String,
    /// The `--root` it was made for.
    pub root: String,
    /// The settings it was made from, every one spelled out: `apply FILE`
    /// plans again from them and refuses a plan whose changes differ (an
    /// edited plan, or one for files gpu-setup does not manage).
    pub settings: Settings,
    /// The changes, in order.
    pub changes: Vec<SavedChange>,
    /// The plan's warnings.
    pub warnings: Vec<Warning>,
}

/// Why a saved plan cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SavedPlanError {
    /// Not JSON, or not a plan.
    #[error("`{file}` is not a gpu-setup plan: line {line}, column {column}: {message}")]
    Syntax {
        /// The plan file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the JSON reader said.
        message: String,
    },
    /// Written by another version of gpu-setup.
    #[error("`{file}` has format `{found}`; this gpu-setup reads `{SAVED_PLAN_FORMAT}`")]
    Format {
        /// The plan file.
        file: String,
        /// The format it declares.
        found: String,
    },
    /// A change's action does not fit its before and after.
    #[error("`{file}`: the change of `{path}` is inconsistent ({action} with before {has_before} and after {has_after})")]
    Inconsistent {
        /// The plan file.
        file: String,
        /// The changed path.
        path: TargetPath,
        /// The recorded action.
        action: &'static str,
        /// Whether a before state is recorded.
        has_before: bool,
        /// Whether new content is recorded.
        has_after: bool,
    },
    /// A planned content is not UTF-8 (gpu-setup only plans text).
    #[error("the planned content of `{0}` is not UTF-8 text")]
    NotText(TargetPath),
}

impl SavedPlan {
    /// The saved form of `plan`, made for `root` from `settings`.
    pub fn new(plan: &Plan, root: &str, settings: Settings) -> Result<Self, SavedPlanError> {
        let mut changes = Vec::with_capacity(plan.changes.len());
        for c in &plan.changes {
            let before = match &c.before {
                Observed::Absent => None,
                Observed::File {
                    bytes,
                    mode,
                    uid,
                    gid,
                } => Some(SavedBefore {
                    sha256: sha256(bytes),
                    mode: *mode,
                    uid: *uid,
                    gid: *gid,
                }),
            };
            let after = c
                .after
                .as_ref()
                .map(|b| String::from_utf8(b.clone()))
                .transpose()
                .map_err(|_| SavedPlanError::NotText(c.path.clone()))?;
            changes.push(SavedChange {
                path: c.path.clone(),
                action: c.action,
                before,
                after,
                reasons: c.reasons.clone(),
            });
        }
        Ok(SavedPlan {
            format: SAVED_PLAN_FORMAT.to_owned(),
            root: root.to_owned(),
            settings,
            changes,
            warnings: plan.warnings.clone(),
        })
    }

    /// The plan as pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Reads a saved plan; `file` names it in errors.
    pub fn from_json(file: &str, text: &str) -> Result<Self, SavedPlanError> {
        let saved: SavedPlan = serde_json::from_str(text).map_err(|e| SavedPlanError::Syntax {
            file: file.to_owned(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        if saved.format != SAVED_PLAN_FORMAT {
            return Err(SavedPlanError::Format {
                file: file.to_owned(),
                found: saved.format,
            });
        }
        for c in &saved.changes {
            let ok = matches!(
                (c.action, c.before.is_some(), c.after.is_some()),
                (Action::Create, false, true)
                    | (Action::Modify, true, true)
                    | (Action::Delete, true, false)
            );
            if !ok {
                return Err(SavedPlanError::Inconsistent {
                    file: file.to_owned(),
                    path: c.path.clone(),
                    action: c.action.as_str(),
                    has_before: c.before.is_some(),
                    has_after: c.after.is_some(),
                });
            }
        }
        Ok(saved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Change;

    fn sample() -> Plan {
        Plan {
            changes: vec![
                Change {
                    path: TargetPath::new("/etc/a.conf").unwrap(),
                    action: Action::Modify,
                    before: Observed::File {
                        bytes: b"a = 1\n".to_vec(),
                        mode: 0o640,
                        uid: 0,
                        gid: 4,
                    },
                    after: Some(b"a = 2\n".to_vec()),
                    reasons: vec!["why".to_owned()],
                },
                Change {
                    path: TargetPath::new("/etc/b.json").unwrap(),
                    action: Action::Create,
                    before: Observed::Absent,
                    after: Some(b"{}\n".to_vec()),
                    reasons: vec![],
                },
            ],
            warnings: vec![],
            packages: Vec::new(),
        }
    }

    #[test]
    fn round_trips() {
        let saved = SavedPlan::new(&sample(), "/", Settings::default()).unwrap();
        let back = SavedPlan::from_json("p.json", &saved.to_json()).unwrap();
        assert_eq!(back, saved);
        let before = back.changes[0].before.as_ref().unwrap();
        assert_eq!((before.mode, before.gid), (0o640, 4));
        assert_eq!(before.sha256, sha256(b"a = 1\n"));
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let err = SavedPlan::from_json("p.json", "{\n  \"format\": 3,\n}").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`p.json` is not a gpu-setup plan: line 2, column"),
            "{err}"
        );
        let mut saved = SavedPlan::new(&sample(), "/", Settings::default()).unwrap();
        saved.format = "gpu-setup-plan/9".to_owned();
        let err = SavedPlan::from_json("p.json", &saved.to_json()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`p.json` has format `gpu-setup-plan/9`; this gpu-setup reads `gpu-setup-plan/2`"
        );
        let mut saved = SavedPlan::new(&sample(), "/", Settings::default()).unwrap();
        saved.changes[1].after = None;
        let err = SavedPlan::from_json("p.json", &saved.to_json()).unwrap_err();
        assert!(err.to_string().contains("inconsistent (create"), "{err}");
    }
}
