//! What a page that breaks the protocol or its quotas gets, and what nobody else notices.
//!
//! Each protocol fault is sent by a fresh session, which must end with a `Goodbye` of code
//! `ProtocolError` whose message names the fault, while a session opened before it goes on working (a
//! ping and a TCP echo), the relay counts the fault in `soket_protocol_errors_total` and its session gauge
//! comes back down. Quota faults are not protocol errors: the operation fails with the errno CPython
//! would raise, and the session goes on.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use soket_client::{Client, Error, Failure, Goodbye};
use soket_protocol::{errno, Down, GoodbyeCode, StreamId, Up, MAX_FRAME, MAX_PAYLOAD};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// A relay with an echo server it may reach, and a witness session opened before any bad one.
struct Bench {
    relay: TestRelay,
    echo: SocketAddr,
    witness: Client,
}

impl Bench {
    /// A relay started with `flags` on top of the rule that allows the echo server.
    async fn new(flags: &[&str]) -> Bench {
        let echo = echo_server("127.0.0.2").await;
        let allow = format!("127.0.0.2:{}", echo.port());
        let mut all = vec!["--allow", allow.as_str()];
        all.extend_from_slice(flags);
        let relay = start(&all).await;
        let witness = session(&relay).await;
        Bench {
            relay,
            echo,
            witness,
        }
    }

    async fn session(&self) -> Client {
        session(&self.relay).await
    }

    async fn connect_echo(&self, client: &Client) -> soket_client::TcpConn {
        client
            .connect_tcp("127.0.0.2", self.echo.port())
            .await
            .expect("connect to the echo server")
    }

    /// A ping, and a few bytes through the echo server and back.
    async fn still_works(&self, client: &Client) {
        client.ping().await.expect("ping");
        let mut conn = self.connect_echo(client).await;
        conn.write_all(b"still here").await.expect("write");
        assert_eq!(conn.read_exact(10).await.expect("echo"), b"still here");
        conn.close().await.expect("close");
    }

    /// `bad` must have been ended for a protocol error whose message contains `fault`; nothing else may
    /// have noticed. Consumes the bench and shuts the relay down.
    async fn ends_for(self, bad: &Client, fault: &str) {
        let goodbye = tokio::time::timeout(Duration::from_secs(5), bad.ended())
            .await
            .expect("the bad session ends within 5 s");
        self.saw_goodbye(goodbye, fault).await;
    }

    /// The checks of [`Bench::ends_for`] on a goodbye obtained by other means.
    async fn saw_goodbye(self, goodbye: Option<Goodbye>, fault: &str) {
        match &goodbye {
            Some(Goodbye {
                code: GoodbyeCode::ProtocolError,
                message,
            }) => assert!(
                message.contains(fault),
                "the goodbye should name {fault:?}: {message:?}"
            ),
            other => panic!("expected a ProtocolError goodbye naming {fault:?}, got {other:?}"),
        }
        self.still_works(&self.witness).await;
        let addr = self.relay.addr;
        assert_eq!(metric(addr, "soket_protocol_errors_total").await, 1);
        assert_eq!(
            wait_for_metric(addr, "soket_sessions_active", 1).await,
            1,
            "only the witness is left"
        );
        self.relay.shutdown().await.expect("shutdown");
    }
}

#[tokio::test]
async fn garbage_bytes() {
    let bench = Bench::new(&[]).await;
    let bad = bench.session().await;
    let mut garbage = pattern(1000, 7);
    garbage[0] = 0xd7; // no message has this tag, whatever the pattern starts with
    bad.raw(Bytes::from(garbage)).await.expect("send");
    bench.ends_for(&bad, "malformed frame").await;
}

#[tokio::test]
async fn an_empty_frame() {
    let bench = Bench::new(&[]).await;
    let bad = bench.session().await;
    bad.raw(Bytes::new()).await.expect("send");
    bench.ends_for(&bad, "malformed frame: empty frame").await;
}

#[tokio::test]
async fn a_truncated_connect() {
    let bench = Bench::new(&[]).await;
    let bad = bench.session().await;
    let connect = Up::Connect {
        stream: StreamId(1),
        host: "127.0.0.2".into(),
        port: bench.echo.port(),
    }
    .encode();
    bad.raw(connect.slice(..connect.len() - 2))
        .await
        .expect("send");
    bench
        .ends_for(&bad, "malformed frame: frame ends before its field `port`")
        .await;
}

