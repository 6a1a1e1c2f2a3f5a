//! The Ready loop's input queue: client requests (proposals, reads) and
//! the snapshot writer's reports reach the Raft thread through it.
//!
//! The queue is bounded (a full queue is the sender's to report, as "too
//! many requests") and shares the Raft thread's `mio` poller with the peer
//! sockets (see [`crate::transport`]): a sender wakes the poller, but only
//! when the loop is asleep in it, so a busy loop costs senders nothing.
//! What the queue carries is the loop's business (`raft_node::Input`).

use std::io;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;

use mio::{Poll, Token, Waker};

/// The poller token of the queue's waker; peer sockets use other tokens.
pub const WAKER: Token = Token(0);

struct InboxShared {
    waker: Waker,
    /// True while the loop is (about to be) blocked in the poller: only
    /// then does a sender pay for a wake-up.
    sleeping: AtomicBool,
}

/// The Ready loop's end of its input queue.
pub struct Inbox<T> {
    rx: Receiver<T>,
    shared: Arc<InboxShared>,
    peeked: Option<T>,
    disconnected: bool,
}

/// Why an input was not queued (the input is dropped).
#[derive(Debug, PartialEq, Eq)]
pub enum QueueError {
    /// The loop is that far behind.
    Full,
    /// The loop has stopped.
    Closed,
}

/// A cloneable sending end of the Ready loop's input queue.
pub struct InboxSender<T> {
    tx: SyncSender<T>,
    shared: Arc<InboxShared>,
}

// Not derived: cloning a sender needs no `T: Clone`.
impl<T> Clone for InboxSender<T> {
    fn clone(&self) -> Self {
        InboxSender {
            tx: self.tx.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<T> InboxSender<T> {
    /// Queues without blocking; a full queue is the caller's to report.
    pub fn try_send(&self, input: T) -> Result<(), QueueError> {
        self.tx.try_send(input).map_err(|e| match e {
            TrySendError::Full(_) => QueueError::Full,
            TrySendError::Disconnected(_) => QueueError::Closed,
        })?;
        self.notify();
        Ok(())
    }

    /// Queues, waiting for room if the queue is full.
    pub fn send(&self, input: T) -> Result<(), QueueError> {
        self.tx.send(input).map_err(|_| QueueError::Closed)?;
        self.notify();
        Ok(())
    }

    fn notify(&self) {
        // Pairs with the fence in `Inbox::prepare_sleep`: either the loop
        // sees this input before it sleeps, or this sees it sleeping.
        fence(Ordering::SeqCst);
        if self.shared.sleeping.swap(false, Ordering::SeqCst) {
            let _ = self.shared.waker.wake();
        }
    }
}

impl<T> Inbox<T> {
    /// The next input, if one is queued.
    pub fn try_recv(&mut self) -> Option<T> {
        if let Some(input) = self.peeked.take() {
            return Some(input);
        }
        match self.rx.try_recv() {
            Ok(input) => Some(input),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                self.disconnected = true;
                None
            }
        }
    }

    /// Every sender is gone: nothing can ask the loop for anything again.
    pub fn disconnected(&self) -> bool {
        self.disconnected
    }

    /// Announces the loop is going to sleep; true if it must not, because
    /// an input is already queued.
    pub(crate) fn prepare_sleep(&mut self) -> bool {
        self.shared.sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.peeked.is_none() {
            self.peeked = self.try_recv();
        }
        self.peeked.is_some() || self.disconnected
    }

    pub(crate) fn woke(&self) {
        self.shared.sleeping.store(false, Ordering::SeqCst);
    }
}

/// Creates the poller the Raft thread will wait on, and the input queue
/// that wakes it.
pub fn channel<T>(capacity: usize) -> io::Result<(Poll, Inbox<T>, InboxSender<T>)> {
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), WAKER)?;
    let shared = Arc::new(InboxShared {
        waker,
        sleeping: AtomicBool::new(false),
    });
    let (tx, rx) = mpsc::sync_channel(capacity);
    let inbox = Inbox {
        rx,
        shared: shared.clone(),
        peeked: None,
        disconnected: false,
    };
    Ok((poll, inbox, InboxSender { tx, shared }))
}
