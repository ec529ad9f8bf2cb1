//! The network view's events and socket table, as the executor records them while calls are answered and
//! relay frames arrive.

use bytes::Bytes;
use serde_json::json;
use soket_netstack::trace::{preview, What, PENDING};
use soket_netstack::{Call, Down, Executor, Kind, Reply, StreamId, Ticket};

fn executor() -> Executor {
    let mut exec = Executor::new();
    let welcome = Down::Welcome {
        hostname: "learner-1".into(),
        public_host: "127.0.0.1".into(),
        window: 65536,
    };
    exec.handle(welcome, 0.0).expect("welcome");
    exec
}

fn ticket(program: u32, call: u64) -> Ticket {
    Ticket { program, call }
}

/// A TCP socket of `program` connected to `port` (its stream is `stream`), through calls and frames.
fn connected(exec: &mut Executor, program: u32, stream: u32, port: u16) -> u32 {
    let socket = Call::Socket { kind: Kind::Tcp };
    let Some(Reply::Fd(fd)) = exec.submit(ticket(program, 1), socket, 1.0) else {
        panic!("socket")
    };
    let connect = Call::Connect {
        fd,
        host: "localhost".into(),
        port,
        timeout: None,
    };
    assert_eq!(exec.submit(ticket(program, 2), connect, 2.0), None);
    let _ = exec.stack.take_frames().count();
    let connected = Down::Connected {
        stream: StreamId(stream),
        local: format!("127.0.0.1:{}", 50000 + stream).parse().unwrap(),
        peer: format!("127.0.0.1:{port}").parse().unwrap(),
    };
    exec.handle(connected, 3.0).expect("connected");
    assert_eq!(exec.poll(3.0), vec![(ticket(program, 2), Reply::Done)]);
    fd
}

fn send(fd: u32, data: &'static [u8]) -> Call {
    Call::Send {
        fd,
        data: Bytes::from_static(data),
        timeout: None,
    }
}

fn recv(fd: u32) -> Call {
    Call::Recv {
        fd,
        max: 1024,
        peek: false,
        timeout: None,
    }
}

#[test]
fn a_connection_shows_as_socket_connect_connected_sends_recvs_and_the_peers_close() {
    let mut exec = executor();
    let fd = connected(&mut exec, 7, 1, 12345);
    for n in 0..3 {
        assert_eq!(
            exec.submit(ticket(7, 10 + n), send(fd, b"hello"), 4.0),
            Some(Reply::Count(5))
        );
    }
    let data = Down::Data {
        stream: StreamId(1),
        payload: Bytes::from_static(b"Thank you for connecting"),
    };
    exec.handle(data, 5.0).expect("data");
    assert_eq!(
        exec.submit(ticket(7, 20), recv(fd), 6.0),
        Some(Reply::Data(Bytes::from_static(b"Thank you for connecting")))
    );
    exec.handle(
        Down::Shutdown {
            stream: StreamId(1),
        },
        7.0,
    )
    .expect("fin");
    assert_eq!(
        exec.submit(ticket(7, 21), recv(fd), 8.0),
        Some(Reply::Data(Bytes::new()))
    );

    let rows = serde_json::to_value(exec.trace.sockets(&exec.stack)).unwrap();
    assert_eq!(
        rows,
        json!([{
            "id": 7, "fd": fd, "transport": "tcp", "state": "CLOSE-WAIT",
            "local": "127.0.0.1:50001", "peer": "127.0.0.1:12345", "public": null,
            "sent": 15, "received": 24,
        }])
    );

    let (events, dropped) = exec.trace.take();
    assert_eq!(dropped, 0);
    let events = serde_json::to_value(&events).unwrap();
    let strip = |mut e: serde_json::Value| {
        e.as_object_mut().unwrap().remove("t");
        e
    };
    let events: Vec<_> = events
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .map(strip)
        .collect();
    assert_eq!(
        events,
        vec![
            json!({"seq": 1, "id": 7, "fd": fd, "type": "socket", "transport": "tcp"}),
            json!({"seq": 2, "id": 7, "fd": fd, "type": "connect", "peer": "localhost:12345"}),
            json!({"seq": 3, "id": 7, "fd": fd, "type": "connected",
                   "local": "127.0.0.1:50001", "peer": "127.0.0.1:12345"}),
            json!({"seq": 4, "id": 7, "fd": fd, "type": "send",
                   "bytes": 15, "count": 3, "preview": "b'hello'", "peer": null}),
            json!({"seq": 5, "id": 7, "fd": fd, "type": "recv", "bytes": 24, "count": 1,
                   "preview": "b'Thank you for connecting'", "peer": null}),
            json!({"seq": 6, "id": 7, "fd": fd, "type": "peer-closed", "errno": 0, "name": null}),
            json!({"seq": 7, "id": 7, "fd": fd, "type": "recv", "bytes": 0, "count": 1,
                   "preview": "b''", "peer": null}),
        ],
        "three sends in a row are one event; end of file is its own"
    );
    assert!(exec.trace.take().0.is_empty(), "taken once");
}

