//! The stack against frames a relay would send: what each call sends, how many round trips it costs, and
//! the errors CPython on Linux would raise.

use std::net::SocketAddr;

use bytes::Bytes;
use soket_netstack::{Down, Error, Fd, Stack, StreamId, Transport, Up};
use soket_protocol::{errno, Failure};

const WINDOW: u32 = 256 * 1024;

fn stack() -> Stack {
    let mut stack = Stack::new();
    let welcome = Down::Welcome {
        hostname: "learner-1".into(),
        public_host: "127.0.0.1".into(),
        window: WINDOW,
    };
    stack.handle(welcome).expect("welcome");
    stack
}

fn frames(stack: &mut Stack) -> Vec<Up> {
    stack.take_frames().collect()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

/// A TCP socket connected as stream 1.
fn connected(stack: &mut Stack) -> Fd {
    let fd = stack.socket(1, Transport::Tcp);
    stack
        .connect(fd, "localhost", 12345)
        .expect("connect starts");
    frames(stack);
    let local = addr("127.0.0.1:40000");
    let peer = addr("127.0.0.1:12345");
    stack
        .handle(Down::Connected {
            stream: StreamId(1),
            local,
            peer,
        })
        .expect("connected");
    assert_eq!(stack.take_pending(fd), Some(Ok(())));
    fd
}

#[test]
fn connect_takes_one_round_trip_and_reports_addresses() {
    let mut stack = stack();
    let fd = stack.socket(1, Transport::Tcp);
    assert_eq!(stack.hostname(), "learner-1");
    stack
        .connect(fd, "localhost", 12345)
        .expect("connect starts");
    assert_eq!(
        frames(&mut stack),
        vec![Up::Connect {
            stream: StreamId(1),
            host: "localhost".into(),
            port: 12345
        }]
    );
    assert_eq!(stack.take_pending(fd), None, "waits for the relay");
    assert_eq!(
        stack.connect(fd, "localhost", 12345),
        Err(Error::errno(114)),
        "EALREADY"
    );
    let local = addr("127.0.0.1:40000");
    let peer = addr("127.0.0.1:12345");
    stack
        .handle(Down::Connected {
            stream: StreamId(1),
            local,
            peer,
        })
        .expect("connected");
    assert_eq!(stack.take_pending(fd), Some(Ok(())));
    assert_eq!(stack.local_addr(fd), Ok(local));
    assert_eq!(stack.peer_addr(fd), Ok(peer));
    assert_eq!(
        stack.connect(fd, "localhost", 1),
        Err(Error::errno(106)),
        "EISCONN"
    );
}

#[test]
fn send_within_credit_and_recv_of_buffered_data_cost_no_round_trip() {
    let mut stack = stack();
    let fd = connected(&mut stack);
    // 100 KiB leaves at once, split into frames of at most 64 KiB: nothing waits for the relay.
    assert_eq!(stack.send(fd, &vec![1u8; 100 * 1024]), Ok(100 * 1024));
    let sent = frames(&mut stack);
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|f| matches!(f, Up::Data { .. })));

    for i in 0..10u8 {
        stack
            .handle(Down::Data {
                stream: StreamId(1),
                payload: Bytes::from(vec![i; 100]),
            })
            .expect("data");
    }
    // Ten recvs of buffered bytes: answered from the buffer, and the credit they free is small enough to
    // wait for a batch, so not a single frame goes to the relay.
    for i in 0..10u8 {
        assert_eq!(stack.recv(fd, 100, false), Ok(Bytes::from(vec![i; 100])));
    }
    assert_eq!(frames(&mut stack), vec![]);
    assert_eq!(stack.recv(fd, 4096, false), Err(Error::WouldBlock));
}

