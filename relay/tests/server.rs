//! The relay's HTTP side: the isolation headers on every response, who may open a session (Origin,
//! subprotocol), the idle timeout, and graceful shutdown.

mod common;

use std::time::Duration;

use common::*;
use soket_client::{Client, Error, Goodbye};
use soket_protocol::GoodbyeCode;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;

/// The status code and the headers (names lowercased) of a raw HTTP response.
fn parse_response(response: &str) -> (u16, Vec<(String, String)>) {
    let head = response.split("\r\n\r\n").next().unwrap_or("");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (status, headers)
}

#[tokio::test]
async fn every_response_carries_the_isolation_headers() {
    let relay = start(&[]).await;
    for (path, expected_status) in [
        ("/", 200),
        ("/healthz", 200),
        ("/metrics", 200),
        ("/no/such/page", 404),
    ] {
        let response = http_get(relay.addr, path).await;
        let (status, headers) = parse_response(&response);
        assert_eq!(status, expected_status, "{path}: {response}");
        for (name, value) in [
            ("cross-origin-opener-policy", "same-origin"),
            ("cross-origin-embedder-policy", "require-corp"),
            ("cross-origin-resource-policy", "same-origin"),
        ] {
            let found: Vec<&str> = headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(found, vec![value], "{path}: {name} in\n{response}");
        }
    }
    let (_, headers) = parse_response(&http_get(relay.addr, "/").await);
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "content-type" && v.starts_with("text/html")),
        "/ serves the page: {headers:?}"
    );
    assert!(http_get(relay.addr, "/healthz").await.ends_with("ok\n"));
    relay.shutdown().await.expect("shutdown");
}

/// The message of a refused handshake, or a panic if the session opened.
fn refused(what: &str, result: Result<Client, Error>) -> String {
    match result {
        Err(Error::Handshake(message)) => message,
        Err(other) => panic!("{what}: expected a handshake error, got {other:?}"),
        Ok(_) => panic!("{what}: the session was admitted"),
    }
}

#[tokio::test]
async fn only_the_pages_own_origin_and_allowed_ones_open_sessions() {
    let relay = start(&[]).await;
    let url = relay.url();
    let message = refused(
        "evil origin",
        Client::connect_with_origin(&url, Some("http://evil.example")).await,
    );
    assert!(message.contains("403"), "{message}");
    // A look-alike of the page's own origin is foreign too.
    let port = relay.addr.port();
    let message = refused(
        "look-alike origin",
        Client::connect_with_origin(&url, Some(&format!("http://127.0.0.1:{port}.evil.example")))
            .await,
    );
    assert!(message.contains("403"), "{message}");

    let own = format!("http://127.0.0.1:{port}");
    let client = Client::connect_with_origin(&url, Some(&own))
        .await
        .expect("the page's own origin opens a session");
    client.ping().await.expect("ping");
    assert_eq!(metric(relay.addr, "soket_sessions_rejected_total").await, 2);
    relay.shutdown().await.expect("shutdown");

    let relay = start(&["--allow-origin", "http://teacher.example"]).await;
    let url = relay.url();
    let client = Client::connect_with_origin(&url, Some("http://teacher.example"))
        .await
        .expect("an allowed origin opens a session");
    client.ping().await.expect("ping");
    let message = refused(
        "evil origin beside an allowed one",
        Client::connect_with_origin(&url, Some("http://evil.example")).await,
    );
    assert!(message.contains("403"), "{message}");
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_websocket_without_the_subprotocol_is_refused() {
    let relay = start(&[]).await;
    for protocol in [None, Some("soket.v0"), Some("chat")] {
        match raw_websocket(&relay, protocol, None).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400, "{protocol:?}");
                let body = response.body().as_deref().unwrap_or_default();
                let body = String::from_utf8_lossy(body);
                assert!(body.contains("soket.v1"), "{protocol:?}: {body}");
            }
            Err(other) => panic!("{protocol:?}: expected HTTP 400, got {other}"),
            Ok(_) => panic!("{protocol:?}: the session was admitted"),
        }
    }
    assert_eq!(metric(relay.addr, "soket_sessions_rejected_total").await, 3);
    assert_eq!(metric(relay.addr, "soket_sessions_total").await, 0);
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_silent_session_idles_out_and_a_pinging_one_does_not() {
    let relay = start(&["--idle-timeout", "0.3"]).await;
    let silent = session(&relay).await;
    let busy = session(&relay).await;
    let opened = Instant::now();

    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        busy.ping().await.expect("ping");
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(10), busy.ended())
            .await
            .is_err(),
        "a session that pings every 100 ms stays open"
    );

    let goodbye = tokio::time::timeout(Duration::from_secs(1), silent.ended())
        .await
        .expect("the silent session has ended");
    match goodbye {
        Some(Goodbye {
            code: GoodbyeCode::Idle,
            message,
        }) => assert!(message.contains("0.3 s"), "{message}"),
        other => panic!("expected an Idle goodbye, got {other:?}"),
    }

    // Once it stops pinging, the busy session idles out too, not before the timeout.
    let stopped = Instant::now();
    let goodbye = tokio::time::timeout(Duration::from_secs(3), busy.ended())
        .await
        .expect("the busy session idles out once silent");
    assert!(stopped.elapsed() >= Duration::from_millis(200));
    assert!(opened.elapsed() >= Duration::from_secs(1));
    assert_eq!(goodbye.map(|g| g.code), Some(GoodbyeCode::Idle));
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn shutdown_says_goodbye_and_closes_listeners() {
    let relay = start(&[]).await;
    let plain = session(&relay).await;
    let serving = session(&relay).await;
    let mut listener = serving.listen("", 8000, 5).await.expect("listen");
    let public = listener.public.clone();
    let _outside = TcpStream::connect(&public)
        .await
        .expect("the listener is reachable before shutdown");
    listener.accept().await.expect("accept");

    let started = Instant::now();
    relay.shutdown().await.expect("shutdown returns Ok");
    // The default grace is 5 s: finishing well before it means every session closed, not the timer.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        started.elapsed()
    );
    for (name, client) in [("plain", &plain), ("serving", &serving)] {
        let goodbye = tokio::time::timeout(Duration::from_secs(1), client.ended())
            .await
            .unwrap_or_else(|_| panic!("{name}: the session has ended"));
        match goodbye {
            Some(Goodbye {
                code: GoodbyeCode::Shutdown,
                ..
            }) => {}
            other => panic!("{name}: expected a Shutdown goodbye, got {other:?}"),
        }
    }
    assert!(
        TcpStream::connect(&public).await.is_err(),
        "{public} still accepts after shutdown"
    );
}

