//! What the relay's integration tests share: a real relay on a port 0 listener, real local servers to talk
//! to, and a network that records instead of dialling.
#![allow(dead_code)]

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use soket_relay::egress::{Allowed, AllowedName};
use soket_relay::net::{BoxFuture, Network, SystemNetwork};
use soket_relay::{Config, Relay};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A relay running in this process.
pub struct TestRelay {
    pub addr: SocketAddr,
    pub relay: Relay,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<io::Result<()>>,
}

impl TestRelay {
    /// The WebSocket URL of the relay.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Starts graceful shutdown and waits for it to finish.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("shutdown took over 10 s")
            .expect("relay task panicked")
    }
}

fn www() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../www")
}

/// Starts a relay with these flags (as on the command line) on the real network.
pub async fn start(flags: &[&str]) -> TestRelay {
    start_with_network(flags, Arc::new(SystemNetwork)).await
}

pub async fn start_with_network(flags: &[&str], network: Arc<dyn Network>) -> TestRelay {
    let www = www();
    let mut args = vec!["soket-relay"];
    if !flags.contains(&"--www") {
        args.extend(["--www", www.to_str().expect("utf-8 path")]);
    }
    args.extend_from_slice(flags);
    let config = Config::try_parse_from(args).expect("flags parse");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
    let addr = listener.local_addr().expect("relay address");
    let relay = Relay::with_network(config, network);
    let (stop, stopped) = oneshot::channel::<()>();
    let mut task = tokio::spawn(relay.clone().serve(listener, async move {
        let _ = stopped.await;
    }));
    // The relay starts its lab servers before it serves: wait for them, so tests can ask for their ports.
    tokio::select! {
        () = relay.lab().started() => {}
        ended = &mut task => panic!("the relay ended before its lab started: {ended:?}"),
    }
    TestRelay {
        addr,
        relay,
        stop: Some(stop),
        task,
    }
}

/// Opens a session with the relay.
pub async fn session(relay: &TestRelay) -> soket_client::Client {
    soket_client::Client::connect(&relay.url())
        .await
        .expect("session opens")
}

/// A TCP echo server on `ip`, port 0; returns its address.
pub async fn echo_server(ip: &str) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).await.expect("bind echo");
    let addr = listener.local_addr().expect("echo address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut rd, mut wr) = socket.split();
                let _ = tokio::io::copy(&mut rd, &mut wr).await;
            });
        }
    });
    addr
}

/// A listener on `addr` that only counts the connections it accepts.
pub async fn counting_listener(addr: &str) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind(addr).await.expect("bind counter");
    let local = listener.local_addr().expect("counter address");
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (local, count)
}

/// Deterministic bytes that are not all alike.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// FNV-1a: a checksum to compare what was sent and what came back.
pub fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Reads `path` from the relay over plain HTTP/1.0; returns the whole response.
pub async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut socket = TcpStream::connect(addr).await.expect("connect to relay");
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    socket
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut response = Vec::new();
    socket
        .read_to_end(&mut response)
        .await
        .expect("read response");
    String::from_utf8_lossy(&response).into_owned()
}

/// The value of one metric on the relay's `/metrics`.
pub async fn metric(addr: SocketAddr, name: &str) -> i64 {
    let text = http_get(addr, "/metrics").await;
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}

/// What a recording network was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    Resolve(String),
    Connect(SocketAddr),
    /// A datagram, with its payload.
    SendTo(SocketAddr, Vec<u8>),
}

/// A network that dials and sends nothing: it records every request, resolves from a fixed table, answers
/// every connect with ECONNREFUSED and drops every datagram. No packet leaves the machine.
#[derive(Default)]
pub struct RecordingNetwork {
    pub asked: Mutex<Vec<Asked>>,
    pub names: Vec<(String, Vec<IpAddr>)>,
}

impl RecordingNetwork {
    pub fn with_names(names: &[(&str, &str)]) -> RecordingNetwork {
        let names = names
            .iter()
            .map(|(n, ip)| (n.to_string(), vec![ip.parse().expect("ip")]))
            .collect();
        RecordingNetwork {
            asked: Mutex::default(),
            names,
        }
    }

    pub fn asked(&self) -> Vec<Asked> {
        self.asked.lock().unwrap().clone()
    }

    pub fn dials(&self) -> Vec<SocketAddr> {
        self.asked()
            .into_iter()
            .filter_map(|a| {
                if let Asked::Connect(addr) = a {
                    Some(addr)
                } else {
                    None
                }
            })
            .collect()
    }
}

