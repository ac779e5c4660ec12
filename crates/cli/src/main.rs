//! The `gpu-setup` binary: parse arguments, hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use gpu_setup::{args::Cli, exit};

/// Whether the command line asks for JSON output (`--format json` or
/// `--format=json`), looked at before the arguments are parsed.
fn wants_json(args: &[std::ffi::OsString]) -> bool {
    args.windows(2)
        .any(|w| w[0] == "--format" && w[1] == "json")
        || args.iter().any(|a| a == "--format=json")
}

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
    let json = wants_json(&args);
    match Cli::try_parse_from(args) {
        Ok(cli) => gpu_setup::main_with(cli),
        Err(e) => {
            // --help and --version are successes; usage errors exit 1, not
            // clap's 2, which `plan --detailed-exitcode` reserves for
            // "changes pending".
            let _ = e.print();
            if e.use_stderr() {
                if json {
                    // Scripts asked for JSON: an argument error is JSON on
                    // stdout too, like every other error.
                    let text = e.render().to_string();
                    let message = text
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .trim_start_matches("error: ")
                        .to_owned();
                    let report = serde_json::json!({
                        "error": message,
                        "causes": [],
                        "details": [],
                        "hint": "`gpu-setup --help` lists the commands and options",
                    });
                    #[allow(clippy::print_stdout)] // the one JSON object
                    {
                        use std::io::IsTerminal;
                        if std::io::stdout().is_terminal() {
                            println!("{report:#}");
                        } else {
                            println!("{report}");
                        }
                    }
                }
                ExitCode::from(exit::ERROR)
            } else {
                ExitCode::from(exit::OK)
            }
        }
    }
}
