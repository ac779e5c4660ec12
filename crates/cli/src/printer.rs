//! The only place gpu-setup writes to stdout and stderr: plans, warnings and
//! errors, as text (coloured on a terminal) or JSON.

use std::io::{self, IsTerminal, Write};

use anstyle::{AnsiColor, Style};
use gpu_setup_apply::journal::{FileRecord, Manifest, TxKind};
use gpu_setup_plan::doctor::{Check, Report, Status};
use gpu_setup_plan::{unified_diff, Action, HealMode, Level, Plan, PlanReport, Warning};
use serde::Serialize;

use crate::args::{ColorChoice, Format};

/// Writes everything the user sees, to its two writers: the process's
/// stdout and stderr, or memory (tests see the whole output of both).
#[derive(Debug, Clone)]
pub struct Printer {
    format: Format,
    /// Colour on stdout (the diffs, the tables).
    color: bool,
    /// Colour on stderr (warnings, notes, errors), decided by its own
    /// terminal.
    err_color: bool,
    /// `--quiet`: errors only.
    quiet: bool,
    /// Where stdout's text goes.
    out: Sink,
    /// Where stderr's text goes.
    err: Sink,
}

/// One of the printer's two writers.
#[derive(Debug, Clone)]
enum Sink {
    /// The process's own stream (stdout or stderr).
    Stream {
        /// stderr rather than stdout.
        stderr: bool,
        /// Whether it is a terminal (JSON is pretty there, compact
        /// elsewhere: one journald record per heal run).
        terminal: bool,
    },
    /// A buffer, read back with [`Captured`].
    Memory(std::sync::Arc<std::sync::Mutex<Vec<u8>>>),
}

impl Sink {
    fn stream(stderr: bool) -> Self {
        let terminal = if stderr {
            io::stderr().is_terminal()
        } else {
            io::stdout().is_terminal()
        };
        Sink::Stream { stderr, terminal }
    }

    fn terminal(&self) -> bool {
        matches!(self, Sink::Stream { terminal: true, .. })
    }

    fn writer(&self) -> Box<dyn Write + '_> {
        match self {
            Sink::Stream { stderr: false, .. } => Box::new(io::stdout().lock()),
            Sink::Stream { stderr: true, .. } => Box::new(io::stderr().lock()),
            Sink::Memory(buf) => Box::new(MemoryWriter(buf)),
        }
    }
}

/// Appends to a [`Sink::Memory`] buffer.
struct MemoryWriter<'a>(&'a std::sync::Mutex<Vec<u8>>);

