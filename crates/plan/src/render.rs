//! How a plan is shown: unified diffs, hashes, and the JSON report.

use serde::Serialize;
use sha2::{Digest, Sha256};
use similar::TextDiff;

use crate::plan::{Action, Change, Plan};
use crate::warnings::Warning;

/// Hex SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The unified diff of one change, with `a/` and `b/` headers like git
/// (`/dev/null` for a created or deleted file).
pub fn unified_diff(change: &Change) -> String {
    let path = change.path.as_str();
    let old = match change.action {
        Action::Create => "/dev/null".to_owned(),
        _ => format!("a{path}"),
    };
    let new = match change.action {
        Action::Delete => "/dev/null".to_owned(),
        _ => format!("b{path}"),
    };
    text_diff(
        change.before.bytes().unwrap_or_default(),
        change.after.as_deref().unwrap_or_default(),
        &old,
        &new,
    )
}

/// The unified diff from `before` to `after` with the given header names
/// (invalid UTF-8 is shown lossily).
pub fn text_diff(before: &[u8], after: &[u8], old_header: &str, new_header: &str) -> String {
    let before = String::from_utf8_lossy(before);
    let after = String::from_utf8_lossy(after);
    TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header(old_header, new_header)
        .to_string()
}

/// One file in the JSON report.
#[derive(Debug, Serialize)]
pub struct FileReport {
    /// The file, as the host sees it.
    pub path: String,
    /// create, modify or delete.
    pub action: Action,
    /// Hash of the current content; `null` when the file does not exist.
    pub before_sha256: Option<String>,
    /// Hash of the new content; `null` when the file is deleted.
    pub after_sha256: Option<String>,
    /// Why the file changes.
    pub reasons: Vec<String>,
    /// Unified diff.
    pub diff: String,
    /// The package that owns the file, when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<crate::packages::Owner>,
}

/// The JSON form of a plan.
#[derive(Debug, Serialize)]
pub struct PlanReport<'a> {
    /// Whether anything would change.
    pub changed: bool,
    /// The files that would change.
    pub files: Vec<FileReport>,
    /// What would still be wrong.
    pub warnings: &'a [Warning],
    /// Every managed file a package owns (changed or not).
    pub packages: &'a [crate::packages::Owner],
}

impl<'a> PlanReport<'a> {
    /// Builds the report of `plan`.
    pub fn new(plan: &'a Plan) -> Self {
        PlanReport {
            changed: !plan.is_empty(),
            files: plan
                .changes
                .iter()
                .map(|c| FileReport {
                    path: c.path.to_string(),
                    action: c.action,
                    before_sha256: c.before.bytes().map(sha256),
                    after_sha256: c.after.as_deref().map(sha256),
                    reasons: c.reasons.clone(),
                    diff: unified_diff(c),
                    package: plan.packages.iter().find(|o| o.path == c.path).cloned(),
                })
                .collect(),
            warnings: &plan.warnings,
            packages: &plan.packages,
        }
    }
}