#[test]
fn credit_goes_back_in_quarter_windows_and_sending_stops_at_the_window() {
    let mut stack = stack();
    let fd = connected(&mut stack);
    for _ in 0..4 {
        stack
            .handle(Down::Data {
                stream: StreamId(1),
                payload: Bytes::from(vec![0u8; 65536]),
            })
            .expect("data");
    }
    assert_eq!(stack.recv(fd, 65536, false).map(|b| b.len()), Ok(65536));
    assert_eq!(
        frames(&mut stack),
        vec![Up::Credit {
            stream: StreamId(1),
            amount: 65536
        }]
    );

    assert_eq!(
        stack.send(fd, &vec![0u8; WINDOW as usize + 10]),
        Ok(WINDOW as usize),
        "as much as the credit"
    );
    frames(&mut stack);
    assert_eq!(stack.send(fd, b"more"), Err(Error::WouldBlock));
    assert!(!stack.readiness(fd).expect("fd").writable);
    stack
        .handle(Down::Credit {
            stream: StreamId(1),
            amount: 3,
        })
        .expect("credit");
    assert!(stack.readiness(fd).expect("fd").writable);
    assert_eq!(stack.send(fd, b"more"), Ok(3));
}

#[test]
fn recv_joins_small_chunks_splits_big_ones_and_peeks() {
    let mut stack = stack();
    let fd = connected(&mut stack);
    for chunk in [&b"ab"[..], b"cd", b"efgh"] {
        stack
            .handle(Down::Data {
                stream: StreamId(1),
                payload: Bytes::copy_from_slice(chunk),
            })
            .expect("data");
    }
    assert_eq!(stack.recv(fd, 1, true), Ok(Bytes::from_static(b"a")));
    assert_eq!(stack.recv(fd, 5, false), Ok(Bytes::from_static(b"abcd")));
    assert_eq!(stack.recv(fd, 3, false), Ok(Bytes::from_static(b"efg")));
    assert_eq!(stack.recv(fd, 3, false), Ok(Bytes::from_static(b"h")));
}

#[test]
fn end_of_stream_and_reset_read_as_on_linux() {
    let mut stack = stack();
    let fd = connected(&mut stack);
    stack
        .handle(Down::Data {
            stream: StreamId(1),
            payload: Bytes::from_static(b"bye"),
        })
        .expect("data");
    stack
        .handle(Down::Shutdown {
            stream: StreamId(1),
        })
        .expect("fin");
    assert_eq!(stack.recv(fd, 10, false), Ok(Bytes::from_static(b"bye")));
    assert_eq!(
        stack.recv(fd, 10, false),
        Ok(Bytes::new()),
        "b'' at end of stream"
    );
    assert!(stack.readiness(fd).expect("fd").readable);

    let fd = stack.socket(1, Transport::Tcp);
    stack.connect(fd, "localhost", 1).expect("connect");
    let stream = match frames(&mut stack).pop() {
        Some(Up::Connect { stream, .. }) => stream,
        other => panic!("expected Connect, got {other:?}"),
    };
    stack
        .handle(Down::Connected {
            stream,
            local: addr("127.0.0.1:1"),
            peer: addr("127.0.0.1:2"),
        })
        .expect("ok");
    stack.take_pending(fd);
    let reset = Down::Closed {
        stream,
        errno: errno::ECONNRESET,
        message: "Connection reset by peer".into(),
    };
    stack.handle(reset).expect("closed");
    assert_eq!(
        stack.recv(fd, 10, false),
        Err(Error::Errno(Failure::errno(errno::ECONNRESET)))
    );
    assert_eq!(
        stack.recv(fd, 10, false),
        Ok(Bytes::new()),
        "raised once, then end of stream"
    );
    assert_eq!(stack.send(fd, b"x"), Err(Error::errno(errno::EPIPE)));
    stack.close(fd);
    assert_eq!(
        frames(&mut stack),
        vec![Up::Close { stream }],
        "the page frees the id"
    );
}

#[test]
fn a_refused_connect_fails_and_the_socket_can_try_again() {
    let mut stack = stack();
    let fd = stack.socket(1, Transport::Tcp);
    stack.connect(fd, "localhost", 9).expect("connect");
    frames(&mut stack);
    let refused = Down::Failed {
        stream: StreamId(1),
        errno: 111,
        message: "Connection refused".into(),
    };
    stack.handle(refused).expect("failed");
    assert_eq!(
        stack.take_pending(fd),
        Some(Err(Error::Errno(Failure::errno(errno::ECONNREFUSED))))
    );
    stack.connect(fd, "localhost", 10).expect("again");
    assert_eq!(
        frames(&mut stack),
        vec![
            Up::Close {
                stream: StreamId(1)
            },
            Up::Connect {
                stream: StreamId(2),
                host: "localhost".into(),
                port: 10
            }
        ],
        "the failed id is freed, and the retry gets a fresh one"
    );
}

