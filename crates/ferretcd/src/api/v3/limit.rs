//! The size limit on gRPC request messages, as grpc-go enforces it.
//!
//! etcd's server accepts messages up to `--max-request-bytes` plus 512 KiB
//! and refuses a larger one with `ResourceExhausted` and grpc-go's text,
//! `grpc: received message larger than max (<size> vs. <limit>)`, which
//! clients match on. [`Frames`] reads the gRPC framing of a request body
//! as it streams in (a 1-byte flag, a 4-byte big-endian length, the
//! message) and fails the body with that status as soon as a frame's
//! length exceeds the limit, before the message is buffered.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use tonic::Status;

/// Where a body's gRPC framing stands across its data frames: each
/// message is a 1-byte flag, a 4-byte big-endian length, the message.
/// Request limits and response metering both follow it.
#[derive(Default)]
pub struct Framing {
    /// Bytes of the current frame header seen so far (up to 5).
    header: [u8; 5],
    header_len: usize,
    /// Message bytes still to come in the current frame.
    remaining: usize,
}

impl Framing {
    /// Follows the framing through `data`: `on_message` is told each
    /// message's length as its header completes (an error stops the
    /// walk). Returns how many message bytes (headers left out) `data`
    /// held.
    pub fn walk<E>(
        &mut self,
        mut data: &[u8],
        mut on_message: impl FnMut(usize) -> Result<(), E>,
    ) -> Result<u64, E> {
        let mut bytes = 0u64;
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len());
                self.remaining -= n;
                bytes += n as u64;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
            self.header_len += n;
            data = &data[n..];
            if self.header_len == 5 {
                self.header_len = 0;
                let len =
                    u32::from_be_bytes(self.header[1..5].try_into().expect("4 bytes")) as usize;
                on_message(len)?;
                self.remaining = len;
            }
        }
        Ok(bytes)
    }
}

/// A request body whose gRPC messages may not exceed a size.
pub struct Frames<B> {
    inner: B,
    max: usize,
    framing: Framing,
}

impl<B> Frames<B> {
    pub fn new(inner: B, max: usize) -> Frames<B> {
        Frames {
            inner,
            max,
            framing: Framing::default(),
        }
    }

    /// Follows the framing through `data`; the error for a message over
    /// the limit.
    fn scan(&mut self, data: &[u8]) -> Result<(), Status> {
        let max = self.max;
        self.framing
            .walk(data, |len| {
                // etcd_network_client_grpc_received_bytes_total: message
                // bytes, as etcd counts a request's size.
                ferret_metrics::get().grpc_received_bytes.inc_by(len as u64);
                if len > max {
                    return Err(Status::resource_exhausted(format!(
                        "grpc: received message larger than max ({len} vs. {max})"
                    )));
                }
                Ok(())
            })
            .map(|_| ())
    }
}

impl<B> Body for Frames<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let data = data.clone();
                    if let Err(e) = self.scan(&data) {
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Status::from_error(e.into())))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> Vec<u8> {
        let mut f = vec![0u8];
        f.extend_from_slice(&(len as u32).to_be_bytes());
        f.extend(std::iter::repeat_n(7u8, len));
        f
    }

    #[test]
    fn frames_within_the_limit_pass_in_any_split() {
        let mut body = frame(10);
        body.extend(frame(3));
        for split in 0..body.len() {
            let mut f = Frames::new((), 10);
            f.scan(&body[..split]).unwrap();
            f.scan(&body[split..]).unwrap();
        }
    }

    #[test]
    fn a_frame_over_the_limit_is_refused_with_grpc_gos_text() {
        let mut f = Frames::new((), 10);
        let e = f.scan(&frame(11)[..5]).unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            e.message(),
            "grpc: received message larger than max (11 vs. 10)"
        );
    }
}
