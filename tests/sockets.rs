//! Sockets in a real Chromium, each program run through `window.soket.run`: a 1 MiB TCP echo, a UDP echo,
//! select() and selectors servers serving three clients at once, timeouts, a non-blocking connect, a
//! closed port, a refused destination, `curl` against `http.server` in the page, `http.client` and
//! `urllib.request` against a server of the test's, Stop freeing a port, and socket.py's helpers.
//!
//! Every program's output is compared whole. Servers outside the browser listen on `127.0.0.2`, which the
//! relay reaches only through an explicit `--allow`; nothing is dialled beyond loopback.
//!
//! Needs `www/pkg/` (the wasm and its glue): `cargo xtask test` builds it before these run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use soket_e2e::{Outcome, Page, Running, TestRelay};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How long a program that should end by itself may take.
const WITHIN: Duration = Duration::from_secs(60);

/// Waits for a server that should end once its client did (stops it at once if the client failed).
async fn server_end(page: &Page, server: &Running, client: &Outcome) -> Result<Outcome> {
    let within = if client.exit_code == 0 {
        WITHIN
    } else {
        Duration::ZERO
    };
    page.finish(server, within).await
}

/// Checks a client's and a server's output together, showing both when either is wrong.
fn expect_pair(
    client: &Outcome,
    want_client: &str,
    server: &Outcome,
    want_server: &str,
) -> Result<()> {
    client
        .expect("client.py", want_client)
        .and_then(|()| server.expect("server.py", want_server))
        .with_context(|| format!("client.py: {client}\nserver.py: {server}"))
}

/// CRC-32 as `zlib.crc32` computes it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

const ECHO_SERVER: &str = "\
import socket

srv = socket.socket()
srv.bind(('', 7007))
srv.listen()
conn, addr = srv.accept()
total = 0
while True:
    data = conn.recv(65536)
    if not data:
        break
    conn.sendall(data)
    total += len(data)
conn.close()
print('echoed', total, 'bytes')
";

const ECHO_CLIENT: &str = "\
import socket, zlib

data = b''.join(i.to_bytes(4, 'little') for i in range(1 << 18))
s = socket.socket()
s.connect(('127.0.0.1', 7007))
s.sendall(data)
s.shutdown(socket.SHUT_WR)
received = bytearray()
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    received += chunk
s.close()
print(len(received), zlib.crc32(received))
";

#[tokio::test]
async fn a_mebibyte_echoes_intact_over_tcp() -> Result<()> {
    let data: Vec<u8> = (0..1u32 << 18).flat_map(|i| i.to_le_bytes()).collect();
    let want = format!("{} {}\n", data.len(), crc32(&data));
    let page = Page::open().await?;
    page.check(async |page| {
        let server = page.start("server.py", ECHO_SERVER).await?;
        page.wait_listener(&server, 7007).await?;
        let client = page.run("client.py", ECHO_CLIENT).await?;
        let server = server_end(page, &server, &client).await?;
        expect_pair(&client, &want, &server, "echoed 1048576 bytes\n")
    })
    .await
}

const UDP_SERVER: &str = "\
import socket

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', 9999))
print('ready')
while True:
    data, addr = s.recvfrom(65535)
    if data == b'bye':
        break
    print('got', len(data), 'from', addr[0])
    s.sendto(data, addr)
print('bye')
";

const UDP_CLIENT: &str = "\
import socket

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
sizes = [1, 100, 1472, 9000, 65507]
for n in sizes:
    s.sendto(bytes([n % 251]) * n, ('localhost', 9999))
for n in sizes:
    data, addr = s.recvfrom(65535)
    print(len(data), data == bytes([n % 251]) * n, addr)
# A datagram read into too small a buffer is cut, and the rest of it is lost.
s.sendto(b'x' * 1000, ('127.0.0.1', 9999))
s.sendto(b'y' * 10, ('127.0.0.1', 9999))
print(s.recvfrom(100)[0] == b'x' * 100)
print(s.recv(100))
s.sendto(b'bye', ('127.0.0.1', 9999))
";