#[test]
fn listen_binds_and_listens_in_one_round_trip_and_accept_is_local() {
    let mut stack = stack();
    let fd = stack.socket(7, Transport::Tcp);
    stack.bind(fd, "", 12345).expect("bind");
    let bind = Up::Bind {
        stream: StreamId(1),
        transport: Transport::Tcp,
        host: String::new(),
        port: 12345,
    };
    assert_eq!(frames(&mut stack), vec![bind]);
    stack
        .handle(Down::Bound {
            stream: StreamId(1),
            local: addr("0.0.0.0:12345"),
        })
        .expect("bound");
    assert_eq!(stack.take_pending(fd), Some(Ok(())));
    stack.listen(fd, 5).expect("listen");
    assert_eq!(
        frames(&mut stack),
        vec![Up::Listen {
            stream: StreamId(1),
            backlog: 5
        }]
    );
    stack
        .handle(Down::Listening {
            stream: StreamId(1),
            public: "127.0.0.1:40001".into(),
        })
        .expect("listening");
    assert_eq!(stack.take_pending(fd), Some(Ok(())));
    assert_eq!(
        stack.listeners(),
        vec![(fd, 7, addr("0.0.0.0:12345"), "127.0.0.1:40001".to_string())]
    );

    assert_eq!(stack.accept(fd), Err(Error::WouldBlock));
    assert!(!stack.readiness(fd).expect("fd").readable);
    let conn = StreamId::relay(1);
    let incoming = Down::Incoming {
        stream: StreamId(1),
        conn,
        local: addr("127.0.0.1:12345"),
        peer: addr("127.0.0.1:5555"),
    };
    stack.handle(incoming).expect("incoming");
    assert!(stack.readiness(fd).expect("fd").readable);
    let (accepted, peer) = stack.accept(fd).expect("accept");
    assert_eq!(peer, addr("127.0.0.1:5555"));
    assert_eq!(
        frames(&mut stack),
        vec![Up::Credit {
            stream: StreamId(1),
            amount: 1
        }],
        "room for one more"
    );
    assert_eq!(stack.send(accepted, b"Thank you for connecting"), Ok(24));
    assert!(matches!(frames(&mut stack).as_slice(), [Up::Data { stream, .. }] if *stream == conn));

    // A connection nobody accepted is reset when its listener closes.
    let second = StreamId::relay(2);
    let incoming = Down::Incoming {
        stream: StreamId(1),
        conn: second,
        local: addr("127.0.0.1:12345"),
        peer: addr("127.0.0.1:5556"),
    };
    stack.handle(incoming).expect("incoming");
    stack.close(fd);
    assert_eq!(
        frames(&mut stack),
        vec![
            Up::Reset { stream: second },
            Up::Close {
                stream: StreamId(1)
            }
        ]
    );
}

#[test]
fn listen_on_an_unbound_socket_binds_any_port_first() {
    let mut stack = stack();
    let fd = stack.socket(1, Transport::Tcp);
    stack.listen(fd, 1).expect("listen");
    let bind = Up::Bind {
        stream: StreamId(1),
        transport: Transport::Tcp,
        host: String::new(),
        port: 0,
    };
    assert_eq!(
        frames(&mut stack),
        vec![
            bind,
            Up::Listen {
                stream: StreamId(1),
                backlog: 1
            }
        ]
    );
}

