//! How a plan is shown: unified diffs, hashes, and the JSON report.

use serde::Serialize;
use sha2::{Digest, Sha256};
use similar::TextDiff;

use crate::plan::{Action, Change, Plan};
use crate::warnings::Warning;

/// Hex SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
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
    if let Some(whole) = replaced_whole(&before, &after, old_header, new_header) {
        return whole;
    }
    TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header(old_header, new_header)
        .to_string()
}

/// The most lines, old and new together, that differ between the common
/// head and tail of two texts before the diff stops looking for a
/// shortest edit: Myers' algorithm takes (N+M)·D steps, quadratic when a
/// large file is replaced by a small one (a 750 KB hook JSON took minutes).
pub const DIFF_LINE_LIMIT: usize = 4000;

/// Past [`DIFF_LINE_LIMIT`], the unified diff of the two texts as one
/// hunk: the common head and tail kept (3 lines of context), every line
/// between them removed and the new ones added. Linear in the size; `None`
/// below the limit.
fn replaced_whole(before: &str, after: &str, old_header: &str, new_header: &str) -> Option<String> {
    let old: Vec<&str> = before.split_inclusive('\n').collect();
    let new: Vec<&str> = after.split_inclusive('\n').collect();
    let head = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let max_tail = old.len().min(new.len()) - head;
    let tail = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take(max_tail)
        .take_while(|(a, b)| a == b)
        .count();
    let (old_mid, new_mid) = (&old[head..old.len() - tail], &new[head..new.len() - tail]);
    if old_mid.len() + new_mid.len() <= DIFF_LINE_LIMIT {
        return None;
    }
    let context = 3;
    let start = head.saturating_sub(context);
    let end_old = (old.len() - tail + context).min(old.len());
    let end_new = (new.len() - tail + context).min(new.len());
    // Unified diff ranges are 1-based; an empty range starts one earlier.
    let range = |from: usize, to: usize| {
        let len = to - from;
        let first = if len == 0 { from } else { from + 1 };
        format!("{first},{len}")
    };
    let mut out = format!(
        "--- {old_header}\n+++ {new_header}\n@@ -{} +{} @@\n",
        range(start, end_old),
        range(start, end_new)
    );
    let mut line = |prefix: char, text: &str| {
        out.push(prefix);
        out.push_str(text);
        if !text.ends_with('\n') {
            out.push_str("\n\\ No newline at end of file\n");
        }
    };
    for l in &old[start..head] {
        line(' ', l);
    }
    for l in old_mid {
        line('-', l);
    }
    for l in new_mid {
        line('+', l);
    }
    for l in &old[old.len() - tail..end_old] {
        line(' ', l);
    }
    Some(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r19_a_huge_replacement_is_one_linear_hunk_and_a_small_one_a_real_diff() {
        // 250,000 short lines (the review's 750 KB hook JSON) replaced by
        // the hook gpu-setup writes: one hunk, every old line removed.
        let old: String = (0..250_000).map(|i| format!("{i}\n")).collect();
        let new = "{\n  \"version\": \"1.0.0\"\n}\n";
        let d = text_diff(old.as_bytes(), new.as_bytes(), "a/x", "b/x");
        assert!(
            d.starts_with("--- a/x\n+++ b/x\n@@ -1,250000 +1,3 @@\n-0\n-1\n"),
            "{}",
            &d[..80]
        );
        assert!(d.ends_with("-249999\n+{\n+  \"version\": \"1.0.0\"\n+}\n"));
        // Common head and tail are context; below the limit, similar's own
        // (minimal) diff.
        let small_old = "a\nb\nc\n";
        let small_new = "a\nB\nc\n";
        assert_eq!(
            text_diff(small_old.as_bytes(), small_new.as_bytes(), "a/x", "b/x"),
            "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
        );
        let mut framed_old = String::from("h1\nh2\nh3\nh4\n");
        framed_old.push_str(&old);
        framed_old.push_str("t1\nt2");
        let framed_new = "h1\nh2\nh3\nh4\nX\nt1\nt2";
        let d = text_diff(framed_old.as_bytes(), framed_new.as_bytes(), "a", "b");
        assert!(
            d.starts_with("--- a\n+++ b\n@@ -2,250005 +2,6 @@\n h2\n h3\n h4\n-0\n"),
            "{}",
            &d[..60]
        );
        assert!(
            d.ends_with("+X\n t1\n t2\n\\ No newline at end of file\n"),
            "{}",
            &d[d.len() - 60..]
        );
    }
}