impl Write for MemoryWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("output buffer poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a printer made with [`Printer::in_memory`] wrote, per stream.
#[derive(Debug, Clone)]
pub struct Captured {
    out: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    err: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Captured {
    /// Everything written to stdout and to stderr, as text.
    pub fn text(&self) -> (String, String) {
        let read = |b: &std::sync::Mutex<Vec<u8>>| {
            String::from_utf8_lossy(&b.lock().map(|v| v.clone()).unwrap_or_default()).into_owned()
        };
        (read(&self.out), read(&self.err))
    }
}

fn paint_if(on: bool, style: Style, text: &str) -> String {
    if on {
        format!("{}{text}{}", style.render(), style.render_reset())
    } else {
        text.to_owned()
    }
}

const BOLD: Style = Style::new().bold();
const RED: Style = AnsiColor::Red.on_default();
const GREEN: Style = AnsiColor::Green.on_default();
const CYAN: Style = AnsiColor::Cyan.on_default();
const YELLOW: Style = AnsiColor::Yellow.on_default().bold();
const RED_BOLD: Style = AnsiColor::Red.on_default().bold();

impl Printer {
    /// A printer for `format`, colouring per `color`, `NO_COLOR` and whether
    /// stdout is a terminal.
    pub fn new(format: Format, color: ColorChoice, no_color_env: bool, quiet: bool) -> Self {
        // Decided per stream: `gpu-setup plan 2> log` on a terminal keeps
        // escape codes out of the log and colours the diff.
        let on = |terminal: bool| match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => !no_color_env && terminal,
        };
        let (out, err) = (Sink::stream(false), Sink::stream(true));
        Printer {
            format,
            color: on(out.terminal()),
            err_color: on(err.terminal()),
            quiet,
            out,
            err,
        }
    }

    /// A printer writing to memory, not a terminal: `color` on both
    /// streams or neither.
    pub fn in_memory(format: Format, color: bool, quiet: bool) -> (Self, Captured) {
        let captured = Captured {
            out: std::sync::Arc::default(),
            err: std::sync::Arc::default(),
        };
        let printer = Printer {
            format,
            color,
            err_color: color,
            quiet,
            out: Sink::Memory(captured.out.clone()),
            err: Sink::Memory(captured.err.clone()),
        };
        (printer, captured)
    }

    /// stdout's writer.
    fn out(&self) -> Box<dyn Write + '_> {
        self.out.writer()
    }

    /// stderr's writer.
    fn err(&self) -> Box<dyn Write + '_> {
        self.err.writer()
    }

    /// The output format.
    pub fn format(&self) -> Format {
        self.format
    }

    fn paint(&self, style: Style, text: &str) -> String {
        paint_if(self.color, style, text)
    }

    /// [`Printer::paint`] for what goes to stderr.
    fn paint_err(&self, style: Style, text: &str) -> String {
        paint_if(self.err_color, style, text)
    }

    /// Prints a plan: diffs on stdout, warnings on stderr (text), or one
    /// JSON object on stdout.
    pub fn plan(&self, plan: &Plan) -> io::Result<()> {
        if self.quiet {
            return Ok(());
        }
        match self.format {
            Format::Json => self.json(&PlanReport::new(plan)),
            Format::Text => {
                self.changes(plan)?;
                self.warnings(&plan.warnings)?;
                writeln!(clean(self.out()), "{}", summary(plan))
            }
        }
    }

    /// The plan `apply` is about to carry out (text only: JSON prints one
    /// object at the end).
    pub fn plan_preview(&self, plan: &Plan) -> io::Result<()> {
        if self.quiet {
            return Ok(());
        }
        match self.format {
            Format::Json => Ok(()),
            Format::Text => self.plan(plan),
        }
    }

    fn changes(&self, plan: &Plan) -> io::Result<()> {
        // Buffered: one write for the whole report, not one per line.
        let mut out = io::BufWriter::new(clean(self.out()));
        for change in &plan.changes {
            let header = format!("{} {}", change.action.as_str(), change.path);
            writeln!(out, "{}", self.paint(BOLD, &header))?;
            for reason in &change.reasons {
                writeln!(out, "  # {reason}")?;
            }
            for line in unified_diff(change).lines() {
                writeln!(out, "{}", self.diff_line(line))?;
            }
            writeln!(out)?;
        }
        out.flush()
    }

    /// The result of `apply`: in text, the plan was shown already (or is
    /// shown now when there was nothing to do); in JSON, one object.
    pub fn applied(&self, report: &TxReport<'_>) -> io::Result<()> {
        if self.quiet {
            return Ok(());
        }
        match (self.format, report.manifest) {
            (Format::Json, _) => self.json(&report.json()),
            (Format::Text, None) => self.plan(report.plan),
            (Format::Text, Some(m)) => {
                let line = format!(
                    "Applied transaction {}: {}. Undo with `gpu-setup rollback {}`.",
                    m.id,
                    counts(report.plan),
                    m.id
                );
                writeln!(clean(self.out()), "{}", self.paint(BOLD, &line))
            }
        }
    }

    /// The result of `heal`: `absent` says why there was nothing to heal
    /// towards; in report mode `plan` is what would change; in apply mode
    /// `manifest` is the heal transaction, when one ran.
    pub fn healed(
        &self,
        plan: &Plan,
        manifest: Option<&Manifest>,
        mode: HealMode,
        absent: Option<&str>,
    ) -> io::Result<()> {
        if self.quiet {
            return Ok(());
        }
        let mode_name = match mode {
            HealMode::Apply => "apply",
            HealMode::Report => "report",
        };
        if self.format == Format::Json {
            let mut v = match mode {
                HealMode::Report if absent.is_none() => {
                    serde_json::to_value(PlanReport::new(plan)).unwrap_or_default()
                }
                _ => TxReport {
                    plan,
                    manifest,
                    recovered: &[],
                    kept: &[],
                }
                .json(),
            };
            v["heal"] = serde_json::json!({
                "mode": mode_name,
                "pending": mode == HealMode::Report && !plan.is_empty(),
                "drift": manifest.and_then(|m| m.heal.as_ref()).map(|h| &h.drift),
                "skipped": absent,
            });
            return self.json(&v);
        }
        if let Some(why) = absent {
            self.note(why);
            return writeln!(clean(self.out()), "Nothing healed.");
        }
        match (mode, manifest) {
            (HealMode::Report, _) => {
                self.plan(plan)?;
                if !plan.is_empty() {
                    writeln!(
                        clean(self.out()),
                        "{}",
                        self.paint(
                            BOLD,
                            "Drift found (heal = report): nothing was changed; `gpu-setup heal --mode apply` repairs it."
                        )
                    )?;
                }
                Ok(())
            }
            (HealMode::Apply, None) => self.plan(plan),
            (HealMode::Apply, Some(m)) => {
                let line = format!(
                    "Healed: transaction {} put back the desired state ({}). Undo with `gpu-setup rollback {}`.",
                    m.id,
                    counts(plan),
                    m.id
                );
                writeln!(clean(self.out()), "{}", self.paint(BOLD, &line))
            }
        }
    }

    /// The result of `rollback`.
    pub fn rolled_back(&self, report: &TxReport<'_>) -> io::Result<()> {
        let Some(m) = report.manifest else {
            return Ok(());
        };
        if self.quiet {
            return Ok(());
        }
        match self.format {
            Format::Json => self.json(&report.json()),
            Format::Text => {
                self.changes(report.plan)?;
                self.warnings(&report.plan.warnings)?;
                for (path, copy) in report.kept {
                    self.note(&format!(
                        "`{path}` had changed since; what it held is kept in `{copy}`"
                    ));
                }
                let line = format!(
                    "Rolled back transaction {} as transaction {}: {}.",
                    m.rolls_back.unwrap_or_default(),
                    m.id,
                    counts(report.plan)
                );
                writeln!(clean(self.out()), "{}", self.paint(BOLD, &line))
            }
        }
    }

    /// Says that an interrupted transaction was undone (stderr, any format).
    pub fn recovered(&self, id: u64, notes: &[String]) {
        if self.quiet {
            return;
        }
        let mut err = clean(self.err());
        let _ = writeln!(
            err,
            "{}: transaction {id} was interrupted (crash or kill); it has been undone and every file it touched is as before",
            self.paint_err(CYAN, "recovered")
        );
        for note in notes {
            let _ = writeln!(err, "  note: {note}");
        }
    }

    /// The journal, newest first.
    pub fn history(&self, history: &[Manifest]) -> io::Result<()> {
        if self.quiet {
            return Ok(());
        }
        if self.format == Format::Json {
            let txs: Vec<TxJson<'_>> = history.iter().map(TxJson::new).collect();
            return self.json(&serde_json::json!({ "transactions": txs }));
        }
        let mut out = clean(self.out());
        if history.is_empty() {
            return writeln!(out, "No transactions yet.");
        }
        writeln!(
            out,
            "{}",
            self.paint(
                BOLD,
                &format!(
                    "{:>4}  {:<20}  {:<12}  {:<16}  STATUS",
                    "ID", "TIME", "USER", "KIND"
                )
            )
        )?;
        for m in history {
            let kind = match (m.kind, m.rolls_back) {
                (TxKind::Rollback, Some(id)) => format!("rollback of {id}"),
                (TxKind::Rollback, None) => "rollback".to_owned(),
                (TxKind::Apply, _) if m.heal.is_some() => "heal".to_owned(),
                (TxKind::Apply, _) => "apply".to_owned(),
            };
            let user = match &m.sudo_user {
                Some(s) => format!("{} ({s})", m.user),
                None => m.user.clone(),
            };
            writeln!(
                out,
                "{:>4}  {:<20}  {:<12}  {:<16}  {}",
                m.id,
                m.time,
                user,
                kind,
                m.status.as_str()
            )?;
            for f in &m.files {
                writeln!(out, "        {:<6}  {}", f.action.as_str(), f.path)?;
            }
            for d in m.heal.iter().flat_map(|h| &h.drift) {
                for reason in &d.reasons {
                    writeln!(out, "        drift:  {}: {reason}", d.path)?;
                }
            }
            if let Some(e) = &m.error {
                writeln!(out, "        error: {e}")?;
            }
            for note in &m.notes {
                writeln!(out, "        note: {note}")?;
            }
        }
        Ok(())
    }

    /// The doctor's checks: a table (details with `verbose`) and a summary,
    /// or `{"checks": [...]}`.
    pub fn doctor(&self, report: &Report, verbose: bool) -> io::Result<()> {
        if self.quiet {
            return Ok(());
        }
        if self.format == Format::Json {
            return self.json(report);
        }
        let checks: &[Check] = &report.checks;
        let mut out = clean(self.out());
        let width = checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
        for c in checks {
            let style = match c.status {
                Status::Ok => GREEN,
                Status::Skip => CYAN,
                Status::Warn => YELLOW,
                Status::Fail => RED_BOLD,
            };
            let status = self.paint(style, &format!("{:<4}", c.status.as_str()));
            writeln!(out, "{status}  {:<width$}  {}", c.id, c.message)?;
            let indent = " ".repeat(width + 8);
            if let Some(hint) = &c.hint {
                writeln!(out, "{indent}{}: {hint}", self.paint(CYAN, "hint"))?;
            }
            if verbose {
                for d in &c.details {
                    writeln!(out, "{indent}{d}")?;
                }
            }
        }
        let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
        writeln!(
            out,
            "\n{} ok, {} warn, {} fail, {} skip.",
            count(Status::Ok),
            count(Status::Warn),
            count(Status::Fail),
            count(Status::Skip)
        )
    }

    fn json(&self, value: &impl Serialize) -> io::Result<()> {
        // JSON escapes what it must itself (and Clean's escapes are not
        // JSON): not cleaned.
        let mut out = io::BufWriter::new(self.out());
        // Pretty on a terminal; one line otherwise, so a unit's journal (the
        // heal service logs its JSON) gets one record per run.
        if self.out.terminal() {
            serde_json::to_writer_pretty(&mut out, value)?;
        } else {
            serde_json::to_writer(&mut out, value)?;
        }
        writeln!(out)?;
        out.flush()
    }

    fn diff_line(&self, line: &str) -> String {
        self.diff_line_on(line, self.color)
    }

    fn diff_line_on(&self, line: &str, on: bool) -> String {
        let style = if line.starts_with("+++") || line.starts_with("---") {
            BOLD
        } else if line.starts_with('+') {
            GREEN
        } else if line.starts_with('-') {
            RED
        } else if line.starts_with("@@") {
            CYAN
        } else {
            return line.to_owned();
        };
        paint_if(on, style, line)
    }

    fn warnings(&self, warnings: &[Warning]) -> io::Result<()> {
        let mut err = io::BufWriter::new(clean(self.err()));
        for w in warnings {
            let label = match w.level {
                Level::Warning => self.paint_err(YELLOW, &format!("warning[{}]", w.code)),
                Level::Info => self.paint_err(CYAN, &format!("info[{}]", w.code)),
            };
            writeln!(err, "{label}: {}", w.message)?;
            if let Some(hint) = &w.hint {
                writeln!(err, "  hint: {hint}")?;
            }
        }
        err.flush()
    }

    /// A note on stderr (`note: ...`), in the style of the warnings: what
    /// gpu-setup is doing that the user should know (text and JSON).
    pub fn note(&self, message: &str) {
        if self.quiet {
            return;
        }
        let _ = writeln!(
            clean(self.err()),
            "{}: {message}",
            self.paint_err(CYAN, "note")
        );
    }

    /// Prints an error with its causes and hint: text on stderr, and in JSON
    /// mode also `{"error": ..., "hint": ...}` on stdout.
    pub fn error(&self, message: &str, causes: &[String], details: &[String], hint: Option<&str>) {
        // Nothing sensible is left to do if stderr itself is gone.
        let mut err = clean(self.err());
        let _ = writeln!(err, "{}: {message}", self.paint_err(RED_BOLD, "error"));
        for cause in causes {
            let _ = writeln!(err, "  caused by: {cause}");
        }
        for detail in details {
            for line in detail.lines() {
                let _ = writeln!(err, "{}", self.diff_line_on(line, self.err_color));
            }
        }
        if let Some(hint) = hint {
            let _ = writeln!(err, "{}: {hint}", self.paint_err(CYAN, "hint"));
        }
        if self.format == Format::Json {
            let report = serde_json::json!({
                "error": message,
                "causes": causes,
                "details": details,
                "hint": hint,
            });
            let _ = if self.out.terminal() {
                writeln!(self.out(), "{report:#}")
            } else {
                writeln!(self.out(), "{report}")
            };
        }
    }
}

