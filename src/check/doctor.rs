//! `doctor`: what this vantage point can measure honestly, before any policy is checked.
//!
//! Owns one survey without a policy: the canaries of every method, raw-socket privilege, each
//! resolver's NSID and answer times against the path to it, and the clock that dates every
//! run. Use it before scheduling checks from a new network.

use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::measure::integrity::{self, Integrity, SurveyPlan, TtlWatcher};
use crate::measure::resolve::{DnsResolver, Query, RecordType, Resolution, Resolve};
use crate::measure::trace::check_privilege;
use crate::sources::physics::Vantage;

/// Queries per resolver: the fastest of them is compared with the path.
const RESOLVER_QUERIES: u32 = 3;

/// Whether this process can open raw sockets (traceroute, ICMP canaries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Privilege {
    pub raw_sockets: bool,
    /// The system's words, and how to grant the privilege, when it is missing.
    pub detail: Option<String>,
}

/// The clock every run is dated by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clock {
    #[serde(with = "crate::time::rfc3339")]
    pub utc: DateTime<Utc>,
    pub note: String,
}

/// Everything `doctor` found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoctorReport {
    pub vantage: Option<Vantage>,
    pub privilege: Privilege,
    pub clock: Clock,
    pub integrity: Integrity,
    /// The queries sent to each resolver (a PTR query for its own address), with their NSIDs
    /// and times.
    pub resolutions: Vec<Resolution>,
}

impl DoctorReport {
    /// Every method clean and no resolver intercepted: what `doctor` exits 0 on.
    pub fn clean(&self) -> bool {
        self.integrity.all_clean()
    }
}

/// Surveys this vantage point with `plan` and asks every resolver in it a few questions.
pub async fn doctor(plan: &SurveyPlan, vantage: Option<Vantage>) -> DoctorReport {
    let resolver = DnsResolver::new(plan.dns);
    let watcher = TtlWatcher::start().ok();
    let asked = async {
        let mut out = Vec::new();
        for server in &plan.resolvers {
            for attempt in 1..=RESOLVER_QUERIES {
                out.push(resolver.resolve(&reverse_query(*server, attempt)).await);
            }
        }
        out
    };
    let (mut resolutions, survey) = tokio::join!(asked, integrity::survey(plan));
    let integrity = {
        let mut answers: Vec<&mut Resolution> = resolutions.iter_mut().collect();
        survey.finish(&mut answers, watcher.as_ref())
    };
    let privilege = match check_privilege() {
        Ok(()) => Privilege {
            raw_sockets: true,
            detail: None,
        },
        Err(e) => Privilege {
            raw_sockets: false,
            detail: Some(e.to_string()),
        },
    };
    DoctorReport {
        vantage,
        privilege,
        clock: Clock {
            utc: Utc::now(),
            note: "every run is dated by this clock and residency cannot check it offline: keep \
                   it synchronised (NTP) and compare it with a trusted time now"
                .to_string(),
        },
        integrity,
        resolutions,
    }
}

/// Any question gets an answer with the resolver's NSID and time; the resolver's own reverse
/// name is one every resolver can answer (NXDOMAIN included) without asking a vendor's servers.
fn reverse_query(server: SocketAddr, attempt: u32) -> Query {
    Query {
        host: server.ip().to_string(),
        record_type: RecordType::Ptr,
        resolver: server,
        client_subnet: None,
        attempt,
    }
}
