//! The gRPC codec of every generated client and server: tonic's prost
//! codec with buffers that start small.
//!
//! tonic allocates an 8 KiB buffer for each request it decodes and each
//! response it encodes. etcd's requests and responses are mostly a few
//! hundred bytes, so that allocation (and glibc's work to serve and free
//! it) was a visible part of a member's CPU per put (BENCHMARKS.md, run
//! 3). The buffers grow as a larger message needs.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Initial buffer size, per request or response.
const BUFFER_BYTES: usize = 1024;
/// tonic's default: how much a stream encodes before it yields.
const YIELD_THRESHOLD_BYTES: usize = 32 * 1024;

/// A prost codec with [`BUFFER_BYTES`] initial buffers.
#[derive(Debug, Clone)]
pub struct SmallBufferCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SmallBufferCodec<T, U> {
    fn default() -> Self {
        SmallBufferCodec(PhantomData)
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD_BYTES)
}

impl<T, U> Codec for SmallBufferCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
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
