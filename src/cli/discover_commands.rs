//! `discover`: what a device contacted, from its own traffic captures.

use super::args::{DiscoverArgs, Format};
use super::{CliError, Exit};
use crate::measure::capture;
use crate::report::table;
use crate::text;

pub(super) fn discover(args: &DiscoverArgs) -> Result<Exit, CliError> {
    let found = capture::discover(&args.files)?;
    // What could not be read goes to stderr, with where it is, whatever the format.
    for c in &found.captures {
        for p in &c.problems {
            errln!("warning: {}: {p}", c.file);
        }
    }
    match args.format {
        Format::Table => out!("{}", table::discovery(&found)),
        Format::Json => text::print_json(&serde_json::to_string_pretty(&found)?),
    }
    Ok(Exit::Ok)
}