/// What `apply` or `rollback` did, for the printer.
#[derive(Debug)]
pub struct TxReport<'a> {
    /// The changes (empty when nothing was to do).
    pub plan: &'a Plan,
    /// The transaction, when one ran.
    pub manifest: Option<&'a Manifest>,
    /// Interrupted transactions undone first.
    pub recovered: &'a [u64],
    /// `rollback --force`: each overwritten file and where its content is
    /// kept.
    pub kept: &'a [(String, String)],
}

/// One file in the JSON result of `apply` and `rollback`.
#[derive(Debug, Serialize)]
struct FileJson<'a> {
    path: &'a str,
    action: Action,
    before_sha256: Option<&'a str>,
    after_sha256: Option<&'a str>,
}

impl<'a> FileJson<'a> {
    fn of(f: &'a FileRecord) -> Self {
        FileJson {
            path: f.path.as_str(),
            action: f.action,
            before_sha256: f.before.as_ref().map(|b| b.sha256.as_str()),
            after_sha256: f.after.as_ref().map(|a| a.sha256.as_str()),
        }
    }
}

impl TxReport<'_> {
    /// The JSON `apply` and `rollback` print (the module reports the same
    /// `files`).
    pub fn json(&self) -> serde_json::Value {
        let files: Vec<FileJson<'_>> = self
            .manifest
            .map(|m| m.files.iter().map(FileJson::of).collect())
            .unwrap_or_default();
        let mut v = serde_json::json!({
            "changed": self.manifest.is_some(),
            "transaction": self.manifest.map(|m| m.id),
            "files": files,
            "warnings": self.plan.warnings,
            "recovered": self.recovered,
        });
        if let Some(id) = self.manifest.and_then(|m| m.rolls_back) {
            v["rolled_back"] = id.into();
            v["kept"] = self
                .kept
                .iter()
                .map(|(path, copy)| serde_json::json!({"path": path, "copy": copy}))
                .collect();
        }
        v
    }
}

