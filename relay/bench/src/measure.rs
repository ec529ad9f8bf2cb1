//! The measurements: one bulk transfer, one series of echo round trips, one batch of idle sessions, for
//! each path (plain TCP, the relay through `soket_client`, websocat through tokio-tungstenite).
//!
//! Every wait is bounded by [`LIMIT`]: a path that stalls is an error (something broke), never a hang.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use soket_client::Client;
use soket_protocol::{Down, SUBPROTOCOL};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::servers::Sink;

/// The longest any one transfer, series or batch may take.
pub const LIMIT: Duration = Duration::from_secs(90);

/// Bytes per client write in bulk transfers, and the size of websocat's messages: the payload of one full
/// `Data` frame of the relay's protocol.
pub const MESSAGE: usize = soket_protocol::MAX_PAYLOAD;

/// The three paths a byte can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    Plain,
    Relay,
    Websocat,
}

/// Runs `fut` within [`LIMIT`]; `what` names it in the error.
pub async fn bounded<T>(
    what: &str,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(LIMIT, fut)
        .await
        .with_context(|| format!("{what}: no result within {LIMIT:?}"))?
        .with_context(|| what.to_string())
}

/// MiB per second for `bytes` moved in `time`.
pub fn mib_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / time.as_secs_f64()
}

/// Where a path's client connects: the target for plain TCP and the relay, the WebSocket URL for websocat.
pub struct Ends<'a> {
    pub relay_url: &'a str,
    pub target: SocketAddr,
    pub websocat_url: &'a str,
}

/// Sends `total` bytes to `sink` over `path`; returns the time from the first write until the sink counted
/// the last byte.
pub async fn upload(path: Path, ends: &Ends<'_>, sink: &mut Sink, total: u64) -> Result<Duration> {
    let block = Bytes::from(crate::pattern(MESSAGE));
    let writes = total / MESSAGE as u64;
    ensure!(
        writes * MESSAGE as u64 == total,
        "total must be whole messages"
    );
    // Each arm keeps its connection open until the sink is done, then closes it.
    match path {
        Path::Plain => {
            let mut socket = TcpStream::connect(ends.target).await?;
            let start = Instant::now();
            for _ in 0..writes {
                socket.write_all(&block).await?;
            }
            let done = sink_done(sink).await?;
            drop(socket);
            Ok(done - start)
        }
        Path::Relay => {
            let client = Client::connect(ends.relay_url).await?;
            let mut conn = client
                .connect_tcp(&ends.target.ip().to_string(), ends.target.port())
                .await?;
            let start = Instant::now();
            for _ in 0..writes {
                conn.write_all(&block).await?;
            }
            let done = sink_done(sink).await?;
            conn.close().await?;
            Ok(done - start)
        }
        Path::Websocat => {
            let mut ws = websocket(ends.websocat_url, None).await?;
            let start = Instant::now();
            for _ in 0..writes {
                ws.feed(Message::Binary(block.clone())).await?;
            }
            ws.flush().await?;
            let done = sink_done(sink).await?;
            let _ = ws.close(None).await;
            Ok(done - start)
        }
    }
}

async fn sink_done(sink: &mut Sink) -> Result<Instant> {
    sink.done
        .recv()
        .await
        .context("the sink's threads are gone")
}

