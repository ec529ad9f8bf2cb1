//! A session driven over channels: frames go in and come out as the page would see them, with no
//! WebSocket, no HTTP server and no client in between.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Message;
use bytes::Bytes;
use futures_util::{Sink, Stream};
use soket_protocol::{Down, GoodbyeCode, StreamId, Transport, Up};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::net::SystemNetwork;
use crate::shared::Shared;
use crate::Config;

/// The page's end of a session that `run` serves over two channels.
struct Page {
    up: mpsc::Sender<Result<Message, axum::Error>>,
    down: mpsc::Receiver<Message>,
    shutdown: CancellationToken,
    session: JoinHandle<()>,
}

type Frames = Pin<Box<dyn Stream<Item = Result<Message, axum::Error>> + Send>>;
type Writes = Pin<Box<dyn Sink<Message, Error = mpsc::error::SendError<Message>> + Send>>;

impl Page {
    fn open() -> Page {
        let shared = Arc::new(Shared::new(Config::local(), Arc::new(SystemNetwork)));
        let (up, up_rx) = mpsc::channel(16);
        let (down_tx, down) = mpsc::channel(16);
        let frames: Frames = Box::pin(futures_util::stream::unfold(up_rx, |mut rx| async move {
            rx.recv().await.map(|message| (message, rx))
        }));
        let writes: Writes = Box::pin(futures_util::sink::unfold(
            down_tx,
            |tx, message: Message| async move { tx.send(message).await.map(|()| tx) },
        ));
        let shutdown = CancellationToken::new();
        let session = tokio::spawn(super::run(writes, frames, shared, 1, shutdown.clone()));
        Page {
            up,
            down,
            shutdown,
            session,
        }
    }

    async fn send(&self, up: Up) {
        self.send_bytes(up.encode()).await;
    }

    async fn send_bytes(&self, frame: Bytes) {
        self.up
            .send(Ok(Message::Binary(frame)))
            .await
            .expect("the session reads");
    }

    /// The next message the session writes, within a few seconds.
    async fn message(&mut self) -> Message {
        tokio::time::timeout(Duration::from_secs(5), self.down.recv())
            .await
            .expect("a message within 5 s")
            .expect("the session writes")
    }

    async fn frame(&mut self) -> Down {
        match self.message().await {
            Message::Binary(frame) => Down::decode(&frame).expect("a soket.v1 frame"),
            other => panic!("a binary frame, not {other:?}"),
        }
    }

    /// The session ends by itself, closing the WebSocket with `code`.
    async fn ends_with_close(mut self, code: u16) {
        match self.message().await {
            Message::Close(Some(close)) => assert_eq!(close.code, code, "{close:?}"),
            other => panic!("a close frame, not {other:?}"),
        }
        tokio::time::timeout(Duration::from_secs(5), self.session)
            .await
            .expect("the session ends")
            .expect("without a panic");
    }
}

#[tokio::test]
async fn a_session_over_channels_connects_to_its_own_listener_and_ends_on_a_malformed_frame() {
    let mut page = Page::open();
    let Down::Welcome { hostname, .. } = page.frame().await else {
        panic!("Welcome comes first");
    };
    assert_eq!(hostname, "learner-1");

    page.send(Up::Ping {
        stream: StreamId(1),
    })
    .await;
    assert_eq!(
        page.frame().await,
        Down::Pong {
            stream: StreamId(1)
        }
    );

    let listener = StreamId(2);
    page.send(Up::Bind {
        stream: listener,
        transport: Transport::Tcp,
        host: String::new(),
        port: 0,
    })
    .await;
    let Down::Bound { local, .. } = page.frame().await else {
        panic!("Bind answers Bound");
    };
    page.send(Up::Listen {
        stream: listener,
        backlog: 5,
    })
    .await;
    assert!(matches!(page.frame().await, Down::Listening { .. }));

    let client = StreamId(3);
    page.send(Up::Connect {
        stream: client,
        host: "127.0.0.1".into(),
        port: local.port(),
    })
    .await;
    let (mut connected, mut accepted) = (None, None);
    while connected.is_none() || accepted.is_none() {
        match page.frame().await {
            Down::Connected { stream, peer, .. } if stream == client => connected = Some(peer),
            Down::Incoming { stream, conn, .. } if stream == listener => accepted = Some(conn),
            other => panic!("Connected and Incoming, not {other:?}"),
        }
    }
    let expected: SocketAddr = format!("127.0.0.1:{}", local.port()).parse().unwrap();
    assert_eq!(connected, Some(expected), "the page sees its own port");

    // Bytes sent on the client come out of the accepted stream, through the real loopback sockets.
    page.send(Up::Data {
        stream: client,
        payload: Bytes::from_static(b"hello"),
    })
    .await;
    let conn = accepted.unwrap();
    assert_eq!(
        page.frame().await,
        Down::Data {
            stream: conn,
            payload: Bytes::from_static(b"hello")
        }
    );

    page.send_bytes(Bytes::from_static(b"\xff not a frame"))
        .await;
    match page.frame().await {
        Down::Goodbye { code, message } => {
            assert_eq!(code, GoodbyeCode::ProtocolError);
            assert!(message.contains("malformed frame"), "{message}");
        }
        other => panic!("Goodbye, not {other:?}"),
    }
    page.ends_with_close(1002).await;
}

#[tokio::test]
async fn a_relay_shutdown_says_goodbye_and_a_page_that_leaves_ends_its_session() {
    let mut page = Page::open();
    assert!(matches!(page.frame().await, Down::Welcome { .. }));
    page.shutdown.cancel();
    match page.frame().await {
        Down::Goodbye { code, .. } => assert_eq!(code, GoodbyeCode::Shutdown),
        other => panic!("Goodbye, not {other:?}"),
    }
    page.ends_with_close(1001).await;

    let mut page = Page::open();
    assert!(matches!(page.frame().await, Down::Welcome { .. }));
    let Page { up, session, .. } = page;
    drop(up);
    tokio::time::timeout(Duration::from_secs(5), session)
        .await
        .expect("the session ends when its page's frames end")
        .expect("without a panic");
}
