//! The on-disk format of a segment: an 8-byte segment header, then frames.
//!
//! ```text
//! segment:  [magic "WLOG"][version u8][0 0 0] frame frame frame ... 0 0 0 0 ...
//! frame:    [len u32 LE][crc32c u32 LE][payload: len bytes][zero padding]
//! ```
//!
//! Frame headers sit at positions `8 (mod 16)` of the segment, so every payload
//! starts at a multiple of 16 from the (page-aligned) start of the mapping:
//! an rkyv archive written as a payload can be accessed in place. A frame takes
//! `align16(len + 8)` bytes.
//!
//! The checksum is crc32c over the frame's offset (u64 LE), its 4 length bytes
//! and its payload. Covering the length catches a torn length as surely as a
//! torn payload; covering the offset means that a frame left behind in a
//! recycled segment file (see `segment.rs`) can never pass for a record at its
//! new offset. A checksum that comes out as 0 is stored as `0xFFFF_FFFF`, so an
//! 8-byte header of all zeros is always the end of the data in a segment and
//! never an empty record.
//!
//! Everything here is pure functions over byte slices: the mapping, the reader,
//! recovery and inspection share them.

use std::ops::Range;

/// Bytes before the first frame of a segment.
pub(crate) const SEGMENT_HEADER_LEN: usize = 8;
/// Bytes of a frame header (`len` and `crc32c`).
pub(crate) const FRAME_HEADER_LEN: usize = 8;
/// Alignment of payloads within a segment.
pub(crate) const PAYLOAD_ALIGN: usize = 16;
/// The smallest frame (an empty record).
pub(crate) const MIN_FRAME_LEN: usize = 16;

const MAGIC: [u8; 4] = *b"WLOG";
const VERSION: u8 = 1;

/// The segment header the log writes.
pub(crate) const SEGMENT_HEADER: [u8; SEGMENT_HEADER_LEN] =
    [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], VERSION, 0, 0, 0];

/// What the first 8 bytes of a segment say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegmentHeader {
    /// A header this version writes.
    Valid,
    /// All zeros: the file was allocated but its header never reached the disk.
    Blank,
    /// Anything else: not a segment of ours.
    Invalid,
}

/// Reads a segment header.
pub(crate) fn segment_header(segment: &[u8]) -> SegmentHeader {
    match segment.get(..SEGMENT_HEADER_LEN) {
        Some(h) if h == SEGMENT_HEADER => SegmentHeader::Valid,
        Some(h) if h.iter().all(|&b| b == 0) => SegmentHeader::Blank,
        _ => SegmentHeader::Invalid,
    }
}

/// The bytes a frame with a payload of `len` bytes occupies.
pub(crate) const fn frame_len(len: usize) -> usize {
    (len + FRAME_HEADER_LEN).next_multiple_of(PAYLOAD_ALIGN)
}

/// The largest payload a segment of `segment_len` bytes holds.
///
/// Frames end at positions `8 (mod 16)` and a segment at `0 (mod 16)`, so the
/// last 8 bytes of a segment never hold a frame.
pub(crate) const fn max_payload(segment_len: usize) -> usize {
    segment_len.saturating_sub(SEGMENT_HEADER_LEN + MIN_FRAME_LEN)
}

/// Whether `pos` is where a frame header may sit.
pub(crate) const fn is_frame_position(pos: usize) -> bool {
    pos >= SEGMENT_HEADER_LEN && (pos - SEGMENT_HEADER_LEN).is_multiple_of(PAYLOAD_ALIGN)
}

/// The checksum of the frame at log offset `offset` holding `payload`.
pub(crate) fn checksum(offset: u64, payload: &[u8]) -> u32 {
    // A payload longer than u32::MAX is refused before it gets here.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut prefix = [0u8; 12];
    prefix[..8].copy_from_slice(&offset.to_le_bytes());
    prefix[8..].copy_from_slice(&len.to_le_bytes());
    match crc32c::crc32c_append(crc32c::crc32c(&prefix), payload) {
        0 => u32::MAX,
        crc => crc,
    }
}

