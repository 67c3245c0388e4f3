//! RDAP answers (RFC 9083): the few fields of an IP network (§5.4), autnum (§5.5) or error
//! (§6) object that locate the holder, read the way each registry really writes them.
//!
//! Owns our own serde types for those fields (an RDAP object is large and registries extend
//! it freely, so only what a report quotes is read and the rest ignored), and where each
//! registry puts the holder's name and country: the registrant's vCard `fn`, RIPE's untitled
//! and APNIC's titled description remarks, AFRINIC's role-less organisation entities; the
//! network's `country`, else the vCard address's `cc`, its 7th slot (LACNIC's code, AFRINIC's
//! name) or the last line of its label (ARIN's country name).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ipnetwork::IpNetwork;
use serde::Deserialize;

use super::rdap::{RdapAnswer, source_name};
use super::{OriginAs, RegistryRecord, parse_country};
use crate::model::CountryCode;

/// The fields every object read here shares.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Common {
    object_class_name: Option<String>,
    handle: Option<String>,
    name: Option<String>,
    country: Option<String>,
    #[serde(default)]
    entities: Vec<Entity>,
    #[serde(default)]
    links: Vec<Link>,
    #[serde(default)]
    remarks: Vec<Remark>,
    #[serde(flatten)]
    error: ErrorFields,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IpNetworkObject {
    #[serde(flatten)]
    common: Common,
    start_address: Option<String>,
    end_address: Option<String>,
    /// ARIN's extension listing the origin ASes announcing the block.
    #[serde(default, rename = "arin_originas0_originautnums")]
    origin_autnums: Vec<u32>,
    /// The `cidr0` extension: the block as CIDRs (several when the range is not one prefix,
    /// e.g. three for Microsoft's 13.64.0.0 - 13.107.255.255).
    #[serde(default, rename = "cidr0_cidrs")]
    cidrs: Vec<Cidr0>,
}

/// The fields of an RDAP error (RFC 9083 §6), which some servers send with `200 OK`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorFields {
    /// A number at most registries, a string (`"400"`) at APNIC.
    error_code: Option<serde_json::Value>,
    title: Option<String>,
    #[serde(default)]
    description: Vec<String>,
}

impl ErrorFields {
    /// The error in words, when this is an error object.
    fn describe(&self) -> Option<String> {
        let code = match self.error_code.as_ref()? {
            serde_json::Value::String(s) => s.trim().to_string(),
            other => other.to_string(),
        };
        let mut text = format!("the registry answered error {code}");
        let said: Vec<&str> = self
            .title
            .iter()
            .map(String::as_str)
            .chain(self.description.iter().map(String::as_str))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if !said.is_empty() {
            text.push_str(": ");
            text.push_str(&said.join(" "));
        }
        Some(text)
    }
}

#[derive(Debug, Deserialize)]
struct Cidr0 {
    v4prefix: Option<String>,
    v6prefix: Option<String>,
    length: Option<u8>,
}

