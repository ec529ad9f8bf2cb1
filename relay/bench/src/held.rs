//! The relay held under load: many sessions, each echoing through the relay at a learner's pace for a
//! while, every byte checked for loss and order; once alone, once beside a slowloris that keeps thousands
//! of half-open HTTP connections coming. The relay's descriptors and memory are sampled from `/proc`.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::StreamExt;
use soket_client::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::children;
use crate::measure::quantile;
use crate::servers;

/// Bytes per echo: a line of chat.
pub const MESSAGE: usize = 256;
/// Echoes per second each session asks for.
pub const PER_SECOND: u64 = 10;
/// Sessions opening at once.
const PARALLEL: usize = 32;
/// Half-open connections of the slowloris, from ten addresses.
pub const SLOWLORIS: usize = 5000;

/// One run's figures.
pub struct Held {
    pub sessions: usize,
    pub seconds: u64,
    pub slowloris: usize,
    /// `--max-connections` of the relay.
    pub cap: usize,
    pub bytes: u64,
    pub echoes: usize,
    pub fds_peak: usize,
    pub rss_peak_kib: u64,
    pub p50: Duration,
    pub p99: Duration,
    /// Sessions that failed to open or broke, and echoes that came back lost or out of order.
    pub errors: u64,
    /// Half-open connections the slowloris made, over the run.
    pub attacks: u64,
}

/// `sessions` sessions echoing for `seconds` through a relay of its own, with a slowloris of
/// `slowloris` connections beside them (0: none).
pub async fn run(
    relay_bin: &Path,
    www: &Path,
    sessions: usize,
    seconds: u64,
    slowloris: usize,
) -> Result<Held> {
    let echo = servers::echo("127.0.0.2")?;
    let cap = sessions + 2000;
    let max = (sessions + 10).to_string();
    let flags: Vec<String> = [
        "--allow",
        &echo.to_string(),
        "--session-rate",
        "0",
        "--max-sessions",
        &max,
        "--max-sessions-per-ip",
        &max,
        "--max-connections",
        &cap.to_string(),
        "--max-connections-per-ip",
        &cap.to_string(),
        "--max-listeners",
        "1",
    ]
    .map(String::from)
    .to_vec();
    let mut relay = children::relay(relay_bin, www, &flags)?;
    let url = relay.url();
    let pid = relay.child.pid();

    let clients: Vec<Result<(Client, soket_client::TcpConn)>> =
        futures_util::stream::iter(0..sessions)
            .map(|_| {
                let url = url.clone();
                async move {
                    let client = Client::connect(&url).await?;
                    let conn = client.connect_tcp("127.0.0.2", echo.port()).await?;
                    Ok((client, conn))
                }
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
    let errors = Arc::new(AtomicU64::new(0));
    let mut ready = Vec::new();
    for opened in clients {
        match opened {
            Ok(pair) => ready.push(pair),
            Err(e) => {
                eprintln!("held: a session did not open: {e:#}");
                errors.fetch_add(1, Relaxed);
            }
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    let attacks = Arc::new(AtomicU64::new(0));
    let relay_addr = relay.addr;
    let attackers: Vec<_> = (0..slowloris)
        .map(|i| {
            let source = IpAddr::from([127, 0, 0, 10 + (i % 10) as u8]);
            tokio::spawn(slowloris_one(
                source,
                relay_addr,
                stop.clone(),
                attacks.clone(),
            ))
        })
        .collect();

    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let echoing: Vec<_> = ready
        .into_iter()
        .enumerate()
        .map(|(i, (client, conn))| {
            tokio::spawn(echo_until(i as u64, client, conn, deadline, errors.clone()))
        })
        .collect();

    let (mut fds_peak, mut rss_peak_kib) = (0, 0);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        fds_peak = fds_peak.max(fds(pid));
        rss_peak_kib = rss_peak_kib.max(relay.child.rss_kib().unwrap_or(0));
    }
    let mut times = Vec::new();
    let mut bytes = 0;
    for task in echoing {
        match tokio::time::timeout(Duration::from_secs(30), task).await {
            Ok(Ok(series)) => {
                bytes += 2 * (series.len() * MESSAGE) as u64;
                times.extend(series);
            }
            _ => {
                errors.fetch_add(1, Relaxed);
            }
        }
    }
    stop.store(true, Relaxed);
    for attacker in attackers {
        attacker.abort();
    }
    relay.child.check_alive()?;
    times.sort();
    let (p50, p99) = if times.is_empty() {
        (Duration::ZERO, Duration::ZERO)
    } else {
        (quantile(&times, 0.50), quantile(&times, 0.99))
    };
    Ok(Held {
        sessions,
        seconds,
        slowloris,
        cap,
        bytes,
        echoes: times.len(),
        fds_peak,
        rss_peak_kib,
        p50,
        p99,
        errors: errors.load(Relaxed),
        attacks: attacks.load(Relaxed),
    })
}

/// One session's echoes until `deadline`, [`PER_SECOND`] a second, each message numbered so that a lost
/// or reordered byte shows; the round-trip times.
async fn echo_until(
    session: u64,
    _client: Client,
    mut conn: soket_client::TcpConn,
    deadline: Instant,
    errors: Arc<AtomicU64>,
) -> Vec<Duration> {
    let mut times = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / PER_SECOND));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    while Instant::now() < deadline {
        tick.tick().await;
        let mut message = vec![0u8; MESSAGE];
        for (i, byte) in message.iter_mut().enumerate() {
            *byte = (session.wrapping_mul(31) ^ seq.wrapping_mul(7) ^ i as u64) as u8;
        }
        message[..8].copy_from_slice(&seq.to_be_bytes());
        let start = Instant::now();
        let echoed = async {
            conn.write_all(&message).await?;
            conn.read_exact(MESSAGE).await
        };
        match tokio::time::timeout(Duration::from_secs(10), echoed).await {
            Ok(Ok(back)) if back == message => times.push(start.elapsed()),
            Ok(Ok(_)) => {
                eprintln!("held: session {session}: echo {seq} came back changed");
                errors.fetch_add(1, Relaxed);
            }
            Ok(Err(e)) => {
                eprintln!("held: session {session}: {e}");
                errors.fetch_add(1, Relaxed);
                break;
            }
            Err(_) => {
                eprintln!("held: session {session}: echo {seq} took over 10 s");
                errors.fetch_add(1, Relaxed);
                break;
            }
        }
        seq += 1;
    }
    times
}

/// One attacker: half a request, then silence until the relay closes the connection, then again. A
/// connection closed at once (over a cap) waits a second before the next, so the attack stays a
/// slowloris and not a flood.
async fn slowloris_one(
    source: IpAddr,
    relay: SocketAddr,
    stop: Arc<AtomicBool>,
    attacks: Arc<AtomicU64>,
) {
    while !stop.load(Relaxed) {
        let opened = Instant::now();
        let attempt = async {
            let socket = TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(source, 0))?;
            let mut stream = socket.connect(relay).await?;
            let _ = stream
                .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .await;
            attacks.fetch_add(1, Relaxed);
            let mut buf = [0u8; 512];
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            std::io::Result::Ok(())
        };
        let _ = attempt.await;
        if opened.elapsed() < Duration::from_secs(1) {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// How many file descriptors process `pid` holds now.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}