#[tokio::test]
async fn an_unknown_tag() {
    let bench = Bench::new(&[]).await;
    let bad = bench.session().await;
    bad.raw(Bytes::from_static(&[0x7f, 0, 0, 0, 1]))
        .await
        .expect("send");
    bench.ends_for(&bad, "unknown message tag 0x7f").await;
}

#[tokio::test]
async fn a_down_frame_sent_up() {
    let bench = Bench::new(&[]).await;
    let bad = bench.session().await;
    bad.raw(
        Down::Pong {
            stream: StreamId(1),
        }
        .encode(),
    )
    .await
    .expect("send");
    bench.ends_for(&bad, "unknown message tag 0x8d").await;
}

#[tokio::test]
async fn a_text_message() {
    let bench = Bench::new(&[]).await;
    let mut ws = raw_websocket(&bench.relay, Some(soket_protocol::SUBPROTOCOL), None)
        .await
        .expect("websocket");
    match ws.next().await {
        Some(Ok(Message::Binary(frame))) => assert!(
            matches!(Down::decode(&frame), Ok(Down::Welcome { .. })),
            "{frame:?}"
        ),
        other => panic!("expected Welcome, got {other:?}"),
    }
    ws.send(Message::text("{\"connect\": \"127.0.0.2\"}"))
        .await
        .expect("send text");
    let mut goodbye = None;
    let mut close = None;
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(message)) = ws.next().await {
            match message {
                Message::Binary(frame) => match Down::decode(&frame) {
                    Ok(Down::Goodbye { code, message }) => {
                        goodbye = Some(Goodbye { code, message })
                    }
                    other => panic!("expected Goodbye, got {other:?}"),
                },
                Message::Close(frame) => close = frame,
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the relay closes the WebSocket within 5 s");
    let close = close.expect("a close frame with a reason");
    assert_eq!(close.code, CloseCode::Protocol);
    assert!(close.reason.contains("text frames"), "{close:?}");
    bench
        .saw_goodbye(goodbye, "text frames are not part of soket.v1")
        .await;
}

#[tokio::test]
async fn a_frame_over_the_size_limit() {
    let bench = Bench::new(&[]).await;
    let bad = bench.session().await;
    let mut frame = Up::Data {
        stream: StreamId(1),
        payload: Bytes::new(),
    }
    .encode()
    .to_vec();
    frame.resize(MAX_FRAME + 1, b'x');
    bad.raw(Bytes::from(frame)).await.expect("send");
    bench
        .ends_for(&bad, &format!("larger than the limit of {MAX_FRAME} bytes"))
        .await;
}

#[tokio::test]
async fn data_for_a_stream_never_opened() {
    let bench = Bench::new(&[]).await;
    let bad = bench.session().await;
    bad.raw(
        Up::Data {
            stream: StreamId(7),
            payload: Bytes::from_static(b"hello"),
        }
        .encode(),
    )
    .await
    .expect("send");
    bench.ends_for(&bad, "stream #7 is not open").await;
}

#[tokio::test]
async fn a_stream_id_used_twice() {
    let bench = Bench::new(&[]).await;
    let bad = bench.session().await;
    let conn = bench.connect_echo(&bad).await;
    let again = Up::Connect {
        stream: conn.stream,
        host: "127.0.0.2".into(),
        port: bench.echo.port(),
    };
    bad.raw(again.encode()).await.expect("send");
    bench
        .ends_for(
            &bad,
            &format!("stream {} is not a fresh page id", conn.stream),
        )
        .await;
}

#[tokio::test]
async fn a_page_id_with_the_relay_bit() {
    let bench = Bench::new(&[]).await;
    let bad = bench.session().await;
    let connect = Up::Connect {
        stream: StreamId::relay(1),
        host: "127.0.0.2".into(),
        port: bench.echo.port(),
    };
    bad.raw(connect.encode()).await.expect("send");
    bench
        .ends_for(&bad, "stream #2147483649 is not a fresh page id")
        .await;
}

#[tokio::test]
async fn credit_beyond_the_window() {
    let bench = Bench::new(&[]).await;
    let bad = bench.session().await;
    let conn = bench.connect_echo(&bad).await;
    // The relay has sent nothing, so the page has a whole window of credit outstanding already.
    let credit = Up::Credit {
        stream: conn.stream,
        amount: bad.welcome().window,
    };
    bad.raw(credit.encode()).await.expect("send");
    bench
        .ends_for(
            &bad,
            &format!("stream {} granted credit beyond its window", conn.stream),
        )
        .await;
}

#[tokio::test]
async fn credit_for_bytes_never_sent() {
    // Even one byte more than the page was sent is a grant it cannot make: the check is exact, whatever
    // the relay has set aside for a read under way.
    let bench = Bench::new(&[]).await;
    let bad = bench.session().await;
    let conn = bench.connect_echo(&bad).await;
    let credit = Up::Credit {
        stream: conn.stream,
        amount: 1,
    };
    bad.raw(credit.encode()).await.expect("send");
    bench
        .ends_for(
            &bad,
            &format!("stream {} granted credit beyond its window", conn.stream),
        )
        .await;
}

#[tokio::test]
async fn data_beyond_the_window() {
    // At 1000 bytes a second the relay's writer sits on the first 64 KiB for a minute, so no credit
    // comes back while the page goes on sending.
    let bench = Bench::new(&["--session-rate", "1000"]).await;
    let bad = bench.session().await;
    let conn = bench.connect_echo(&bad).await;
    let window = bad.welcome().window as usize;
    let block = Bytes::from(vec![b'w'; MAX_PAYLOAD]);
    for _ in 0..window / MAX_PAYLOAD + 1 {
        let data = Up::Data {
            stream: conn.stream,
            payload: block.clone(),
        };
        bad.raw(data.encode()).await.expect("send");
    }
    bench
        .ends_for(
            &bad,
            &format!(
                "stream {} sent {MAX_PAYLOAD} bytes with {} bytes of credit (window violation)",
                conn.stream,
                window % MAX_PAYLOAD
            ),
        )
        .await;
}

#[tokio::test]
async fn data_after_shutdown() {
    let bench = Bench::new(&[]).await;
    let bad = bench.session().await;
    let mut conn = bench.connect_echo(&bad).await;
    conn.shutdown().await.expect("shutdown");
    // The page's stack refuses the write itself, as Linux does; the bad frame has to be sent raw.
    let (errno, message) = errno_of("a write after shutdown", conn.write_all(b"x").await);
    assert_eq!(errno, errno::EPIPE, "{message}");
    let data = Up::Data {
        stream: conn.stream,
        payload: Bytes::from_static(b"one more thing"),
    };
    bad.raw(data.encode()).await.expect("send");
    bench
        .ends_for(
            &bad,
            &format!("Data for stream {} after its Shutdown", conn.stream),
        )
        .await;
}

/// The errno of a failed call, or a panic naming what happened instead.
fn errno_of<T>(what: &str, result: Result<T, Error>) -> (i32, String) {
    match result {
        Err(Error::Errno(Failure { errno, message })) => (errno, message),
        Err(other) => panic!("{what}: expected an errno, got {other:?}"),
        Ok(_) => panic!("{what}: expected an errno, it succeeded"),
    }
}

#[tokio::test]
async fn the_stream_quota_gives_emfile() {
    let bench = Bench::new(&["--max-streams", "3"]).await;
    let client = bench.session().await;
    let mut first = bench.connect_echo(&client).await;
    let second = bench.connect_echo(&client).await;
    let udp = client.bind_udp("", 0).await.expect("third socket");

    let (errno, message) = errno_of(
        "a fourth connection",
        client.connect_tcp("127.0.0.2", bench.echo.port()).await,
    );
    assert_eq!(errno, errno::EMFILE, "{message}");
    assert!(message.contains("at most 3 sockets"), "{message}");
    let (errno, message) = errno_of("a fourth listener", client.listen("", 0, 5).await);
    assert_eq!(errno, errno::EMFILE, "{message}");

    // The session goes on: the sockets it has work, and closing sockets makes room again. A failed
    // socket holds its id until the page closes it, as a file descriptor would; the client closes it.
    client.ping().await.expect("ping");
    first.write_all(b"first").await.expect("write");
    assert_eq!(first.read_exact(5).await.expect("echo"), b"first");
    second.close().await.expect("close");
    bench.still_works(&client).await;
    drop((first, udp));
    bench.relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn the_port_quota_gives_emfile() {
    let bench = Bench::new(&["--max-listeners", "2"]).await;
    let client = bench.session().await;
    let _tcp = client.listen("", 0, 5).await.expect("first port");
    let _udp = client.bind_udp("", 0).await.expect("second port");
    let (errno, message) = errno_of("a third port", client.listen("", 0, 5).await);
    assert_eq!(errno, errno::EMFILE, "{message}");
    assert!(message.contains("at most 2 ports"), "{message}");
    let (errno, _) = errno_of("a third UDP port", client.bind_udp("", 0).await);
    assert_eq!(errno, errno::EMFILE);
    bench.still_works(&client).await;
    bench.relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn binds_fail_as_on_linux() {
    let bench = Bench::new(&[]).await;
    let client = bench.session().await;
    let _held = client.listen("", 12345, 5).await.expect("first bind");
    let (errno, message) = errno_of(
        "the same TCP port again",
        client.listen("127.0.0.1", 12345, 5).await,
    );
    assert_eq!(errno, errno::EADDRINUSE, "{message}");
    assert_eq!(message, "Address already in use");
    // UDP has a port space of its own.
    let _udp = client.bind_udp("", 12345).await.expect("UDP 12345");

    for (what, result) in [
        (
            "TCP on 10.9.9.9",
            client.listen("10.9.9.9", 0, 5).await.map(drop),
        ),
        (
            "UDP on 10.9.9.9",
            client.bind_udp("10.9.9.9", 0).await.map(drop),
        ),
        (
            "TCP on 127.0.0.2",
            client.listen("127.0.0.2", 0, 5).await.map(drop),
        ),
    ] {
        let (errno, message) = errno_of(what, result);
        assert_eq!(errno, errno::EADDRNOTAVAIL, "{what}: {message}");
        assert_eq!(message, "Cannot assign requested address", "{what}");
    }
    bench.still_works(&client).await;
    bench.relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn the_session_limit_refuses_at_the_handshake() {
    let relay = start(&["--max-sessions", "1"]).await;
    let mut first = raw_websocket(&relay, Some(soket_protocol::SUBPROTOCOL), None)
        .await
        .expect("the first session");
    match Client::connect(&relay.url()).await {
        Err(Error::Handshake(message)) => assert!(message.contains("503"), "{message}"),
        Err(other) => panic!("expected a handshake error, got {other:?}"),
        Ok(_) => panic!("a second session was admitted"),
    }
    assert_eq!(metric(relay.addr, "soket_sessions_rejected_total").await, 1);

    first.close(None).await.expect("close the first session");
    // The permit is freed a moment after the relay sees the close: try for a while.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let again = loop {
        match Client::connect(&relay.url()).await {
            Ok(client) => break client,
            Err(e) if tokio::time::Instant::now() < deadline => {
                assert!(e.to_string().contains("503"), "{e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("not admitted 5 s after the first session closed: {e}"),
        }
    };
    again.ping().await.expect("ping");
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_name_with_control_characters_is_refused_in_one_printable_line() {
    // A learner's name cannot start a new line in the relay's log or write escapes to the page's console.
    let relay = start(&[]).await;
    let client = session(&relay).await;
    let evil = "evil\nname\r\x1b[2J\x00\u{202e}";
    let printable = |message: &str| !message.chars().any(|c| c.is_control() || c == '\u{202e}');

    let (errno, message) = errno_of("a connect", client.connect_tcp(evil, 80).await);
    assert_eq!(errno, errno::EACCES, "{message:?}");
    assert!(printable(&message), "{message:?}");
    assert!(message.contains(r"evil\nname\r\u{1b}[2j"), "{message:?}");

    let (errno, message) = errno_of("a lookup", client.resolve(evil).await);
    assert_eq!(errno, errno::EAI_NONAME, "{message:?}");
    assert!(printable(&message), "{message:?}");
    assert!(message.contains(r"evil\nname"), "{message:?}");

    client.ping().await.expect("the session goes on");
    relay.shutdown().await.expect("shutdown");
}
