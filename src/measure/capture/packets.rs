//! Packet captures read as a stream: pcap and pcapng (through `pcap-parser`), one frame at a time
//! with its link type and timestamp, never the whole file in memory.
//!
//! A capture that goes bad part-way (truncated by a full disk, a block with a bad length) still
//! gives everything before the damage: reading stops there with a [`Problem`] naming the byte
//! offset, and the frames already read stand.

use chrono::{DateTime, Utc};
use pcap_parser::pcapng::Block;
use pcap_parser::{Linktype, PcapBlockOwned, PcapError};

use super::Problem;

/// The reader's buffer starts here and doubles, up to [`MAX_BLOCK`], for larger blocks.
const START_BUFFER: usize = 1 << 16;
/// No real capture has a block this large (jumbo frames are 9 KB, snaplens 256 KB); a longer
/// one is damage, reported rather than buffered.
const MAX_BLOCK: usize = 1 << 24;

/// What a frame's bytes start with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    Ethernet,
    /// IP with no link header (linktypes 101, 12, 14, 228, 229).
    RawIp,
    /// Linux "cooked" capture, version 1 (113) and 2 (276).
    LinuxSll,
    LinuxSll2,
    /// BSD loopback: a 4-byte address family, in the capturing host's byte order (0) or in
    /// network order (108).
    Null,
    Loop,
    Other(i32),
}

impl Link {
    fn of(linktype: Linktype) -> Link {
        match linktype.0 {
            1 => Link::Ethernet,
            12 | 14 | 101 | 228 | 229 => Link::RawIp,
            113 => Link::LinuxSll,
            276 => Link::LinuxSll2,
            0 => Link::Null,
            108 => Link::Loop,
            other => Link::Other(other),
        }
    }
}

/// One captured frame.
pub(crate) struct Frame<'a> {
    pub at: Option<DateTime<Utc>>,
    pub link: Link,
    /// The captured bytes (possibly cut short by the snaplen).
    pub data: &'a [u8],
}

/// How a capture file read.
#[derive(Debug, Default)]
pub(crate) struct Read {
    pub pcapng: bool,
    pub frames: u64,
    pub problems: Vec<Problem>,
}

/// An interface of a pcapng section: its link type and timestamp units.
struct Interface {
    link: Link,
    /// Timestamp units per second.
    resolution: u64,
    offset: i64,
    snaplen: u32,
}

