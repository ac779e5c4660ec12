//! The `gpu-setup` binary: parse arguments, hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use gpu_setup::{args::Cli, exit};

fn main() -> ExitCode {
    match Cli::try_parse() {
        Ok(cli) => gpu_setup::main_with(cli),
        Err(e) => {
            // --help and --version are successes; usage errors exit 1, not
            // clap's 2, which `plan --detailed-exitcode` reserves for
            // "changes pending".
            let _ = e.print();
            if e.use_stderr() {
                ExitCode::from(exit::ERROR)
            } else {
                ExitCode::from(exit::OK)
            }
        }
    }
}
