//! The plain-DNS measurement: one question over UDP (TCP when the answer is truncated) to one
//! resolver, recorded verbatim as a [`Resolution`].
//!
//! Owns the wire side of [`Resolve`]: building the query message (recursion desired, EDNS with
//! an optional Client Subnet option), sending it through hickory-net's UDP/TCP exchanges,
//! retrying timeouts, and reading the raw response (rcode, CNAME chain, addresses, TTLs, ECS
//! scope). The high-level hickory resolver is deliberately not used: it cannot send EDNS options
//! and it interprets responses (caching, chasing, folding rcodes into errors) where we must see
//! exactly what the server said.
//!
//! A PTR query ([`RecordType::Ptr`]) for an address asks about its reverse name and records
//! the target names in [`Resolution::names`]; CNAMEs are followed as for addresses, which is
//! how RFC 2317 classless reverse delegation answers.
//!
//! Names in [`CnameLink`] and PTR targets are written in ASCII (IDNA) form, lower case, **without** the trailing
//! dot (`www.example.com`), so chains compare equal however the server cased them.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_net::NetError;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::{DnsExchange, DnsHandle, FirstAnswer};
use hickory_proto::op::{
    DEFAULT_MAX_PAYLOAD_LEN, DnsRequest, DnsRequestOptions, DnsResponse, Edns, Message,
    Query as DnsQuery, ResponseCode,
};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption, NSIDPayload};
use hickory_proto::rr::{Name, RData, RecordType as DnsRecordType};
use ipnetwork::IpNetwork;

use super::{
    CnameLink, Outcome, Query, RecordType, Resolution, Resolve, ResolveSettings, Transport,
    reverse_name,
};

/// Upper bound on CNAME links followed inside one answer, far above any sane chain; it only
/// guards against loops in a hostile or broken response.
const MAX_CNAME_LINKS: usize = 32;

/// Asks real DNS servers over UDP, falling back to TCP for truncated answers.
///
/// Every call is a fresh measurement: no cache, a new socket (random source port) per try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsResolver {
    settings: ResolveSettings,
}

impl DnsResolver {
    /// A resolver with these timeouts; `tries` below 1 is treated as 1 (a query is always sent).
    pub fn new(settings: ResolveSettings) -> Self {
        DnsResolver {
            settings: ResolveSettings {
                timeout: settings.timeout,
                tries: settings.tries.max(1),
            },
        }
    }

    /// The settings in force (after clamping).
    pub fn settings(&self) -> ResolveSettings {
        self.settings
    }
}

impl DnsResolver {
    /// Asks `resolver` for the PTR names of `ip` (its reverse name, see [`reverse_name`]); the
    /// names are in [`Resolution::names`]. Never fails: NXDOMAIN (no PTR at all), timeouts and
    /// errors are outcomes, as for any query.
    pub async fn reverse(&self, resolver: SocketAddr, ip: IpAddr) -> Resolution {
        let query = Query {
            host: ip.to_string(),
            record_type: RecordType::Ptr,
            resolver,
            client_subnet: None,
            attempt: 1,
        };
        self.resolve(&query).await
    }
}

impl Default for DnsResolver {
    fn default() -> Self {
        DnsResolver::new(ResolveSettings::default())
    }
}

impl Resolve for DnsResolver {
    async fn resolve(&self, query: &Query) -> Resolution {
        self.resolve_with(query, None).await
    }
}

impl DnsResolver {
    /// Asks over `transport` only (TCP without trying UDP first, or UDP without the TCP
    /// fallback), as the DNS canaries do: an interceptor may take over one and not the other.
    pub async fn resolve_over(&self, query: &Query, transport: Transport) -> Resolution {
        self.resolve_with(query, Some(transport)).await
    }

