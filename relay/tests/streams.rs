//! TCP and UDP through a real relay, with the native client as the page: data both ways, listeners inside a
//! session and from outside, half-close, resets, refused ports.

mod common;

use std::time::Duration;

use common::*;
use soket_client::{Error, Failure};
use soket_protocol::errno;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn one_mib_each_way_through_an_echo_server() {
    let echo = echo_server("127.0.0.2").await;
    let relay = start(&[
        "--allow",
        &format!("127.0.0.2:{}", echo.port()),
        "--session-rate",
        "0",
    ])
    .await;
    let client = session(&relay).await;
    let mut conn = client
        .connect_tcp("127.0.0.2", echo.port())
        .await
        .expect("connect");
    assert_eq!(conn.peer, echo);

    let sent = pattern(MIB, 1);
    let mut received = Vec::with_capacity(MIB);
    // In steps of 64 KiB so that neither side's window fills while the other waits.
    for chunk in sent.chunks(64 * 1024) {
        conn.write_all(chunk).await.expect("write");
        received.extend(conn.read_exact(chunk.len()).await.expect("read echo"));
    }
    assert_eq!(checksum(&received), checksum(&sent));
    assert_eq!(received, sent);
    conn.close().await.expect("close");
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_session_listens_and_is_reached_from_itself_and_from_outside() {
    let relay = start(&[]).await;
    let client = session(&relay).await;
    let mut listener = client.listen("", 12345, 5).await.expect("listen");
    assert_eq!(listener.local.port(), 12345);

    // From the same session, by its own names: the server sees the client's address.
    for host in ["localhost", client.welcome().hostname.as_str(), "127.0.0.1"] {
        let mut conn = client
            .connect_tcp(host, 12345)
            .await
            .expect("connect to own server");
        let mut served = listener.accept().await.expect("accept");
        assert_eq!(served.peer, conn.local, "server sees the client's address");
        assert_eq!(conn.peer.port(), 12345, "client sees the virtual port");
        served
            .write_all(b"Thank you for connecting")
            .await
            .expect("server writes");
        served.close().await.expect("server closes");
        assert_eq!(
            conn.read_to_end().await.expect("client reads"),
            b"Thank you for connecting"
        );
        conn.close().await.expect("client closes");
    }

    // From outside, at the public address, with a plain socket.
    let mut outside = TcpStream::connect(&listener.public)
        .await
        .expect("connect from outside");
    let mut served = listener.accept().await.expect("accept outside");
    assert_eq!(served.peer, outside.local_addr().expect("local"));
    outside.write_all(b"ping").await.expect("outside writes");
    assert_eq!(served.read_exact(4).await.expect("served reads"), b"ping");
    served.write_all(b"pong").await.expect("served writes");
    let mut reply = [0u8; 4];
    outside.read_exact(&mut reply).await.expect("outside reads");
    assert_eq!(&reply, b"pong");

    // Another session has a port space of its own: 12345 is free there.
    let other = session(&relay).await;
    let theirs = other
        .listen("", 12345, 5)
        .await
        .expect("the other session binds 12345 too");
    assert_ne!(theirs.public, listener.public);

    // Closing the listener frees the real port at once.
    let public = listener.public.clone();
    listener.close().await.expect("close listener");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        TcpStream::connect(&public).await.is_err(),
        "the real port is closed"
    );
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn half_close_goes_both_ways() {
    // Reads to end of stream, then answers with how many bytes came, then closes.
    let server = TcpListener::bind("127.0.0.2:0").await.expect("bind");
    let addr = server.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut socket, _) = server.accept().await.expect("accept");
        let mut all = Vec::new();
        socket.read_to_end(&mut all).await.expect("read to end");
        socket
            .write_all(format!("got {}", all.len()).as_bytes())
            .await
            .expect("answer");
    });
    let relay = start(&["--allow", &format!("127.0.0.2:{}", addr.port())]).await;
    let client = session(&relay).await;
    let mut conn = client
        .connect_tcp("127.0.0.2", addr.port())
        .await
        .expect("connect");
    conn.write_all(&pattern(100_000, 2)).await.expect("write");
    conn.shutdown().await.expect("shutdown");
    assert_eq!(
        conn.read_to_end().await.expect("read answer"),
        b"got 100000"
    );
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn writes_of_every_size_arrive_whole_and_in_order_before_the_fin() {
    // The relay copies small payloads together and queues large ones as they came: a mix of both, empty
    // frames and a second Shutdown must still arrive as one stream of bytes, in order, then one FIN.
    let server = TcpListener::bind("127.0.0.2:0").await.expect("bind");
    let addr = server.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut socket, _) = server.accept().await.expect("accept");
        let mut all = Vec::new();
        socket.read_to_end(&mut all).await.expect("read to end");
        let answer = format!("{} {}", all.len(), checksum(&all));
        socket.write_all(answer.as_bytes()).await.expect("answer");
    });
    let relay = start(&[
        "--allow",
        &format!("127.0.0.2:{}", addr.port()),
        "--session-rate",
        "0",
    ])
    .await;
    let client = session(&relay).await;
    let mut conn = client
        .connect_tcp("127.0.0.2", addr.port())
        .await
        .expect("connect");
    let sizes = [
        1, 7, 4095, 4096, 100, 65_536, 3, 70_000, 2, 4097, 1, 1, 1, 30_000,
    ];
    let empty = soket_protocol::Up::Data {
        stream: conn.stream,
        payload: bytes::Bytes::new(),
    };
    let mut sent = Vec::new();
    for round in 0..40 {
        for (i, size) in sizes.iter().enumerate() {
            let chunk = pattern(*size, (round * sizes.len() + i) as u64);
            conn.write_all(&chunk).await.expect("write");
            sent.extend(chunk);
        }
        client.raw(empty.encode()).await.expect("an empty Data");
    }
    conn.shutdown().await.expect("shutdown");
    conn.shutdown().await.expect("shutdown again");
    let answer = conn.read_to_end().await.expect("read answer");
    assert_eq!(
        String::from_utf8_lossy(&answer),
        format!("{} {}", sent.len(), checksum(&sent))
    );
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn resets_are_seen_as_resets_both_ways() {
    let server = TcpListener::bind("127.0.0.2:0").await.expect("bind");
    let addr = server.local_addr().expect("addr");
    let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        // First connection: reset by the server once the client has spoken (a reset before the relay's
        // connect completes would fail the connect itself, which is right but not what is tested here).
        let (mut socket, _) = server.accept().await.expect("accept 1");
        let mut hello = [0u8; 5];
        socket.read_exact(&mut hello).await.expect("hello");
        socket.set_zero_linger().expect("linger");
        drop(socket);
        // Second connection: reset by the page; the server sees ECONNRESET.
        let (mut socket, _) = server.accept().await.expect("accept 2");
        let mut buf = [0u8; 16];
        let result = socket.read(&mut buf).await;
        let _ = seen_tx.send(result.map_err(|e| e.kind()));
    });
    let relay = start(&["--allow", &format!("127.0.0.2:{}", addr.port())]).await;
    let client = session(&relay).await;

    let mut conn = client
        .connect_tcp("127.0.0.2", addr.port())
        .await
        .expect("connect 1");
    conn.write_all(b"hello").await.expect("hello");
    match conn.read().await {
        Err(Error::Errno(Failure { errno, .. })) => assert_eq!(errno, errno::ECONNRESET),
        other => panic!("expected ECONNRESET, got {other:?}"),
    }
    conn.close().await.expect("close");

    let conn = client
        .connect_tcp("127.0.0.2", addr.port())
        .await
        .expect("connect 2");
    conn.reset().await.expect("reset");
    let seen = tokio::time::timeout(Duration::from_secs(5), seen_rx)
        .await
        .expect("server saw something")
        .expect("sent");
    assert_eq!(seen, Err(std::io::ErrorKind::ConnectionReset));
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_closed_port_refuses_the_connection() {
    // A port nobody listens on, allowed by the policy: the real stack refuses it.
    let closed = {
        let probe = std::net::TcpListener::bind("127.0.0.2:0").expect("probe");
        probe.local_addr().expect("addr")
    };
    let relay = start(&["--allow", &format!("127.0.0.2:{}", closed.port())]).await;
    let client = session(&relay).await;
    for (host, port) in [
        ("127.0.0.2", closed.port()),
        ("127.0.0.1", 9),
        ("localhost", 12345),
    ] {
        match client.connect_tcp(host, port).await {
            Err(Error::Errno(Failure { errno, message })) => {
                assert_eq!(errno, errno::ECONNREFUSED, "{host}:{port}");
                assert_eq!(message, "Connection refused");
            }
            other => panic!(
                "{host}:{port}: expected ECONNREFUSED, got {:?}",
                other.map(|c| c.peer)
            ),
        }
    }
    // The session goes on working after refusals.
    client.ping().await.expect("ping");
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn udp_echo_keeps_datagram_boundaries() {
    let echo = UdpSocket::bind("127.0.0.2:0").await.expect("bind udp echo");
    let echo_addr = echo.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = echo.recv_from(&mut buf).await {
            let _ = echo.send_to(&buf[..n], from).await;
        }
    });
    let relay = start(&["--allow", &format!("127.0.0.2:{}", echo_addr.port())]).await;
    let client = session(&relay).await;
    let mut socket = client.bind_udp("", 0).await.expect("bind");
    let sizes = [1usize, 1000, 60_000, 0, 7];
    for (i, size) in sizes.iter().enumerate() {
        let data = pattern(*size, i as u64);
        socket
            .send_to("127.0.0.2", echo_addr.port(), &data)
            .await
            .expect("send");
        let (got, from) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from())
            .await
            .expect("in time")
            .expect("recv");
        assert_eq!(from, echo_addr);
        assert_eq!(got.len(), *size, "one datagram, whole");
        assert_eq!(&got[..], &data[..]);
    }

    // Between two sockets of one session, the sender shows the port the session knows.
    let mut a = client.bind_udp("", 5000).await.expect("bind a");
    let mut b = client.bind_udp("127.0.0.1", 5001).await.expect("bind b");
    a.send_to("localhost", 5001, b"to b")
        .await
        .expect("a sends");
    let (got, from) = tokio::time::timeout(Duration::from_secs(5), b.recv_from())
        .await
        .expect("in time")
        .expect("b receives");
    assert_eq!(
        (&got[..], from),
        (&b"to b"[..], "127.0.0.1:5000".parse().expect("addr"))
    );
    b.send_to(&from.ip().to_string(), from.port(), b"to a")
        .await
        .expect("b answers");
    let (got, _) = tokio::time::timeout(Duration::from_secs(5), a.recv_from())
        .await
        .expect("in time")
        .expect("a receives");
    assert_eq!(&got[..], b"to a");
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_reader_that_stops_reading_holds_the_relay_to_its_quota() {
    // The server writes as much as it can and counts what the kernel took.
    let server = TcpListener::bind("127.0.0.2:0").await.expect("bind");
    let addr = server.local_addr().expect("addr");
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = written.clone();
    tokio::spawn(async move {
        let (mut socket, _) = server.accept().await.expect("accept");
        let block = vec![7u8; 64 * 1024];
        while socket.write_all(&block).await.is_ok() {
            counter.fetch_add(block.len(), std::sync::atomic::Ordering::SeqCst);
            if counter.load(std::sync::atomic::Ordering::SeqCst) >= 256 * MIB {
                break;
            }
        }
    });
    let quota = 2 * MIB;
    let relay = start(&[
        "--allow",
        &format!("127.0.0.2:{}", addr.port()),
        "--session-buffer",
        &quota.to_string(),
        "--session-rate",
        "0",
    ])
    .await;
    let client = session(&relay).await;
    let mut conn = client
        .connect_tcp("127.0.0.2", addr.port())
        .await
        .expect("connect");
    // Never read: let the server push until everything between it and us is full.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = written.load(std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = written.load(std::sync::atomic::Ordering::SeqCst);
    let buffered = metric(relay.addr, "soket_buffered_bytes").await;
    assert_eq!(
        before, after,
        "the server is blocked: nothing drains its socket"
    );
    assert!(
        after < 64 * MIB,
        "the server got rid of only {after} bytes (kernel buffers and one window)"
    );
    assert!(
        buffered <= quota as i64,
        "relay buffers {buffered} bytes, over the session quota of {quota}"
    );
    // The data is all still there, in order, for a reader that comes back.
    let first = conn
        .read_exact(before / 2)
        .await
        .expect("read after the pause");
    assert!(first.iter().all(|b| *b == 7));
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_datagram_sent_together_with_its_bind_arrives() {
    // A page's `sendto` on an unbound socket sends Bind and SendTo at once, without waiting.
    let receiver = UdpSocket::bind("127.0.0.2:0").await.expect("bind receiver");
    let to = receiver.local_addr().expect("addr");
    let relay = start(&["--allow", &format!("127.0.0.2:{}", to.port())]).await;
    let client = session(&relay).await;
    let stream = client.next_id();
    let bind = soket_protocol::Up::Bind {
        stream,
        transport: soket_protocol::Transport::Udp,
        host: String::new(),
        port: 0,
    };
    let send = soket_protocol::Up::SendTo {
        stream,
        host: "127.0.0.2".into(),
        port: to.port(),
        payload: bytes::Bytes::from_static(b"first"),
    };
    client.raw(bind.encode()).await.expect("bind");
    client.raw(send.encode()).await.expect("send");
    let mut buf = [0u8; 16];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), receiver.recv_from(&mut buf))
        .await
        .expect("the first datagram arrives")
        .expect("recv");
    assert_eq!(&buf[..n], b"first");
    relay.shutdown().await.expect("shutdown");
}

