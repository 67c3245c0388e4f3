//! `data status` and `data update`: the shipped data sets, their ages, and fresh copies.

use super::args::{DataAction, Format};
use super::{CliError, Exit};
use crate::report::table;
use crate::sources::data::{self, UpdateSource};
use crate::text;

pub(super) fn data(action: &DataAction) -> Result<Exit, CliError> {
    let dir = data::default_data_dir();
    match action {
        DataAction::Status { format } => {
            let sets = data::status(dir.as_deref(), chrono::Utc::now());
            match format {
                Format::Table => out!("{}", table::data_sets(&sets)),
                Format::Json => text::print_json(&serde_json::to_string_pretty(&sets)?),
            }
            let warned = sets.iter().any(|s| s.warning.is_some());
            Ok(if warned { Exit::Inconclusive } else { Exit::Ok })
        }
        DataAction::Update {
            from,
            azure_url,
            format,
        } => {
            let dir = dir.ok_or(data::DataError::NoDataDir)?;
            let source = match from.as_deref() {
                None => UpdateSource::Publishers {
                    azure: azure_url.clone(),
                },
                Some(text) if text.starts_with("http://") || text.starts_with("https://") => {
                    let mut base = reqwest::Url::parse(text)
                        .map_err(|e| CliError::BadDataSource(format!("{text}: {e}")))?;
                    if base.scheme() != "https" && !crate::sources::registry::is_loopback_url(&base)
                    {
                        return Err(CliError::BadDataSource(format!(
                            "{text} is not https://: a mirror's copies steer every later \
                             lookup, so only https (or this machine) is accepted"
                        )));
                    }
                    if !base.path().ends_with('/') {
                        let path = format!("{}/", base.path());
                        base.set_path(&path);
                    }
                    UpdateSource::Mirror(base)
                }
                Some(text) => {
                    let path = std::path::PathBuf::from(text);
                    if !path.is_dir() {
                        return Err(CliError::BadDataSource(format!(
                            "{text} is not a directory; give a directory of copies or an \
                             http(s):// base URL"
                        )));
                    }
                    UpdateSource::Dir(path)
                }
            };
            if let Some(url) = azure_url
                && url.scheme() != "https"
            {
                return Err(CliError::BadDataSource(format!(
                    "--azure-url {url} is not https://; give the https:// URL of this week's \
                     ServiceTags_Public_*.json"
                )));
            }
            let runtime = super::measure_commands::runtime()?;
            let updates = runtime.block_on(data::update(&dir, &source))?;
            match format {
                Format::Table => out!("{}", table::data_updates(&updates)),
                Format::Json => text::print_json(&serde_json::to_string_pretty(&updates)?),
            }
            let failed = updates.iter().any(|u| u.outcome == "failed");
            Ok(if failed { Exit::Error } else { Exit::Ok })
        }
    }
}