#[test]
fn a_refused_connect_is_an_error_with_its_name_and_would_block_is_not() {
    let mut exec = executor();
    let Some(Reply::Fd(fd)) = exec.submit(ticket(1, 1), Call::Socket { kind: Kind::Tcp }, 0.0)
    else {
        panic!("socket")
    };
    let connect = Call::Connect {
        fd,
        host: "127.0.0.1".into(),
        port: 9,
        timeout: None,
    };
    assert_eq!(exec.submit(ticket(1, 2), connect, 1.0), None);
    let refused = Down::Failed {
        stream: StreamId(1),
        errno: 111,
        message: "Connection refused".into(),
    };
    exec.handle(refused, 2.0).expect("failed");
    assert!(matches!(
        exec.poll(2.0)[..],
        [(_, Reply::Error { errno: 111, .. })]
    ));
    let nonblocking = Call::Recv {
        fd,
        max: 10,
        peek: false,
        timeout: Some(0.0),
    };
    let _ = exec.submit(ticket(1, 3), nonblocking, 3.0);
    let (events, _) = exec.trace.take();
    let whats: Vec<&What> = events.iter().map(|e| &e.what).collect();
    assert!(
        matches!(
            whats[..],
            [
                What::Socket { .. },
                What::Connect { .. },
                What::Error {
                    call: "connect",
                    errno: 111,
                    name: Some("ECONNREFUSED"),
                    ..
                },
                What::Error { call: "recv", .. },
            ]
        ),
        "{whats:?}"
    );
}

#[test]
fn what_waits_for_the_page_is_bounded_however_many_calls_are_made() {
    let mut exec = executor();
    let a = connected(&mut exec, 1, 1, 80);
    let b = connected(&mut exec, 1, 2, 81);
    let _ = exec.trace.take();
    // Sends on one socket merge into one event however many there are.
    for n in 0..100_000 {
        assert!(exec.submit(ticket(1, n), send(a, b"x"), 10.0).is_some());
        if n % 1000 == 999 {
            // The relay wrote them: credit back, which is no event.
            let credit = Down::Credit {
                stream: StreamId(1),
                amount: 1000,
            };
            exec.handle(credit, 10.0).expect("credit");
        }
    }
    let (events, dropped) = exec.trace.take();
    assert_eq!((events.len(), dropped), (1, 0));
    assert!(matches!(
        events[0].what,
        What::Send {
            bytes: 100_000,
            count: 100_000,
            ..
        }
    ));
    // Sends that alternate between two sockets cannot merge: the oldest are dropped, and counted.
    for n in 0..3 * PENDING as u64 {
        let fd = if n % 2 == 0 { a } else { b };
        assert!(exec.submit(ticket(1, n), send(fd, b"y"), 20.0).is_some());
    }
    let (events, dropped) = exec.trace.take();
    assert_eq!((events.len(), dropped), (PENDING, 2 * PENDING as u64));
    assert!(events.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
}

#[test]
fn a_preview_is_pythons_repr_of_the_first_bytes() {
    assert_eq!(preview(b"GET / HTTP/1.0\r\n"), "b'GET / HTTP/1.0\\r\\n'");
    assert_eq!(preview(b"it's"), "b\"it's\"");
    assert_eq!(preview(&[0, 255, b'a']), "b'\\x00\\xffa'");
    assert_eq!(preview(&[b'z'; 40]), format!("b'{}'…", "z".repeat(32)));
}