    async fn resolve_with(&self, query: &Query, only: Option<Transport>) -> Resolution {
        let started = Instant::now();
        let mut resolution = Resolution::unanswered(query);

        match build_request(query) {
            Ok(request) => self.exchange(query, request, only, &mut resolution).await,
            Err(error) => resolution.error = Some(error),
        }

        resolution.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::debug!(
            host = %query.host,
            resolver = %query.resolver,
            outcome = ?resolution.outcome,
            addresses = resolution.addresses.len(),
            "resolved"
        );
        resolution
    }
}

/// Why one try got no usable response.
enum TryFailure {
    Timeout,
    Error(String),
}

impl DnsResolver {
    /// Sends `request` over UDP (then TCP if truncated), or over `only` that transport, and
    /// fills in `resolution`.
    async fn exchange(
        &self,
        query: &Query,
        request: DnsRequest,
        only: Option<Transport>,
        resolution: &mut Resolution,
    ) {
        if only == Some(Transport::Tcp) {
            match self
                .with_tries(|| tcp_try(query, &request, self.settings.timeout))
                .await
            {
                Ok((response, rtt)) => {
                    resolution.rtt_ms = Some(rtt);
                    record_response(query, &response, Transport::Tcp, resolution);
                }
                Err(failure) => self.record_failure(resolution, failure, ""),
            }
            return;
        }
        let udp = self
            .with_tries(|| udp_try(query, &request, self.settings.timeout))
            .await;
        let (response, transport, rtt) = match udp {
            Ok((response, rtt)) if !response.metadata.truncation || only.is_some() => {
                (response, Transport::Udp, rtt)
            }
            Ok(_truncated) => {
                // A truncated answer may hold only part of the address set; judging residency on
                // a partial set would hide servers, so only the complete TCP answer is recorded.
                match self
                    .with_tries(|| tcp_try(query, &request, self.settings.timeout))
                    .await
                {
                    Ok((response, rtt)) => (response, Transport::Tcp, rtt),
                    Err(failure) => {
                        self.record_failure(
                            resolution,
                            failure,
                            "UDP answer was truncated; over TCP: ",
                        );
                        return;
                    }
                }
            }
            Err(failure) => {
                self.record_failure(resolution, failure, "");
                return;
            }
        };
        resolution.rtt_ms = Some(rtt);
        record_response(query, &response, transport, resolution);
    }

    /// Runs `one_try` up to `settings.tries` times while it times out, and times the try that
    /// ended it (milliseconds). Other errors (socket, malformed answer) are not retried: they
    /// say something about the path, not about loss.
    async fn with_tries<F, Fut>(&self, mut one_try: F) -> Result<(DnsResponse, f64), TryFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<DnsResponse, TryFailure>>,
    {
        for _ in 0..self.settings.tries {
            let started = Instant::now();
            match one_try().await {
                Err(TryFailure::Timeout) => continue,
                Ok(response) => return Ok((response, started.elapsed().as_secs_f64() * 1000.0)),
                Err(failure) => return Err(failure),
            }
        }
        Err(TryFailure::Timeout)
    }

    fn record_failure(&self, resolution: &mut Resolution, failure: TryFailure, context: &str) {
        match failure {
            TryFailure::Timeout => {
                resolution.outcome = Outcome::Timeout;
                resolution.error = Some(format!(
                    "{context}no answer after {} tries of {} ms each",
                    self.settings.tries,
                    self.settings.timeout.as_millis()
                ));
            }
            TryFailure::Error(error) => {
                resolution.outcome = Outcome::Error;
                resolution.error = Some(format!("{context}{error}"));
            }
        }
    }
}

