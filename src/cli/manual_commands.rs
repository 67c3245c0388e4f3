//! The commands that describe the command line itself: `completions` and `man`, both generated
//! from the clap definitions in `args.rs`, so they can never disagree with what parses.

use std::path::Path;

use clap::CommandFactory;

use super::args::Cli;
use super::{CliError, Exit};

/// The completion script for `shell`.
pub(super) fn completions(shell: clap_complete::Shell) -> Result<Exit, CliError> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "residency", &mut script);
    crate::text::print_out(&String::from_utf8_lossy(&script));
    Ok(Exit::Ok)
}

/// The man pages, `residency.1` and `residency-SUBCOMMAND.1`, written to `dir`.
pub(super) fn man(dir: &Path) -> Result<Exit, CliError> {
    let failed = |source| CliError::ManPages {
        dir: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    clap_mangen::generate_to(Cli::command(), dir).map_err(failed)?;
    crate::text::print_out(&format!(
        "wrote the man pages to {}: read them with `man -l {}`\n",
        dir.display(),
        dir.join("residency.1").display()
    ));
    Ok(Exit::Ok)
}
