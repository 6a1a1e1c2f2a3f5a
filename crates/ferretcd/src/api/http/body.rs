//! The response body: a buffer, or a watch that waits for events.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use ferret_server::{Server, KEYS_PREFIX};
use ferret_v2store::{Event, WatchSink, WatcherId};
use hyper::body::{Frame, SizeHint};
use tokio::sync::mpsc;

pub enum Body {
    Full(Option<Bytes>),
    Watch(WatchBody),
    /// Chunks as they come, until the sender is gone (the JSON
    /// gateway's streams).
    Stream(mpsc::Receiver<Bytes>),
}

impl Body {
    pub fn full(b: impl Into<Bytes>) -> Body {
        Body::Full(Some(b.into()))
    }

    pub fn empty() -> Body {
        Body::Full(None)
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Watch(w) => w.poll_event(cx).map(|o| o.map(Ok)),
            Body::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(b) => b.is_none(),
            Body::Watch(w) => w.done,
            Body::Stream(rx) => rx.is_closed() && rx.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Watch(_) | Body::Stream(_) => SizeHint::default(),
        }
    }
}

/// Events for one watcher. The hub holds the sending side; when it drops
/// the watcher (client too slow), the channel closes and the body ends.
pub struct ChannelSink(pub mpsc::Sender<Arc<Event>>);

impl WatchSink for ChannelSink {
    fn send(&self, event: &Arc<Event>) -> bool {
        self.0.try_send(event.clone()).is_ok()
    }
}

/// Removes the watcher from the hub when the response is dropped (the
/// client went away or the response ended).
pub struct WatchGuard {
    pub server: Server,
    pub id: WatcherId,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.server.state_mut().v2.unwatch(self.id);
    }
}

pub struct WatchBody {
    /// An event known before the response started (history replay).
    pub first: Option<Arc<Event>>,
    pub events: Option<mpsc::Receiver<Arc<Event>>>,
    /// Keep sending events (`stream=true`) rather than stop after one.
    pub stream: bool,
    pub done: bool,
    pub guard: Option<WatchGuard>,
    /// A sender of our own channel, so a stream answered from the history
    /// stays open with nothing more to say instead of ending.
    pub keep_open: Option<mpsc::Sender<Arc<Event>>>,
}

impl WatchBody {
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<Bytes>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let event = match self.first.take() {
            Some(e) => e,
            None => match self.events.as_mut() {
                None => {
                    self.finish();
                    return Poll::Ready(None);
                }
                Some(rx) => match rx.poll_recv(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => {
                        self.finish();
                        return Poll::Ready(None);
                    }
                    Poll::Ready(Some(e)) => e,
                },
            },
        };
        if !self.stream {
            self.finish();
        }
        let mut out = Vec::with_capacity(256);
        event.write_json(&mut out, KEYS_PREFIX, false);
        Poll::Ready(Some(Frame::data(Bytes::from(out))))
    }

    fn finish(&mut self) {
        self.done = true;
        self.events = None;
        self.guard = None;
        self.keep_open = None;
    }
}
