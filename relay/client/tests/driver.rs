//! The driver against a relay played by the test, frame by frame: what it does with frames no real relay
//! sends (past the window), the order of raw frames and the stack's, and when the WebSocket closes.
//! (The relay's own integration tests, in `relay/tests`, drive this client against the real relay.)

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use soket_client::{Client, Error, Failure};
use soket_protocol::{errno, Down, StreamId, Transport, Up, SUBPROTOCOL};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The relay's end of one session, played by the test.
struct Relay(WebSocketStream<TcpStream>);

impl Relay {
    async fn send(&mut self, down: Down) {
        let frame = Message::Binary(down.encode());
        self.0.send(frame).await.expect("send to the client");
    }

    /// The next frame from the client; `None` once the WebSocket is closed.
    async fn next(&mut self) -> Option<Up> {
        let next = tokio::time::timeout(Duration::from_secs(5), self.0.next());
        match next.await.expect("a frame within 5 s") {
            Some(Ok(Message::Binary(frame))) => Some(Up::decode(&frame).expect("a frame")),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => None,
            Some(Ok(other)) => panic!("unexpected message {other:?}"),
        }
    }
}

/// A client connected to a relay played by the test, which has sent `Welcome` with `window`.
async fn session(window: u32) -> (Client, Relay) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/ws", listener.local_addr().expect("addr"));
    let relay = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.expect("accept");
        // The callback's signature is tungstenite's, large error response and all.
        #[allow(clippy::result_large_err)]
        let pick = |_: &Request, mut response: Response| {
            let chosen = HeaderValue::from_static(SUBPROTOCOL);
            response
                .headers_mut()
                .insert("sec-websocket-protocol", chosen);
            Ok(response)
        };
        let ws = tokio_tungstenite::accept_hdr_async(socket, pick)
            .await
            .expect("handshake");
        let mut relay = Relay(ws);
        relay
            .send(Down::Welcome {
                hostname: "learner-1".into(),
                public_host: "127.0.0.1".into(),
                window,
            })
            .await;
        relay
    });
    let client = Client::connect(&url).await.expect("session");
    (client, relay.await.expect("relay"))
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

#[tokio::test]
async fn a_relay_that_sends_past_the_window_ends_the_session() {
    let (client, mut relay) = session(4).await;
    let connect = tokio::spawn({
        let client = client.clone();
        async move { client.connect_tcp("127.0.0.2", 7).await }
    });
    let Some(Up::Connect { stream, .. }) = relay.next().await else {
        panic!("expected Connect");
    };
    relay
        .send(Down::Connected {
            stream,
            local: addr("127.0.0.1:40000"),
            peer: addr("127.0.0.2:7"),
        })
        .await;
    let mut conn = connect.await.expect("task").expect("connected");
    relay
        .send(Down::Data {
            stream,
            payload: Bytes::from_static(b"12345"),
        })
        .await;
    match conn.read().await {
        Err(Error::Errno(Failure { errno, message })) => {
            assert_eq!(errno, errno::ENETDOWN, "{message}");
            assert!(message.contains("more than its window"), "{message}");
        }
        other => panic!("expected ENETDOWN, got {other:?}"),
    }
    assert_eq!(relay.next().await, None, "the client closed the WebSocket");
    assert_eq!(client.ended().await, None, "no Goodbye came");
}

#[tokio::test]
async fn raw_frames_follow_the_frames_the_stack_made_before_them() {
    let (client, mut relay) = session(1024).await;
    let reserved = client.next_id();
    let bind = tokio::spawn({
        let client = client.clone();
        async move { client.bind_udp("", 0).await }
    });
    let Some(Up::Bind {
        stream,
        transport: Transport::Udp,
        ..
    }) = relay.next().await
    else {
        panic!("expected Bind");
    };
    assert_eq!(
        stream,
        StreamId(reserved.0 + 1),
        "the reserved id is skipped"
    );
    let local = addr("127.0.0.1:5000");
    relay.send(Down::Bound { stream, local }).await;
    let udp = bind.await.expect("task").expect("bound");
    assert_eq!((udp.stream, udp.local), (stream, local));

    udp.send_to("127.0.0.2", 9, b"first").await.expect("send");
    let raw = Up::Ping { stream: reserved };
    client.raw(raw.encode()).await.expect("raw");
    assert!(matches!(relay.next().await, Some(Up::SendTo { .. })));
    assert_eq!(relay.next().await, Some(raw));

    // The WebSocket stays open while a socket is left, and the socket is closed when dropped.
    drop(client);
    drop(udp);
    assert_eq!(relay.next().await, Some(Up::Close { stream }));
    assert_eq!(relay.next().await, None, "then the WebSocket closes");
}