impl Cidr0 {
    fn network(&self) -> Option<IpNetwork> {
        let prefix: IpAddr = self
            .v4prefix
            .as_ref()
            .or(self.v6prefix.as_ref())?
            .parse()
            .ok()?;
        IpNetwork::new(prefix, self.length?).ok()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entity {
    handle: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    /// jCard (RFC 7095): `["vcard", [[name, params, type, value], ...]]`. RIPE and JPNIC list
    /// most entities by handle only, without one.
    vcard_array: Option<serde_json::Value>,
    #[serde(default)]
    entities: Vec<Entity>,
}

/// RFC 9083 §4.3; APNIC puts the WHOIS `descr:` lines here, titled `description`, RIPE
/// without a title.
#[derive(Debug, Deserialize)]
struct Remark {
    title: Option<String>,
    #[serde(default)]
    description: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Link {
    rel: Option<String>,
    href: Option<String>,
    /// The media type; a geofeed link (RFC 9632 §5, RDAP `geofeed1`) is `application/geofeed+csv`.
    #[serde(rename = "type")]
    media_type: Option<String>,
}

/// An RDAP object of another class than asked for is not an answer (RFC 9083 §4.8); a missing
/// class name is tolerated, as some servers leave it out.
fn expect_class(found: Option<&str>, wanted: &str) -> Result<(), String> {
    match found {
        Some(class) if class != wanted => {
            Err(format!("answer is a `{class}` object, not an `{wanted}`"))
        }
        _ => Ok(()),
    }
}

/// What an error answer's body says, when it is an RDAP error object.
pub(crate) fn error_body(body: &str) -> Option<String> {
    serde_json::from_str::<ErrorFields>(body).ok()?.describe()
}

/// Turn an `ip/` answer into a record. An answer without an IP network object is an error.
pub(crate) fn parse_ip_answer(
    answer: &RdapAnswer,
    retrieved_at: DateTime<Utc>,
    cached: bool,
) -> Result<RegistryRecord, String> {
    let object: IpNetworkObject = serde_json::from_str(&answer.body)
        .map_err(|e| format!("answer is not an RDAP IP network object: {e}"))?;
    if let Some(error) = object.common.error.describe() {
        return Err(error);
    }
    expect_class(object.common.object_class_name.as_deref(), "ip network")?;
    if object.common.object_class_name.is_none()
        && object.common.handle.is_none()
        && object.start_address.is_none()
    {
        return Err(
            "answer has no IP network object (no objectClassName, handle or start address)".into(),
        );
    }
    let registrant = find_registrant(&object.common.entities);
    let named = holder_entity(&object.common.entities);
    // Who holds the block: the registrant's name; else the description the registry copies
    // from WHOIS `descr:` (APNIC titles it, RIPE does not), which is what WHOIS shows as the
    // holder; else the best-named other entity (AFRINIC lists its organisation without roles).
    let holder = holder_name(registrant, named, &object.common.remarks);
    // The network's own country; ARIN leaves it out, so fall back to the holder's address.
    let (country, country_raw) = match object.common.country.clone() {
        Some(raw) => (parse_country(Some(&raw)), Some(raw)),
        None => match entity_country(registrant, &object.common.entities) {
            Some((code, raw)) => (Some(code), Some(raw)),
            None => (None, None),
        },
    };
    let self_link = self_link(&object.common.links);
    let range = match (&object.start_address, &object.end_address) {
        (Some(start), Some(end)) => Some(format!("{start} - {end}")),
        _ => None,
    };
    let mut cidrs: Vec<IpNetwork> = object.cidrs.iter().filter_map(Cidr0::network).collect();
    if cidrs.is_empty()
        && let (Some(start), Some(end)) = (&object.start_address, &object.end_address)
        && let (Some(start), Some(end)) = (rdap_address(start), rdap_address(end))
    {
        cidrs = range_cidrs(start, end);
    }
    Ok(RegistryRecord {
        source: source_name(&answer.url),
        holder,
        country,
        country_raw,
        handle: object.common.handle,
        range,
        name: object.common.name,
        url: Some(self_link.unwrap_or_else(|| answer.url.to_string())),
        origin_asn: object.origin_autnums.first().copied(),
        origin_as: None,
        cidrs,
        geofeed: geofeed_link(&object.common.links)
            .or_else(|| geofeed_remark(&object.common.remarks)),
        retrieved_at,
        cached,
    })
}

/// An RDAP `startAddress`/`endAddress` as registries really write them: plain, with a
/// `/32` suffix (RIPE in 2015), or with zero-padded octets (`074.125.000.000`, ARIN in 2015).
fn rdap_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let text = text.split_once('/').map_or(text, |(addr, _)| addr);
    text.parse().ok().or_else(|| {
        let octets: Vec<u8> = text
            .split('.')
            .map(|o| o.parse().ok())
            .collect::<Option<_>>()?;
        let octets: [u8; 4] = octets.try_into().ok()?;
        Some(IpAddr::from(octets))
    })
}

/// The fewest CIDR prefixes that exactly cover `start..=end` (empty when the two are of
/// different families or out of order). Bounded: a range that needs more than 256 prefixes is
/// not a registry block, and what was found by then is kept.
pub(crate) fn range_cidrs(start: IpAddr, end: IpAddr) -> Vec<IpNetwork> {
    let (bits, mut lo, hi) = match (start, end) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (32, u128::from(u32::from(a)), u128::from(u32::from(b))),
        (IpAddr::V6(a), IpAddr::V6(b)) => (128, u128::from(a), u128::from(b)),
        _ => return Vec::new(),
    };
    // The last offset of a block with `k` host bits.
    let span = |k: u32| {
        if k >= 128 {
            u128::MAX
        } else {
            (1u128 << k) - 1
        }
    };
    let mut out = Vec::new();
    while lo <= hi && out.len() < 256 {
        // The largest block aligned at `lo` that does not pass `hi`.
        let mut k = if lo == 0 {
            bits
        } else {
            lo.trailing_zeros().min(bits)
        };
        while k > 0 && span(k) > hi - lo {
            k -= 1;
        }
        let addr = if bits == 32 {
            IpAddr::from(std::net::Ipv4Addr::from(lo as u32))
        } else {
            IpAddr::from(std::net::Ipv6Addr::from(lo))
        };
        if let Ok(net) = IpNetwork::new(addr, (bits - k) as u8) {
            out.push(net);
        }
        match (lo + span(k)).checked_add(1) {
            Some(next) => lo = next,
            None => break,
        }
    }
    out
}

/// RFC 9632 §5: the `geo` link to the network's geofeed (RIPE NCC's `geofeed1` RDAP extension).
fn geofeed_link(links: &[Link]) -> Option<String> {
    links
        .iter()
        .find(|l| {
            l.rel
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case("geo"))
                || l.media_type
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case("application/geofeed+csv"))
        })
        .and_then(|l| l.href.clone())
        .filter(|h| h.starts_with("https://") || h.starts_with("http://"))
}