/// The header of the frame at log offset `offset` holding `payload`.
pub(crate) fn header(offset: u64, payload: &[u8]) -> [u8; FRAME_HEADER_LEN] {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let crc = checksum(offset, payload);
    let mut h = [0; FRAME_HEADER_LEN];
    h[..4].copy_from_slice(&len.to_le_bytes());
    h[4..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Why a frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Defect {
    /// The length runs past the end of the segment.
    Length,
    /// The checksum does not match.
    Checksum,
}

/// What sits at a frame position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A whole record.
    Record {
        /// Where its payload lies in the segment.
        payload: Range<usize>,
        /// Position of the next frame.
        next: usize,
    },
    /// The end of the data: a zero header, or no room for another frame.
    End,
    /// A frame that is not whole: a torn write or corruption.
    Torn(Defect),
}

/// Decodes the frame at `pos` (a frame position) of `segment`, whose base
/// offset is `base`, checking its checksum when `verify` is set.
pub(crate) fn decode(segment: &[u8], base: u64, pos: usize, verify: bool) -> Frame {
    let Some(head) = pos
        .checked_add(MIN_FRAME_LEN)
        .filter(|&end| end <= segment.len())
        .and_then(|_| segment.get(pos..pos + FRAME_HEADER_LEN))
    else {
        return Frame::End;
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len == 0 && crc == 0 {
        return Frame::End;
    }
    let len = len as usize;
    let start = pos + FRAME_HEADER_LEN;
    let next = pos + frame_len(len);
    if next > segment.len() {
        return Frame::Torn(Defect::Length);
    }
    let payload = start..start + len;
    if verify && checksum(base + pos as u64, &segment[payload.clone()]) != crc {
        return Frame::Torn(Defect::Checksum);
    }
    Frame::Record { payload, next }
}

/// How a walk over the frames of a segment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WalkEnd {
    /// At an end marker (or the end of the segment).
    Clean,
    /// At a frame that is not whole.
    Torn(Defect),
}

/// The result of walking every frame of a segment from its first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Walk {
    /// Whole records found.
    pub(crate) records: u64,
    /// Bytes of their payloads.
    pub(crate) payload_bytes: u64,
    /// Position just past the last whole record: where the next frame goes.
    pub(crate) end: usize,
    /// Why the walk stopped.
    pub(crate) stop: WalkEnd,
}

/// Walks the frames of `segment` (based at `base`), verifying every checksum.
pub(crate) fn walk(segment: &[u8], base: u64) -> Walk {
    let mut walk = Walk {
        records: 0,
        payload_bytes: 0,
        end: SEGMENT_HEADER_LEN,
        stop: WalkEnd::Clean,
    };
    loop {
        match decode(segment, base, walk.end, true) {
            Frame::Record { payload, next } => {
                walk.records += 1;
                walk.payload_bytes += payload.len() as u64;
                walk.end = next;
            }
            Frame::End => return walk,
            Frame::Torn(defect) => {
                walk.stop = WalkEnd::Torn(defect);
                return walk;
            }
        }
    }
}

/// One past the last non-zero byte of `bytes` at or after `from`, if any: how
/// far garbage reaches past the end of the data.
pub(crate) fn nonzero_extent(bytes: &[u8], from: usize) -> Option<usize> {
    let tail = bytes.get(from..)?;
    tail.iter().rposition(|&b| b != 0).map(|i| from + i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_keep_payloads_sixteen_aligned() {
        for len in 0..100 {
            let pos = SEGMENT_HEADER_LEN + 16 * 3;
            let next = pos + frame_len(len);
            assert!(is_frame_position(next), "len {len}");
            assert_eq!((pos + FRAME_HEADER_LEN) % PAYLOAD_ALIGN, 0);
            assert!(next >= pos + FRAME_HEADER_LEN + len);
        }
    }

    #[test]
    fn the_largest_payload_fills_a_segment_exactly() {
        let seg = 4096;
        let max = max_payload(seg);
        assert_eq!(SEGMENT_HEADER_LEN + frame_len(max), seg - 8);
        assert!(SEGMENT_HEADER_LEN + frame_len(max + 1) > seg);
    }

    #[test]
    fn an_empty_record_is_not_an_end_marker() {
        let mut seg = vec![0u8; 64];
        seg[..8].copy_from_slice(&SEGMENT_HEADER);
        seg[8..16].copy_from_slice(&header(8, &[]));
        assert_eq!(
            decode(&seg, 0, 8, true),
            Frame::Record {
                payload: 16..16,
                next: 24
            }
        );
        assert_eq!(decode(&seg, 0, 24, true), Frame::End);
        assert_eq!(walk(&seg, 0).records, 1);
    }

    #[test]
    fn a_flipped_length_bit_is_caught() {
        let mut seg = vec![0u8; 128];
        seg[8..16].copy_from_slice(&header(8, b"hello"));
        seg[16..21].copy_from_slice(b"hello");
        seg[8] ^= 0x02;
        assert!(matches!(decode(&seg, 0, 8, true), Frame::Torn(_)));
    }

    #[test]
    fn a_frame_moved_to_another_offset_does_not_verify() {
        let mut seg = vec![0u8; 128];
        seg[8..16].copy_from_slice(&header(8, b"hello"));
        seg[16..21].copy_from_slice(b"hello");
        assert!(matches!(decode(&seg, 0, 8, true), Frame::Record { .. }));
        assert!(matches!(
            decode(&seg, 4096, 8, true),
            Frame::Torn(Defect::Checksum)
        ));
    }
}
