//! CDN edge evidence: the serving edge a response names in its headers, located by the IATA
//! airport code CDNs name their points of presence after.
//!
//! Owns reading the codes: Cloudflare `cf-ray: 8d1f0a2b3c4d5e6f-BOM` (the suffix), CloudFront
//! `x-amz-cf-pop: BOM78-C1` (the first three letters), Fastly `x-served-by:
//! cache-bom4722-BOM` (the suffix of the last, client-facing, entry). Each becomes one
//! [`SourceKind::CdnEdge`] evidence, medium confidence: it is the server's own word about where
//! *that response* was served, which a header can forge and physics checks like any claim.
//!
//! A header counts only from a response that demonstrably came from the endpoint's operator:
//! over TLS, with a certificate for the name asked that the web's roots (or the policy's own
//! `http.roots`) vouch for. Anything else (plain HTTP, a self-signed or mismatched
//! certificate: what a proxy in the path would present) is recorded and not located.
//! Akamai's edges are named only with debug request headers and by host names, not codes, and
//! Azure Front Door's `x-azure-ref` is opaque: both are recorded by the probe, not located.

use crate::measure::http::HttpProbe;
use crate::model::{Confidence, Coordinates, Evidence, SourceKind};
use crate::sources::ptr::Dictionary;

/// How far an edge named after an airport may be from it: a metro's data centres.
pub const EDGE_ACCURACY_KM: u32 = 50;

/// A CDN's edge code in one response header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeCode {
    pub cdn: &'static str,
    pub header: &'static str,
    /// The header as sent.
    pub value: String,
    /// The IATA code read from it, upper case.
    pub iata: String,
}

/// Every edge code the probe's headers carry.
pub fn edge_codes(probe: &HttpProbe) -> Vec<EdgeCode> {
    let mut out = Vec::new();
    let mut push = |cdn, header, value: &str, code: Option<&str>| {
        if let Some(code) =
            code.filter(|c| c.len() == 3 && c.chars().all(|c| c.is_ascii_alphabetic()))
        {
            out.push(EdgeCode {
                cdn,
                header,
                value: value.to_string(),
                iata: code.to_ascii_uppercase(),
            });
        }
    };
    if let Some(v) = probe.header("cf-ray") {
        push("cloudflare", "cf-ray", v, v.trim().rsplit('-').next());
    }
    if let Some(v) = probe.header("x-amz-cf-pop") {
        push("cloudfront", "x-amz-cf-pop", v, v.trim().get(..3));
    }
    if let Some(v) = probe.header("x-served-by") {
        let last = v
            .split(',')
            .map(str::trim)
            .rfind(|e| e.starts_with("cache-"));
        push(
            "fastly",
            "x-served-by",
            v,
            last.and_then(|e| e.rsplit('-').next()),
        );
    }
    out
}

/// The located evidence of every edge code in `probe`, from address `target`.
pub fn edge_evidence(target: std::net::IpAddr, probe: &HttpProbe) -> Vec<Evidence> {
    let dictionary = Dictionary::shipped().ok();
    let asked = match &probe.name {
        Some(name) => format!("{target} port {} as {name}", probe.port),
        None => format!("{target} port {}", probe.port),
    };
    let distrust = trust_problem(probe);
    edge_codes(probe)
        .into_iter()
        .map(|code| {
            let place = dictionary.and_then(|d| d.airport(&code.iata).or_else(|| d.metro(&code.iata)));
            let mut evidence = Evidence::unlocated(
                format!("cdn:{}", code.cdn),
                SourceKind::CdnEdge,
                String::new(),
            );
            if let Some(why) = &distrust {
                evidence.detail = format!(
                    "{}: {} {} names edge {}, not counted: {why} ({asked})",
                    code.cdn, code.header, code.value, code.iata
                );
                return evidence;
            }
            match place {
                Some(p) => {
                    evidence.detail = format!(
                        "{}: {} {} names edge {} ({}, {}) for this response from {asked}",
                        code.cdn, code.header, code.value, code.iata, p.city, p.country
                    );
                    evidence.country = Some(p.country);
                    evidence.confidence = Confidence::Medium;
                    evidence.city = Some(p.city.clone());
                    evidence.coordinates = Some(Coordinates {
                        latitude: p.latitude,
                        longitude: p.longitude,
                        accuracy_km: Some(EDGE_ACCURACY_KM),
                    });
                }
                None => {
                    evidence.detail = format!(
                        "{}: {} {} names edge {}, which is no IATA code residency knows, from {asked}",
                        code.cdn, code.header, code.value, code.iata
                    );
                }
            }
            evidence
        })
        .collect()
}