/// A stream's reader holds the session's budget for bytes to the page while it waits for its socket; a
/// stream the page closes while its peer is silent must give that back. (It did not: after sixteen such
/// closes, 64 KiB each of a 1 MiB budget, no byte reached the page any more, while connects still
/// succeeded: a page that had used a few keep-alive connections saw every later recv() hang.)
#[tokio::test]
async fn closing_streams_whose_peer_is_silent_gives_their_budget_back() {
    // Accepts and says nothing, keeping every connection open.
    let silent = TcpListener::bind("127.0.0.2:0").await.expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    // Says hello to whoever connects.
    let talker = TcpListener::bind("127.0.0.2:0").await.expect("bind");
    let talker_addr = talker.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = talker.accept().await {
            let _ = socket.write_all(b"hello").await;
        }
    });
    let relay = start(&[
        "--allow",
        &format!("127.0.0.2:{}", silent_addr.port()),
        "--allow",
        &format!("127.0.0.2:{}", talker_addr.port()),
    ])
    .await;
    let client = session(&relay).await;
    for _ in 0..40 {
        let conn = client
            .connect_tcp("127.0.0.2", silent_addr.port())
            .await
            .expect("connect to the silent server");
        // Long enough for the relay's reader to be waiting on the socket.
        tokio::time::sleep(Duration::from_millis(5)).await;
        conn.close().await.expect("close");
    }
    let mut conn = client
        .connect_tcp("127.0.0.2", talker_addr.port())
        .await
        .expect("connect to the talker");
    let hello = tokio::time::timeout(Duration::from_secs(5), conn.read_exact(5))
        .await
        .expect("the talker's bytes reach the page within 5 s")
        .expect("read");
    assert_eq!(hello, b"hello");
    held.abort();
    relay.shutdown().await.expect("shutdown");
}

