//! Raw-socket privilege: whether this process may send the probes a traceroute needs.
//!
//! Owns the up-front check. trippy-core builds its own IP headers on raw sockets, which on Linux
//! needs root or `CAP_NET_RAW` (its unprivileged mode needs ping sockets *and* `IP_HDRINCL`, which
//! Linux does not allow together). Checking first turns a missing privilege into one clear,
//! actionable message instead of a socket error in the middle of a trace.

use socket2::{Domain, Protocol, Socket, Type};
use trippy_privilege::Privilege;

use super::TraceError;

/// Checks that raw sockets can be opened, the way trippy-core will open them.
///
/// First raises `CAP_NET_RAW` from the permitted to the effective set when the binary was granted
/// it (`setcap cap_net_raw+p`), as trippy does; then opens (and closes) a raw ICMP socket, which
/// is the decisive test: capability sets can be read wrongly inside containers, a socket cannot.
pub fn check_privilege() -> Result<(), TraceError> {
    if let Err(err) = Privilege::acquire_privileges() {
        // Not fatal: a process may be allowed raw sockets without readable capability sets.
        tracing::debug!("could not raise CAP_NET_RAW: {err}");
    }
    let mut causes = Vec::new();
    let mut denied = false;
    // Either family will do: a host without IPv4 (or IPv6) still traces the other.
    for (domain, protocol, name) in [
        (Domain::IPV4, Protocol::ICMPV4, "IPv4"),
        (Domain::IPV6, Protocol::ICMPV6, "IPv6"),
    ] {
        match Socket::new(domain, Type::RAW, Some(protocol)) {
            Ok(_socket) => return Ok(()),
            Err(err) => {
                denied |= err.kind() == std::io::ErrorKind::PermissionDenied;
                causes.push(format!("raw {name} ICMP socket: {err}"));
            }
        }
    }
    let cause = causes.join("; ");
    if denied {
        Err(TraceError::NoPrivilege { cause })
    } else {
        Err(TraceError::RawSocket { cause })
    }
}