#[tokio::test]
async fn udp_echo_keeps_datagram_boundaries() -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        let server = page.start("server.py", UDP_SERVER).await?;
        page.wait_output(&server, "ready\n").await?;
        let client = page.run("client.py", UDP_CLIENT).await?;
        let server = server_end(page, &server, &client).await?;
        expect_pair(
            &client,
            "1 True ('127.0.0.1', 9999)\n100 True ('127.0.0.1', 9999)\n\
             1472 True ('127.0.0.1', 9999)\n9000 True ('127.0.0.1', 9999)\n\
             65507 True ('127.0.0.1', 9999)\nTrue\nb'yyyyyyyyyy'\n",
            &server,
            "ready\ngot 1 from 127.0.0.1\ngot 100 from 127.0.0.1\ngot 1472 from 127.0.0.1\n\
             got 9000 from 127.0.0.1\ngot 65507 from 127.0.0.1\ngot 1000 from 127.0.0.1\n\
             got 10 from 127.0.0.1\nbye\n",
        )
    })
    .await
}

/// Echoes in capitals; tells every client once all three are connected, so none can finish before.
const SELECT_SERVER: &str = "\
import select, socket

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('', 7100))
srv.listen(5)
inputs = [srv]
accepted = 0
done = 0
while done < 3:
    readable, _, _ = select.select(inputs, [], [], 30)
    if not readable:
        print('select timed out')
        break
    for s in readable:
        if s is srv:
            conn, addr = srv.accept()
            inputs.append(conn)
            accepted += 1
            if accepted == 3:
                for c in inputs[1:]:
                    c.sendall(b'all three here\\n')
        else:
            data = s.recv(1024)
            if data:
                s.sendall(data.upper())
            else:
                inputs.remove(s)
                s.close()
                done += 1
print('served', done, 'clients')
";

const SELECT_CLIENT: &str = "\
import socket

s = socket.socket()
s.connect(('localhost', 7100))
line = b''
while not line.endswith(b'\\n'):
    line += s.recv(100)
print(line.decode(), end='')
s.sendall(b'hello from client N')
print(s.recv(100).decode())
s.close()
";

/// Echoes reversed, with `selectors.DefaultSelector`.
const SELECTORS_SERVER: &str = "\
import selectors, socket

sel = selectors.DefaultSelector()
srv = socket.socket()
srv.bind(('', 7200))
srv.listen()
srv.setblocking(False)
sel.register(srv, selectors.EVENT_READ)
connected = most = served = 0
while served < 3:
    events = sel.select(timeout=30)
    if not events:
        print('select timed out')
        break
    for key, mask in events:
        if key.fileobj is srv:
            conn, addr = srv.accept()
            conn.setblocking(False)
            sel.register(conn, selectors.EVENT_READ)
            connected += 1
            most = max(most, connected)
        else:
            data = key.fileobj.recv(1024)
            if data:
                key.fileobj.sendall(data[::-1])
            else:
                sel.unregister(key.fileobj)
                key.fileobj.close()
                connected -= 1
                served += 1
sel.close()
print('served', served, 'clients, at most', most, 'at once')
";

/// Three connections from one program, used out of order.
const INTERLEAVED_CLIENT: &str = "\
import socket

socks = []
for i in range(3):
    s = socket.socket()
    s.connect(('127.0.0.1', 7200))
    socks.append(s)
for i in (2, 0, 1):
    socks[i].sendall(b'client %d' % i)
for i in (1, 2, 0):
    print(socks[i].recv(100))
for s in socks:
    s.close()
";

#[tokio::test]
async fn select_and_selectors_servers_serve_three_clients_at_once() -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        let server = page.start("server.py", SELECT_SERVER).await?;
        page.wait_listener(&server, 7100).await?;
        let mut clients = Vec::new();
        for n in 1..=3 {
            let source = SELECT_CLIENT.replace("client N", &format!("client {n}"));
            clients.push(page.start(&format!("client{n}.py"), &source).await?);
        }
        for (n, client) in clients.iter().enumerate() {
            let out = page.finish(client, WITHIN).await?;
            let want = format!("all three here\nHELLO FROM CLIENT {}\n", n + 1);
            out.expect(&client.name, &want)?;
        }
        let out = page.finish(&server, WITHIN).await?;
        out.expect("server.py", "served 3 clients\n")?;

        let server = page.start("server.py", SELECTORS_SERVER).await?;
        page.wait_listener(&server, 7200).await?;
        let client = page.run("client.py", INTERLEAVED_CLIENT).await?;
        let server = server_end(page, &server, &client).await?;
        expect_pair(
            &client,
            "b'1 tneilc'\nb'2 tneilc'\nb'0 tneilc'\n",
            &server,
            "served 3 clients, at most 3 at once\n",
        )
    })
    .await
}

const TIMEOUT: &str = "\
import socket, time

