//! Sequential reader over a chain of segment files.
//!
//! The reader verifies framing and the CRC chain and classifies failures:
//! damage confined to the tail of the *last* segment that looks like an
//! interrupted write is reported as [`Next::Torn`] (the caller may repair
//! it); anything else is a hard [`WalError`].

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use prost::Message as _;

use crate::fileutil::read_full;
use crate::record::{
    decode_frame_len, looks_torn, Record, CRC_TYPE, FRAME_HEADER_BYTES, MAX_RECORD_BYTES,
};
use crate::WalError;

/// A successfully decoded record and where it was found.
pub(crate) struct Decoded {
    /// The record.
    pub rec: Record,
    /// Index into the decoder's file list.
    pub file: usize,
    /// Offset of the record's length word inside that file.
    pub offset: u64,
}

/// Result of one decoding step.
pub(crate) enum Next {
    /// A valid record (CRC records are consumed internally and never returned).
    Record(Decoded),
    /// Clean end of the log.
    End,
    /// The last segment ends in a partially written record starting at
    /// `offset`; every record before it was valid.
    Torn {
        /// Offset of the first byte that is not part of a valid record.
        offset: u64,
        /// Human-readable description of the damage.
        reason: String,
    },
}

/// Streaming decoder over the segment files in order.
pub(crate) struct Decoder {
    files: Vec<PathBuf>,
    cur: usize,
    reader: Option<BufReader<File>>,
    /// Offset just past the last valid record in the current file.
    off: u64,
    /// Running CRC-32C over record payloads.
    crc: u32,
}

impl Decoder {
    /// Creates a decoder that reads `files` in order, starting with CRC 0.
    pub fn new(files: Vec<PathBuf>) -> Self {
        Decoder {
            files,
            cur: 0,
            reader: None,
            off: 0,
            crc: 0,
        }
    }

    /// Running CRC after the last valid record (seed for the writer).
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// Offset just past the last valid record of the file being read
    /// (meaningful for the last file once decoding has ended).
    pub fn last_offset(&self) -> u64 {
        self.off
    }

    /// Path of the file with the given index in the decoder's list.
    pub fn path(&self, file: usize) -> PathBuf {
        self.files.get(file).cloned().unwrap_or_default()
    }

    /// Moves to the next file. `off` keeps pointing at the end of the
    /// finished file until the next one is opened, so after the last file it
    /// reports where appending should resume.
    fn advance(&mut self) {
        self.cur += 1;
        self.reader = None;
    }

    /// Decodes the next record.
    pub fn next(&mut self) -> Result<Next, WalError> {
        loop {
            let Some(path) = self.files.get(self.cur).cloned() else {
                return Ok(Next::End);
            };
            let is_last = self.cur + 1 == self.files.len();
            if self.reader.is_none() {
                let f = File::open(&path).map_err(|e| WalError::io("open", &path, e))?;
                self.reader = Some(BufReader::with_capacity(1 << 20, f));
                self.off = 0;
            }
            let Some(reader) = self.reader.as_mut() else {
                continue;
            };
            let offset = self.off;
            let damaged = |reason: String| -> Result<Next, WalError> {
                if is_last {
                    Ok(Next::Torn { offset, reason })
                } else {
                    Err(WalError::Corrupt {
                        path: path.clone(),
                        offset,
                        reason,
                    })
                }
            };

            let mut word = [0u8; 8];
            let n = read_full(reader, &mut word).map_err(|e| WalError::io("read", &path, e))?;
            if n == 0 {
                self.advance();
                continue;
            }
            if n < word.len() {
                return damaged(format!("length field cut short ({n} of 8 bytes)"));
            }
            let word = u64::from_le_bytes(word);
            if word == 0 {
                // Zero-filled preallocated space: end of this segment.
                self.advance();
                continue;
            }
            let (len, pad) = decode_frame_len(word);
            if len + pad >= MAX_RECORD_BYTES {
                return Err(WalError::Corrupt {
                    path,
                    offset,
                    reason: format!(
                        "record length {len} exceeds the {MAX_RECORD_BYTES} byte limit"
                    ),
                });
            }
            let total = (len + pad) as usize;
            let mut body = vec![0u8; total];
            let n = read_full(reader, &mut body).map_err(|e| WalError::io("read", &path, e))?;
            if n < total {
                return damaged(format!("record cut short ({n} of {total} bytes)"));
            }
            let body_off = offset + FRAME_HEADER_BYTES;
            let torn = |body: &[u8]| is_last && looks_torn(body, body_off);
            let rec = match Record::decode(&body[..len as usize]) {
                Ok(r) => r,
                Err(e) => {
                    if torn(&body) {
                        return Ok(Next::Torn {
                            offset,
                            reason: format!("undecodable record with zeroed sectors: {e}"),
                        });
                    }
                    return Err(WalError::Corrupt {
                        path,
                        offset,
                        reason: format!("undecodable record: {e}"),
                    });
                }
            };
            if rec.rec_type == CRC_TYPE {
                // Carries the running CRC of everything before this segment.
                if self.crc != 0 && rec.crc != self.crc {
                    return Err(WalError::CrcMismatch {
                        path,
                        offset,
                        stored: rec.crc,
                        computed: self.crc,
                    });
                }
                self.crc = rec.crc;
                self.off = body_off + len + pad;
                continue;
            }
            let computed = crc32c::crc32c_append(self.crc, rec.data.as_deref().unwrap_or(&[]));
            if computed != rec.crc {
                if torn(&body) {
                    return Ok(Next::Torn {
                        offset,
                        reason: "crc mismatch in record with zeroed sectors".to_owned(),
                    });
                }
                return Err(WalError::CrcMismatch {
                    path,
                    offset,
                    stored: rec.crc,
                    computed,
                });
            }
            self.crc = computed;
            self.off = body_off + len + pad;
            return Ok(Next::Record(Decoded {
                rec,
                file: self.cur,
                offset,
            }));
        }
    }
}
