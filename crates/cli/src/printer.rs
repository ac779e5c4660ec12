//! The only place gpu-setup writes to stdout and stderr: plans, warnings and
//! errors, as text (coloured on a terminal) or JSON.

use std::io::{self, IsTerminal, Write};

use anstyle::{AnsiColor, Style};
use gpu_setup_plan::{unified_diff, Action, Level, Plan, PlanReport, Warning};

use crate::args::{ColorChoice, Format};

/// Writes everything the user sees.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    format: Format,
    color: bool,
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
    pub fn new(format: Format, color: ColorChoice, no_color_env: bool) -> Self {
        let color = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => !no_color_env && io::stdout().is_terminal(),
        };
        Printer { format, color }
    }

    /// The output format.
    pub fn format(&self) -> Format {
        self.format
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_owned()
        }
    }

    /// Prints a plan: diffs on stdout, warnings on stderr (text), or one
    /// JSON object on stdout.
    pub fn plan(&self, plan: &Plan) -> io::Result<()> {
        match self.format {
            Format::Json => {
                let mut out = io::stdout().lock();
                serde_json::to_writer_pretty(&mut out, &PlanReport::new(plan))?;
                writeln!(out)
            }
            Format::Text => {
                let mut out = io::stdout().lock();
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
                self.warnings(&plan.warnings)?;
                writeln!(out, "{}", summary(plan))
            }
        }
    }

    fn diff_line(&self, line: &str) -> String {
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
        self.paint(style, line)
    }

    fn warnings(&self, warnings: &[Warning]) -> io::Result<()> {
        let mut err = io::stderr().lock();
        for w in warnings {
            let label = match w.level {
                Level::Warning => self.paint(YELLOW, &format!("warning[{}]", w.code)),
                Level::Info => self.paint(CYAN, &format!("info[{}]", w.code)),
            };
            writeln!(err, "{label}: {}", w.message)?;
            if let Some(hint) = &w.hint {
                writeln!(err, "  hint: {hint}")?;
            }
        }
        Ok(())
    }

    /// Prints an error with its causes and hint: text on stderr, and in JSON
    /// mode also `{"error": ..., "hint": ...}` on stdout.
    pub fn error(&self, message: &str, causes: &[String], hint: Option<&str>) {
        // Nothing sensible is left to do if stderr itself is gone.
        let mut err = io::stderr().lock();
        let _ = writeln!(err, "{}: {message}", self.paint(RED_BOLD, "error"));
        for cause in causes {
            let _ = writeln!(err, "  caused by: {cause}");
        }
        if let Some(hint) = hint {
            let _ = writeln!(err, "{}: {hint}", self.paint(CYAN, "hint"));
        }
        if self.format == Format::Json {
            let report = serde_json::json!({
                "error": message,
                "causes": causes,
                "hint": hint,
            });
            let _ = writeln!(io::stdout().lock(), "{report:#}");
        }
    }
}

/// One line saying what the plan would do.
fn summary(plan: &Plan) -> String {
    if plan.is_empty() {
        return "The host is configured: nothing to change.".to_owned();
    }
    let count = |a: Action| plan.changes.iter().filter(|c| c.action == a).count();
    format!(
        "Plan: {} to create, {} to modify, {} to delete.",
        count(Action::Create),
        count(Action::Modify),
        count(Action::Delete)
    )
}
