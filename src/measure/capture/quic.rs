//! The server name in a QUIC connection's first packets. A client's Initial packets are
//! encrypted, but with keys anyone can derive from the packet itself (RFC 9001 §5.2, RFC 9369
//! §3.3.1 for QUIC v2): so a capture that saw them can read the ClientHello inside, as tshark
//! does. The crypto is `ring`'s (HKDF, AES-128-GCM, AES header protection); the ClientHello is
//! read by `tls-parser`.

use std::collections::BTreeMap;

use ring::aead::quic::{AES_128, HeaderProtectionKey};
use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, KeyType, Prk, Salt};
use tls_parser::{TlsMessage, TlsMessageHandshake};

use super::dissect::{Opening, hello_names};

const V1: u32 = 0x0000_0001;
const V2: u32 = 0x6b33_43cf;
const V1_SALT: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
const V2_SALT: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];

/// The most ClientHello bytes gathered for one connection (a post-quantum one is about 2 KB).
const HELLO_LIMIT: usize = 16 * 1024;

/// The CRYPTO stream of one connection's client Initials, gathered until it holds the
/// ClientHello (Chrome spreads one over two packets, and its frames out of order).
#[derive(Debug, Default)]
pub(crate) struct Hello {
    fragments: BTreeMap<u64, Vec<u8>>,
}

impl Hello {
    /// Reads the datagram `payload` from the client: `Some` once the ClientHello is complete
    /// (with its names), `None` while more is needed or when this is not a QUIC Initial.
    pub(crate) fn read(&mut self, payload: &[u8]) -> Option<Opening> {
        let plain = initial_payload(payload)?;
        for (offset, data) in crypto_frames(&plain) {
            if offset < HELLO_LIMIT as u64 {
                self.fragments.entry(offset).or_insert(data);
            }
        }
        let stream = self.contiguous();
        // A handshake message: type (1 = ClientHello), 3-byte length, body.
        let need = 4
            + (usize::from(*stream.get(1)?) << 16
                | usize::from(*stream.get(2)?) << 8
                | usize::from(*stream.get(3)?));
        if stream.len() < need {
            return None;
        }
        match tls_parser::parse_tls_message_handshake(&stream[..need]) {
            Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ClientHello(hello)))) => {
                Some(hello_names(hello.ext))
            }
            _ => Some(Opening::Other),
        }
    }

    /// The CRYPTO bytes from offset 0 without a gap.
    fn contiguous(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (offset, data) in &self.fragments {
            let offset = *offset as usize;
            if offset > out.len() {
                break;
            }
            let skip = out.len() - offset;
            if skip < data.len() {
                out.extend_from_slice(&data[skip..]);
            }
        }
        out
    }
}

/// The decrypted payload of the client Initial packet at the start of `datagram`.
fn initial_payload(datagram: &[u8]) -> Option<Vec<u8>> {
    let first = *datagram.first()?;
    // Long header, fixed bit.
    if first & 0xc0 != 0xc0 {
        return None;
    }
    let version = u32::from_be_bytes(datagram.get(1..5)?.try_into().ok()?);
    let (salt, labels, initial_type) = match version {
        V1 => (&V1_SALT, ["quic key", "quic iv", "quic hp"], 0x00),
        V2 => (&V2_SALT, ["quicv2 key", "quicv2 iv", "quicv2 hp"], 0x10),
        _ => return None,
    };
    if first & 0x30 != initial_type {
        return None;
    }
    let mut at = 5;
    let dcid_len = usize::from(*datagram.get(at)?);
    let dcid = datagram.get(at + 1..at + 1 + dcid_len)?;
    at += 1 + dcid_len;
    let scid_len = usize::from(*datagram.get(at)?);
    at += 1 + scid_len;
    let (token_len, n) = varint(datagram.get(at..)?)?;
    at += n + usize::try_from(token_len).ok()?;
    let (length, n) = varint(datagram.get(at..)?)?;
    at += n;
    let pn_offset = at;
    let end = pn_offset.checked_add(usize::try_from(length).ok()?)?;
    let packet = datagram.get(..end)?;

    let initial = Salt::new(HKDF_SHA256, salt).extract(dcid);
    let client = expand(&initial, "client in", 32)?;
    let client = Prk::new_less_safe(HKDF_SHA256, &client);
    let key = expand(&client, labels[0], 16)?;
    let iv = expand(&client, labels[1], 12)?;
    let hp = expand(&client, labels[2], 16)?;

    let sample = packet.get(pn_offset + 4..pn_offset + 20)?;
    let mask = HeaderProtectionKey::new(&AES_128, &hp)
        .ok()?
        .new_mask(sample)
        .ok()?;
    let mut header = packet.get(..pn_offset + 4)?.to_vec();
    header[0] ^= mask[0] & 0x0f;
    let pn_len = usize::from(header[0] & 0x03) + 1;
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&iv);
    for i in 0..pn_len {
        header[pn_offset + i] ^= mask[1 + i];
        // The packet number, right-aligned, is XORed into the IV.
        nonce[12 - pn_len + i] ^= header[pn_offset + i];
    }
    header.truncate(pn_offset + pn_len);
    let mut sealed = packet.get(pn_offset + pn_len..)?.to_vec();
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &key).ok()?);
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&header),
            &mut sealed,
        )
        .ok()?;
    Some(plain.to_vec())
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
fn expand(prk: &Prk, label: &str, len: usize) -> Option<Vec<u8>> {
    struct Len(usize);
    impl KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let full = format!("tls13 {label}");
    let length = u16::try_from(len).ok()?.to_be_bytes();
    let label_len = [u8::try_from(full.len()).ok()?];
    let info: [&[u8]; 4] = [&length, &label_len, full.as_bytes(), &[0]];
    let mut out = vec![0u8; len];
    prk.expand(&info, Len(len)).ok()?.fill(&mut out).ok()?;
    Some(out)
}