/// One transaction in `history --format json`.
#[derive(Debug, Serialize)]
struct TxJson<'a> {
    id: u64,
    time: &'a str,
    user: &'a str,
    uid: u32,
    sudo_user: Option<&'a str>,
    kind: TxKind,
    rolls_back: Option<u64>,
    status: &'a gpu_setup_apply::journal::Status,
    command: &'a [String],
    files: Vec<FileJson<'a>>,
    error: Option<&'a str>,
    notes: &'a [String],
    /// Set for a transaction `heal` ran: the drift it repaired.
    #[serde(skip_serializing_if = "Option::is_none")]
    heal: Option<&'a gpu_setup_apply::journal::HealRecord>,
}

impl<'a> TxJson<'a> {
    fn new(m: &'a Manifest) -> Self {
        TxJson {
            id: m.id,
            time: &m.time,
            user: &m.user,
            uid: m.uid,
            sudo_user: m.sudo_user.as_deref(),
            kind: m.kind,
            rolls_back: m.rolls_back,
            status: &m.status,
            command: &m.command,
            files: m.files.iter().map(FileJson::of).collect(),
            error: m.error.as_deref(),
            notes: &m.notes,
            heal: m.heal.as_ref(),
        }
    }
}

/// `1 created, 2 modified` (only the actions that occur).
fn counts(plan: &Plan) -> String {
    let parts: Vec<String> = [
        (Action::Create, "created"),
        (Action::Modify, "modified"),
        (Action::Delete, "deleted"),
    ]
    .iter()
    .filter_map(|(a, word)| {
        let n = plan.changes.iter().filter(|c| c.action == *a).count();
        (n > 0).then(|| format!("{n} {word}"))
    })
    .collect();
    if parts.is_empty() {
        "no file changed".to_owned()
    } else {
        parts.join(", ")
    }
}

