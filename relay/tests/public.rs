//! The relay as a public listener meets it: silent and slow connections time out, one client cannot take
//! every connection or session, a proxy names the client only when trusted, a DNS-rebinding site is
//! refused, an operator can close the WebSocket to non-browsers or to those without a token, and
//! `/metrics` is not for everyone.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Waits (at most `within`) for the relay to close `socket`; returns how long that took. Whatever the relay
/// wrote before closing is read and dropped.
async fn closed_within(socket: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match timeout(
            within.saturating_sub(started.elapsed()),
            socket.read(&mut buf),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the relay kept the connection open for {within:?}"),
        }
    }
}

/// Opens `/ws{query}` with the subprotocol and these headers; the response's status.
async fn upgrade(relay: &TestRelay, query: &str, headers: &[(&str, &str)]) -> u16 {
    match upgrade_ws(relay, query, headers).await {
        Ok(_ws) => 101,
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("upgrade failed oddly: {other}"),
    }
}

async fn upgrade_ws(
    relay: &TestRelay,
    query: &str,
    headers: &[(&str, &str)],
) -> Result<RawWebSocket, tungstenite::Error> {
    let mut request = format!("{}{query}", relay.url()).into_client_request()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("soket.v1"),
    );
    for (name, value) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("name");
        request
            .headers_mut()
            .insert(name, HeaderValue::from_str(value).expect("value"));
    }
    Ok(tokio_tungstenite::connect_async(request).await?.0)
}

