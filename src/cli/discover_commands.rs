//! `discover`: what a device contacted, from its own traffic captures, and a draft policy of it.

use std::io::Write as _;

use super::args::{DiscoverArgs, Format};
use super::{CliError, Exit};
use crate::measure::capture;
use crate::policy::draft;
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
    if let (Some(path), Some(id)) = (&args.policy_out, &args.id) {
        let text = draft::policy_text(&found, id, &args.allow, &args.deny)?;
        let mut open = std::fs::OpenOptions::new();
        open.write(true);
        if args.force {
            open.create(true).truncate(true);
        } else {
            open.create_new(true);
        }
        let mut file = open.open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                CliError::DraftExists(path.clone())
            } else {
                CliError::DraftWrite {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|source| CliError::DraftWrite {
                path: path.clone(),
                source,
            })?;
        errln!(
            "wrote the draft policy {}: check it with `residency validate`",
            path.display()
        );
    }
    match args.format {
        Format::Table => out!("{}", table::discovery(&found)),
        Format::Json => text::print_json(&serde_json::to_string_pretty(&found)?),
    }
    Ok(Exit::Ok)
}