/// One line saying what the plan would do, and whether the effective
/// configuration would still be wrong.
fn summary(plan: &Plan) -> String {
    let warnings: Vec<&str> = plan
        .warnings
        .iter()
        .filter(|w| w.level == Level::Warning)
        .map(|w| w.code.as_ref())
        .collect();
    let still = match warnings.len() {
        0 => String::new(),
        n => format!(
            "{n} warning{} ({}) say{} GPUs may still not work",
            if n == 1 { "" } else { "s" },
            warnings.join(", "),
            if n == 1 { "s" } else { "" }
        ),
    };
    if plan.is_empty() {
        return if still.is_empty() {
            "The host is configured: nothing to change.".to_owned()
        } else {
            format!("The managed files are as desired, but the effective configuration is not: {still}.")
        };
    }
    let count = |a: Action| plan.changes.iter().filter(|c| c.action == a).count();
    let line = format!(
        "Plan: {} to create, {} to modify, {} to delete.",
        count(Action::Create),
        count(Action::Modify),
        count(Action::Delete)
    );
    if still.is_empty() {
        line
    } else {
        format!("{line} After that, {still}.")
    }
}

/// A writer that shows control characters from the host (in file names,
/// package and unit names, file content) as `\x1b`-style text instead of
/// passing them to the terminal, where they could retitle it or erase
/// lines (docs/security.md, R17). Only colour (SGR: `ESC [ digits ; m`) is
/// passed through, which is all gpu-setup itself writes; newlines and tabs
/// are kept; C1 controls (U+0080-U+009F) are escaped too.
pub(crate) struct Clean<W: io::Write> {
    inner: W,
    /// An escape sequence still open at the end of a write.
    pending: Vec<u8>,
    /// The first byte of a UTF-8 pair (0xC2) that may start a C1 control.
    c2: bool,
}

