//! The output queue: frames on their way to the page, and the bytes they hold in the relay's accounts.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message};
use bytes::Bytes;
use futures_util::{Sink, SinkExt};
use soket_protocol::{Down, GoodbyeCode};
use tokio::sync::{mpsc, Semaphore};

use crate::shared::Shared;

/// What the session hands to the WebSocket writer.
pub(super) enum Out {
    Frame(Down),
    /// An encoded frame that carries a socket's bytes (`Data`, built in place by a reader, or `Datagram`),
    /// with the bytes it holds in the relay's accounts: they count as sent once the frame is fed.
    Data(Bytes, Buffered),
    /// Send `Goodbye`, close the WebSocket with this reason, and stop.
    Goodbye(GoodbyeCode, String),
}

/// Bytes held in a relay buffer: counted in the `buffered_bytes` gauge, and (for bytes on their way to the
/// page) in the session's `out_budget`, until dropped — written, sent, or thrown away with their session.
pub(super) struct Buffered {
    bytes: usize,
    shared: Arc<Shared>,
    budget: Option<Arc<Semaphore>>,
}

impl Buffered {
    pub(super) fn new(
        shared: &Arc<Shared>,
        bytes: usize,
        budget: Option<Arc<Semaphore>>,
    ) -> Buffered {
        shared
            .metrics
            .buffered_bytes
            .fetch_add(bytes as i64, Relaxed);
        Buffered {
            bytes,
            shared: shared.clone(),
            budget,
        }
    }

    /// Counts `bytes` more.
    pub(super) fn add(&mut self, bytes: usize) {
        self.shared
            .metrics
            .buffered_bytes
            .fetch_add(bytes as i64, Relaxed);
        self.bytes += bytes;
    }

    /// Moves `bytes` of this count to a count of their own, which lets go of them when dropped.
    pub(super) fn split(&mut self, bytes: usize) -> Buffered {
        self.bytes -= bytes;
        Buffered {
            bytes,
            shared: self.shared.clone(),
            budget: self.budget.clone(),
        }
    }
}

impl Drop for Buffered {
    fn drop(&mut self) {
        self.shared
            .metrics
            .buffered_bytes
            .fetch_sub(self.bytes as i64, Relaxed);
        if let Some(budget) = &self.budget {
            budget.add_permits(self.bytes);
        }
    }
}

/// Drains `out` into the WebSocket. Frames are fed without a flush while more are queued, so a burst
/// leaves in few writes.
pub(super) async fn write_frames(
    mut sink: impl Sink<Message> + Unpin,
    mut out: mpsc::Receiver<Out>,
    shared: Arc<Shared>,
) {
    while let Some(item) = out.recv().await {
        let result = match item {
            Out::Frame(down) => sink.feed(Message::Binary(down.encode())).await,
            Out::Data(frame, held) => {
                let result = sink.feed(Message::Binary(frame)).await;
                shared
                    .metrics
                    .bytes_down
                    .fetch_add(held.bytes as u64, Relaxed);
                result
            }
            Out::Goodbye(code, message) => {
                let goodbye = Down::Goodbye {
                    code,
                    message: message.clone(),
                };
                let _ = sink.feed(Message::Binary(goodbye.encode())).await;
                let close_code = match code {
                    GoodbyeCode::ProtocolError => 1002,
                    GoodbyeCode::Shutdown => 1001,
                    _ => 1008,
                };
                let reason = truncate(&message, 120);
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code: close_code,
                        reason: reason.into(),
                    })))
                    .await;
                return;
            }
        };
        if result.is_err() {
            return;
        }
        if out.is_empty() && sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

/// At most `max` bytes of `s`, cut at a character boundary (a WebSocket close reason is at most 123).
pub(super) fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