srv = socket.socket()
srv.bind(('127.0.0.1', 0))
srv.listen()
c = socket.socket()
c.connect(srv.getsockname())
conn, addr = srv.accept()
c.settimeout(0.3)
print(c.gettimeout(), c.getblocking())
start = time.monotonic()
try:
    c.recv(10)
except socket.timeout as e:
    waited = time.monotonic() - start
    print(repr(e), isinstance(e, TimeoutError), 0.28 <= waited < 2 or waited)
srv.settimeout(0.1)
try:
    srv.accept()
except TimeoutError as e:
    print('accept:', e)
";

const NONBLOCKING_CONNECT: &str = "\
import select, socket

srv = socket.socket()
srv.bind(('127.0.0.1', 0))
srv.listen()
addr = srv.getsockname()
c = socket.socket()
c.setblocking(False)
try:
    c.connect(addr)
except BlockingIOError as e:
    print('connect:', repr(e))
r, w, x = select.select([], [c], [], 5)
print('writable:', w == [c])
print('SO_ERROR:', c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
conn, peer = srv.accept()
print(peer == c.getsockname(), c.getpeername() == addr)
try:
    c.recv(10)
except BlockingIOError as e:
    print('recv:', repr(e))
c.setblocking(True)
c.sendall(b'ping')
print(conn.recv(10))
conn.sendall(b'pong')
print(c.recv(10))
d = socket.socket()
d.setblocking(False)
print('connect_ex:', d.connect_ex(addr))
select.select([], [d], [], 5)
print('SO_ERROR:', d.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
";

const CLOSED_PORT: &str = "\
import socket

print(socket.socket().connect_ex(('127.0.0.1', 9)))
s = socket.socket()
s.connect(('localhost', 9))
";

/// A private address: the relay refuses it by its policy before dialling anything.
const REFUSED_DESTINATION: &str = "\
import socket

s = socket.socket()
try:
    s.connect(('10.0.0.1', 80))
except PermissionError as e:
    print(e.errno, e)
";

#[tokio::test]
async fn timeouts_nonblocking_connect_and_refusals_raise_as_in_cpython() -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        let out = page.run("timeout.py", TIMEOUT).await?;
        out.expect(
            "timeout.py",
            "0.3 True\nTimeoutError('timed out') True True\naccept: timed out\n",
        )?;

        let out = page.run("nonblocking.py", NONBLOCKING_CONNECT).await?;
        out.expect(
            "nonblocking.py",
            "connect: BlockingIOError(115, 'Operation now in progress')\nwritable: True\n\
             SO_ERROR: 0\nTrue True\nrecv: BlockingIOError(11, 'Resource temporarily unavailable')\n\
             b'ping'\nb'pong'\nconnect_ex: 115\nSO_ERROR: 0\n",
        )?;

        let out = page.run("client.py", CLOSED_PORT).await?;
        ensure!(
            out.exit_code == 1
                && out.stdout == "111\n"
                && out.stderr.starts_with("Traceback (most recent call last):\n")
                && out
                    .stderr
                    .ends_with("\nConnectionRefusedError: [Errno 111] Connection refused\n"),
            "{out}"
        );

        let out = page.run("client.py", REFUSED_DESTINATION).await?;
        out.expect(
            "client.py",
            "13 [Errno 13] soket relay policy refuses 10.0.0.1:80: private network (10.0.0.0/8), \
             and no --allow rule names it\n",
        )
    })
    .await
}

/// Results and errors the probes showed to differ from CPython's on Linux (fixed since): proto 0, EPIPE
/// for send on an unconnected socket, `recvfrom` on a stream, SHUT_RD, a reset for bytes left unread,
/// UDP `getpeername`, MSG_DONTWAIT with a timeout, the messages of bad addresses, getaddrinfo's corners.
const LIKE_CPYTHON: &str = "\
import socket, time

def attempt(label, f):
    try:
        print(label, '->', repr(f()))
    except Exception as e:
        print(label, '!!', type(e).__name__, e)