pub(crate) fn clean<W: io::Write>(inner: W) -> Clean<W> {
    Clean {
        inner,
        pending: Vec::new(),
        c2: false,
    }
}

/// The longest colour sequence passed through.
const MAX_SGR: usize = 16;

impl<W: io::Write> Clean<W> {
    fn escaped(out: &mut Vec<u8>, b: u8) {
        out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
    }

    /// Resolves an escape sequence in `pending`: kept when it is colour,
    /// shown escaped when it is anything else.
    fn flush_pending(&mut self, out: &mut Vec<u8>, complete: bool) {
        let p = std::mem::take(&mut self.pending);
        let sgr = complete
            && p.len() >= 3
            && p[1] == b'['
            && p.last() == Some(&b'm')
            && p[2..p.len() - 1]
                .iter()
                .all(|b| b.is_ascii_digit() || *b == b';');
        if sgr {
            out.extend_from_slice(&p);
        } else if let Some((first, rest)) = p.split_first() {
            Self::escaped(out, *first);
            for &b in rest {
                self.push(out, b);
            }
        }
    }

    fn push(&mut self, out: &mut Vec<u8>, b: u8) {
        if !self.pending.is_empty() {
            self.pending.push(b);
            let len = self.pending.len();
            let done = len >= 2
                && (self.pending[1] != b'[' || (len >= 3 && !(b.is_ascii_digit() || b == b';')));
            if done || len > MAX_SGR {
                self.flush_pending(out, done);
            }
            return;
        }
        if self.c2 {
            self.c2 = false;
            if (0x80..=0x9f).contains(&b) {
                out.extend_from_slice(format!("\\u{{{b:02x}}}").as_bytes());
                return;
            }
            out.push(0xc2);
        }
        match b {
            0x1b => self.pending.push(b),
            0xc2 => self.c2 = true,
            b'\n' | b'\t' => out.push(b),
            0..=0x1f | 0x7f => Self::escaped(out, b),
            _ => out.push(b),
        }
    }
}

impl<W: io::Write> io::Write for Clean<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Most text has nothing to escape: written as it is.
        let plain = |b: &u8| (*b >= 0x20 && *b != 0x7f && *b != 0xc2) || *b == b'\n' || *b == b'\t';
        if self.pending.is_empty() && !self.c2 && buf.iter().all(plain) {
            self.inner.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut out = Vec::with_capacity(buf.len());
        for &b in buf {
            self.push(&mut out, b);
        }
        self.inner.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut out = Vec::new();
        if !self.pending.is_empty() {
            self.flush_pending(&mut out, false);
        }
        if std::mem::take(&mut self.c2) {
            out.push(0xc2);
        }
        self.inner.write_all(&out)?;
        self.inner.flush()
    }
}

impl<W: io::Write> Drop for Clean<W> {
    fn drop(&mut self) {
        let _ = io::Write::flush(self);
    }
}

#[cfg(test)]
mod clean_tests {
    use super::*;
    use std::io::Write;

