//! The session's streams: what each stream id stands for now, in one table that keeps the quota and the
//! stream gauges.
//!
//! A stream is counted (in `soket_streams_active` and `soket_streams_total`, and in the session's quota) by
//! a [`Counted`] guard, which only this table makes. The guard sits in the stream's entry from the moment
//! the table [opens](Streams::open) it until the relay closes it, the page's `Close` removes it, or the
//! session ends; so no path can forget to give it back. A connection the page closes with bytes still to
//! flush is the exception that keeps the quota honest: its guard goes with its writer
//! ([`WriteQueue::close`](super::write_queue::WriteQueue::close)) and is dropped only once the writer is
//! done with the socket, so a loop of connect, send, close cannot hold more sockets (or more windows of
//! bytes) than `--max-streams`.
//!
//! Connections a listener accepted and the page has not yet `accept()`ed take at most
//! [a share](Streams::backlog_share) of the quota, so that strangers who connect to a learner's server
//! cannot take the sockets the learner's own program opens.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use soket_protocol::errno::{self, describe};
use soket_protocol::StreamId;

use tokio::net::{TcpSocket, UdpSocket};
use tokio::task::AbortHandle;

use super::{Conn, Credit, Failure, MAX_BACKLOG};
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
    /// The quota: most ids a session may hold, closed ones included (their ids live until the page's
    /// Close), and closed connections whose writer still flushes.
    max: usize,
    /// How many of this session's `Counted` guards live, in the table or carried by a writer: shared with
    /// each guard, which gives its one back when dropped, wherever that happens.
    counted: Arc<AtomicUsize>,
    shared: Arc<Shared>,
}

struct Entry {
    stream: Stream,
    /// Present while the stream is open.
    counted: Option<Counted>,
}

/// One open stream in the relay's gauges and in its session's quota, until dropped. Only the table makes
/// one.
pub(super) struct Counted {
    shared: Arc<Shared>,
    session: Arc<AtomicUsize>,
}

impl Counted {
    fn new(shared: &Arc<Shared>, session: &Arc<AtomicUsize>) -> Counted {
        shared.metrics.streams_active.fetch_add(1, Relaxed);
        shared.metrics.streams_total.fetch_add(1, Relaxed);
        session.fetch_add(1, Relaxed);
        Counted {
            shared: shared.clone(),
            session: session.clone(),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.shared.metrics.streams_active.fetch_sub(1, Relaxed);
        self.session.fetch_sub(1, Relaxed);
    }
}

impl Streams {
    pub(super) fn new(shared: &Arc<Shared>) -> Streams {
        Streams {
            entries: HashMap::new(),
            max: shared.config.max_streams,
            counted: Arc::default(),
            shared: shared.clone(),
        }
    }

    /// Room for one more stream, or EMFILE: not a protocol error, the learner opened too many sockets.
    pub(super) fn room(&self) -> Result<(), Failure> {
        if self.is_full() {
            let mut message = format!(
                "{} (this session may hold at most {} sockets",
                describe(errno::EMFILE),
                self.max
            );
            let flushing = self.used().saturating_sub(self.entries.len());
            if flushing > 0 {
                // A learner who closed them may not see why: say that they still count, and until when.
                message += &format!(
                    ", and {flushing} closed ones still count until they have sent what was written to them"
                );
            }
            message.push(')');
            return Err(Failure::with(errno::EMFILE, message));
        }
        Ok(())
    }

    pub(super) fn is_full(&self) -> bool {
        self.used() >= self.max
    }

    /// What the quota counts: every open stream (in the table, or closed and still flushing) and every id
    /// kept as closed until the page's Close.
    fn used(&self) -> usize {
        let closed = self
            .entries
            .values()
            .filter(|e| e.counted.is_none())
            .count();
        self.counted.load(Relaxed) + closed
    }

    /// Most connections this session's listeners may hold that the page has not accepted yet, all
    /// listeners together, and so the largest backlog one listener gets: half the quota (at least one, at
    /// most `MAX_BACKLOG`). The other half is kept for the sockets the page opens itself, so strangers who
    /// connect to a learner's server never make the learner's own `connect()` fail with EMFILE.
    pub(super) fn backlog_share(&self) -> u32 {
        (self.max / 2).clamp(1, MAX_BACKLOG as usize) as u32
    }

    /// Connections reported to the page that it has not accepted yet: each listener's backlog credit the
    /// page has not given back.
    fn unaccepted(&self) -> u64 {
        self.values()
            .map(|stream| match stream {
                Stream::Listening { credit, .. } => credit.outstanding(),
                _ => 0,
            })
            .sum()
    }

    /// Room for a connection a listener has just accepted (and already taken from its listener's credit,
    /// so it is among the unaccepted ones), or why not: the session's quota, or the share of it that
    /// connections waiting for the page's `accept()` may take.
    pub(super) fn room_for_incoming(&self) -> Result<(), &'static str> {
        if self.is_full() {
            return Err("stream quota");
        }
        if self.unaccepted() > u64::from(self.backlog_share()) {
            return Err("the session's backlog share");
        }
        Ok(())
    }

    /// Adds a new open stream, counted until it is closed or removed.
    pub(super) fn open(&mut self, id: StreamId, stream: Stream) {
        let counted = Some(Counted::new(&self.shared, &self.counted));
        self.entries.insert(id, Entry { stream, counted });
    }

    /// Marks a stream closed by the relay (uncounting it), or keeps a fresh id whose operation failed as
    /// closed; either way its id lives until the page's `Close`.
    pub(super) fn set_closed(&mut self, id: StreamId) {
        self.entries.insert(
            id,
            Entry {
                stream: Stream::Closed,
                counted: None,
            },
        );
    }

