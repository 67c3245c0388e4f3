//! HTTP(S) probe: one `HEAD /` to an (address, name) pair on a port, with the TLS server name
//! set to the endpoint's name, recording what the server says about itself.
//!
//! Owns the probe's bounds (one deadline for connect, handshake and headers; at most
//! [`MAX_HEADER_BYTES`] of headers; no body; no redirect followed), the certificate it
//! presented (subject, SANs, issuer, validity, SHA-256, whether the name matches and whether
//! the chain verifies against the web's roots), and the response headers that name a CDN edge.
//! Nothing here names a country: `sources::cdn` reads the edge codes.
//!
//! **Why every certificate is accepted.** The probe records; it does not trust. A proxy that
//! terminates TLS presents its own certificate, and that certificate is evidence (it names the
//! operator, or fails to); refusing it would lose the evidence. Whether the chain verifies is
//! checked with the web's roots and recorded beside it. The interception checks decide whether
//! the replies of this vantage's TCP path count at all.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most response-header bytes read; past it the answer is cut off and not used.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The response headers recorded: those that name the serving edge or the server.
pub const EDGE_HEADERS: [&str; 8] = [
    "cf-ray",
    "x-amz-cf-pop",
    "x-served-by",
    "x-cache",
    "server-timing",
    "x-azure-ref",
    "via",
    "server",
];

/// How to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Ports to probe; 80 is plain HTTP, every other port HTTPS.
    pub ports: Vec<u16>,
    /// One deadline for a whole probe: connect, TLS handshake and the response headers.
    pub timeout: Duration,
    /// Root certificates (DER) trusted beside the web's: an organisation's own CA.
    pub roots: Vec<Vec<u8>>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            ports: vec![443],
            timeout: Duration::from_secs(5),
            roots: Vec::new(),
        }
    }
}

/// Reads the certificates of a PEM file, for [`HttpSettings::roots`].
pub fn read_roots(path: &std::path::Path) -> Result<Vec<Vec<u8>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs: Result<Vec<CertificateDer<'static>>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect();
    let certs = certs.map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: holds no PEM certificate", path.display()));
    }
    Ok(certs.into_iter().map(|c| c.as_ref().to_vec()).collect())
}

/// The certificate a server presented, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    pub subject: String,
    pub issuer: String,
    /// DNS names and addresses in the subject alternative name extension.
    pub sans: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    /// SHA-256 of the leaf certificate (DER), hex.
    pub sha256: String,
    /// Whether the certificate covers the name asked for (SNI), by its SANs.
    pub name_matches: bool,
    /// Why the chain does not verify against the web's roots for that name; `None`: it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untrusted: Option<String>,
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpProbe {
    pub port: u16,
    /// The server name sent (TLS SNI and `Host`); `None` for a literal address endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub tls: bool,
    /// The HTTP status, when the server answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
    /// The edge-naming headers present, in [`EDGE_HEADERS`] order, as sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// Time from the start of the connect to the end of the headers, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<f64>,
    /// Why there is no answer, when there is none (refused, timed out, not HTTP ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

impl HttpProbe {
    /// A probe of `port` as `name` before anything answered (80 is plain HTTP).
    pub fn unanswered(port: u16, name: Option<String>) -> HttpProbe {
        HttpProbe {
            port,
            name,
            tls: port != 80,
            status: None,
            certificate: None,
            headers: Vec::new(),
            elapsed_ms: None,
            failed: None,
        }
    }

    /// The value of header `name` (lower case), if recorded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Probes `addr` on `port` as `name`, within `settings.timeout`. Never fails: what went wrong
/// is recorded in the result.
pub async fn probe(
    addr: IpAddr,
    port: u16,
    name: Option<&str>,
    settings: &HttpSettings,
) -> HttpProbe {
    let mut out = HttpProbe::unanswered(port, name.map(str::to_string));
    let started = Instant::now();
    match tokio::time::timeout(
        settings.timeout,
        exchange(addr, port, name, settings, &mut out),
    )
    .await
    {
        Ok(Ok(())) => out.elapsed_ms = Some(started.elapsed().as_secs_f64() * 1000.0),
        Ok(Err(why)) => out.failed = Some(why),
        Err(_) => {
            out.failed = Some(format!(
                "no answer within {} ms (connect, handshake and headers)",
                settings.timeout.as_millis()
            ))
        }
    }
    out
}

async fn exchange(
    addr: IpAddr,
    port: u16,
    name: Option<&str>,
    settings: &HttpSettings,
    out: &mut HttpProbe,
) -> Result<(), String> {
    let socket = SocketAddr::new(addr, port);
    let tcp = TcpStream::connect(socket)
        .await
        .map_err(|e| format!("TCP connect to {socket}: {e}"))?;
    let host = name.map_or_else(|| addr.to_string(), str::to_string);
    if !out.tls {
        return request(tcp, &host, out).await;
    }
    let verifier = Arc::new(Recorder::new(&settings.roots)?);
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup: {e}"))?
    .dangerous()
    .with_custom_certificate_verifier(verifier.clone())
    .with_no_client_auth();
    let server_name = match name {
        Some(n) => {
            ServerName::try_from(n.to_string()).map_err(|e| format!("`{n}` as a TLS name: {e}"))?
        }
        None => ServerName::IpAddress(addr.into()),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let stream = connector
        .connect(server_name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {socket}: {e}"))?;
    out.certificate = verifier.certificate(name.unwrap_or(&host));
    request(stream, &host, out).await
}

/// Sends `HEAD /` and reads the response head, at most [`MAX_HEADER_BYTES`].
async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    out: &mut HttpProbe,
) -> Result<(), String> {
    let head = format!(
        "HEAD / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: residency/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the response: {e}"))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        if buf.len() > MAX_HEADER_BYTES {
            return Err(format!(
                "response headers larger than {} KiB: not read",
                MAX_HEADER_BYTES / 1024
            ));
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&buf) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(format!(
                "the response ended after {} bytes, before its headers did",
                buf.len()
            ));
        }
        Err(e) => return Err(format!("not an HTTP response: {e}")),
    }
    out.status = response.code;
    for wanted in EDGE_HEADERS {
        for h in response
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(wanted))
        {
            let value = String::from_utf8_lossy(h.value).trim().to_string();
            out.headers.push((wanted.to_string(), value));
        }
    }
    Ok(())
}