    fn cleaned(bytes: &[u8]) -> String {
        let mut v = Vec::new();
        {
            let mut c = clean(&mut v);
            c.write_all(bytes).unwrap();
        }
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn terminal_controls_from_the_host_are_shown_not_obeyed() {
        // The review's package name: retitle, cursor up, erase line.
        assert_eq!(
            cleaned(b"package evil\x1b]0;PWNED\x07\x1b[1A\x1b[2K"),
            "package evil\\x1b]0;PWNED\\x07\\x1b[1A\\x1b[2K"
        );
        // gpu-setup's own colours pass; so do newlines, tabs and UTF-8.
        assert_eq!(
            cleaned(b"\x1b[1m\x1b[31mred\x1b[0m\n\tok \xc3\xa9"),
            "\x1b[1m\x1b[31mred\x1b[0m\n\tok \u{e9}"
        );
        assert_eq!(cleaned(b"a\rb\x08c\x7f"), "a\\x0db\\x08c\\x7f");
        // C1 CSI (U+009B) is escaped; a lone ESC at the end too.
        assert_eq!(cleaned("x\u{9b}2Ky\x1b".as_bytes()), "x\\u{9b}2Ky\\x1b");
    }
}

#[cfg(test)]
mod printer_tests {
    use super::*;
    use gpu_setup_plan::{DesiredState, MemHost};

    /// A plan for a host with only NVIDIA's stock config.toml: one change.
    fn one_change() -> Plan {
        let host = MemHost::new()
            .with_file(
                "/etc/nvidia-container-runtime/config.toml",
                "[nvidia-container-cli]\n#no-cgroups = false\n",
            )
            .with_exe("/usr/bin/nvidia-container-runtime")
            .with_exe("/usr/bin/nvidia-container-toolkit");
        let d = DesiredState::from_settings(&gpu_setup_plan::Settings {
            strategy: Some(gpu_setup_plan::Strategy::Cdi),
            no_cgroups: Some(true),
            ..Default::default()
        })
        .unwrap();
        let mut d = d;
        d.cdi_generated = Some(Vec::new());
        let mut p = gpu_setup_plan::plan(&d, &host).unwrap();
        p.changes
            .retain(|c| c.path.as_str().ends_with("config.toml"));
        p
    }

    #[test]
    fn a_plan_is_written_whole_diff_to_stdout_and_warnings_to_stderr() {
        let (printer, captured) = Printer::in_memory(Format::Text, false, false);
        let plan = one_change();
        printer.plan(&plan).unwrap();
        let (out, err) = captured.text();
        assert_eq!(
            out,
            "modify /etc/nvidia-container-runtime/config.toml\n  # set [nvidia-container-cli] no-cgroups = true\n--- a/etc/nvidia-container-runtime/config.toml\n+++ b/etc/nvidia-container-runtime/config.toml\n@@ -1,2 +1,2 @@\n [nvidia-container-cli]\n-#no-cgroups = false\n+no-cgroups = true\n\nPlan: 0 to create, 1 to modify, 0 to delete.\n"
        );
        assert_eq!(
            err,
            "info[no-cgroups-rootful]: `no-cgroups = true` is for rootless Podman; it breaks GPU access in rootful containers\n  hint: use --no-cgroups false on hosts that run GPU containers as root\n"
        );
    }

    #[test]
    fn colour_is_per_stream_and_quiet_prints_nothing() {
        let plan = one_change();
        let (printer, captured) = Printer::in_memory(Format::Text, true, false);
        printer.plan(&plan).unwrap();
        let (out, _) = captured.text();
        assert!(
            out.starts_with("\u{1b}[1mmodify /etc/nvidia-container-runtime/config.toml\u{1b}[0m\n"),
            "{out:?}"
        );
        let (quiet, captured) = Printer::in_memory(Format::Text, true, true);
        quiet.plan(&plan).unwrap();
        assert_eq!(captured.text(), (String::new(), String::new()));
        // JSON to a non-terminal: one compact line.
        let (json, captured) = Printer::in_memory(Format::Json, false, false);
        json.plan(&plan).unwrap();
        let (out, err) = captured.text();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.starts_with("{\"changed\":true,\"files\":[{\"path\":\"/etc/nvidia-container-runtime/config.toml\""), "{out}");
        assert_eq!(err, "");
    }
}
