//! A throwaway PostgreSQL server for the tests that run the history store against PostgreSQL:
//! `initdb` into a temporary directory, `postgres` listening on 127.0.0.1 (a free port) and a
//! unix socket in that directory, trust authentication, stopped and deleted on drop.
//!
//! PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user (which
//! the Debian packages create). Missing binaries are an error with an install hint, never a
//! silently skipped test: CI installs them (`apt-get install postgresql`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

pub struct Postgres {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    /// `Some(uid, gid)` of the `postgres` user when this process is root.
    run_as: Option<(u32, u32)>,
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: the newest
/// `/usr/lib/postgresql/*/bin` (Debian's layout), else wherever `PATH` has `pg_ctl`.
fn server_bin() -> Result<PathBuf, String> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|dir| dir.join("pg_ctl").exists() && dir.join("initdb").exists())
        .ok_or_else(|| {
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in \
             /usr/lib/postgresql/*/bin or PATH: install them with `apt-get install postgresql` \
             (CI does) to run the PostgreSQL variants of the history tests"
                .to_string()
        })
}

fn id_of(flag: &str) -> Result<u32, String> {
    let out = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .map_err(|e| format!("cannot run `id`: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| {
            "there is no `postgres` user to run PostgreSQL as (it refuses to run as root): \
             install the `postgresql` package, which creates it"
                .to_string()
        })
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free loopback port: {e}"))
}

impl Postgres {
    /// Starts a fresh server; fails with what to install when PostgreSQL is missing.
    pub fn start() -> Result<Postgres, String> {
        let bin = server_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("residency-pg")
            .tempdir()
            .map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let run_as = if root {
            let ids = (id_of("-u")?, id_of("-g")?);
            std::os::unix::fs::chown(dir.path(), Some(ids.0), Some(ids.1))
                .map_err(|e| format!("cannot hand {} to postgres: {e}", dir.path().display()))?;
            Some(ids)
        } else {
            None
        };
        let mut server = Postgres {
            dir,
            bin,
            port: 0,
            run_as,
        };
        let data = server.data();
        server.run(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        // A port found free can be taken before the server binds it: try a few.
        let mut last = String::new();
        for _ in 0..3 {
            server.port = free_port()?;
            let options = format!(
                "-h 127.0.0.1 -p {} -k {} -F -c max_connections=50",
                server.port,
                path_str(server.dir.path())?
            );
            let log = server.dir.path().join("server.log");
            match server.run(
                "pg_ctl",
                &[
                    "-D",
                    path_str(&data)?,
                    "-l",
                    path_str(&log)?,
                    "-o",
                    &options,
                    "-w",
                    "-t",
                    "30",
                    "start",
                ],
            ) {
                Ok(_) => return Ok(server),
                Err(e) => {
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    last = format!("{e}\n{log}");
                }
            }
        }
        Err(format!("PostgreSQL did not start: {last}"))
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<Output, String> {
        let exe = self.bin.join(tool);
        let mut cmd = match self.run_as {
            Some(_) => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{tool} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(out)
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates an empty database and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, String> {
        let mut client = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .map_err(|e| format!("cannot connect to the test server: {e}"))?;
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .map_err(|e| format!("cannot create database {name}: {e}"))?;
        Ok(self.url(name))
    }
}

fn path_str(p: &Path) -> Result<&str, String> {
    p.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", p.display()))
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Ok(data) = path_str(&self.data()).map(str::to_string) {
            let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        }
    }
}