srv = socket.socket()
srv.bind(('127.0.0.1', 0))
srv.listen()
addr = srv.getsockname()
c = socket.socket()
print(c.family, c.type, c.proto, c.gettimeout())
attempt('send unconnected', lambda: c.send(b'x'))
attempt('recv unconnected', lambda: c.recv(1))
attempt('accept unlistened', lambda: c.accept())
attempt('bind in use', lambda: socket.socket().bind(addr))
attempt('bad port', lambda: socket.socket().bind(('127.0.0.1', 70000)))
attempt('bad address', lambda: c.connect('127.0.0.1'))
c.connect(addr)
conn, peer = srv.accept()
attempt('connect again', lambda: c.connect(addr))
c.sendall(b'hello world')
attempt('peek', lambda: conn.recv(5, socket.MSG_PEEK))
attempt('recvfrom', lambda: conn.recvfrom(100))
c.shutdown(socket.SHUT_WR)
attempt('eof', lambda: conn.recv(10))
attempt('send after SHUT_WR', lambda: c.send(b'x'))
conn.shutdown(socket.SHUT_RD)
attempt('recv after SHUT_RD', lambda: conn.recv(10))
c.close()
attempt('recv closed', lambda: c.recv(1))
d = socket.create_connection(addr)
dconn, _ = srv.accept()
dconn.sendall(b'never read')
time.sleep(0.2)
d.close()  # with bytes unread: the peer is reset
time.sleep(0.3)
attempt('recv reset', lambda: dconn.recv(10))
attempt('recv after reset', lambda: dconn.recv(10))
attempt('send after reset', lambda: dconn.send(b'x'))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(0.1)
attempt('udp unconnected send', lambda: u.send(b'x'))
attempt('udp too big', lambda: u.sendto(b'x' * 70000, ('127.0.0.1', 9)))
u.connect(('localhost', 9))
attempt('udp peer', lambda: u.getpeername())
attempt('MSG_DONTWAIT with timeout', lambda: u.recv(1, socket.MSG_DONTWAIT))
attempt('gai empty', lambda: socket.getaddrinfo('', 80))
attempt('gai proto', lambda: socket.getaddrinfo('127.0.0.1', 80, proto=socket.IPPROTO_UDP))
attempt('gai family', lambda: socket.getaddrinfo('127.0.0.1', 80, socket.AF_INET6))
attempt('htons', lambda: socket.htons(70000))
attempt('inet_aton', lambda: socket.inet_aton('1.2.3.4 trailing'))
";

/// What CPython 3.11 on Linux prints for [`LIKE_CPYTHON`].
const LIKE_CPYTHON_OUTPUT: &str = "\
2 1 0 None
send unconnected !! BrokenPipeError [Errno 32] Broken pipe
recv unconnected !! OSError [Errno 107] Transport endpoint is not connected
accept unlistened !! OSError [Errno 22] Invalid argument
bind in use !! OSError [Errno 98] Address already in use
bad port !! OverflowError bind(): port must be 0-65535.
bad address !! TypeError connect(): AF_INET address must be tuple, not str
connect again !! OSError [Errno 106] Transport endpoint is already connected
peek -> b'hello'
recvfrom -> (b'hello world', None)
eof -> b''
send after SHUT_WR !! BrokenPipeError [Errno 32] Broken pipe
recv after SHUT_RD -> b''
recv closed !! OSError [Errno 9] Bad file descriptor
recv reset !! ConnectionResetError [Errno 104] Connection reset by peer
recv after reset -> b''
send after reset !! BrokenPipeError [Errno 32] Broken pipe
udp unconnected send !! OSError [Errno 89] Destination address required
udp too big !! OSError [Errno 90] Message too long
udp peer -> ('127.0.0.1', 9)
MSG_DONTWAIT with timeout !! TimeoutError timed out
gai empty !! gaierror [Errno -2] Name or service not known
gai proto -> [(<AddressFamily.AF_INET: 2>, <SocketKind.SOCK_DGRAM: 2>, 17, '', ('127.0.0.1', 80))]
gai family !! gaierror [Errno -9] Address family for hostname not supported
htons !! OverflowError htons: Python int too large to convert to C 16-bit unsigned integer
inet_aton -> b'\\x01\\x02\\x03\\x04'
";

#[tokio::test]
async fn socket_results_and_errors_are_cpythons_on_linux() -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        let out = page.run("main.py", LIKE_CPYTHON).await?;
        out.expect("main.py", LIKE_CPYTHON_OUTPUT)
    })
    .await
}

const HTTP_SERVER: &str = "\
import http.server

