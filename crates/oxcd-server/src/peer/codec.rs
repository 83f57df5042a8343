//! Framing of etcd's peer "message" stream: each raft message is a big-endian u64 byte length
//! followed by the marshalled `raftpb.Message`. A message with type MsgHeartbeat and `to == 0`
//! is a link heartbeat that keeps the connection inside the peers' 5 s read deadline.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};

/// etcd refuses frames above 512 MiB.
pub const MAX_FRAME_BYTES: u64 = 512 * 1024 * 1024;

pub fn encode_frame(msg: &Message) -> Result<Bytes, protobuf::ProtobufError> {
    let body = msg.write_to_bytes()?;
    let mut out = BytesMut::with_capacity(8 + body.len());
    out.put_u64(body.len() as u64);
    out.put_slice(&body);
    Ok(out.freeze())
}

pub fn link_heartbeat() -> Bytes {
    let mut m = Message::default();
    m.set_msg_type(MessageType::MsgHeartbeat);
    encode_frame(&m).unwrap_or_default()
}

pub fn is_link_heartbeat(m: &Message) -> bool {
    m.get_msg_type() == MessageType::MsgHeartbeat && m.to == 0 && m.from == 0
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("rafthttp: error limit exceeded")]
    TooLarge,
    #[error("failed to decode raft message: {0}")]
    Decode(#[from] protobuf::ProtobufError),
}

/// Incremental decoder over a byte stream that arrives in arbitrary chunks.
#[derive(Default)]
pub struct FrameDecoder {
    buf: BytesMut,
}

impl FrameDecoder {
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete message, if one has fully arrived.
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let len = u64::from_be_bytes(self.buf[..8].try_into().unwrap_or([0; 8]));
        if len > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge);
        }
        let total = 8 + len as usize;
        if self.buf.len() < total {
            return Ok(None);
        }
        self.buf.advance(8);
        let body = self.buf.split_to(len as usize);
        Ok(Some(Message::parse_from_bytes(&body)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_across_arbitrary_chunks() {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppend);
        m.to = 2;
        m.from = 1;
        m.term = 7;
        let a = encode_frame(&m).unwrap();
        let hb = link_heartbeat();
        let mut all = a.to_vec();
        all.extend_from_slice(&hb);
        let mut dec = FrameDecoder::default();
        let mut got = Vec::new();
        for chunk in all.chunks(3) {
            dec.push(chunk);
            while let Some(msg) = dec.next_message().unwrap() {
                got.push(msg);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], m);
        assert!(is_link_heartbeat(&got[1]));
    }

    #[test]
    fn oversized_frame_is_refused() {
        let mut dec = FrameDecoder::default();
        dec.push(&(MAX_FRAME_BYTES + 1).to_be_bytes());
        assert!(matches!(dec.next_message(), Err(FrameError::TooLarge)));
    }
}