/// Reads `total` bytes from a source over `path`; returns the time from the client's "go" until it has
/// them all.
pub async fn download(path: Path, ends: &Ends<'_>, total: u64) -> Result<Duration> {
    let mut got = 0u64;
    match path {
        Path::Plain => {
            let mut socket = TcpStream::connect(ends.target).await?;
            let mut buf = vec![0u8; 256 * 1024];
            socket.write_all(b"g").await?;
            let start = Instant::now();
            while got < total {
                let n = socket.read(&mut buf).await?;
                ensure!(n > 0, "end of stream after {got} of {total} bytes");
                got += n as u64;
            }
            Ok(start.elapsed())
        }
        Path::Relay => {
            let client = Client::connect(ends.relay_url).await?;
            let mut conn = client
                .connect_tcp(&ends.target.ip().to_string(), ends.target.port())
                .await?;
            conn.write_all(b"g").await?;
            let start = Instant::now();
            while got < total {
                let Some(bytes) = conn.read().await? else {
                    bail!("end of stream after {got} of {total} bytes");
                };
                got += bytes.len() as u64;
            }
            let elapsed = start.elapsed();
            conn.close().await?;
            Ok(elapsed)
        }
        Path::Websocat => {
            let mut ws = websocket(ends.websocat_url, None).await?;
            ws.send(Message::Binary(Bytes::from_static(b"g"))).await?;
            let start = Instant::now();
            while got < total {
                match ws.next().await {
                    Some(Ok(Message::Binary(bytes))) => got += bytes.len() as u64,
                    Some(Ok(Message::Close(_))) | None => {
                        bail!("end of stream after {got} of {total} bytes")
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                }
            }
            let elapsed = start.elapsed();
            let _ = ws.close(None).await;
            Ok(elapsed)
        }
    }
}

/// How long the unmeasured round trips may take, and the measured ones: a slow path gives fewer samples
/// instead of a run that takes an hour.
pub const WARMUP_BUDGET: Duration = Duration::from_secs(3);
pub const SERIES_BUDGET: Duration = Duration::from_secs(20);

/// Counts round trips: the first `warmup` (or those within [`WARMUP_BUDGET`]) are not measured, then up to
/// `count` are, within [`SERIES_BUDGET`].
struct Series {
    warmup: usize,
    count: usize,
    done: usize,
    warm_until: Option<Instant>,
    measured_until: Option<Instant>,
    times: Vec<Duration>,
}

impl Series {
    fn new(warmup: usize, count: usize) -> Series {
        Series {
            warmup,
            count,
            done: 0,
            warm_until: None,
            measured_until: None,
            times: Vec::with_capacity(count),
        }
    }

    /// True while another round trip is wanted.
    fn more(&mut self) -> bool {
        let now = Instant::now();
        let warm_until = *self.warm_until.get_or_insert(now + WARMUP_BUDGET);
        if self.measured_until.is_none() && (self.done >= self.warmup || now >= warm_until) {
            self.measured_until = Some(now + SERIES_BUDGET);
        }
        match self.measured_until {
            None => true,
            Some(until) => self.times.len() < self.count && now < until,
        }
    }

    /// Records one round trip that started at `start`.
    fn record(&mut self, start: Instant) {
        let elapsed = start.elapsed();
        self.done += 1;
        if self.measured_until.is_some() {
            self.times.push(elapsed);
        }
    }

    fn sorted(mut self) -> Vec<Duration> {
        self.times.sort();
        self.times
    }
}

/// The round-trip times of up to `count` echoes of a `size`-byte message over `path`, after up to `warmup`
/// unmeasured ones, sorted.
pub async fn round_trips(
    path: Path,
    ends: &Ends<'_>,
    size: usize,
    warmup: usize,
    count: usize,
) -> Result<Vec<Duration>> {
    let message = crate::pattern(size);
    let mut series = Series::new(warmup, count);
    match path {
        Path::Plain => {
            let mut socket = TcpStream::connect(ends.target).await?;
            socket.set_nodelay(true)?;
            let mut back = vec![0u8; size];
            while series.more() {
                let start = Instant::now();
                socket.write_all(&message).await?;
                socket.read_exact(&mut back).await?;
                series.record(start);
                ensure!(back == message, "the echo changed the message");
            }
        }
        Path::Relay => {
            let client = Client::connect(ends.relay_url).await?;
            let mut conn = client
                .connect_tcp(&ends.target.ip().to_string(), ends.target.port())
                .await?;
            while series.more() {
                let start = Instant::now();
                conn.write_all(&message).await?;
                let back = conn.read_exact(size).await?;
                series.record(start);
                ensure!(back == message, "the echo changed the message");
            }
            conn.close().await?;
        }
        Path::Websocat => {
            let mut ws = websocket(ends.websocat_url, None).await?;
            let message = Bytes::from(message);
            let mut back = Vec::with_capacity(size);
            while series.more() {
                let start = Instant::now();
                ws.send(Message::Binary(message.clone())).await?;
                back.clear();
                while back.len() < size {
                    match ws.next().await {
                        Some(Ok(Message::Binary(bytes))) => back.extend_from_slice(&bytes),
                        Some(Ok(Message::Close(_))) | None => bail!("websocat closed"),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e.into()),
                    }
                }
                series.record(start);
                ensure!(back == message, "the echo changed the message");
            }
            let _ = ws.close(None).await;
        }
    }
    let times = series.sorted();
    ensure!(!times.is_empty(), "no round trip within {SERIES_BUDGET:?}");
    Ok(times)
}

/// The `q`-quantile (0..=1) of sorted `times`.
pub fn quantile(times: &[Duration], q: f64) -> Duration {
    let i = ((times.len() as f64 - 1.0) * q).round() as usize;
    times[i.min(times.len() - 1)]
}

type WebSocket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// A tokio-tungstenite client WebSocket to `url`, asking for `protocol` if given, with default buffers
/// (as `soket_client` opens its own).
async fn websocket(url: &str, protocol: Option<&str>) -> Result<WebSocket> {
    websocket_with(url, protocol, None).await
}

async fn websocket_with(
    url: &str,
    protocol: Option<&str>,
    config: Option<WebSocketConfig>,
) -> Result<WebSocket> {
    let mut request = url.into_client_request()?;
    if let Some(protocol) = protocol {
        request
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_str(protocol)?);
    }
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, config, true).await?;
    Ok(ws)
}

/// Opens `count` sessions on the relay at `url`, `parallel` handshakes at a time, each waited on until its
/// `Welcome` arrived; returns them open. The client side keeps small buffers, so the bench stays light.
pub async fn idle_sessions(url: &str, count: usize, parallel: usize) -> Result<Vec<WebSocket>> {
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024);
    let opened: Vec<Result<WebSocket>> = futures_util::stream::iter(0..count)
        .map(|_| async move {
            let mut ws = websocket_with(url, Some(SUBPROTOCOL), Some(config)).await?;
            match ws.next().await {
                Some(Ok(Message::Binary(frame))) => match Down::decode(&frame) {
                    Ok(Down::Welcome { .. }) => Ok(ws),
                    other => bail!("expected Welcome, got {other:?}"),
                },
                other => bail!("expected Welcome, got {other:?}"),
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    opened.into_iter().collect()
}