#[test]
fn udp_sends_at_once_and_keeps_datagrams_whole() {
    let mut stack = stack();
    let fd = stack.socket(1, Transport::Udp);
    assert_eq!(stack.send_to(fd, "localhost", 9999, b"hello"), Ok(5));
    let sent = frames(&mut stack);
    assert!(
        matches!(
            sent.as_slice(),
            [
                Up::Bind {
                    transport: Transport::Udp,
                    port: 0,
                    ..
                },
                Up::SendTo { port: 9999, .. }
            ]
        ),
        "{sent:?}"
    );
    stack
        .handle(Down::Bound {
            stream: StreamId(1),
            local: addr("0.0.0.0:32768"),
        })
        .expect("bound");
    assert_eq!(stack.local_addr(fd), Ok(addr("0.0.0.0:32768")));

    let from = addr("127.0.0.1:9999");
    stack
        .handle(Down::Datagram {
            stream: StreamId(1),
            from,
            payload: Bytes::from_static(b"one"),
        })
        .expect("d1");
    stack
        .handle(Down::Datagram {
            stream: StreamId(1),
            from,
            payload: Bytes::from_static(b"two!"),
        })
        .expect("d2");
    assert_eq!(
        stack.recv_from(fd, 100, true),
        Ok((Bytes::from_static(b"one"), Some(from)))
    );
    assert_eq!(
        stack.recv_from(fd, 100, false),
        Ok((Bytes::from_static(b"one"), Some(from)))
    );
    assert_eq!(
        stack.recv_from(fd, 2, false),
        Ok((Bytes::from_static(b"tw"), Some(from))),
        "cut, the rest lost"
    );
    assert_eq!(stack.recv_from(fd, 100, false), Err(Error::WouldBlock));

    // A full receive buffer drops datagrams, as a real one does.
    for _ in 0..10 {
        stack
            .handle(Down::Datagram {
                stream: StreamId(1),
                from,
                payload: Bytes::from(vec![0u8; 60_000]),
            })
            .expect("d");
    }
    let mut kept = 0;
    while stack.recv_from(fd, 65536, false).is_ok() {
        kept += 1;
    }
    assert_eq!(kept, 4, "256 KiB hold four 60,000-byte datagrams");

    // A refused destination is raised by the next call.
    stack
        .handle(Down::Failed {
            stream: StreamId(1),
            errno: 13,
            message: "refused".into(),
        })
        .expect("failed");
    assert_eq!(
        stack.recv_from(fd, 10, false),
        Err(Error::Errno(Failure::with(errno::EACCES, "refused")))
    );
    assert_eq!(
        stack.send_to(fd, "localhost", 1, &vec![0u8; 70_000]),
        Err(Error::errno(errno::EMSGSIZE))
    );
}

#[test]
fn name_resolution_is_one_round_trip() {
    let mut stack = stack();
    let request = stack.resolve("localhost").expect("resolve");
    assert_eq!(
        frames(&mut stack),
        vec![Up::Resolve {
            stream: request,
            host: "localhost".into()
        }]
    );
    assert_eq!(stack.take_resolution(request), None);
    stack
        .handle(Down::Resolved {
            stream: request,
            addrs: vec!["127.0.0.1".parse().expect("ip")],
        })
        .expect("resolved");
    assert_eq!(
        stack.take_resolution(request),
        Some(Ok(vec!["127.0.0.1".parse().expect("ip")]))
    );
}

#[test]
fn a_stopped_program_loses_its_sockets_and_others_keep_theirs() {
    let mut stack = stack();
    let server = stack.socket(1, Transport::Tcp);
    let client = stack.socket(2, Transport::Udp);
    stack.bind(server, "", 80).expect("bind");
    stack.send_to(client, "localhost", 80, b"x").expect("send");
    frames(&mut stack);
    stack.close_owner(1);
    assert_eq!(
        frames(&mut stack),
        vec![Up::Close {
            stream: StreamId(1)
        }]
    );
    assert_eq!(stack.readiness(server), Err(Error::errno(9)), "EBADF");
    assert!(stack.readiness(client).is_ok());
}

#[test]
fn a_lost_relay_fails_waiting_and_later_calls() {
    let mut stack = stack();
    let fd = stack.socket(1, Transport::Tcp);
    stack.connect(fd, "localhost", 80).expect("connect");
    stack.relay_lost("WebSocket closed");
    assert!(matches!(
        stack.take_pending(fd),
        Some(Err(Error::Errno(Failure { errno: 100, .. })))
    ));
    let other = stack.socket(1, Transport::Tcp);
    assert!(
        matches!(stack.connect(other, "localhost", 80), Err(Error::Errno(Failure { errno: 100, message })) if message.contains("relay"))
    );
}

