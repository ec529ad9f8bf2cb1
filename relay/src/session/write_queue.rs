//! What the page sent on a TCP stream, waiting for the stream's writer.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use soket_protocol::MAX_PAYLOAD;
use tokio::sync::Notify;

use super::out::Buffered;
use super::streams::Counted;
use super::SMALL_WRITE;
use crate::shared::Shared;

/// What the page sent on a connected stream that its writer has not written yet: the session adds to it,
/// the stream's writer takes from it.
///
/// It is bounded by the stream's credit, however many frames the page sends: its bytes never exceed the
/// window; a chunk holds at least `SMALL_WRITE` bytes or is followed by one that does (small payloads are
/// copied onto the last chunk), so there are at most `2 * window / SMALL_WRITE + 1` of them; an empty
/// payload adds nothing; and `Shutdown` and `Close` are flags, which a second frame only sets again.
pub(super) struct WriteQueue {
    /// A std mutex: held for a few instructions, never across an await.
    state: Mutex<Queued>,
    /// Wakes the writer, the one task that waits on the queue; a permit is kept if it is not waiting yet.
    more: Notify,
}

struct Queued {
    chunks: VecDeque<Chunk>,
    /// The bytes in `chunks`, in the relay's accounts.
    held: Buffered,
    /// The page shut down its sending side: `shutdown(SHUT_WR)` once `chunks` is written.
    shutdown: bool,
    /// The page closed the stream: write what is queued, then stop, granting no more credit.
    close: bool,
    /// The writer took a chunk and has not asked for the next thing yet: a write is under way.
    writing: bool,
    /// The stream's count once the page closed it with bytes still to write: the stream counts against
    /// its session's quota and the gauges until the writer is done (or is aborted, dropping the queue).
    closed_count: Option<Counted>,
}

enum Chunk {
    /// A payload as it came, sharing the frame's memory.
    Frame(Bytes),
    /// Small payloads copied one after the other.
    Copied(BytesMut),
}

/// What a stream's writer does next.
pub(super) enum Next {
    Write(Bytes, Buffered),
    Shutdown,
    /// Closed, and everything written: the stream's count, if the queue kept it, to drop once the socket
    /// is let go of.
    Done(Option<Counted>),
    Wait,
}

impl WriteQueue {
    pub(super) fn new(shared: &Arc<Shared>) -> WriteQueue {
        WriteQueue {
            state: Mutex::new(Queued {
                chunks: VecDeque::new(),
                held: Buffered::new(shared, 0, None),
                shutdown: false,
                close: false,
                writing: false,
                closed_count: None,
            }),
            more: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Queued> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a payload the page sent (within its credit).
    pub(super) fn push(&self, payload: Bytes) {
        if payload.is_empty() {
            return; // a zero-length send writes nothing
        }
        {
            let mut state = self.state();
            state.held.add(payload.len());
            let small = payload.len() < SMALL_WRITE;
            match state.chunks.back_mut() {
                Some(Chunk::Copied(last)) if small && last.len() < MAX_PAYLOAD => {
                    last.extend_from_slice(&payload)
                }
                _ if small => state
                    .chunks
                    .push_back(Chunk::Copied(BytesMut::from(&payload[..]))),
                _ => state.chunks.push_back(Chunk::Frame(payload)),
            }
        }
        self.more.notify_one();
    }

    pub(super) fn shutdown(&self) {
        self.state().shutdown = true;
        self.more.notify_one();
    }

    /// The page's `Close`, with the stream's count: kept until the writer is done if it still has bytes to
    /// write, dropped at once if not (the stream is gone as on Linux, so the page may open another).
    pub(super) fn close(&self, counted: Option<Counted>) {
        {
            let mut state = self.state();
            state.close = true;
            if counted.is_some() && (state.writing || !state.chunks.is_empty()) {
                state.closed_count = counted;
            }
        }
        self.more.notify_one();
    }

    /// Whether the page has closed the stream.
    pub(super) fn is_closed(&self) -> bool {
        self.state().close
    }

    /// Waits until something is pushed or flagged after the last `next()` said `Wait`.
    pub(super) async fn wait(&self) {
        self.more.notified().await;
    }

    /// Takes the next thing to do, and says whether the page has closed the stream.
    pub(super) fn next(&self) -> (Next, bool) {
        let mut state = self.state();
        state.writing = false;
        let next = match state.chunks.pop_front() {
            Some(chunk) => {
                let bytes = match chunk {
                    Chunk::Frame(bytes) => bytes,
                    Chunk::Copied(bytes) => bytes.freeze(),
                };
                let held = state.held.split(bytes.len());
                state.writing = true;
                Next::Write(bytes, held)
            }
            None if std::mem::take(&mut state.shutdown) => Next::Shutdown,
            None if state.close => Next::Done(state.closed_count.take()),
            None => Next::Wait,
        };
        (next, state.close)
    }
}
