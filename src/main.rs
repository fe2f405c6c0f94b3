//! The `prescale` binary: parse the command line and dispatch.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = prescale::cli::Cli::parse();
    match prescale::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // `prescale forecast ... | head`: the reader had enough, nothing went wrong.
        Err(e) if prescale::cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, causes joined: the message a user needs to fix the input.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr().lock(),
                "error: {}",
                prescale::cli::error_line(&e)
            );
            ExitCode::from(prescale::cli::exit_code(&e))
        }
    }
}