/// Why a response's headers cannot be taken as the operator's, if they cannot.
fn trust_problem(probe: &HttpProbe) -> Option<String> {
    if !probe.tls {
        return Some("a plain-HTTP answer could come from anything on the path".into());
    }
    let Some(cert) = &probe.certificate else {
        return Some("no certificate was recorded".into());
    };
    if !cert.name_matches {
        return Some(format!(
            "the certificate ({}) does not cover the name asked",
            cert.subject
        ));
    }
    cert.untrusted
        .as_ref()
        .map(|why| format!("the certificate is not vouched for ({why})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(headers: &[(&str, &str)]) -> HttpProbe {
        HttpProbe {
            port: 443,
            name: Some("api.vendor.test".into()),
            tls: true,
            status: Some(200),
            certificate: Some(crate::measure::http::Certificate {
                subject: "CN=api.vendor.test".into(),
                issuer: "CN=Lab CA".into(),
                sans: vec!["api.vendor.test".into()],
                not_before: String::new(),
                not_after: String::new(),
                sha256: String::new(),
                name_matches: true,
                untrusted: None,
            }),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            elapsed_ms: Some(3.0),
            failed: None,
        }
    }

    #[test]
    fn each_cdn_names_its_edge_its_own_way() {
        let p = probe(&[
            ("cf-ray", "8d1f0a2b3c4d5e6f-BOM"),
            ("x-amz-cf-pop", "FRA56-P1"),
            (
                "x-served-by",
                "cache-lcy-eglc8600040-LCY, cache-del21731-DEL",
            ),
        ]);
        let codes: Vec<(&str, String)> = edge_codes(&p)
            .into_iter()
            .map(|c| (c.cdn, c.iata))
            .collect();
        assert_eq!(
            codes,
            [
                ("cloudflare", "BOM".into()),
                ("cloudfront", "FRA".into()),
                ("fastly", "DEL".into())
            ]
        );
        let evidence = edge_evidence("192.0.2.1".parse().expect("ip"), &p);
        let places: Vec<(Option<String>, Option<String>)> = evidence
            .iter()
            .map(|e| (e.country.map(|c| c.to_string()), e.city.clone()))
            .collect();
        assert_eq!(places[0].0.as_deref(), Some("IN"));
        assert_eq!(places[1].0.as_deref(), Some("DE"));
        assert_eq!(places[2].0.as_deref(), Some("IN"));
        assert!(
            evidence
                .iter()
                .all(|e| e.kind == SourceKind::CdnEdge && e.coordinates.is_some())
        );
    }

    #[test]
    fn headers_count_only_from_a_vouched_for_certificate_for_the_name() {
        let mut p = probe(&[("cf-ray", "8d1f0a2b3c4d5e6f-BOM")]);
        if let Some(c) = p.certificate.as_mut() {
            c.untrusted = Some("UnknownIssuer".into());
        }
        let e = edge_evidence("192.0.2.1".parse().expect("ip"), &p);
        assert_eq!(e[0].country, None);
        assert!(e[0].detail.contains("not counted"), "{}", e[0].detail);
        p.tls = false;
        let e = edge_evidence("192.0.2.1".parse().expect("ip"), &p);
        assert!(e[0].detail.contains("plain-HTTP"), "{}", e[0].detail);
    }

    #[test]
    fn headers_without_a_code_give_nothing() {
        let p = probe(&[
            ("cf-ray", "8d1f0a2b3c4d5e6f"),
            ("x-served-by", "varnish"),
            ("x-amz-cf-pop", "9"),
        ]);
        assert!(edge_codes(&p).is_empty(), "{:?}", edge_codes(&p));
        let p = probe(&[("cf-ray", "8d1f-ZZQ")]);
        let e = edge_evidence("192.0.2.1".parse().expect("ip"), &p);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].country, None, "{}", e[0].detail);
    }
}