/// RFC 9632 §3: a `remarks: Geofeed https://…` line, the form used before `geofeed:` existed.
fn geofeed_remark(remarks: &[Remark]) -> Option<String> {
    remarks
        .iter()
        .flat_map(|r| r.description.iter())
        .find_map(|line| super::geofeed_in_remark(line))
}

#[derive(Debug, Deserialize)]
struct AutnumObject {
    #[serde(flatten)]
    common: Common,
}

/// Turn an `autnum/` answer (RFC 9083 §5.5) into the origin AS of a record.
pub(crate) fn parse_autnum_answer(answer: &RdapAnswer, asn: u32) -> Result<OriginAs, String> {
    let object: AutnumObject = serde_json::from_str(&answer.body)
        .map_err(|e| format!("answer is not an RDAP autnum object: {e}"))?;
    if let Some(error) = object.common.error.describe() {
        return Err(error);
    }
    expect_class(object.common.object_class_name.as_deref(), "autnum")?;
    let registrant = find_registrant(&object.common.entities);
    let named = holder_entity(&object.common.entities);
    let country = match object.common.country.as_deref() {
        Some(raw) => parse_country(Some(raw)),
        None => entity_country(registrant, &object.common.entities).map(|(code, _)| code),
    };
    Ok(OriginAs {
        asn,
        handle: object.common.handle,
        name: object.common.name,
        holder: holder_name(registrant, named, &object.common.remarks),
        country,
        url: Some(self_link(&object.common.links).unwrap_or_else(|| answer.url.to_string())),
    })
}

/// Who holds the block: the registrant's name; else the description the registry copies from
/// WHOIS `descr:` (APNIC titles it, RIPE does not), which is what WHOIS shows as the holder;
/// else the best-named organisation or group (AFRINIC lists its organisation without roles);
/// else AFRINIC's `Remark` (its `descr:`); a person's name only as the last resort.
fn holder_name(
    registrant: Option<&Entity>,
    named: Option<&Entity>,
    remarks: &[Remark],
) -> Option<String> {
    let name = |e: &Entity| vcard_text(e, "fn");
    let person = named.is_some_and(|e| {
        vcard_text(e, "kind").is_some_and(|k| k.eq_ignore_ascii_case("individual"))
    });
    registrant
        .and_then(name)
        .or_else(|| description(remarks))
        .or_else(|| named.filter(|_| !person).and_then(name))
        .or_else(|| first_remark(remarks, |t| t.eq_ignore_ascii_case("remark")))
        .or_else(|| named.and_then(name))
}

fn self_link(links: &[Link]) -> Option<String> {
    links
        .iter()
        .find(|l| l.rel.as_deref() == Some("self"))
        .and_then(|l| l.href.clone())
}

/// The first line of the description remark: titled `description` (APNIC), or the untitled
/// remark RIPE makes of `descr:`.
fn description(remarks: &[Remark]) -> Option<String> {
    first_remark(remarks, |t| t.eq_ignore_ascii_case("description"))
}

/// The first meaningful line of the untitled remarks and those whose title passes `title`.
fn first_remark(remarks: &[Remark], title: impl Fn(&str) -> bool) -> Option<String> {
    remarks
        .iter()
        .filter(|r| r.title.as_deref().is_none_or(&title))
        .flat_map(|r| r.description.iter())
        .map(|line| line.trim())
        // RIPE objects often open with a rule of `=` signs.
        .find(|line| line.chars().any(char::is_alphanumeric))
        .map(str::to_string)
}

/// Every entity, depth first, nested ones included.
fn every_entity(entities: &[Entity]) -> Vec<&Entity> {
    fn walk<'a>(entities: &'a [Entity], out: &mut Vec<&'a Entity>) {
        for e in entities {
            out.push(e);
            walk(&e.entities, out);
        }
    }
    let mut out = Vec::new();
    walk(entities, &mut out);
    out
}