/// Writes to `conn` until the relay stops granting credit: everything between the page and a peer that
/// does not read is full, and the relay's writer holds the rest of a window. Returns the bytes sent.
async fn fill(conn: &mut soket_client::TcpConn) -> usize {
    let block = vec![9u8; 64 * 1024];
    let mut sent = 0;
    // A write that waits a second on loopback, and then half a second more, is stuck: the peer's buffers
    // and the relay's are full. (What a cancelled write_all sent is sent; the next one goes on from there.)
    let mut waits = [Duration::from_secs(1), Duration::from_millis(500)].into_iter();
    let mut wait = waits.next();
    while let Some(limit) = wait {
        match tokio::time::timeout(limit, conn.write_all(&block)).await {
            Ok(written) => {
                written.expect("write");
                sent += block.len();
                assert!(
                    sent < 256 * MIB,
                    "the relay kept taking bytes the peer never read"
                );
            }
            Err(_) => wait = waits.next(),
        }
    }
    sent
}

/// A stream the page closes with bytes still to flush keeps its socket and up to a window of bytes until
/// its writer is done (for up to 30 s), so it must count until then. (It did not: the count went at the
/// Close, and a loop of connect, fill, close held a socket and a window per turn, past --max-streams.)
#[tokio::test]
async fn closed_connections_still_flushing_count_against_the_stream_quota() {
    // Accepts and never reads, keeping every connection open.
    let silent = TcpListener::bind("127.0.0.2:0").await.expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let echo = echo_server("127.0.0.2").await;
    let max = 4;
    let relay = start(&[
        "--allow",
        &format!("127.0.0.2:{}", silent_addr.port()),
        "--allow",
        &format!("127.0.0.2:{}", echo.port()),
        "--max-streams",
        &max.to_string(),
        "--session-rate",
        "0",
    ])
    .await;
    let client = session(&relay).await;
    let mut refused = None;
    for turn in 0..3 * max {
        match client.connect_tcp("127.0.0.2", silent_addr.port()).await {
            Ok(mut conn) => {
                assert!(fill(&mut conn).await > 0, "turn {turn}: nothing sent");
                conn.close().await.expect("close");
            }
            Err(Error::Errno(Failure { errno, message })) => {
                refused = Some((turn, errno, message));
                break;
            }
            Err(other) => panic!("turn {turn}: {other:?}"),
        }
    }
    let Some((turn, errno, message)) = refused else {
        panic!(
            "{} connections, each closed with a window of bytes still to write, and no EMFILE \
             (--max-streams {max}); the relay holds {} streams",
            3 * max,
            metric(relay.addr, "soket_streams_active").await
        );
    };
    assert_eq!((turn, errno), (max, errno::EMFILE), "{message}");
    assert!(
        message.contains(&format!("at most {max} sockets"))
            && message.contains("closed ones still count"),
        "{message}"
    );
    assert_eq!(metric(relay.addr, "soket_streams_active").await, max as i64);

    // Once the peer is gone, the writers are done and their streams no longer count.
    held.abort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut conn = loop {
        match client.connect_tcp("127.0.0.2", echo.port()).await {
            Ok(conn) => break conn,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("still refused 10 s after the peer went away: {e:?}"),
        }
    };
    conn.write_all(b"room again").await.expect("write");
    assert_eq!(conn.read_exact(10).await.expect("echo"), b"room again");
    relay.shutdown().await.expect("shutdown");
}

