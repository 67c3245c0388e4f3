//! Shared by the benchmarks: bounded child processes, finding tools, medians.

// Each bench uses a subset of these helpers.
#![allow(dead_code)]

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A child that finished within its deadline.
pub struct Finished {
    pub status: ExitStatus,
    pub elapsed: Duration,
}

/// Runs `cmd` in its own process group with stdout/stderr to files; kills that group (ours,
/// by id) if it outlives `deadline`.
pub fn run_bounded(
    mut cmd: Command,
    stdout: &Path,
    stderr: &Path,
    deadline: Duration,
) -> Result<Option<Finished>, String> {
    let out = File::create(stdout).map_err(|e| format!("{}: {e}", stdout.display()))?;
    let err = File::create(stderr).map_err(|e| format!("{}: {e}", stderr.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("wait: {e}"))? {
            return Ok(Some(Finished {
                status,
                elapsed: start.elapsed(),
            }));
        }
        if start.elapsed() > deadline {
            // The group id is the child's pid (process_group(0)): this reaches the child and
            // whatever it started (GNU time's child), nothing else.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&dirs)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub fn median<T: Copy + PartialOrd>(values: &[T]) -> T {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}