    /// Moves an open stream to its next state (`Pending` to `Connected`, `Bound` to `Listening`), still
    /// counted, and returns the state it left; `None` (and nothing changes) if `id` is not in the table.
    pub(super) fn replace(&mut self, id: StreamId, next: Stream) -> Option<Stream> {
        let entry = self.entries.get_mut(&id)?;
        Some(std::mem::replace(&mut entry.stream, next))
    }

    /// Takes a stream out of the table (the page's `Close`), with its count: dropping it uncounts the
    /// stream, and a connection's writer that still has bytes to flush keeps it until it is done.
    pub(super) fn remove(&mut self, id: StreamId) -> Option<(Stream, Option<Counted>)> {
        self.entries
            .remove(&id)
            .map(|entry| (entry.stream, entry.counted))
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

    use super::super::write_queue::{Next, WriteQueue};
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

    fn listening(backlog: u64, unaccepted: u64) -> (Stream, Arc<Credit>) {
        let credit = Arc::new(Credit::new(backlog - unaccepted, backlog));
        let task = tokio::spawn(std::future::pending::<()>()).abort_handle();
        let stream = Stream::Listening {
            port: 80,
            public: "127.0.0.1:40000".into(),
            credit: credit.clone(),
            task,
        };
        (stream, credit)
    }

    #[tokio::test]
    async fn a_closed_stream_whose_count_is_kept_fills_the_quota_until_it_is_dropped() {
        let shared = shared(2);
        let mut streams = Streams::new(&shared);
        streams.open(StreamId(1), udp());
        streams.open(StreamId(2), udp());
        let (_, kept) = streams.remove(StreamId(1)).unwrap();
        assert!(kept.is_some());
        assert_eq!(active(&shared), (2, 2), "still counted in the gauge");
        let failure = streams.room().unwrap_err();
        assert_eq!(failure.errno, errno::EMFILE);
        assert!(
            failure
                .message
                .contains("at most 2 sockets, and 1 closed ones still count"),
            "{}",
            failure.message
        );
        drop(kept);
        assert_eq!(active(&shared), (1, 2));
        assert!(streams.room().is_ok());
    }

    #[tokio::test]
    async fn a_closed_connection_counts_until_its_writer_has_written_everything() {
        let shared = shared(4);
        let mut streams = Streams::new(&shared);
        streams.open(StreamId(1), udp());
        streams.open(StreamId(2), udp());

        // Nothing left to write: the count goes at once, as the fd of a closed socket does.
        let idle = WriteQueue::new(&shared);
        idle.close(streams.remove(StreamId(1)).unwrap().1);
        assert_eq!(active(&shared), (1, 2));

        let busy = WriteQueue::new(&shared);
        busy.push(bytes::Bytes::from(vec![7u8; 10_000]));
        busy.close(streams.remove(StreamId(2)).unwrap().1);
        assert_eq!(active(&shared), (1, 2), "kept while bytes wait");
        assert!(streams.room().is_ok());
        let (Next::Write(_, held), true) = busy.next() else {
            panic!("the bytes come first");
        };
        drop(held);
        assert_eq!(active(&shared), (1, 2), "kept while they are written");
        let (Next::Done(counted), true) = busy.next() else {
            panic!("then the end");
        };
        assert!(counted.is_some());
        drop(counted);
        assert_eq!(active(&shared), (0, 2));

        // Closed while the writer is in the middle of its last chunk: the queue is empty, the socket
        // still busy, so the count stays until the writer comes back for more.
        streams.open(StreamId(4), udp());
        let writing = WriteQueue::new(&shared);
        writing.push(bytes::Bytes::from(vec![7u8; 10_000]));
        let (Next::Write(_, held), false) = writing.next() else {
            panic!("the bytes come first");
        };
        writing.close(streams.remove(StreamId(4)).unwrap().1);
        drop(held);
        assert_eq!(
            active(&shared),
            (1, 3),
            "kept while the last write is under way"
        );
        let (Next::Done(counted), true) = writing.next() else {
            panic!("then the end");
        };
        drop(counted);
        assert_eq!(active(&shared), (0, 3));

        // A writer aborted before it is done drops the queue, and the count with it.
        streams.open(StreamId(5), udp());
        let aborted = WriteQueue::new(&shared);
        aborted.push(bytes::Bytes::from_static(b"never written"));
        aborted.close(streams.remove(StreamId(5)).unwrap().1);
        assert_eq!(active(&shared), (1, 4));
        drop(aborted);
        assert_eq!(active(&shared), (0, 4));
    }

    #[tokio::test]
    async fn unaccepted_connections_take_at_most_half_the_quota_all_listeners_together() {
        assert_eq!(Streams::new(&shared(1)).backlog_share(), 1);
        assert_eq!(Streams::new(&shared(32)).backlog_share(), 16);
        assert_eq!(Streams::new(&shared(1000)).backlog_share(), MAX_BACKLOG);

        let shared = shared(8);
        let mut streams = Streams::new(&shared);
        let (a, a_credit) = listening(3, 2);
        let (b, _) = listening(3, 2);
        streams.open(StreamId(1), a);
        streams.open(StreamId(2), b);
        assert!(streams.room_for_incoming().is_ok(), "4 of a share of 4");
        // a's accept loop takes its last credit for one more connection.
        assert_eq!(a_credit.take(1).await, 1);
        a_credit.settle(1, 1);
        assert_eq!(
            streams.room_for_incoming(),
            Err("the session's backlog share"),
            "5 of 4"
        );
        assert!(a_credit.grant(1), "the page accepts one");
        assert!(streams.room_for_incoming().is_ok());
        assert!(streams.room().is_ok(), "the page's own sockets have room");
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
