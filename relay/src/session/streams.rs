//! The session's streams: what each stream id stands for now, in one table that keeps the quota and the
//! stream gauges.
//!
//! A stream is counted (in `soket_streams_active` and `soket_streams_total`) from the moment the table
//! [opens](Streams::open) it until it is closed by the relay, removed by the page's `Close`, or dropped with
//! the session: the count is a guard held in the table's entry, so no path can forget to give it back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use soket_protocol::errno::{self, describe};
use soket_protocol::StreamId;

use tokio::net::{TcpSocket, UdpSocket};
use tokio::task::AbortHandle;

use super::{Conn, Credit, Failure};
use crate::shared::Shared;

pub(super) enum Stream {
    /// A `Connect` under way.
    Pending {
        task: AbortHandle,
    },
    /// A bound TCP socket, not yet listening.
    Bound {
        socket: TcpSocket,
        port: u16,
        local: SocketAddr,
    },
    Listening {
        port: u16,
        public: String,
        credit: Arc<Credit>,
        task: AbortHandle,
    },
    Connected(Conn),
    Udp {
        port: u16,
        socket: Arc<UdpSocket>,
        task: AbortHandle,
    },
    /// The relay reported the stream gone (or a connect failed); frames for it are dropped until the
    /// page's `Close` frees the id.
    Closed,
}

/// Every stream id the page (or the relay, for accepted connections) has opened and not yet closed.
pub(super) struct Streams {
    entries: HashMap<StreamId, Entry>,
    /// The quota: most ids a session may hold, closed ones included (their ids live until the page's Close).
    max: usize,
    shared: Arc<Shared>,
}

struct Entry {
    stream: Stream,
    /// Present while the stream is open.
    _counted: Option<Counted>,
}

/// One open stream in the relay's gauges, until dropped.
struct Counted(Arc<Shared>);

impl Counted {
    fn new(shared: &Arc<Shared>) -> Counted {
        shared.metrics.streams_active.fetch_add(1, Relaxed);
        shared.metrics.streams_total.fetch_add(1, Relaxed);
        Counted(shared.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.metrics.streams_active.fetch_sub(1, Relaxed);
    }
}

impl Streams {
    pub(super) fn new(shared: &Arc<Shared>) -> Streams {
        Streams {
            entries: HashMap::new(),
            max: shared.config.max_streams,
            shared: shared.clone(),
        }
    }

    /// Room for one more stream, or EMFILE: not a protocol error, the learner opened too many sockets.
    pub(super) fn room(&self) -> Result<(), Failure> {
        if self.is_full() {
            let message = format!(
                "{} (this session may hold at most {} sockets)",
                describe(errno::EMFILE),
                self.max
            );
            return Err(Failure::with(errno::EMFILE, message));
        }
        Ok(())
    }

    pub(super) fn is_full(&self) -> bool {
        self.entries.len() >= self.max
    }

    /// Adds a new open stream, counted until it is closed or removed.
    pub(super) fn open(&mut self, id: StreamId, stream: Stream) {
        let counted = Some(Counted::new(&self.shared));
        self.entries.insert(
            id,
            Entry {
                stream,
                _counted: counted,
            },
        );
    }

    /// Marks a stream closed by the relay (uncounting it), or keeps a fresh id whose operation failed as
    /// closed; either way its id lives until the page's `Close`.
    pub(super) fn set_closed(&mut self, id: StreamId) {
        self.entries.insert(
            id,
            Entry {
                stream: Stream::Closed,
                _counted: None,
            },
        );
    }

    /// Moves an open stream to its next state (`Pending` to `Connected`, `Bound` to `Listening`), still
    /// counted, and returns the state it left; `None` (and nothing changes) if `id` is not in the table.
    pub(super) fn replace(&mut self, id: StreamId, next: Stream) -> Option<Stream> {
        let entry = self.entries.get_mut(&id)?;
        Some(std::mem::replace(&mut entry.stream, next))
    }

    /// Takes a stream out of the table (the page's `Close`), uncounting it.
    pub(super) fn remove(&mut self, id: StreamId) -> Option<Stream> {
        self.entries.remove(&id).map(|entry| entry.stream)
    }

    pub(super) fn get(&self, id: StreamId) -> Option<&Stream> {
        self.entries.get(&id).map(|entry| &entry.stream)
    }

    /// The stream, to change what it holds; a change of state goes through [`Streams::replace`],
    /// [`Streams::set_closed`] or [`Streams::remove`].
    pub(super) fn get_mut(&mut self, id: StreamId) -> Option<&mut Stream> {
        self.entries.get_mut(&id).map(|entry| &mut entry.stream)
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Stream> {
        self.entries.values().map(|entry| &entry.stream)
    }

    pub(super) fn ids(&self) -> Vec<StreamId> {
        self.entries.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;
    use crate::net::SystemNetwork;
    use crate::Config;

    fn shared(max_streams: usize) -> Arc<Shared> {
        let mut config = Config::local();
        config.max_streams = max_streams;
        Arc::new(Shared::new(config, Arc::new(SystemNetwork)))
    }

    fn active(shared: &Shared) -> (i64, u64) {
        let metrics = &shared.metrics;
        (
            metrics.streams_active.load(Relaxed),
            metrics.streams_total.load(Relaxed),
        )
    }

    fn udp() -> Stream {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let task = tokio::spawn(std::future::pending::<()>()).abort_handle();
        Stream::Udp {
            port: 9,
            socket: Arc::new(UdpSocket::from_std(socket).unwrap()),
            task,
        }
    }

    #[tokio::test]
    async fn a_stream_counts_from_open_until_closed_removed_or_dropped() {
        let shared = shared(8);
        let mut streams = Streams::new(&shared);
        let (a, b, c) = (StreamId(1), StreamId(2), StreamId(3));
        streams.open(a, udp());
        streams.open(b, udp());
        streams.open(c, udp());
        assert_eq!(active(&shared), (3, 3));

        streams.set_closed(a);
        assert_eq!(active(&shared), (2, 3), "closed by the relay");
        streams.set_closed(a);
        assert_eq!(active(&shared), (2, 3), "closing twice uncounts once");
        assert!(streams.remove(a).is_some());
        assert_eq!(
            active(&shared),
            (2, 3),
            "removing a closed id uncounts nothing"
        );

        let old = streams.replace(b, udp());
        assert!(matches!(old, Some(Stream::Udp { .. })));
        assert_eq!(
            active(&shared),
            (2, 3),
            "a change of state is the same stream"
        );
        assert!(streams.replace(StreamId(99), udp()).is_none());
        assert!(streams.get(StreamId(99)).is_none(), "replace opens nothing");

        assert!(streams.remove(b).is_some());
        assert_eq!(active(&shared), (1, 3), "the page's Close");
        drop(streams);
        assert_eq!(active(&shared), (0, 3), "the session's end");
    }

    #[tokio::test]
    async fn the_quota_counts_every_id_closed_ones_too_and_refusing_counts_nothing() {
        let shared = shared(2);
        let mut streams = Streams::new(&shared);
        streams.open(StreamId(1), udp());
        assert!(streams.room().is_ok());
        streams.set_closed(StreamId(2));
        assert_eq!(active(&shared), (1, 1));
        assert!(
            streams.is_full(),
            "a refused id lives until the page closes it"
        );
        let failure = streams.room().unwrap_err();
        assert_eq!(failure.errno, errno::EMFILE);
        assert!(
            failure.message.contains("at most 2 sockets"),
            "{}",
            failure.message
        );
        streams.remove(StreamId(2));
        assert!(streams.room().is_ok());
    }
}