#[tokio::test]
async fn a_compressed_file_goes_to_browsers_that_accept_its_encoding() {
    let dir = std::env::temp_dir().join(format!("soket-www-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("www dir");
    std::fs::write(dir.join("runtime.wasm"), b"plain bytes").expect("plain");
    std::fs::write(dir.join("runtime.wasm.gz"), b"gzip bytes").expect("gz");
    std::fs::write(dir.join("runtime.wasm.br"), b"brotli bytes").expect("br");
    let relay = start(&["--www", dir.to_str().expect("utf-8")]).await;
    let ask = |encoding: &'static str| {
        let addr = relay.addr;
        async move {
            let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let request = format!(
                "GET /runtime.wasm HTTP/1.0\r\nHost: {addr}\r\nAccept-Encoding: {encoding}\r\n\r\n"
            );
            tokio::io::AsyncWriteExt::write_all(&mut socket, request.as_bytes())
                .await
                .expect("send");
            let mut response = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut socket, &mut response)
                .await
                .expect("read");
            String::from_utf8_lossy(&response).to_lowercase()
        }
    };
    // What Chromium asks for: brotli, the smaller, wins.
    let brotli = ask("gzip, deflate, br, zstd").await;
    assert!(brotli.contains("content-encoding: br"), "{brotli}");
    assert!(brotli.ends_with("brotli bytes"), "{brotli}");
    let gzipped = ask("gzip").await;
    assert!(gzipped.contains("content-encoding: gzip"), "{gzipped}");
    assert!(
        gzipped.contains("content-type: application/wasm"),
        "{gzipped}"
    );
    assert!(
        gzipped.contains("cross-origin-embedder-policy: require-corp"),
        "{gzipped}"
    );
    assert!(gzipped.ends_with("gzip bytes"), "{gzipped}");
    let plain = ask("identity").await;
    assert!(!plain.contains("content-encoding"), "{plain}");
    assert!(plain.ends_with("plain bytes"), "{plain}");
    relay.shutdown().await.expect("shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}
