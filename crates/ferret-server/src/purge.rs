//! The `wal-purge` thread: what a snapshot made obsolete, done outside the
//! Ready loop. Deleting a 64 MiB WAL segment (an unlink, then a directory
//! fsync) took about 200 ms under load and freeing the ~100k log entries
//! before a snapshot 10-30 ms; in the loop, every write in flight waited.
//!
//! Releases are deleted in the order they come, oldest segment first, and
//! whatever one could not delete goes before the next: the segments on
//! disk stay a gapless run, which is what `Wal::open` needs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use ferret_wal::Released;
use raft::eraftpb::Entry;

struct Job {
    entries: Vec<Entry>,
    released: Released,
}

pub(crate) struct Purger {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// Set by [`Purger::stop`]: what is left is deleted without pauses.
    hurry: Arc<AtomicBool>,
}

impl Purger {
    pub fn start() -> std::io::Result<Purger> {
        let (tx, rx) = mpsc::channel();
        let hurry = Arc::new(AtomicBool::new(false));
        let h = hurry.clone();
        let thread = std::thread::Builder::new()
            .name("wal-purge".into())
            .spawn(move || run(rx, &h))?;
        Ok(Purger {
            tx: Some(tx),
            thread: Some(thread),
            hurry,
        })
    }

    /// Frees `entries` and deletes `released`'s segments, in the thread.
    pub fn purge(&self, entries: Vec<Entry>, released: Released) {
        let job = Job { entries, released };
        if let Some(tx) = &self.tx {
            // The thread only ends when `tx` is dropped.
            let _ = tx.send(job);
        }
    }

    /// Finishes what was handed over, then stops the thread.
    pub fn stop(&mut self) {
        self.hurry.store(true, Ordering::Relaxed);
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Purger {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(rx: mpsc::Receiver<Job>, hurry: &AtomicBool) {
    let mut left: Option<Released> = None;
    for job in rx {
        drop(job.entries);
        let all = match left.take() {
            Some(older) => older.then(job.released),
            None => job.released,
        };
        if let Err((e, rest)) = all.remove_paced(hurry) {
            tracing::warn!(error = %e, "could not release old WAL segments; retrying with the next snapshot");
            left = Some(rest);
        }
    }
}