/// Builds the query message: one question, recursion desired, EDNS0 (advertising hickory's
/// default 1232-byte UDP payload, the DNS Flag Day 2020 value) and ECS when asked for.
fn build_request(query: &Query) -> Result<DnsRequest, String> {
    let host = query.host.trim();
    // A PTR query names an address; its question is the address's reverse name.
    let reverse = match (query.record_type, host.parse::<IpAddr>()) {
        (RecordType::Ptr, Ok(ip)) => Some(reverse_name(ip)),
        _ => None,
    };
    let mut name = Name::from_utf8(reverse.as_deref().unwrap_or(host))
        .map_err(|e| format!("`{}` is not a valid host name: {e}", query.host))?;
    if name.num_labels() == 0 {
        return Err(format!(
            "`{}` is not a valid host name: it is empty",
            query.host
        ));
    }
    // Policies write names as users do (`api.vendor.com`); we never apply search domains.
    name.set_fqdn(true);

    let record_type = match query.record_type {
        RecordType::A => DnsRecordType::A,
        RecordType::Aaaa => DnsRecordType::AAAA,
        RecordType::Ptr => DnsRecordType::PTR,
    };

    let mut message = Message::query();
    message.add_query(DnsQuery::query(name, record_type));
    message.metadata.recursion_desired = true;

    let mut edns = Edns::new();
    edns.set_max_payload(DEFAULT_MAX_PAYLOAD_LEN).set_version(0);
    // RFC 5001: an empty NSID option asks the server to name itself. Recorded with every
    // answer, it shows which server really answered (an interceptor names itself too, or not
    // at all where the resolver always does).
    edns.options_mut().insert(EdnsOption::NSID(
        NSIDPayload::new(Vec::<u8>::new())
            .map_err(|e| format!("cannot build the NSID option: {e}"))?,
    ));
    if let Some(subnet) = query.client_subnet {
        edns.options_mut()
            .insert(EdnsOption::Subnet(client_subnet(subnet)));
    }
    message.set_edns(edns);

    let mut options = DnsRequestOptions::default();
    options.use_edns = true;
    options.recursion_desired = true;
    Ok(DnsRequest::new(message, options))
}

/// RFC 7871 §6: the address must be zero beyond the source prefix, so send the network address.
fn client_subnet(subnet: IpNetwork) -> ClientSubnet {
    ClientSubnet::new(subnet.network(), subnet.prefix(), 0)
}

/// One UDP try on a fresh socket. hickory's own in-stream retransmission is disabled
/// (`max_retries(1)`) so a "try" here is exactly one datagram; the outer loop owns retries.
async fn udp_try(
    query: &Query,
    request: &DnsRequest,
    timeout: Duration,
) -> Result<DnsResponse, TryFailure> {
    // The UDP stream keeps its provider (and so its background task) alive by itself.
    let exchange = UdpClientStream::builder(query.resolver, TokioRuntimeProvider::new())
        .with_timeout(Some(timeout))
        .with_max_retries(1)
        .exchange();
    send_bounded(exchange, request, timeout).await
}

/// One TCP try on a fresh connection; connecting and answering share the one `timeout`.
async fn tcp_try(
    query: &Query,
    request: &DnsRequest,
    timeout: Duration,
) -> Result<DnsResponse, TryFailure> {
    // The provider owns the set of background tasks driving the connection; hickory's TCP
    // exchange does not keep it, so it must live here until the answer is in or the task is
    // aborted ("receiver was canceled").
    let provider = TokioRuntimeProvider::new();
    let attempt = async {
        let exchange =
            TcpClientStream::exchange(query.resolver, None, timeout, Some(1), provider.clone())
                .await
                .map_err(net_failure)?;
        send_bounded(exchange, request, timeout).await
    };
    let result = match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_elapsed) => Err(TryFailure::Timeout),
    };
    drop(provider);
    result
}

/// Sends on an exchange and waits for the first answer, never longer than `timeout` even if a
/// lower layer misbehaves.
async fn send_bounded(
    exchange: DnsExchange<TokioRuntimeProvider>,
    request: &DnsRequest,
    timeout: Duration,
) -> Result<DnsResponse, TryFailure> {
    match tokio::time::timeout(timeout, exchange.send(request.clone()).first_answer()).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(error)) => Err(net_failure(error)),
        Err(_elapsed) => Err(TryFailure::Timeout),
    }
}

fn net_failure(error: NetError) -> TryFailure {
    match error {
        NetError::Timeout => TryFailure::Timeout,
        NetError::Io(ref io) if io.kind() == std::io::ErrorKind::TimedOut => TryFailure::Timeout,
        other => TryFailure::Error(other.to_string()),
    }
}