impl Network for RecordingNetwork {
    fn resolve<'a>(&'a self, name: &'a AllowedName) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        let name = name.as_str();
        self.asked
            .lock()
            .unwrap()
            .push(Asked::Resolve(name.to_string()));
        let found = self
            .names
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, ips)| ips.clone());
        Box::pin(async move {
            found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such name"))
        })
    }

    fn connect(&self, to: Allowed) -> BoxFuture<'_, io::Result<tokio::net::TcpStream>> {
        self.asked.lock().unwrap().push(Asked::Connect(to.addr()));
        Box::pin(async { Err(io::Error::from_raw_os_error(111)) })
    }

    fn send_to(
        &self,
        _socket: &tokio::net::UdpSocket,
        payload: &[u8],
        to: Allowed,
    ) -> io::Result<()> {
        let datagram = Asked::SendTo(to.addr(), payload.to_vec());
        self.asked.lock().unwrap().push(datagram);
        Ok(())
    }
}

/// The host's real network, but with a fixed table of names: for "a name that resolves to 127.0.0.1"
/// without touching /etc/hosts.
pub struct FixedNames {
    pub names: Vec<(String, IpAddr)>,
}

impl Network for FixedNames {
    fn resolve<'a>(&'a self, name: &'a AllowedName) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        let found: Vec<IpAddr> = self
            .names
            .iter()
            .filter(|(n, _)| n == name.as_str())
            .map(|(_, ip)| *ip)
            .collect();
        Box::pin(async move { Ok(found) })
    }

    fn connect(&self, to: Allowed) -> BoxFuture<'_, io::Result<tokio::net::TcpStream>> {
        SystemNetwork.connect(to)
    }

    fn send_to(
        &self,
        socket: &tokio::net::UdpSocket,
        payload: &[u8],
        to: Allowed,
    ) -> io::Result<()> {
        SystemNetwork.send_to(socket, payload, to)
    }
}

/// A WebSocket to the relay's `/ws`, opened by hand for what the client never sends (text messages, a
/// missing subprotocol). It asks for `protocol` and sends `origin` when given.
pub type RawWebSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

pub async fn raw_websocket(
    relay: &TestRelay,
    protocol: Option<&str>,
    origin: Option<&str>,
) -> Result<RawWebSocket, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    let mut request = relay.url().into_client_request()?;
    if let Some(protocol) = protocol {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(protocol).expect("header value"),
        );
    }
    if let Some(origin) = origin {
        request.headers_mut().insert(
            "origin",
            HeaderValue::from_str(origin).expect("header value"),
        );
    }
    let (ws, _response) = tokio_tungstenite::connect_async(request).await?;
    Ok(ws)
}

/// Waits up to 5 s for a metric to reach `value`; returns the last value seen, so the caller's assert
/// shows what it was instead.
pub async fn wait_for_metric(addr: SocketAddr, name: &str, value: i64) -> i64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = metric(addr, name).await;
        if now == value || tokio::time::Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts a relay whose lab servers also serve clients on this host, for CPython's own clients.
pub async fn start_lab(flags: &[&str]) -> TestRelay {
    let mut all = vec!["--lab-local-clients"];
    all.extend_from_slice(flags);
    start(&all).await
}

impl TestRelay {
    /// The real loopback address of a lab service (with `start_lab`, any local client may use it).
    pub fn lab(&self, service: soket_relay::lab::Service) -> SocketAddr {
        self.relay
            .lab()
            .tcp_addr(service)
            .expect("the lab is started with the relay")
    }
}

/// What a `python3` run printed.
pub struct PythonRun {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `script` with the machine's CPython (its own stdlib clients), with `args` as `sys.argv[1:]`, and
/// fails the test if it runs for over 60 s. Deprecation warnings (telnetlib, nntplib) are silenced.
pub async fn python3(script: &str, args: &[&str]) -> PythonRun {
    let mut command = tokio::process::Command::new("python3");
    command
        .args(["-W", "ignore::DeprecationWarning", "-c", script])
        .args(args)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("python3 ran for over 60 s")
        .expect("python3 runs");
    PythonRun {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

impl PythonRun {
    /// Panics with both outputs unless the script succeeded.
    pub fn assert_ok(&self) -> &str {
        assert!(
            self.ok,
            "python3 failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }
}

/// Sends `request` on a fresh connection to `addr` and reads until the server closes (at most 10 s).
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    socket.write_all(request).await.expect("send");
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut reply))
        .await
        .expect("the server closed within 10 s")
        .expect("read");
    reply
}

/// A relay binary started with its stdout piped: the lines it printed until it said it serves, and where.
/// Panics if it ended first or took over 20 s; what it prints later is read and dropped, so it never
/// blocks on a full pipe.
pub async fn until_serving(child: &mut tokio::process::Child) -> (Vec<String>, SocketAddr) {
    use tokio::io::AsyncBufReadExt;
    let stdout = child.stdout.take().expect("the relay's stdout is piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let addr = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.expect("read") {
            let serving = line
                .strip_prefix("Soket relay serving http://")
                .map(|rest| rest.trim_end_matches('/').parse().expect("address"));
            seen.push(line);
            if let Some(addr) = serving {
                return addr;
            }
        }
        panic!("the relay ended before serving:\n{}", seen.join("\n"));
    })
    .await
    .expect("the relay serves within 20 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (seen, addr)
}
