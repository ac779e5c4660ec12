//! gpu-setup, the command-line tool: argument parsing, the printer, and thin
//! commands that call the planning and apply crates.

pub mod args;
mod cdi;
mod commands;
pub mod env;
mod error;
mod facts;
mod heal;
mod memory;
pub mod module;
mod packages;
mod printer;
mod probe;
mod process;
mod sudo;
mod vet;

use std::io::IsTerminal;
use std::process::ExitCode;

use args::{Cli, LogLevel};
pub use commands::run;
pub use printer::Printer;

/// The process exit codes, stable for scripts.
pub mod exit {
    /// Success; with `--detailed-exitcode`, nothing to change.
    pub const OK: u8 = 0;
    /// Any error, including bad arguments; with `--strict`, a warning.
    pub const ERROR: u8 = 1;
    /// `--detailed-exitcode` only: changes are pending.
    pub const CHANGES: u8 = 2;
}

/// Sets up logging to stderr at `level`, coloured only on a terminal.
pub fn init_logging(level: LogLevel, color: bool) {
    let level = match level {
        LogLevel::Error => tracing::Level::ERROR,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Trace => tracing::Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .without_time()
        .with_target(false)
        .with_ansi(color)
        .try_init();
}

/// Runs the whole program for an already-parsed command line.
pub fn main_with(cli: Cli) -> ExitCode {
    let color = match cli.global.color {
        args::ColorChoice::Always => true,
        args::ColorChoice::Never => false,
        args::ColorChoice::Auto => !env::no_color() && std::io::stderr().is_terminal(),
    };
    init_logging(cli.global.log_level, color);
    let printer = Printer::new(
        cli.global.format,
        cli.global.color,
        env::no_color(),
        cli.global.quiet,
    );
    match run(&cli, &printer) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let causes: Vec<String> = err.chain().skip(1).map(ToString::to_string).collect();
            let sudo = matches!(
                cli.command,
                args::Command::Apply(_) | args::Command::Rollback(_)
            );
            let hint = error::hint_of(&err, sudo);
            let details = error::details_of(&err);
            printer.error(&err.to_string(), &causes, &details, hint.as_deref());
            ExitCode::from(exit::ERROR)
        }
    }
}