/// The first entity (depth first) with `role` and a name of its own: RIPE lists maintainers
/// (`ALOJALIA-MNT`) as registrants beside the organisation.
fn find_registrant(entities: &[Entity]) -> Option<&Entity> {
    every_entity(entities)
        .into_iter()
        .find(|e| e.roles.iter().any(|r| r.eq_ignore_ascii_case("registrant")) && has_name(e))
}

/// Whether the entity has a name of its own: a `fn` that is not just its handle (AFRINIC
/// writes `fn: ORG-VSA1-AFRINIC`; RIPE's bare references have no vCard at all).
fn has_name(entity: &Entity) -> bool {
    vcard_text(entity, "fn").is_some_and(|name| {
        entity
            .handle
            .as_deref()
            .is_none_or(|handle| !handle.eq_ignore_ascii_case(&name))
    })
}

/// When no registrant is named, the entity most likely to be the holder (in [`ranked`]
/// order) that has a name of its own.
fn holder_entity(entities: &[Entity]) -> Option<&Entity> {
    ranked(entities).into_iter().find(|e| has_name(e))
}

/// The country of the holder's address: the registrant's, else the first address with one
/// among the other entities, in [`ranked`] order (AFRINIC's organisation may give only a
/// street, its NOC the country).
fn entity_country(
    registrant: Option<&Entity>,
    entities: &[Entity],
) -> Option<(CountryCode, String)> {
    // A person's or an abuse desk's address is theirs, not the holder's.
    registrant.and_then(vcard_country).or_else(|| {
        ranked(entities)
            .into_iter()
            .filter(|e| {
                let kind = vcard_text(e, "kind").unwrap_or_default();
                let contact = e
                    .roles
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case("abuse") || r.eq_ignore_ascii_case("noc"));
                !kind.eq_ignore_ascii_case("individual") && !contact
            })
            .find_map(vcard_country)
    })
}

/// Entities in the order they are likely to speak for the holder: an organisation, then an
/// administrative contact, then a group (a maintainer), then anyone else. People and abuse
/// desks come last: their name is a contact's, not the holder's.
fn ranked(entities: &[Entity]) -> Vec<&Entity> {
    let rank = |e: &Entity| {
        let kind = vcard_text(e, "kind")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let role = |r: &str| e.roles.iter().any(|x| x.eq_ignore_ascii_case(r));
        match kind.as_str() {
            "org" => 0,
            _ if role("administrative") && kind != "individual" => 1,
            "group" => 2,
            _ if role("abuse") || role("noc") => 5,
            "individual" => 4,
            _ => 3,
        }
    };
    let mut every = every_entity(entities);
    every.sort_by_key(|e| rank(e));
    every
}

fn vcard_properties(entity: &Entity) -> impl Iterator<Item = &Vec<serde_json::Value>> {
    entity
        .vcard_array
        .as_ref()
        .and_then(|v| v.get(1))
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_array())
}