/// A GET with this Host header; the status code.
async fn get_with_host(addr: SocketAddr, path: &str, host: &str) -> u16 {
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    let _ = socket.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[tokio::test]
async fn a_silent_connection_and_half_a_request_are_closed_at_the_header_timeout() {
    let relay = start(&["--header-timeout", "0.3"]).await;
    let mut silent = TcpStream::connect(relay.addr).await.expect("connect");
    let mut slow = TcpStream::connect(relay.addr).await.expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .expect("half a request");
    let took = closed_within(&mut silent, Duration::from_secs(5)).await;
    assert!(
        took >= Duration::from_millis(250),
        "closed too early: {took:?}"
    );
    closed_within(&mut slow, Duration::from_secs(5)).await;
    // A request sent in time is answered as before.
    assert!(http_get(relay.addr, "/healthz").await.ends_with("ok\n"));
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn an_idle_keepalive_connection_is_closed_and_a_busy_one_is_not() {
    let relay = start(&["--keepalive-timeout", "0.4", "--header-timeout", "30"]).await;
    let mut socket = TcpStream::connect(relay.addr).await.expect("connect");
    let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    // Requests every 200 ms keep it open past the timeout...
    for _ in 0..5 {
        socket.write_all(request).await.expect("request");
        let mut buf = [0u8; 1024];
        let n = timeout(Duration::from_secs(5), socket.read(&mut buf))
            .await
            .expect("answered")
            .expect("read");
        assert!(
            String::from_utf8_lossy(&buf[..n]).ends_with("ok\n"),
            "kept alive"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ...and silence closes it.
    let took = closed_within(&mut socket, Duration::from_secs(5)).await;
    assert!(
        took >= Duration::from_millis(150),
        "closed too early: {took:?}"
    );
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn connections_beyond_a_clients_cap_or_the_relays_are_closed_at_once() {
    let relay = start(&["--max-connections-per-ip", "3", "--header-timeout", "30"]).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(relay.addr).await.expect("connect"));
    }
    let mut fourth = TcpStream::connect(relay.addr)
        .await
        .expect("the kernel accepts");
    closed_within(&mut fourth, Duration::from_secs(2)).await;
    drop(held);
    // The slots come back once the relay sees the three close.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric_or_none(relay.addr).await.is_none() {
        assert!(Instant::now() < deadline, "the slots never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        metric(relay.addr, "soket_http_connections_refused_total").await,
        1
    );
    relay.shutdown().await.expect("shutdown");

    let relay = start(&["--max-connections", "2", "--header-timeout", "30"]).await;
    let _a = TcpStream::connect(relay.addr).await.expect("connect");
    let _b = TcpStream::connect(relay.addr).await.expect("connect");
    let mut third = TcpStream::connect(relay.addr)
        .await
        .expect("the kernel accepts");
    closed_within(&mut third, Duration::from_secs(2)).await;
    relay.shutdown().await.expect("shutdown");
}

/// `/metrics` when a connection is to be had; None when the relay closed it on arrival.
async fn metric_or_none(addr: SocketAddr) -> Option<String> {
    let mut socket = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    socket.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.ok()?;
    (!response.is_empty()).then(|| String::from_utf8_lossy(&response).into_owned())
}

#[tokio::test]
async fn a_client_holds_at_most_its_share_of_sessions_and_a_websocket_counts_as_a_connection() {
    let relay = start(&[
        "--max-sessions-per-ip",
        "2",
        "--max-connections-per-ip",
        "3",
    ])
    .await;
    let first = session(&relay).await;
    let second = session(&relay).await;
    assert_eq!(upgrade(&relay, "", &[]).await, 429);
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    let third = loop {
        if let Ok(ws) = upgrade_ws(&relay, "", &[]).await {
            break ws;
        }
        assert!(Instant::now() < deadline, "the session never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Two sessions' WebSockets and one more connection are the client's three.
    let _other = TcpStream::connect(relay.addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut over = TcpStream::connect(relay.addr)
        .await
        .expect("the kernel accepts");
    closed_within(&mut over, Duration::from_secs(2)).await;
    drop((second, third));
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_forwarded_client_is_believed_only_from_a_trusted_proxy() {
    let spoofed = [("x-forwarded-for", "203.0.113.1")];
    let other = [("x-forwarded-for", "203.0.113.2")];
    // Without --trusted-proxy the header changes nothing: both are this host's one client.
    let relay = start(&["--max-sessions-per-ip", "1"]).await;
    let _one = upgrade_ws(&relay, "", &spoofed).await.expect("first");
    assert_eq!(upgrade(&relay, "", &other).await, 429);
    relay.shutdown().await.expect("shutdown");

    // Behind a trusted proxy each forwarded address is a client of its own.
    let relay = start(&[
        "--max-sessions-per-ip",
        "1",
        "--trusted-proxy",
        "127.0.0.0/8",
    ])
    .await;
    let _one = upgrade_ws(&relay, "", &spoofed).await.expect("first");
    let _two = upgrade_ws(&relay, "", &other)
        .await
        .expect("another client");
    assert_eq!(upgrade(&relay, "", &spoofed).await, 429);
    // What the client wrote left of the proxy's own entry is not believed.
    assert_eq!(
        upgrade(
            &relay,
            "",
            &[("x-forwarded-for", "198.51.100.9, 203.0.113.1")]
        )
        .await,
        429
    );
    let _three = upgrade_ws(&relay, "", &[("forwarded", "for=\"[2001:db8::7]:4711\"")])
        .await
        .expect("Forwarded is read too");
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_dns_rebinding_site_gets_neither_the_page_nor_a_session() {
    let relay = start(&[]).await;
    let port = relay.addr.port();
    let rebinding = [("host", "evil.example"), ("origin", "http://evil.example")];
    assert_eq!(upgrade(&relay, "", &rebinding).await, 403);
    assert_eq!(get_with_host(relay.addr, "/", "evil.example").await, 403);
    assert_eq!(
        get_with_host(relay.addr, "/healthz", &format!("evil.example:{port}")).await,
        403
    );
    // The names the relay is known by still work, with their own origin.
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        assert_eq!(get_with_host(relay.addr, "/", &host).await, 200, "{host}");
        let origin = format!("http://{host}");
        let own = [("host", host.as_str()), ("origin", origin.as_str())];
        assert_eq!(upgrade(&relay, "", &own).await, 101, "{host}");
    }
    relay.shutdown().await.expect("shutdown");

    let relay = start(&[
        "--public-host",
        "soket.example",
        "--allow-host",
        "kelas.example",
    ])
    .await;
    for host in ["soket.example", "kelas.example"] {
        let origin = format!("https://{host}");
        let page = [("host", host), ("origin", origin.as_str())];
        assert_eq!(upgrade(&relay, "", &page).await, 101, "{host}");
    }
    assert_eq!(upgrade(&relay, "", &rebinding).await, 403);
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn an_operator_can_close_the_websocket_to_non_browsers_and_to_those_without_the_token() {
    let relay = start(&["--require-origin"]).await;
    assert_eq!(upgrade(&relay, "", &[]).await, 403);
    let origin = format!("http://{}", relay.addr);
    assert_eq!(upgrade(&relay, "", &[("origin", &origin)]).await, 101);
    relay.shutdown().await.expect("shutdown");

    let relay = start(&["--access-token", "kopi-42"]).await;
    assert_eq!(upgrade(&relay, "", &[]).await, 401);
    assert_eq!(upgrade(&relay, "?token=kopi-41", &[]).await, 401);
    assert_eq!(upgrade(&relay, "?token=kopi-42", &[]).await, 101);
    assert!(
        http_get(relay.addr, "/").await.contains("200 OK"),
        "the page itself needs no token"
    );
    assert_eq!(metric(relay.addr, "soket_sessions_rejected_total").await, 2);
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn metrics_are_for_the_relay_host_or_their_own_listener() {
    // From this host, directly: served (every other test reads them so).
    let relay = start(&["--trusted-proxy", "127.0.0.1"]).await;
    assert!(http_get(relay.addr, "/metrics")
        .await
        .contains("soket_sessions_active"));
    // A client on the internet behind the operator's proxy: no such page.
    let mut socket = TcpStream::connect(relay.addr).await.expect("connect");
    let request = format!(
        "GET /metrics HTTP/1.0\r\nHost: {}\r\nX-Forwarded-For: 203.0.113.5\r\n\r\n",
        relay.addr
    );
    socket.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    socket.read_to_string(&mut response).await.expect("read");
    assert!(response.starts_with("HTTP/1.0 404"), "{response}");
    relay.shutdown().await.expect("shutdown");

    // With --metrics-listen, only there.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let metrics_addr = free.local_addr().expect("addr");
    drop(free);
    let relay = start(&["--metrics-listen", &metrics_addr.to_string()]).await;
    assert!(http_get(relay.addr, "/metrics")
        .await
        .starts_with("HTTP/1.0 404"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(metrics_addr).await.is_err() {
        assert!(Instant::now() < deadline, "no metrics listener");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(http_get(metrics_addr, "/metrics")
        .await
        .contains("soket_http_connections_active"));
    relay.shutdown().await.expect("shutdown");
}