/// Reads what the server said into `resolution`.
fn record_response(
    query: &Query,
    response: &Message,
    transport: Transport,
    resolution: &mut Resolution,
) {
    let rcode = response.metadata.response_code;
    resolution.rcode = Some(rcode_text(rcode));
    resolution.transport = Some(transport);

    if let Some(edns) = &response.edns
        && let Some(EdnsOption::NSID(nsid)) = edns.option(EdnsCode::NSID)
        && !nsid.as_ref().is_empty()
    {
        resolution.nsid = Some(nsid_text(nsid.as_ref()));
    }

    if query.client_subnet.is_some()
        && let Some(edns) = &response.edns
        && let Some(EdnsOption::Subnet(echoed)) = edns.option(EdnsCode::Subnet)
    {
        resolution.scope_prefix = Some(echoed.scope_prefix());
    }

    let asked = response
        .queries
        .first()
        .map(|q| q.name().clone())
        .unwrap_or_else(Name::root);
    let (chain, end) = follow_cnames(response, &asked);
    resolution.cname_chain = chain;

    let mut ttl: Option<u32> = None;
    for record in response.answers.iter().filter(|r| r.name == end) {
        match (&record.data, query.record_type) {
            (RData::A(a), RecordType::A) => push_new(&mut resolution.addresses, IpAddr::V4(a.0)),
            (RData::AAAA(aaaa), RecordType::Aaaa) => {
                push_new(&mut resolution.addresses, IpAddr::V6(aaaa.0));
            }
            (RData::PTR(ptr), RecordType::Ptr) => {
                push_new(&mut resolution.names, display_name(&ptr.0));
            }
            _ => continue,
        }
        ttl = Some(ttl.map_or(record.ttl, |t| t.min(record.ttl)));
    }
    resolution.ttl = ttl;

    let empty = resolution.addresses.is_empty() && resolution.names.is_empty();
    resolution.outcome = match rcode {
        ResponseCode::NoError if empty => Outcome::NoData,
        ResponseCode::NoError => Outcome::Answer,
        ResponseCode::NXDomain => Outcome::NxDomain,
        ResponseCode::ServFail => Outcome::ServFail,
        ResponseCode::Refused => Outcome::Refused,
        _ => Outcome::OtherRcode,
    };
}

/// An NSID as text when it is printable ASCII (most servers send a host name), else as hex.
fn nsid_text(bytes: &[u8]) -> String {
    if bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        format!("0x{}", crate::text::hex(bytes))
    }
}

fn push_new<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// Follows CNAMEs in the answer section from `start`, in order; returns the chain and the name
/// at its end (where the addresses must be). Stops at a loop or after [`MAX_CNAME_LINKS`].
fn follow_cnames(response: &Message, start: &Name) -> (Vec<CnameLink>, Name) {
    let mut chain = Vec::new();
    let mut current = start.clone();
    let mut seen = vec![current.clone()];
    while chain.len() < MAX_CNAME_LINKS {
        let next = response.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(target) if r.name == current => Some((target.0.clone(), r.ttl)),
            _ => None,
        });
        let Some((target, ttl)) = next else { break };
        chain.push(CnameLink {
            name: display_name(&current),
            target: display_name(&target),
            ttl,
        });
        if seen.contains(&target) {
            break;
        }
        seen.push(target.clone());
        current = target;
    }
    (chain, current)
}

/// `Www.Example.COM.` → `www.example.com` (see the module doc).
fn display_name(name: &Name) -> String {
    let ascii = name.to_ascii().to_ascii_lowercase();
    match ascii.strip_suffix('.') {
        Some(stripped) if !stripped.is_empty() => stripped.to_string(),
        _ => ascii,
    }
}