/// A verifier that accepts every certificate and remembers the leaf and whether the web's
/// roots vouch for it (see the module doc).
#[derive(Debug)]
struct Recorder {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    seen: std::sync::Mutex<Option<(Vec<u8>, Option<String>)>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl Recorder {
    fn new(extra: &[Vec<u8>]) -> Result<Recorder, String> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for der in extra {
            roots
                .add(CertificateDer::from(der.clone()))
                .map_err(|e| format!("a configured root certificate is unusable: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .build()
        .map_err(|e| format!("cannot build a verifier from the web's roots: {e}"))?;
        Ok(Recorder {
            webpki,
            seen: std::sync::Mutex::new(None),
            provider,
        })
    }

    fn certificate(&self, name: &str) -> Option<Certificate> {
        let seen = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        describe(&seen.0, name, seen.1)
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .err()
            .map(|e| e.to_string());
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((end_entity.as_ref().to_vec(), verdict));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The recorded form of a leaf certificate.
fn describe(der: &[u8], name: &str, untrusted: Option<String>) -> Option<Certificate> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for general in &ext.value.general_names {
            match general {
                x509_parser::extensions::GeneralName::DNSName(d) => sans.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                        _ => None,
                    };
                    sans.extend(ip.map(|i| i.to_string()));
                }
                _ => {}
            }
        }
    }
    let name_matches = sans.iter().any(|san| name_covers(san, name));
    Some(Certificate {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        not_before: cert.validity().not_before.to_string(),
        not_after: cert.validity().not_after.to_string(),
        sha256: crate::text::hex(&Sha256::digest(der)),
        name_matches,
        untrusted,
    })
}

/// Whether SAN `san` covers `name`: equal, or a `*.` wildcard for exactly one label.
fn name_covers(san: &str, name: &str) -> bool {
    let (san, name) = (
        san.to_ascii_lowercase(),
        name.trim_end_matches('.').to_ascii_lowercase(),
    );
    match san.strip_prefix("*.") {
        Some(rest) => name
            .split_once('.')
            .is_some_and(|(label, tail)| !label.is_empty() && tail == rest),
        None => san == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(name_covers("api.vendor.test", "API.vendor.test."));
        assert!(name_covers("*.vendor.test", "api.vendor.test"));
        assert!(!name_covers("*.vendor.test", "a.b.vendor.test"));
        assert!(!name_covers("*.vendor.test", "vendor.test"));
        assert!(!name_covers("vendor.test", "api.vendor.test"));
    }

    #[test]
    fn the_web_roots_make_a_verifier() {
        assert!(Recorder::new(&[]).is_ok());
    }
}
