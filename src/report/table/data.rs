//! The tables of `data status` and `data update`.

/// `data status`: every data set, one line each, warnings under it.
pub fn data_sets(sets: &[crate::sources::data::DataSet]) -> String {
    let mut out = format!(
        "{:<36} {:<8} {:<26} {:>10}  SOURCE\n",
        "DATA SET", "STATE", "DATE", "BYTES"
    );
    for s in sets {
        out.push_str(&format!(
            "{:<36} {:<8} {:<26} {:>10}  {}\n",
            s.name,
            s.state,
            s.date.as_deref().unwrap_or("-"),
            s.size.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            s.source
        ));
        if let Some(w) = &s.warning {
            out.push_str(&format!("    warning: {w}\n"));
        }
    }
    out
}

/// `data update`: what happened to each file.
pub fn data_updates(updates: &[crate::sources::data::Updated]) -> String {
    let mut out = String::new();
    for u in updates {
        out.push_str(&format!("{:<36} {:<8} {}\n", u.name, u.outcome, u.detail));
    }
    out
}