/// The mnemonic used in zone files and dig output (`NOERROR`, `NXDOMAIN`, …).
fn rcode_text(rcode: ResponseCode) -> String {
    let text = match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::YXDomain => "YXDOMAIN",
        ResponseCode::YXRRSet => "YXRRSET",
        ResponseCode::NXRRSet => "NXRRSET",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::NotZone => "NOTZONE",
        ResponseCode::BADVERS => "BADVERS",
        ResponseCode::BADCOOKIE => "BADCOOKIE",
        other => return format!("RCODE{}", u16::from(other)),
    };
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_subnet_sends_the_network_address_and_its_prefix() {
        let subnet: IpNetwork = "198.51.100.77/24".parse().expect("valid network");
        let ecs = client_subnet(subnet);
        assert_eq!(
            ecs.addr(),
            "198.51.100.0".parse::<IpAddr>().expect("valid address")
        );
        assert_eq!(ecs.source_prefix(), 24);
        assert_eq!(ecs.scope_prefix(), 0);
    }

    #[test]
    fn names_are_lower_case_without_trailing_dot() {
        let name = Name::from_ascii("Www.Example.COM.").expect("valid name");
        assert_eq!(display_name(&name), "www.example.com");
        assert_eq!(display_name(&Name::root()), ".");
    }

    #[test]
    fn rcodes_use_their_mnemonics() {
        assert_eq!(rcode_text(ResponseCode::NoError), "NOERROR");
        assert_eq!(rcode_text(ResponseCode::NXDomain), "NXDOMAIN");
        assert_eq!(rcode_text(ResponseCode::Unknown(3841)), "RCODE3841");
    }

    #[test]
    fn requests_are_recursive_absolute_and_carry_ecs_only_when_asked() {
        let mut query = Query {
            host: "api.example.com".into(),
            record_type: RecordType::Aaaa,
            resolver: "127.0.0.1:53".parse().expect("valid socket address"),
            client_subnet: None,
            attempt: 1,
        };
        let request = build_request(&query).expect("request builds");
        assert!(request.metadata.recursion_desired);
        let question = request.queries.first().expect("one question");
        assert!(question.name().is_fqdn());
        assert_eq!(question.query_type(), DnsRecordType::AAAA);
        let edns = request.edns.as_ref().expect("EDNS present");
        assert!(edns.option(EdnsCode::Subnet).is_none());

        query.client_subnet = Some("2001:db8:1234::/48".parse().expect("valid network"));
        let request = build_request(&query).expect("request builds");
        let edns = request.edns.as_ref().expect("EDNS present");
        match edns.option(EdnsCode::Subnet) {
            Some(EdnsOption::Subnet(ecs)) => assert_eq!(ecs.source_prefix(), 48),
            other => panic!("expected an ECS option, got {other:?}"),
        }
    }

    #[test]
    fn ptr_requests_ask_the_reverse_name_of_an_address() {
        let mut query = Query {
            host: "192.0.2.10".into(),
            record_type: RecordType::Ptr,
            resolver: "127.0.0.1:53".parse().expect("valid socket address"),
            client_subnet: None,
            attempt: 1,
        };
        let request = build_request(&query).expect("request builds");
        let question = request.queries.first().expect("one question");
        assert_eq!(question.query_type(), DnsRecordType::PTR);
        assert_eq!(question.name().to_ascii(), "10.2.0.192.in-addr.arpa.");

        // A reverse name written out is asked as it is.
        query.host = "10.2.0.192.in-addr.arpa".into();
        let request = build_request(&query).expect("request builds");
        let question = request.queries.first().expect("one question");
        assert_eq!(question.name().to_ascii(), "10.2.0.192.in-addr.arpa.");
    }

    #[test]
    fn bad_host_names_are_errors_not_panics() {
        for host in ["", ".", "a..b"] {
            let query = Query {
                host: host.into(),
                record_type: RecordType::A,
                resolver: "127.0.0.1:53".parse().expect("valid socket address"),
                client_subnet: None,
                attempt: 1,
            };
            assert!(
                build_request(&query).is_err(),
                "`{host}` should be rejected"
            );
        }
    }
}