class Hello(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        body = ('hello from %s\\n' % self.path).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

with http.server.HTTPServer(('', 8000), Hello) as httpd:
    print('serving on port', httpd.server_address[1])
    httpd.serve_forever()
";

/// `curl` from this process: the body, then the status.
async fn curl(url: &str) -> Result<String> {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "-w", "%{http_code}", url])
        .output()
        .await
        .context("run curl")?;
    ensure!(
        out.status.success(),
        "curl {url}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn curl_fetches_a_page_from_http_server_in_the_browser() -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        let server = page.start("server.py", HTTP_SERVER).await?;
        let public = page.wait_listener(&server, 8000).await?;
        let first = curl(&format!("http://{public}/index.html")).await;
        let second = curl(&format!("http://{public}/again")).await;
        let server = page.stop(&server).await?;
        ensure!(
            first.as_deref().ok() == Some("hello from /index.html\n200")
                && second.as_deref().ok() == Some("hello from /again\n200"),
            "curl: {first:?}, {second:?}; server: {server}"
        );
        ensure!(
            server.stdout == "serving on port 8000\n",
            "server: {server}"
        );
        // http.server logs each request on stderr, with the client's address.
        for path in ["/index.html", "/again"] {
            let logged = format!("\"GET {path} HTTP/1.1\" 200 -\n");
            ensure!(
                server.stderr.contains(&logged) && server.stderr.starts_with("127.0.0.1 - - ["),
                "server: {server}"
            );
        }
        Ok(())
    })
    .await
}

/// A small HTTP/1.1 server on 127.0.0.2: answers `you asked for PATH` and records each request's head.
async fn test_http_server() -> Result<(u16, Arc<Mutex<Vec<String>>>)> {
    let listener = TcpListener::bind("127.0.0.2:0").await?;
    let port = listener.local_addr()?.port();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let record = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.ends_with(b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
                record.lock().unwrap().push(head);
                let body = format!("you asked for {path}\n");
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
            });
        }
    });
    Ok((port, heads))
}

const HTTP_CLIENTS: &str = "\
import http.client, urllib.request

conn = http.client.HTTPConnection('127.0.0.2', PORT, timeout=10)
conn.request('GET', '/from-http-client')
r = conn.getresponse()
print(r.status, r.reason, r.getheader('Content-Type'), r.read())
conn.close()
with urllib.request.urlopen('http://127.0.0.2:PORT/from-urllib', timeout=10) as r:
    print(r.status, r.read().decode(), end='')
";

#[tokio::test]
async fn http_client_and_urllib_reach_an_allowed_server() -> Result<()> {
    let (port, heads) = test_http_server().await?;
    let allow = format!("127.0.0.2:{port}");
    let page = Page::open_with(&["--allow", &allow]).await?;
    page.check(async |page| {
        let source = HTTP_CLIENTS.replace("PORT", &port.to_string());
        let out = page.run("client.py", &source).await?;
        out.expect(
            "client.py",
            "200 OK text/plain b'you asked for /from-http-client\\n'\n\
             200 you asked for /from-urllib\n",
        )?;
        let heads = heads.lock().unwrap().clone();
        ensure!(heads.len() == 2, "{heads:#?}");
        ensure!(
            heads[0].starts_with("GET /from-http-client HTTP/1.1\r\n")
                && heads[0].contains(&format!("\r\nHost: 127.0.0.2:{port}\r\n")),
            "{heads:#?}"
        );
        ensure!(
            heads[1].starts_with("GET /from-urllib HTTP/1.1\r\n")
                && heads[1].contains("\r\nUser-Agent: Python-urllib/3."),
            "{heads:#?}"
        );
        Ok(())
    })
    .await
}

const BLOCKED_IN_ACCEPT: &str = "\
import socket

s = socket.socket()
s.bind(('', 7300))
s.listen()
print('waiting')
s.accept()
";

const BIND_AGAIN: &str = "\
import socket

s = socket.socket()
s.bind(('', 7300))
s.listen()
print('bound again to', s.getsockname())
";

#[tokio::test]
async fn stop_during_a_blocked_accept_frees_the_port() -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        let server = page.start("server.py", BLOCKED_IN_ACCEPT).await?;
        let public = page.wait_listener(&server, 7300).await?;
        let stopped = page.stop(&server).await?;
        // As after Ctrl-C: the traceback ends in KeyboardInterrupt, and closing the socket on the way
        // out raises nothing more. (A program that takes longer than the grace to end, on a loaded
        // machine, is terminated before it prints anything.)
        ensure!(
            stopped.exit_code == 130
                && stopped.stdout == "waiting\n"
                && (stopped.stderr.is_empty() || stopped.stderr.ends_with("\nKeyboardInterrupt\n"))
                && !stopped.stderr.contains("Exception ignored"),
            "{stopped}"
        );
        // The relay lets go of the real port at once: nobody listens there any more.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            match tokio::net::TcpStream::connect(&public).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
                other => ensure!(
                    tokio::time::Instant::now() < deadline,
                    "{public} still answers after Stop: {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let out = page.run("server.py", BIND_AGAIN).await?;
        out.expect("server.py", "bound again to ('0.0.0.0', 7300)\n")
    })
    .await
}