/// Connects from outside, `n` times, to a session's listener; returns the connections that were made.
async fn strangers(public: &str, n: usize) -> Vec<TcpStream> {
    let mut made = Vec::new();
    for _ in 0..n {
        // Past the backlog the kernel drops the SYN and the stranger would retry for a minute.
        if let Ok(Ok(socket)) =
            tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(public)).await
        {
            made.push(socket);
        }
    }
    made
}

/// Connections from outside to a learner's server count as the session's streams before the page
/// accepts them; they may take only half the quota, so the learner's own program can still open sockets.
/// (They could take all of it: 40 connections to a listener made the page's own connect fail with EMFILE.)
#[tokio::test]
async fn strangers_at_a_listener_cannot_take_the_sockets_the_page_opens_itself() {
    let echo = echo_server("127.0.0.2").await;
    let max = 8;
    let relay = start(&[
        "--allow",
        &format!("127.0.0.2:{}", echo.port()),
        "--max-streams",
        &max.to_string(),
    ])
    .await;
    let client = session(&relay).await;
    // Python's listen() with no argument asks for 128.
    let mut listener = client.listen("", 8000, 128).await.expect("listen");
    let outside = strangers(&listener.public, 2 * max).await;
    assert!(
        outside.len() >= max,
        "only {} strangers got in",
        outside.len()
    );
    // The listener and the half of the quota the strangers may hold, once the relay has taken them.
    let held = 1 + max as i64 / 2;
    wait_for_metric(relay.addr, "soket_streams_active", held).await;

    let mut own = client
        .connect_tcp("127.0.0.2", echo.port())
        .await
        .expect("the page's own connect while strangers wait at its listener");
    own.write_all(b"mine").await.expect("write");
    assert_eq!(own.read_exact(4).await.expect("echo"), b"mine");
    assert_eq!(
        metric(relay.addr, "soket_streams_active").await,
        held + 1,
        "the listener, half the quota of strangers, and the page's own connection"
    );

    // The strangers were kept, not lost: the page accepts them as it makes room.
    let mut first = listener.accept().await.expect("accept a stranger");
    assert_eq!(first.peer, outside[0].local_addr().expect("local"));
    first.write_all(b"hello").await.expect("write");
    let mut hello = [0u8; 5];
    let mut stranger = outside.into_iter().next().expect("one");
    stranger.read_exact(&mut hello).await.expect("read");
    assert_eq!(&hello, b"hello");
    relay.shutdown().await.expect("shutdown");
}

/// A stranger who knows one learner's public address must not find the next learner's beside it. (Ports
/// were handed out in order: each listener's real port was the one after the last.)
#[tokio::test]
async fn the_real_ports_of_listeners_in_a_row_are_not_neighbours() {
    let relay = start(&["--max-listeners", "8"]).await;
    let client = session(&relay).await;
    let mut listeners = Vec::new();
    for _ in 0..8 {
        listeners.push(client.listen("", 0, 5).await.expect("listen"));
    }
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| {
            let (_, port) = l.public.rsplit_once(':').expect("host:port");
            port.parse().expect("port")
        })
        .collect();
    let neighbours = ports
        .windows(2)
        .filter(|pair| pair[0].abs_diff(pair[1]) == 1)
        .count();
    // Each pair is neighbours by chance with odds of 2 in 9,000 (the default range).
    assert!(neighbours <= 1, "{neighbours} of 7 in a row: {ports:?}");
    relay.shutdown().await.expect("shutdown");
}
