//! The lab's Gopher server (port 70) with `nc` and a CPython raw-socket client, and raw sockets for an
//! unknown selector, an over-long one, and silence.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use soket_relay::lab::Service;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn lab() -> (TestRelay, SocketAddr) {
    let relay = start_lab(&["--lab-idle-timeout", "2"]).await;
    let addr = relay.lab(Service::Gopher);
    (relay, addr)
}

/// Sends `request` on a fresh connection and reads until the server closes.
async fn fetch(addr: SocketAddr, request: &[u8]) -> String {
    String::from_utf8(exchange(addr, request).await).expect("utf-8")
}

#[tokio::test]
async fn nc_fetches_the_root_menu() {
    let (_relay, addr) = lab().await;
    let mut child = tokio::process::Command::new("nc")
        .args(["-N", &addr.ip().to_string(), &addr.port().to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("nc runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"\r\n").await.expect("write to nc");
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("nc ended within 10 s")
        .expect("nc output");
    let menu = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        menu.starts_with("iWelcome to the lab's Gopher server"),
        "{menu}"
    );
    assert!(
        menu.contains("\r\n0About this server\t/about.txt\tgopher.lab\t70\r\n"),
        "{menu}"
    );
    assert!(
        menu.contains("\r\n1The protocols of the course\t/protocols\tgopher.lab\t70\r\n"),
        "{menu}"
    );
    assert!(menu.ends_with("\r\n.\r\n"), "{menu}");
    // Every line but the last is a menu item of four fields.
    for line in menu.trim_end_matches(".\r\n").split_terminator("\r\n") {
        assert_eq!(line.split('\t').count(), 4, "{line:?}");
    }
}

const CLIENT: &str = r#"
import sys, socket
host, port = sys.argv[1], int(sys.argv[2])

def fetch(selector):
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(selector.encode() + b"\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data.decode()

def menu(selector):
    lines = fetch(selector).split("\r\n")
    assert lines[-2:] == [".", ""], lines[-2:]
    return [(l[0], *l[1:].split("\t")) for l in lines[:-2]]

def text(selector):
    raw = fetch(selector)
    assert raw.endswith("\r\n.\r\n"), raw[-20:]
    lines = raw.split("\r\n")[:-2]
    return raw, "\n".join(l[1:] if l.startswith("..") else l for l in lines)

root = menu("")
for kind, display, selector, h, p in root:
    print(kind, display, selector, h, p)
    if kind == "0":
        raw, body = text(selector)
        print("  ", body.splitlines()[0])
sub = [item for item in root if item[0] == "1"][0]
for kind, display, selector, h, p in menu(sub[2]):
    print("sub", kind, display, selector)
raw, body = text("/gopher.txt")
print("raw has", "\r\n..A line" in raw, "text has", "\n.A line of text" in body)
print("gopher+", text("/hello.txt\t+")[1])
"#;

#[tokio::test]
async fn a_python_socket_client_walks_the_menus_and_reads_files() {
    let (_relay, addr) = lab().await;
    let out = python3(CLIENT, &[&addr.ip().to_string(), &addr.port().to_string()]).await;
    let out = out.assert_ok();
    assert!(
        out.contains("0 Hello /hello.txt gopher.lab 70\n   Hello from the lab's Gopher server!"),
        "{out}"
    );
    assert!(
        out.contains("   This is the Soket lab's Gopher server."),
        "{out}"
    );
    assert!(
        out.contains("sub 0 HTTP (port 80) /protocols/http.txt"),
        "{out}"
    );
    assert!(out.contains("sub 1 Back to the main menu \n"), "{out}");
    assert!(out.contains("raw has True text has True"), "{out}");
    assert!(
        out.contains("gopher+ Hello from the lab's Gopher server!"),
        "{out}"
    );
}

#[tokio::test]
async fn unknown_and_over_long_selectors_get_an_error_item() {
    let (_relay, addr) = lab().await;
    let reply = fetch(addr, b"/no/such/thing\r\n").await;
    assert_eq!(
        reply,
        "3there is no \"/no/such/thing\" here\t\tgopher.lab\t70\r\n.\r\n"
    );
    // 255 characters is a selector; 256 is one too many, and so is a line of any length.
    let longest = format!("/{}\r\n", "a".repeat(254));
    assert!(fetch(addr, longest.as_bytes())
        .await
        .starts_with("3there is no"));
    for n in [256, 5000] {
        let long = format!("/{}\r\n", "a".repeat(n - 1));
        let reply = fetch(addr, long.as_bytes()).await;
        assert_eq!(
            reply, "3the selector is too long\t\tgopher.lab\t70\r\n.\r\n",
            "{n}"
        );
    }
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_dropped() {
    let (_relay, addr) = lab().await;
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    let start = Instant::now();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut reply))
        .await
        .expect("the server closed within 10 s")
        .expect("read");
    assert!(reply.is_empty(), "{reply:?}");
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_session_reaches_gopher_lab_on_port_70() {
    let relay = start(&[]).await;
    let client = session(&relay).await;
    let mut conn = client
        .connect_tcp("gopher.lab", 70)
        .await
        .expect("connect gopher.lab:70");
    conn.write_all(b"/hello.txt\r\n").await.expect("write");
    let reply = conn.read_to_end().await.expect("read");
    assert_eq!(reply, b"Hello from the lab's Gopher server!\r\n.\r\n");
}
