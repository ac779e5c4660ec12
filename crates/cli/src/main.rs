//! The `gpu-setup` binary: parse arguments, hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use gpu_setup::{args::Cli, exit};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some((_, module_args)) = gpu_setup::module::arguments(&args) {
        let result = gpu_setup::module::run(&module_args);
        #[allow(clippy::print_stdout)] // the module's one JSON object
        {
            println!("{result}");
        }
        return if result["failed"] == true {
            ExitCode::from(exit::ERROR)
        } else {
            ExitCode::from(exit::OK)
        };
    }
    match Cli::try_parse_from(args) {
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
