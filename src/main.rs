//! The `residency` binary: parse arguments, run the library, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use residency::cli::{self, Cli, Exit};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        // Log fields carry measured text (names, registry fields): each line is made visible
        // (see `residency::text`), so the logger's own colours are off.
        .with_writer(residency::text::visible_stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RESIDENCY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();

    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are successes; every usage error is exit 3, not clap's 2,
            // because 2 means "violation" to the monitors that run us.
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(Exit::Error as u8),
            };
        }
    };
    match cli::dispatch(cli) {
        // The reader of our output went away (`| head -1`): it has what it wanted.
        Ok(_) if residency::text::stdout_closed() => ExitCode::SUCCESS,
        Ok(exit) => ExitCode::from(exit as u8),
        Err(e) => {
            residency::text::print_err(&format!("error: {e}\n"));
            ExitCode::from(Exit::Error as u8)
        }
    }
}
