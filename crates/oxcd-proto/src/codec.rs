//! The gRPC codec of every generated service: prost's, with smaller per-call buffers.
//!
//! tonic's default codec allocates an 8 KiB buffer for each request it decodes and each
//! response it encodes. etcd's requests and responses are mostly a few hundred bytes, and an
//! allocation that large misses the allocator's per-thread cache (glibc's ends near 1 KiB), so
//! every unary call paid two slow-path allocations. The buffers still grow to fit a large
//! message.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// The first allocation of a call's encode or decode buffer: within glibc's per-thread cache,
/// and room for a message of up to about 490 bytes without growing (tonic's decoder reserves
/// the message's length again once the message is in the buffer).
const BUFFER_BYTES: usize = 1000;
/// How much a stream's encoder gathers before it hands a batch of messages on (tonic's
/// default).
const YIELD_THRESHOLD: usize = 32 * 1024;

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD)
}

/// Used through `codec_path` in the build script.
#[derive(Debug, Clone)]
pub struct EtcdCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for EtcdCodec<T, U> {
    fn default() -> Self {
        EtcdCodec(PhantomData)
    }
}

impl<T, U> Codec for EtcdCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(settings())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::codec::{Decoder, Encoder};

    #[test]
    fn calls_start_with_small_buffers() {
        use crate::etcdserverpb::{PutRequest, PutResponse};
        let mut codec = EtcdCodec::<PutResponse, PutRequest>::default();
        // BufferSettings has no getters; its Debug form names the size.
        let small = format!("buffer_size: {BUFFER_BYTES},");
        assert!(format!("{:?}", codec.encoder().buffer_settings()).contains(&small));
        assert!(format!("{:?}", codec.decoder().buffer_settings()).contains(&small));
    }
}