const HELPERS: &str = "\
import socket

print(socket.getaddrinfo('localhost', 80))
print(socket.getaddrinfo('localhost', 'http', socket.AF_INET, socket.SOCK_STREAM))
print(socket.gethostbyname(socket.gethostname()))
srv = socket.create_server(('', 7400))
print(srv.getsockname(), srv.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR))
c = socket.create_connection(('localhost', 7400), timeout=5)
conn, addr = srv.accept()
print(c.getpeername(), addr[0], c.gettimeout())
conn.sendall(b'first line\\nsecond line\\nno newline')
conn.close()
with c.makefile('r', encoding='utf-8') as f:
    for line in f:
        print(repr(line))
c.close()
srv.close()
";

#[tokio::test]
async fn name_lookups_create_connection_create_server_and_makefile() -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        let out: Outcome = page.run("main.py", HELPERS).await?;
        out.expect(
            "main.py",
            "[(<AddressFamily.AF_INET: 2>, <SocketKind.SOCK_STREAM: 1>, 6, '', ('127.0.0.1', 80)), \
             (<AddressFamily.AF_INET: 2>, <SocketKind.SOCK_DGRAM: 2>, 17, '', ('127.0.0.1', 80)), \
             (<AddressFamily.AF_INET: 2>, <SocketKind.SOCK_RAW: 3>, 0, '', ('127.0.0.1', 80))]\n\
             [(<AddressFamily.AF_INET: 2>, <SocketKind.SOCK_STREAM: 1>, 6, '', ('127.0.0.1', 80))]\n\
             127.0.0.1\n\
             ('0.0.0.0', 7400) 1\n\
             ('127.0.0.1', 7400) 127.0.0.1 5.0\n\
             'first line\\n'\n'second line\\n'\n'no newline'\n",
        )
    })
    .await
}

const BLOCKED_WHILE_THE_RELAY_GOES: &str = "\
import socket

s = socket.socket()
s.bind(('', 7400))
s.listen()
print('waiting', flush=True)
try:
    s.accept()
except OSError as e:
    print('accept failed:', type(e).__name__, e.errno, e)
try:
    socket.create_connection(('lab', 7))
except OSError as e:
    print('connect failed:', e.errno)
";

const AFTER_THE_RELAY_CAME_BACK: &str = "\
import socket

with socket.create_connection(('lab', 7)) as s:
    s.sendall(b'back again')
    print(s.recv(100).decode())
";

#[tokio::test]
async fn a_relay_that_goes_away_fails_blocked_calls_and_the_page_reconnects() -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        let server = page
            .start("server.py", BLOCKED_WHILE_THE_RELAY_GOES)
            .await?;
        page.wait_listener(&server, 7400).await?;
        page.relay.stop().await?;
        // The blocked accept() fails with ENETDOWN and says why; so does every later call.
        let out = page.finish(&server, Duration::from_secs(20)).await?;
        ensure!(out.exit_code == 0, "{out}");
        ensure!(
            out.stdout
                .contains("accept failed: OSError 100 [Errno 100] Network is down")
                && out.stdout.contains("relay")
                && out.stdout.ends_with("connect failed: 100\n"),
            "{out}"
        );
        ensure!(
            page.browser.text("relay-status").await? != "connected",
            "the status still reads connected"
        );
        // After a moment the page says it in words.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let help = page.browser.text("relay-help").await?;
            if help.contains("cannot reach the Soket relay") {
                break;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "relay-help reads {help:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A relay comes back on the same address: the page reconnects by itself, and programs work again.
        let back = TestRelay::start_at(page.relay.addr, &[]).await?;
        page.browser
            .wait_text("relay-status", "connected", Duration::from_secs(30))
            .await?;
        let help = page.browser.text("relay-help").await?;
        ensure!(help.is_empty(), "relay-help still shows {help:?}");
        let out = page.run("client.py", AFTER_THE_RELAY_CAME_BACK).await?;
        ensure!(out.exit_code == 0 && out.stdout == "back again\n", "{out}");
        drop(back);
        Ok(())
    })
    .await
}
