//! Running `ip`, `sysctl` and other commands inside the lab's namespaces, and cleaning up
//! after labs that a killed test left behind.

use super::*;

/// `ip -n NS -batch -` with `lines` on stdin; panics with ip's output if any line fails.
pub(super) fn ip_batch(ns: &str, lines: &[String]) {
    use std::io::Write as _;
    let mut child = Command::new("ip")
        .args(["-n", ns, "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run ip: {e}; {INSTALL_HINT}"));
    if let Some(mut stdin) = child.stdin.take() {
        let text = lines.join("\n") + "\n";
        stdin
            .write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("cannot write to `ip -batch`: {e}"));
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("cannot wait for ip: {e}"));
    assert!(
        output.status.success(),
        "`ip -n {ns} -batch -` ({} lines) failed: {}{}",
        lines.len(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub(super) fn add_addr(ns: &str, dev: &str, addr: IpAddr, peer: Option<IpAddr>) {
    let local = format!("{addr}/{}", prefix_len(addr));
    let mut args = vec!["addr".to_string(), "add".to_string(), local];
    if let Some(peer) = peer {
        args.push("peer".to_string());
        args.push(format!("{peer}/{}", prefix_len(peer)));
    }
    args.push("dev".to_string());
    args.push(dev.to_string());
    if addr.is_ipv6() {
        // Skip duplicate address detection: the address is usable at once, not seconds later.
        args.push("nodad".to_string());
    }
    ip(ns, args);
}

pub(super) fn route(ns: &str, dest: IpAddr, via: IpAddr) {
    let family = if dest.is_ipv4() { "-4" } else { "-6" };
    let dest = format!("{dest}/{}", prefix_len(dest));
    ip(ns, [family, "route", "add", &dest, "via", &via.to_string()]);
}

pub(super) fn default_route(ns: &str, via: IpAddr) {
    let family = if via.is_ipv4() { "-4" } else { "-6" };
    ip(
        ns,
        [family, "route", "add", "default", "via", &via.to_string()],
    );
}

pub(super) fn sysctl(ns: &str, key: &str, value: &str) {
    run(
        "ip",
        [
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            &format!("{key}={value}"),
        ],
    );
}

/// `ip -n NS args...`: iproute2 acting inside a namespace, never the root one.
pub(super) fn ip<I, S>(ns: &str, args: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut all: Vec<std::ffi::OsString> = vec!["-n".into(), ns.into()];
    all.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
    run("ip", all);
}

/// Runs a setup command; panics with its output if it fails, since a half-built lab would make
/// every later assertion misleading.
pub(super) fn run<I, S>(program: &str, args: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    let output = Command::new(program)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}; {INSTALL_HINT}"));
    assert!(
        output.status.success(),
        "`{program} {}` failed: {}{}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// True when this process's effective uid is 0 (from /proc, so no unsafe `geteuid`).
pub(super) fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(2).map(str::to_string))
        })
        .is_some_and(|euid| euid == "0")
}

/// Deletes namespaces left by labs of test processes that no longer exist (killed before their
/// Drop ran). Only names `rsd-<pid>-...` whose pid is gone are touched.
pub(super) fn sweep_stale_labs() {
    let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(NS_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip")
                .args(["netns", "del", name])
                .stderr(Stdio::null())
                .status();
        }
    }
}
