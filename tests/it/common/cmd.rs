//! One way to run the `residency` binary from a test: its home, cache, config, data and state
//! directories and its history all inside the test's own directory (so no test reads or writes
//! the real `~/.cache/residency`), a known log level, and a deadline after which the process is
//! killed and the test fails showing what it printed.

use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Long enough for the slowest lab check; a hung binary fails the test instead of hanging CI.
pub const DEADLINE: Duration = Duration::from_secs(180);

/// The log level every test run gets unless it asks for another: the binary's own default.
pub const LOG: &str = "warn";

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_residency")
}

/// A `residency` command for one test directory.
pub struct Residency {
    command: Command,
}

impl Residency {
    /// `residency` with `dir` as working directory, `HOME`, `XDG_*` and `RESIDENCY_DB`
    /// (`dir/history.sqlite`) inside `dir`.
    pub fn new(dir: &Path) -> Residency {
        Residency::through(dir, &[])
    }

    /// The same, started through `prefix` (such as `ip netns exec NS` or `setpriv ...`): the
    /// environment is set on the prefix, which passes it on.
    pub fn through(dir: &Path, prefix: &[String]) -> Residency {
        let mut command = match prefix.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bin());
                c
            }
            None => Command::new(bin()),
        };
        command
            .current_dir(dir)
            .env("HOME", dir)
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_STATE_HOME", dir.join("state"))
            .env("RESIDENCY_DB", dir.join("history.sqlite"))
            .env("RESIDENCY_LOG", LOG)
            .env_remove("RESIDENCY_DATA_DIR")
            .stdin(Stdio::null());
        Residency { command }
    }

    /// The history to use (`RESIDENCY_DB`): a file or a `postgres://` URL.
    pub fn db(mut self, db: impl AsRef<OsStr>) -> Residency {
        self.command.env("RESIDENCY_DB", db);
        self
    }

    /// Another log level (`RESIDENCY_LOG`), such as `debug`.
    pub fn log(mut self, level: &str) -> Residency {
        self.command.env("RESIDENCY_LOG", level);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Residency {
        self.command.current_dir(dir);
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Residency {
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Residency
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    /// The command itself, for tests that spawn and kill it (they own its deadline then).
    pub fn command(self) -> Command {
        self.command
    }

    /// Runs to completion, capturing stdout and stderr; past the deadline the process is
    /// killed and the test fails with its output so far.
    pub fn output(mut self) -> Output {
        let child = self
            .command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", bin()));
        wait_bounded(child, DEADLINE)
    }
}

/// Waits for `child` for at most `deadline`, reading its pipes meanwhile so a chatty process
/// cannot block on a full pipe.
pub fn wait_bounded(mut child: Child, deadline: Duration) -> Output {
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let until = Instant::now() + deadline;
    let status: Option<ExitStatus> = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
            _ => break None,
        }
    };
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let Some(status) = status else {
        panic!(
            "residency still running after {deadline:?}; killed.\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        )
    };
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Reads a pipe to its end on a thread of its own.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// A path as `&str` for argument lists (test paths are UTF-8).
pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `residency history verify --policy POLICY` on the history in `dir` must find the chain
/// intact (exit 0); its report is shown when it does not.
pub fn assert_chain_intact(dir: &Path, policy: &str) {
    let out = Residency::new(dir)
        .args(["history", "verify", "--policy", policy])
        .output();
    assert_eq!(
        out.status.code(),
        Some(0),
        "history verify --policy {policy}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
