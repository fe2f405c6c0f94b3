//! The `prescale` binary: parse the command line and dispatch.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = prescale::cli::Cli::parse();
    match prescale::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, causes joined: the message a user needs to fix the input.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