#[test]
fn a_listener_the_relay_lost_fails_accept_with_enetdown() {
    let mut stack = stack();
    let fd = stack.socket(7, Transport::Tcp);
    stack.listen(fd, 5).expect("listen");
    let stream = match frames(&mut stack).first() {
        Some(Up::Bind { stream, .. }) => *stream,
        other => panic!("{other:?}"),
    };
    stack
        .handle(Down::Bound {
            stream,
            local: addr("0.0.0.0:7400"),
        })
        .expect("bound");
    stack
        .handle(Down::Listening {
            stream,
            public: "127.0.0.1:40001".into(),
        })
        .expect("listening");
    let _ = stack.take_pending(fd);
    assert!(matches!(stack.accept(fd), Err(Error::WouldBlock)));
    stack.relay_lost("the relay is shutting down");
    assert!(
        matches!(stack.accept(fd), Err(Error::Errno(Failure { errno: 100, message })) if message.contains("shutting down"))
    );
}

#[test]
fn a_relay_that_breaks_the_protocol_is_caught() {
    let mut stack = stack();
    let fd = connected(&mut stack);
    stack
        .handle(Down::Data {
            stream: StreamId(1),
            payload: Bytes::from(vec![0u8; WINDOW as usize]),
        })
        .expect("a window");
    assert!(stack
        .handle(Down::Data {
            stream: StreamId(1),
            payload: Bytes::from_static(b"x")
        })
        .is_err());
    assert!(
        stack
            .handle(Down::Credit {
                stream: StreamId(99),
                amount: 1
            })
            .is_err(),
        "a stream never opened"
    );
    let _ = fd;
}

#[test]
fn reset_sends_reset_where_close_would_close() {
    let mut stack = stack();
    let fd = connected(&mut stack);
    assert_eq!(stack.stream(fd), Some(StreamId(1)));
    stack.reset(fd);
    assert_eq!(
        frames(&mut stack),
        vec![Up::Reset {
            stream: StreamId(1)
        }]
    );
    assert_eq!(stack.stream(fd), None, "gone with its socket");
}

#[test]
fn a_round_trip_is_answered_by_its_pong_and_failed_by_a_lost_relay() {
    let mut stack = stack();
    let first = stack.round_trip().expect("ping");
    assert_eq!(frames(&mut stack), vec![Up::Ping { stream: first }]);
    assert_eq!(stack.take_round_trip(first), None, "waits for the relay");
    stack.handle(Down::Pong { stream: first }).expect("pong");
    assert_eq!(stack.take_round_trip(first), Some(Ok(())));
    assert_eq!(stack.take_round_trip(first), None, "answered once");

    let second = stack.round_trip().expect("ping");
    stack.relay_lost("gone");
    assert!(matches!(
        stack.take_round_trip(second),
        Some(Err(Error::Errno(Failure {
            errno: errno::ENETDOWN,
            ..
        })))
    ));
}

#[test]
fn a_reserved_stream_id_is_skipped_and_its_answers_dropped() {
    let mut stack = stack();
    let reserved = stack.reserve_stream();
    let fd = stack.socket(1, Transport::Udp);
    stack.bind(fd, "", 0).expect("bind");
    assert_eq!(stack.stream(fd), Some(StreamId(reserved.0 + 1)));
    let bound = Down::Bound {
        stream: reserved,
        local: addr("127.0.0.1:5000"),
    };
    assert_eq!(stack.handle(bound), Ok(()), "not a violation");
    assert_eq!(stack.take_pending(fd), None, "not taken for another socket");
}

/// A UDP socket (stream 1) bound to port 32768, with nothing sent yet.
fn udp_bound(stack: &mut Stack) -> Fd {
    let fd = stack.socket(1, Transport::Udp);
    stack.bind(fd, "", 0).expect("bind starts");
    frames(stack);
    stack
        .handle(Down::Bound {
            stream: StreamId(1),
            local: addr("0.0.0.0:32768"),
        })
        .expect("bound");
    assert_eq!(stack.take_pending(fd), Some(Ok(())));
    fd
}

fn datagram(stack: &mut Stack, from: &str, payload: &'static [u8]) {
    stack
        .handle(Down::Datagram {
            stream: StreamId(1),
            from: addr(from),
            payload: Bytes::from_static(payload),
        })
        .expect("datagram");
}