/// Reads every frame of the pcap or pcapng stream `input`, calling `each` on it in file order.
pub(crate) fn read_frames(
    input: impl std::io::Read + Send,
    mut each: impl FnMut(Frame<'_>),
) -> Read {
    let mut read = Read::default();
    let mut reader = match pcap_parser::create_reader(START_BUFFER, input) {
        Ok(r) => r,
        Err(PcapError::Eof) => {
            read.problems.push(Problem::at(0, "the file is empty"));
            return read;
        }
        Err(e) => {
            read.problems.push(Problem::at(
                0,
                format!("not a pcap or pcapng file ({e}); capture with tcpdump -w or PCAPdroid"),
            ));
            return read;
        }
    };
    let mut capacity = START_BUFFER;
    // Legacy pcap: one link type for the file. pcapng: interfaces per section.
    let mut legacy: Option<(Link, bool, u32)> = None;
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut long_records = 0u64;
    loop {
        let at = reader.consumed() as u64;
        match reader.next() {
            Ok((length, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        legacy =
                            Some((Link::of(h.network), h.is_nanosecond_precision(), h.snaplen));
                    }
                    PcapBlockOwned::Legacy(b) => {
                        if let Some((link, nanos, snaplen)) = legacy {
                            if b.caplen > snaplen && snaplen > 0 {
                                long_records += 1;
                            }
                            let sub = if nanos {
                                b.ts_usec
                            } else {
                                b.ts_usec.saturating_mul(1000)
                            };
                            read.frames += 1;
                            each(Frame {
                                at: DateTime::from_timestamp(i64::from(b.ts_sec), sub),
                                link,
                                data: b.data,
                            });
                        }
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                        read.pcapng = true;
                        interfaces.clear();
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        interfaces.push(Interface {
                            link: Link::of(idb.linktype),
                            resolution: idb.ts_resolution().unwrap_or(1_000_000).max(1),
                            offset: idb.ts_offset(),
                            snaplen: idb.snaplen,
                        });
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        read.frames += 1;
                        match interfaces.get(epb.if_id as usize) {
                            Some(i) => {
                                let len = (epb.caplen as usize).min(epb.data.len());
                                if i.snaplen > 0 && epb.caplen > i.snaplen {
                                    long_records += 1;
                                }
                                let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                                each(Frame {
                                    at: timestamp(units, i.resolution, i.offset),
                                    link: i.link,
                                    data: &epb.data[..len],
                                });
                            }
                            None => read.problems.push(Problem::at(
                                at,
                                format!("a packet names interface {} that the section never described; skipped", epb.if_id),
                            )),
                        }
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        read.frames += 1;
                        if let Some(i) = interfaces.first() {
                            let len = (spb.origlen as usize).min(spb.data.len());
                            each(Frame {
                                at: None,
                                link: i.link,
                                data: &spb.data[..len],
                            });
                        }
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                reader.consume(length);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if let Err(e) = reader.refill() {
                    read.problems
                        .push(Problem::at(at, format!("cannot read on: {e}")));
                    break;
                }
            }
            Err(PcapError::BufferTooSmall) if capacity < MAX_BLOCK => {
                capacity *= 2;
                reader.grow(capacity);
                if let Err(e) = reader.refill() {
                    read.problems
                        .push(Problem::at(at, format!("cannot read on: {e}")));
                    break;
                }
            }
            Err(PcapError::BufferTooSmall) => {
                read.problems.push(Problem::at(
                    at,
                    format!("a block claims more than {} MiB: the file is damaged here; reading stopped", MAX_BLOCK >> 20),
                ));
                break;
            }
            Err(PcapError::UnexpectedEof) => {
                read.problems.push(Problem::at(
                    at,
                    "the file ends inside a block (truncated capture); what came before was read",
                ));
                break;
            }
            Err(e) => {
                read.problems.push(Problem::at(
                    at,
                    format!("unreadable block ({e}): the file is damaged here; reading stopped"),
                ));
                break;
            }
        }
    }
    if long_records > 0 {
        read.problems.push(Problem::at(
            0,
            format!(
                "{long_records} record(s) are longer than the capture's snaplen; read as recorded"
            ),
        ));
    }
    read
}

/// A pcapng timestamp: `units` of `1/resolution` s after the epoch, plus `offset` seconds.
fn timestamp(units: u64, resolution: u64, offset: i64) -> Option<DateTime<Utc>> {
    let secs = i64::try_from(units / resolution)
        .ok()?
        .checked_add(offset)?;
    let frac = u128::from(units % resolution) * 1_000_000_000 / u128::from(resolution);
    DateTime::from_timestamp(secs, u32::try_from(frac).ok()?)
}

/// Whether `head` (the first bytes of a file) is a pcap or pcapng file.
pub(crate) fn is_capture(head: &[u8]) -> bool {
    const MAGICS: [[u8; 4]; 5] = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0x0a, 0x0d, 0x0d, 0x0a],
    ];
    head.get(..4).is_some_and(|m| MAGICS.iter().any(|k| k == m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcapng_timestamps_follow_the_interface_resolution() {
        let micro = timestamp(1_500_000_000_123_456, 1_000_000, 0).expect("time");
        assert_eq!(micro.timestamp_subsec_micros(), 123_456);
        let nano = timestamp(1_500_000_000_123_456_789, 1_000_000_000, 0).expect("time");
        assert_eq!(nano.timestamp_subsec_nanos(), 123_456_789);
        assert_eq!(timestamp(10, 1, 5).map(|t| t.timestamp()), Some(15));
    }

    #[test]
    fn empty_and_foreign_files_are_problems_not_panics() {
        let empty = read_frames(&b""[..], |_| {});
        assert_eq!(empty.problems[0].to_string(), "byte 0: the file is empty");
        let text = read_frames(&b"GET / HTTP/1.1\r\n\r\n"[..], |_| {});
        assert!(
            text.problems[0].to_string().contains("not a pcap"),
            "{:?}",
            text.problems
        );
        assert!(is_capture(&[0x0a, 0x0d, 0x0d, 0x0a, 0]));
        assert!(!is_capture(b"{\"log\""));
    }
}
