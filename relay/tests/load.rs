//! The relay binary under attack, in a process of its own so that its file descriptors can be counted: a
//! slowloris of 5,000 half-open HTTP connections from ten addresses while a session keeps echoing.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use common::echo_server;
use soket_relay::capacity;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// The relay binary serving on 127.0.0.1, port 0, with `flags`; its address once it says it serves.
async fn spawn_relay(flags: &[&str]) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_soket-relay"))
        .args([
            "--listen",
            "127.0.0.1",
            "--port",
            "0",
            "--www",
            "/nonexistent",
        ])
        .args(flags)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("relay starts");
    let (_, addr) = common::until_serving(&mut child).await;
    (child, addr)
}

/// How many file descriptors process `pid` holds now.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// A connection from `source` that sends half a request and then nothing.
async fn half_open(source: IpAddr, relay: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let mut stream = socket.connect(relay).await?;
    // A write to a connection the relay already closed may fail: that is a refusal, not an error here.
    let _ = stream
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await;
    Ok(stream)
}

#[tokio::test]
async fn a_slowloris_of_5000_connections_holds_no_more_than_the_cap_and_sessions_keep_working() {
    const CAP: usize = 2000;
    const SOURCES: u8 = 10;
    // 5,000 sockets here, the relay's own elsewhere: this process needs the room.
    let (soft, hard) = capacity::nofile().expect("open-file limit");
    let wanted = 5000 + 512;
    if soft < wanted as u64 {
        capacity::raise_nofile((wanted as u64).min(hard)).expect("raise the open-file limit");
    }
    let room = capacity::nofile().expect("limit").0 as usize;
    let attackers = 5000.min(room.saturating_sub(512));
    assert!(
        attackers >= 2 * CAP,
        "this machine's open-file limit ({room}) is too low for the test: raise it (ulimit -n 6000)"
    );

    let echo = echo_server("127.0.0.2").await;
    let allow = format!("127.0.0.2:{}", echo.port());
    let cap = CAP.to_string();
    let (child, relay) = spawn_relay(&[
        "--allow",
        &allow,
        "--max-connections",
        &cap,
        "--header-timeout",
        "20",
        "--max-sessions",
        "20",
    ])
    .await;
    let pid = child.id().expect("pid");

    let client = soket_client::Client::connect(&format!("ws://{relay}/ws"))
        .await
        .expect("session opens");
    let mut conn = client
        .connect_tcp("127.0.0.2", echo.port())
        .await
        .expect("connect through the relay");

    // The relay starts its lab servers after it says it serves: count once they have.
    let mut before = fds(pid);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = fds(pid);
        if now == before {
            break;
        }
        before = now;
    }

    // The attack: 5,000 connections from 127.0.0.10-19, each sending half a request.
    let started = Instant::now();
    let mut held = Vec::with_capacity(attackers);
    for i in 0..attackers {
        let source = IpAddr::from([127, 0, 0, 10 + (i % SOURCES as usize) as u8]);
        if let Ok(stream) = half_open(source, relay).await {
            held.push(stream);
        }
        if i % 500 == 0 {
            // Between waves the session still echoes, at once.
            let message = format!("wave {i}");
            conn.write_all(message.as_bytes()).await.expect("write");
            let back = tokio::time::timeout(Duration::from_secs(5), conn.read_exact(message.len()))
                .await
                .expect("the echo came back under attack")
                .expect("echo");
            assert_eq!(back, message.as_bytes());
        }
    }
    let during = fds(pid);
    let attack_took = started.elapsed();
    eprintln!(
        "slowloris: {} of {attackers} half-open connections made in {attack_took:?}; relay fds {before} before, {during} during (cap {CAP})",
        held.len()
    );
    assert!(
        during <= before + CAP + 16,
        "the relay holds {during} fds under attack ({before} before, cap {CAP})"
    );
    assert!(
        attack_took < Duration::from_secs(20),
        "the attack took {attack_took:?}, longer than the header timeout: the test proves nothing"
    );

    // The header timeout frees every held connection; the relay is back to what it held before.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let now = fds(pid);
        if now <= before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the relay still holds {now} fds ({before} before the attack)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(held);
    conn.write_all(b"after").await.expect("write");
    assert_eq!(conn.read_exact(5).await.expect("echo"), b"after");
    let second = soket_client::Client::connect(&format!("ws://{relay}/ws"))
        .await
        .expect("a new session opens after the attack");
    second.ping().await.expect("ping");
    drop(child);
}