/// A text property of the jCard, e.g. `fn` (the formatted name).
fn vcard_text(entity: &Entity, name: &str) -> Option<String> {
    vcard_properties(entity)
        .find(|p| p.first().and_then(|n| n.as_str()) == Some(name))
        .and_then(|p| p.get(3))
        .and_then(|v| v.as_str())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The country of the jCard's `adr` property, and the text it was read from. Registries put
/// it in one of three places: the `cc` parameter (RFC 8605), the structured value's last
/// (7th) slot, as a code (LACNIC) or a name (AFRINIC), or only the last line of the `label`
/// parameter (ARIN: `…\n98052\nUnited States`; APNIC: `Chiyoda-ku, Tokyo 101-0047,Japan`).
fn vcard_country(entity: &Entity) -> Option<(CountryCode, String)> {
    vcard_properties(entity)
        .filter(|p| p.first().and_then(|n| n.as_str()) == Some("adr"))
        .find_map(|p| {
            let params = p.get(1);
            let param = |key: &str| params.and_then(|v| v.get(key)).and_then(|v| v.as_str());
            let slot = p
                .get(3)
                .and_then(|v| v.as_array())
                .and_then(|parts| parts.get(6))
                .and_then(|v| v.as_str());
            let read = |text: &str| {
                let text = text.trim();
                let code = parse_country(Some(text)).or_else(|| CountryCode::from_name(text))?;
                Some((code, text.to_string()))
            };
            param("cc")
                .and_then(read)
                .or_else(|| slot.and_then(read))
                .or_else(|| param("label").and_then(label_country))
        })
}

/// The country named by the last line of an address label, or by its last comma-separated
/// part. Some registries write the line breaks as a literal `\n`.
fn label_country(label: &str) -> Option<(CountryCode, String)> {
    let lines: Vec<&str> = label
        .split('\n')
        .flat_map(|line| line.split("\\n"))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let last = *lines.last()?;
    let parts: Vec<&str> = last.split(',').map(str::trim).collect();
    // "Kowloon, Hong Kong, China" is HK: the last two parts are tried before the last alone.
    let two = (parts.len() >= 3).then(|| parts[parts.len() - 2..].join(", "));
    let tail = parts.last().copied().unwrap_or(last);
    // A US address ends in its state, and one state shares its name with a country.
    let tail = (parts.len() == 1 || !tail.eq_ignore_ascii_case("georgia")).then_some(tail);
    std::iter::once(last.to_string())
        .chain(two)
        .chain(tail.map(str::to_string))
        .find_map(|text| Some((CountryCode::from_name(&text)?, text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_become_the_fewest_prefixes() {
        let cidrs = |a: &str, b: &str| -> Vec<String> {
            let (a, b) = (a.parse().expect("start"), b.parse().expect("end"));
            range_cidrs(a, b).iter().map(|n| n.to_string()).collect()
        };
        assert_eq!(cidrs("0.0.0.0", "255.255.255.255"), ["0.0.0.0/0"]);
        assert_eq!(
            cidrs("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ["::/0"]
        );
        assert_eq!(cidrs("192.0.2.0", "192.0.2.255"), ["192.0.2.0/24"]);
        assert_eq!(cidrs("192.0.2.7", "192.0.2.7"), ["192.0.2.7/32"]);
        assert_eq!(
            cidrs("192.0.2.255", "192.0.3.0"),
            ["192.0.2.255/32", "192.0.3.0/32"]
        );
        assert_eq!(
            cidrs("255.255.255.254", "255.255.255.255"),
            ["255.255.255.254/31"]
        );
        assert!(cidrs("192.0.2.9", "192.0.2.1").is_empty(), "out of order");
        assert!(cidrs("192.0.2.1", "2001:db8::1").is_empty(), "two families");
        assert_eq!(rdap_address("074.125.000.000"), "74.125.0.0".parse().ok());
        assert_eq!(rdap_address("62.239.237.0/32"), "62.239.237.0".parse().ok());
    }

    #[test]
    fn the_address_country_slot_holds_a_code_or_a_name() {
        let entity = |adr: serde_json::Value| -> Entity {
            serde_json::from_value(serde_json::json!({
                "handle": "X", "roles": ["registrant"],
                "vcardArray": ["vcard", [["fn", {}, "text", "Holder"], ["adr", {}, "text", adr]]]
            }))
            .expect("entity")
        };
        let country =
            |adr: serde_json::Value| vcard_country(&entity(adr)).map(|(c, _)| c.to_string());
        let lacnic = serde_json::json!(["", "", "Calle 1", "Rosario", "SF", "2000", "AR"]);
        assert_eq!(country(lacnic).as_deref(), Some("AR"));
        let afrinic = serde_json::json!([
            "MTN",
            "Heron Place",
            "",
            "",
            "",
            "Cape Town",
            "South Africa"
        ]);
        assert_eq!(country(afrinic).as_deref(), Some("ZA"));
        let nothing = serde_json::json!([
            "216 14th Avenue",
            "Fairland",
            "Johannesburg 2196",
            "",
            "",
            "",
            ""
        ]);
        assert_eq!(country(nothing), None);
    }

    #[test]
    fn address_labels_end_in_a_country_name() {
        let country = |l: &str| label_country(l).map(|(c, raw)| format!("{c} {raw}"));
        assert_eq!(
            country("1 Main St\nRedmond\nWA\n98052\nUnited States").as_deref(),
            Some("US United States")
        );
        assert_eq!(
            country("Urbannet\n3-6-2\nChiyoda-ku, Tokyo 101-0047,Japan").as_deref(),
            Some("JP Japan")
        );
        assert_eq!(
            country("Amsterdam\nThe Netherlands\n").as_deref(),
            Some("NL The Netherlands")
        );
        assert_eq!(
            country("London GB"),
            None,
            "a code after a city is not read as a name"
        );
        assert_eq!(
            country("Kowloon, Hong Kong, China").as_deref(),
            Some("HK Hong Kong, China")
        );
        assert_eq!(
            country("1 Peachtree St\nAtlanta, Georgia"),
            None,
            "a US state, not the country"
        );
        assert_eq!(country("Tbilisi\nGeorgia").as_deref(), Some("GE Georgia"));
        assert_eq!(country("QLD 4101"), None);
        assert_eq!(country(""), None);
    }
}
