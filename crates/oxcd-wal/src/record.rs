//! Record framing and the small protobuf messages stored in WAL and snap files.

/// Record type tag for the opaque member metadata blob.
pub(crate) const METADATA_TYPE: i64 = 1;
/// Record type tag for a raft log entry.
pub(crate) const ENTRY_TYPE: i64 = 2;
/// Record type tag for a raft hard state.
pub(crate) const STATE_TYPE: i64 = 3;
/// Record type tag for the CRC carried over from the previous segment.
pub(crate) const CRC_TYPE: i64 = 4;
/// Record type tag for a snapshot marker (index, term).
pub(crate) const SNAPSHOT_TYPE: i64 = 5;

/// Size of the little-endian length word in front of every record.
pub(crate) const FRAME_HEADER_BYTES: u64 = 8;

/// Largest record etcd's reader accepts (10 MiB); we refuse to write bigger
/// records so every log we produce stays readable by both implementations.
pub(crate) const MAX_RECORD_BYTES: u64 = 10 * 1024 * 1024;

/// Sector size used to tell torn writes (a whole sector of zeros) from
/// ordinary corruption.
pub(crate) const SECTOR_BYTES: u64 = 512;

/// walpb.Record. `type` and `crc` are always present on the wire (etcd's
/// gogoproto marshaller emits them even when zero); `data` only when set.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Record {
    /// One of the `*_TYPE` constants.
    #[prost(int64, required, tag = "1")]
    pub rec_type: i64,
    /// Running CRC-32C after this record's data.
    #[prost(uint32, required, tag = "2")]
    pub crc: u32,
    /// Payload; absent for CRC records.
    #[prost(bytes = "vec", optional, tag = "3")]
    pub data: Option<Vec<u8>>,
}

/// walpb.Snapshot: marks that a raft snapshot at (index, term) was taken.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SnapshotRecord {
    /// Snapshot index.
    #[prost(uint64, required, tag = "1")]
    pub index: u64,
    /// Snapshot term.
    #[prost(uint64, required, tag = "2")]
    pub term: u64,
}

/// snappb.Snapshot: the envelope of a `.snap` file.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SnapFile {
    /// CRC-32C of `data`.
    #[prost(uint32, required, tag = "1")]
    pub crc: u32,
    /// Marshalled raftpb.Snapshot.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub data: Option<Vec<u8>>,
}

/// Computes the 8-byte length word and padding for a record body of
/// `len` bytes: low 56 bits hold the length; when padding to 8-byte alignment
/// is needed the top byte is `0x80 | pad`.
pub(crate) fn encode_frame_len(len: u64) -> (u64, u64) {
    let pad = (8 - (len % 8)) % 8;
    let mut word = len;
    if pad != 0 {
        word |= (0x80 | pad) << 56;
    }
    (word, pad)
}

/// Inverse of [`encode_frame_len`]: returns (body length, padding).
pub(crate) fn decode_frame_len(word: u64) -> (u64, u64) {
    let len = word & !(0xffu64 << 56);
    let pad = if word & (1u64 << 63) != 0 {
        (word >> 56) & 0x7
    } else {
        0
    };
    (len, pad)
}

/// Appends one framed record (length word, body, zero padding) to `out`,
/// chaining `crc` over the payload. Returns the new running CRC. The body is
/// the walpb.Record encoding, written field by field so the payload is
/// copied only once.
pub(crate) fn append_record(
    out: &mut Vec<u8>,
    crc: u32,
    rec_type: i64,
    data: Option<&[u8]>,
) -> Result<u32, crate::WalError> {
    use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};

    let crc = match data {
        Some(d) => crc32c::crc32c_append(crc, d),
        None => crc,
    };
    let data_len = data.map_or(0, |d| {
        key_len(3) + encoded_len_varint(d.len() as u64) + d.len()
    });
    let body_len = (key_len(1)
        + encoded_len_varint(rec_type as u64)
        + key_len(2)
        + encoded_len_varint(u64::from(crc))
        + data_len) as u64;
    let (word, pad) = encode_frame_len(body_len);
    if body_len + pad >= MAX_RECORD_BYTES {
        return Err(crate::WalError::RecordTooLarge {
            size: body_len,
            limit: MAX_RECORD_BYTES,
        });
    }
    out.reserve((FRAME_HEADER_BYTES + body_len + pad) as usize);
    out.extend_from_slice(&word.to_le_bytes());
    encode_key(1, WireType::Varint, out);
    encode_varint(rec_type as u64, out);
    encode_key(2, WireType::Varint, out);
    encode_varint(u64::from(crc), out);
    if let Some(d) = data {
        encode_key(3, WireType::LengthDelimited, out);
        encode_varint(d.len() as u64, out);
        out.extend_from_slice(d);
    }
    out.resize(out.len() + pad as usize, 0);
    Ok(crc)
}

/// True when some sector-aligned slice of a record's body (which starts at
/// file offset `body_off`) is entirely zero: the signature of a write that
/// was cut short by a crash on a preallocated (zero-filled) file.
pub(crate) fn looks_torn(body: &[u8], body_off: u64) -> bool {
    let mut off = body_off;
    let mut rest = body;
    while !rest.is_empty() {
        let room = (SECTOR_BYTES - off % SECTOR_BYTES) as usize;
        let take = room.min(rest.len());
        let (chunk, tail) = rest.split_at(take);
        if chunk.iter().all(|b| *b == 0) {
            return true;
        }
        off += take as u64;
        rest = tail;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_len_roundtrip() {
        for len in 0..64u64 {
            let (w, pad) = encode_frame_len(len);
            assert_eq!((len + pad) % 8, 0);
            assert_eq!(decode_frame_len(w), (len, pad));
        }
        // Known value: 5 bytes of data need 3 bytes of padding.
        assert_eq!(encode_frame_len(5).0, 0x8300_0000_0000_0005);
    }

    #[test]
    fn record_wire_format_keeps_zero_fields() {
        let mut out = Vec::new();
        let crc = append_record(&mut out, 0, CRC_TYPE, None).unwrap();
        assert_eq!(crc, 0);
        // type=4, crc=0, padded to 8 bytes.
        assert_eq!(&out[8..12], &[0x08, 0x04, 0x10, 0x00]);
        assert_eq!(out.len(), 16);
    }

    #[test]
    fn hand_encoding_matches_prost() {
        use prost::Message as _;
        for (t, data) in [
            (METADATA_TYPE, Some(&b""[..])),
            (ENTRY_TYPE, Some(&[0xabu8; 300][..])),
            (CRC_TYPE, None),
            (STATE_TYPE, Some(&b"\x08\x01"[..])),
        ] {
            let mut out = Vec::new();
            let crc = append_record(&mut out, 0x1234_5678, t, data).unwrap();
            let expected = Record {
                rec_type: t,
                crc,
                data: data.map(<[u8]>::to_vec),
            }
            .encode_to_vec();
            let (len, pad) = decode_frame_len(u64::from_le_bytes(out[..8].try_into().unwrap()));
            assert_eq!(len as usize, expected.len());
            assert_eq!(&out[8..8 + expected.len()], expected.as_slice());
            assert_eq!(out.len() as u64, 8 + len + pad);
        }
    }

    #[test]
    fn torn_detection_by_sector() {
        let mut body = vec![1u8; 1024];
        assert!(!looks_torn(&body, 8));
        // Zero the part that lies in the second sector of the file.
        for b in &mut body[504..1016] {
            *b = 0;
        }
        assert!(looks_torn(&body, 8));
    }
}
