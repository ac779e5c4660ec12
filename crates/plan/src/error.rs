//! Errors of the planning crate. Every variant names the file it is about.

use std::io;

use crate::paths::{PathError, TargetPath};

/// A failure to observe the host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObserveError {
    /// A directory or device sits where a regular file is needed.
    #[error("`{path}` is not a regular file")]
    NotAFile {
        /// The path as the host sees it.
        path: TargetPath,
    },
    /// A file sits where a directory is needed.
    #[error("`{path}` is not a directory")]
    NotADirectory {
        /// The path as the host sees it.
        path: TargetPath,
    },
    /// A managed path gpu-setup refuses to write through (a symbolic link
    /// out of the root, or one another user controls).
    #[error("{message}")]
    Unsafe {
        /// The link, as the host sees it.
        path: TargetPath,
        /// What is wrong, naming the link.
        message: String,
        /// What to do about it.
        hint: String,
    },
    /// A file larger than gpu-setup reads.
    #[error("`{path}` is {size} bytes, more than the {limit} bytes gpu-setup reads")]
    TooLarge {
        /// The path as the host sees it.
        path: TargetPath,
        /// Its size (or what was read of it).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Any other I/O failure.
    #[error("cannot read `{path}`")]
    Io {
        /// The path as the host sees it.
        path: TargetPath,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl ObserveError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ObserveError::NotAFile { path } => Some(format!(
                "move `{path}` out of the way or point gpu-setup at another file"
            )),
            ObserveError::NotADirectory { path } => {
                Some(format!("`{path}` must be a directory: move the file away"))
            }
            ObserveError::Io { source, .. } if source.kind() == io::ErrorKind::PermissionDenied => {
                Some("run as root (or with sudo) to read system configuration".to_owned())
            }
            ObserveError::Io { .. } => None,
            ObserveError::TooLarge { path, .. } => Some(format!(
                "no configuration file gpu-setup reads is this large: check what wrote `{path}` (the limit is in docs/security.md)"
            )),
            ObserveError::Unsafe { hint, .. } => Some(hint.clone()),
        }
    }
}

/// A failure to plan.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The host could not be read.
    #[error(transparent)]
    Observe(#[from] ObserveError),
    /// A file does not parse.
    #[error("`{path}` line {line}, column {column}: {message}")]
    Syntax {
        /// The file.
        path: TargetPath,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
        /// Which language the file is in (`TOML`, `JSON`).
        language: &'static str,
    },
    /// A file gpu-setup would have to rewrite with some line moved: toml_edit
    /// groups a table's dotted keys, so one whose table continues after
    /// other lines does not come back where it was.
    #[error("`{path}` line {line}, column 1: editing this file would move `{text}`, a dotted key toml_edit regroups with the rest of its table; gpu-setup edits only where no other line moves")]
    Layout {
        /// The file.
        path: TargetPath,
        /// 1-based line of the first line that would move.
        line: usize,
        /// That line.
        text: String,
    },
    /// A value on a path gpu-setup reads or edits has the wrong type.
    #[error("`{path}` line {line}, column {column}: `{key}` must be {expected}, found {found}")]
    WrongType {
        /// The file.
        path: TargetPath,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Dotted key path, e.g. `engine.runtimes.nvidia`.
        key: String,
        /// What gpu-setup (and Podman or NVIDIA) need.
        expected: &'static str,
        /// What the file holds.
        found: String,
    },
    /// A file is not valid UTF-8.
    #[error("`{path}` line {line}, column {column}: invalid UTF-8")]
    InvalidUtf8 {
        /// The file.
        path: TargetPath,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// A debug log path sits in a directory others can write to, or one
    /// not owned by root.
    #[error("debug log `{log}` is unsafe: `{dir}` is {}", unsafe_dir(*.mode, *.uid))]
    UnsafeLogPath {
        /// The log path.
        log: TargetPath,
        /// The offending directory.
        dir: TargetPath,
        /// Its permission bits.
        mode: u32,
        /// Its owner.
        uid: u32,
    },
    /// A setting is invalid.
    #[error("invalid {setting}: {message}")]
    Setting {
        /// Which setting (`--runtime-name`, `hook_path` ...).
        setting: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A path setting is invalid.
    #[error("invalid {setting}")]
    Path {
        /// Which setting.
        setting: &'static str,
        /// What is wrong.
        #[source]
        source: PathError,
    },
    /// The host's Podman (or toolkit) cannot use what the settings ask
    /// for; nothing is planned.
    #[error("{message}")]
    Unsupported {
        /// What cannot work, and why (with the version and its source).
        message: String,
        /// What to do instead.
        hint: String,
    },
    /// An edit produced a file that does not mean what was intended. This is
    /// a bug in gpu-setup; nothing was written.
    #[error("internal error editing `{path}`: {message}")]
    Internal {
        /// The file.
        path: TargetPath,
        /// What went wrong.
        message: String,
    },
}

impl PlanError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            PlanError::Observe(e) => e.hint(),
            PlanError::Syntax { path, language, .. } => Some(format!(
                "fix the {language} syntax in `{path}` ({} rejects it too), then run gpu-setup again",
                reader_of(path)
            )),
            PlanError::Layout { path, text, .. } => Some(format!(
                "write `{text}` under its table's `[header]` instead of as a dotted key (or keep a table's dotted keys together), then run gpu-setup again; `{path}` is unchanged"
            )),
            PlanError::WrongType { path, key, .. } => Some(format!(
                "fix or remove `{key}` in `{path}`; gpu-setup does not overwrite values it does not understand"
            )),
            PlanError::InvalidUtf8 { path, .. } => {
                Some(format!("convert `{path}` to UTF-8; TOML and JSON files must be UTF-8"))
            }
            PlanError::UnsafeLogPath { .. } => Some(
                "the NVIDIA runtime opens its log as root without O_NOFOLLOW: use a root-only directory such as /var/log, or pass --allow-unsafe-log-path".to_owned(),
            ),
            PlanError::Setting { .. } | PlanError::Path { .. } => {
                Some("see `gpu-setup plan --help` for the accepted values".to_owned())
            }
            PlanError::Unsupported { hint, .. } => Some(hint.clone()),
            PlanError::Internal { .. } => Some(
                "please report this bug with the file attached; use --containers-conf to choose another file meanwhile".to_owned(),
            ),
        }
    }
}

/// The program that reads a managed file, by its kind.
fn reader_of(path: &TargetPath) -> &'static str {
    let name = path.file_name();
    if name.ends_with(".toml") {
        "the NVIDIA Container Toolkit"
    } else {
        // containers.conf files, hook JSON and CDI specs.
        "Podman"
    }
}

/// An error and its causes on one line (`cannot read `x`: Permission
/// denied`), for places that show an error without its chain.
pub fn error_text(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

fn unsafe_dir(mode: u32, uid: u32) -> String {
    if mode & 0o022 != 0 {
        format!("writable by group or others (mode {mode:04o})")
    } else {
        format!("owned by user {uid}, not root")
    }
}

/// 1-based line and column (in characters) of a byte offset in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Decodes a file as UTF-8 or reports where it is not.
pub(crate) fn decode<'a>(path: &TargetPath, bytes: &'a [u8]) -> Result<&'a str, PlanError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        // The prefix is valid UTF-8 by construction.
        let text = std::str::from_utf8(good).unwrap_or("");
        let (line, column) = line_col(text, text.len());
        PlanError::InvalidUtf8 {
            path: path.clone(),
            line,
            column,
        }
    })
}