/// Every datagram `fd` holds now, as "sender payload".
fn drain(stack: &mut Stack, fd: Fd) -> Vec<String> {
    let mut got = Vec::new();
    while let Ok((payload, from)) = stack.recv_from(fd, 100, false) {
        let from = from.expect("a sender");
        got.push(format!("{from} {}", String::from_utf8_lossy(&payload)));
    }
    got
}

#[test]
fn a_connected_udp_socket_receives_only_from_its_peer() {
    let mut stack = stack();
    let fd = udp_bound(&mut stack);
    // What came before connect() stays, as on Linux.
    datagram(&mut stack, "203.0.113.9:5000", b"before");

    // connect() answers at once (a non-blocking one too) and asks the relay where the peer is.
    stack.connect(fd, "lab", 7).expect("connect");
    assert_eq!(stack.take_pending(fd), Some(Ok(())));
    let sent = frames(&mut stack);
    let [Up::Resolve {
        stream: lookup,
        host,
    }] = sent.as_slice()
    else {
        panic!("connect sent {sent:?}");
    };
    assert_eq!(host, "lab");

    // Until the answer, what arrives waits unseen: whether it is the peer's is not known yet.
    datagram(&mut stack, "203.0.113.9:5000", b"stranger early");
    datagram(&mut stack, "192.0.2.1:7", b"peer early");
    assert_eq!(drain(&mut stack, fd), ["203.0.113.9:5000 before"]);
    assert!(!stack.readiness(fd).expect("open").readable);

    stack
        .handle(Down::Resolved {
            stream: *lookup,
            addrs: vec!["192.0.2.1".parse().unwrap()],
        })
        .expect("resolved");
    datagram(&mut stack, "203.0.113.9:5000", b"stranger");
    datagram(&mut stack, "192.0.2.1:8", b"other port");
    datagram(&mut stack, "192.0.2.1:7", b"peer");
    assert_eq!(
        drain(&mut stack, fd),
        ["192.0.2.1:7 peer early", "192.0.2.1:7 peer"]
    );
}

#[test]
fn a_udp_socket_connected_to_its_own_host_hears_it_as_127_0_0_1() {
    // The relay names every datagram from the session's own host 127.0.0.1, whichever form the program
    // connected to.
    for host in ["::1", "0.0.0.0", "127.0.0.1"] {
        let mut stack = stack();
        let fd = udp_bound(&mut stack);
        stack.connect(fd, host, 9000).expect("connect");
        let sent = frames(&mut stack);
        let [Up::Resolve { stream: lookup, .. }] = sent.as_slice() else {
            panic!("connect sent {sent:?}");
        };
        let resolved = if host == "0.0.0.0" { "127.0.0.1" } else { host };
        stack
            .handle(Down::Resolved {
                stream: *lookup,
                addrs: vec![resolved.parse().unwrap()],
            })
            .expect("resolved");
        datagram(&mut stack, "127.0.0.1:9000", b"own");
        datagram(&mut stack, "127.0.0.1:9001", b"other");
        assert_eq!(drain(&mut stack, fd), ["127.0.0.1:9000 own"], "{host}");
    }
}

#[test]
fn a_udp_connect_whose_lookup_fails_keeps_every_datagram() {
    // connect() has answered already: a lookup the relay could not make (too many at once) leaves the
    // socket as it was rather than deaf.
    let mut stack = stack();
    let fd = udp_bound(&mut stack);
    stack.connect(fd, "example.com", 53).expect("connect");
    let sent = frames(&mut stack);
    let [Up::Resolve { stream: lookup, .. }] = sent.as_slice() else {
        panic!("connect sent {sent:?}");
    };
    datagram(&mut stack, "203.0.113.9:53", b"held");
    stack
        .handle(Down::Failed {
            stream: *lookup,
            errno: errno::EAI_AGAIN,
            message: "busy".into(),
        })
        .expect("failed");
    datagram(&mut stack, "198.51.100.1:53", b"after");
    assert_eq!(
        drain(&mut stack, fd),
        ["203.0.113.9:53 held", "198.51.100.1:53 after"]
    );
    assert_eq!(stack.recv_from(fd, 10, false), Err(Error::WouldBlock));
}