/// A QUIC variable-length integer and its size (RFC 9000 §16).
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let first = *b.first()?;
    let len = 1usize << (first >> 6);
    let mut v = u64::from(first & 0x3f);
    for byte in b.get(1..len)? {
        v = (v << 8) | u64::from(*byte);
    }
    Some((v, len))
}

/// The CRYPTO frames of a decrypted Initial payload, as (offset, data); reading stops at a
/// frame an Initial from a client does not carry.
fn crypto_frames(mut p: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some((kind, n)) = varint(p) {
        p = &p[n..];
        match kind {
            // PADDING, PING
            0x00 | 0x01 => {}
            // ACK (with or without ECN counts): largest, delay, range count, first range,
            // then (gap, length) per range, then three ECN counts.
            0x02 | 0x03 => {
                let mut fields = 4;
                let mut i = 0;
                while i < fields {
                    let Some((v, n)) = varint(p) else {
                        return out;
                    };
                    p = &p[n..];
                    if i == 2 {
                        fields += 2 * usize::try_from(v).unwrap_or(0).min(256);
                    }
                    i += 1;
                }
                if kind == 0x03 {
                    for _ in 0..3 {
                        let Some((_, n)) = varint(p) else {
                            return out;
                        };
                        p = &p[n..];
                    }
                }
            }
            0x06 => {
                let Some((offset, n)) = varint(p) else {
                    return out;
                };
                p = &p[n..];
                let Some((len, n)) = varint(p) else {
                    return out;
                };
                p = &p[n..];
                let Some(data) = usize::try_from(len).ok().and_then(|l| p.get(..l)) else {
                    return out;
                };
                out.push((offset, data.to_vec()));
                p = &p[data.len()..];
            }
            _ => return out,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9001 appendix A.1: the keys of the example connection.
    #[test]
    fn initial_keys_match_rfc_9001() {
        let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
        let initial = Salt::new(HKDF_SHA256, &V1_SALT).extract(&dcid);
        let client = Prk::new_less_safe(
            HKDF_SHA256,
            &expand(&initial, "client in", 32).expect("secret"),
        );
        let hex = |b: Vec<u8>| crate::text::hex(&b);
        assert_eq!(
            hex(expand(&client, "quic key", 16).expect("key")),
            "1f369613dd76d5467730efcbe3b1a22d"
        );
        assert_eq!(
            hex(expand(&client, "quic iv", 12).expect("iv")),
            "fa044b2f42a3fd3b46fb255c"
        );
        assert_eq!(
            hex(expand(&client, "quic hp", 16).expect("hp")),
            "9f50449e04a0e810283a1e9933adedd2"
        );
    }

    #[test]
    fn varints_read_every_length() {
        assert_eq!(varint(&[0x25]), Some((37, 1)));
        assert_eq!(varint(&[0x7b, 0xbd]), Some((15293, 2)));
        assert_eq!(varint(&[0x9d, 0x7f, 0x3e, 0x7d]), Some((494_878_333, 4)));
        assert_eq!(varint(&[0x40]), None);
    }
}
