//! The lab's web server (port 80) with clients nobody here wrote: CPython's `http.client`, `urllib.request`
//! and `xmlrpc.client`, and `curl`; raw sockets for what those never send (a broken request line, silence,
//! headers a byte at a time); and one request through a session, as a page sends it.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use soket_relay::lab::Service;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn lab() -> (TestRelay, SocketAddr) {
    let relay = start_lab(&["--lab-idle-timeout", "2"]).await;
    let addr = relay.lab(Service::Http);
    (relay, addr)
}

async fn python(script: &str, addr: SocketAddr) -> String {
    let out = python3(script, &[&addr.ip().to_string(), &addr.port().to_string()]).await;
    out.assert_ok().to_string()
}

/// Runs `curl -sS` with `args`, the URL being `http://ADDR` + `path`; returns stdout.
async fn curl(addr: SocketAddr, path: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .arg(format!("http://{addr}{path}"))
        .kill_on_drop(true)
        .output()
        .await
        .expect("curl runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "curl failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sends `request` on a fresh connection and reads until the server closes.
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    String::from_utf8_lossy(&exchange(addr, request).await).into_owned()
}

const HTTP_CLIENT: &str = r#"
import sys, http.client
conn = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=10)
for path, kind in [("/", "text/html"), ("/hello.txt", "text/plain"), ("/links.html", "text/html"),
                   ("/table.html", "text/html"), ("/api/time", "application/json")]:
    conn.request("GET", path)          # one connection for all: keep-alive
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200, (path, r.status)
    assert r.getheader("Content-Type").startswith(kind), (path, r.getheader("Content-Type"))
    assert int(r.getheader("Content-Length")) == len(body), path
    print(path, len(body), body.decode()[:1500].replace("\n", " "))
conn.request("HEAD", "/hello.txt")
r = conn.getresponse()
assert r.status == 200 and r.read() == b"" and int(r.getheader("Content-Length")) > 0
conn.request("GET", "/nowhere")
r = conn.getresponse()
print("nowhere", r.status, r.read().decode().strip())
conn.request("GET", "/RPC2")
r = conn.getresponse(); r.read()
print("RPC2 GET", r.status, r.getheader("Allow"))
"#;

#[tokio::test]
async fn http_client_reads_pages_on_one_keep_alive_connection() {
    let (_relay, addr) = lab().await;
    let out = python(HTTP_CLIENT, addr).await;
    assert!(out.contains("<title>The Soket lab</title>"), "{out}");
    assert!(
        out.contains("/hello.txt") && out.contains("Hello from the lab!"),
        "{out}"
    );
    assert!(out.contains("<td>gopher</td><td>70</td>"), "{out}");
    assert!(out.contains(r#""unix":"#), "{out}");
    assert!(out.contains("nowhere 404 404 Not Found"), "{out}");
    assert!(out.contains("RPC2 GET 405 POST"), "{out}");
}

const URLLIB: &str = r#"
import sys, json, urllib.request, urllib.error
base = f"http://{sys.argv[1]}:{sys.argv[2]}"
t = json.load(urllib.request.urlopen(base + "/api/time", timeout=10))
assert isinstance(t["unix"], int) and t["iso"].endswith("Z"), t
quotes = json.load(urllib.request.urlopen(base + "/api/quotes", timeout=10))
print("quotes", len(quotes), quotes[0]["id"], quotes[0]["author"])
q = json.load(urllib.request.urlopen(base + "/api/quotes/2", timeout=10))
assert q == quotes[1], q
for path in ["/api/quotes/99", "/api/quotes/0", "/api/quotes/x", "/status/404", "/status/503"]:
    try:
        urllib.request.urlopen(base + path, timeout=10)
        print(path, "no error")
    except urllib.error.HTTPError as e:
        print(path, "HTTPError", e.code, e.read().decode().strip())
r = urllib.request.urlopen(base + "/redirect", timeout=10)
print("redirect", r.status, r.url, r.read().decode().splitlines()[0])
r = urllib.request.urlopen(base + "/status/201", timeout=10)
print("201", r.status)
data = b'{"lesson": 3}'
req = urllib.request.Request(base + "/api/echo?name=lab&x=1&x=2", data=data, method="PUT",
                             headers={"Content-Type": "application/json", "X-Lesson": "http"})
e = json.load(urllib.request.urlopen(req, timeout=10))
assert e["method"] == "PUT" and e["path"] == "/api/echo" and e["query"] == "name=lab&x=1&x=2", e
assert e["args"] == {"name": "lab", "x": ["1", "2"]}, e["args"]
assert e["headers"]["x-lesson"] == "http" and e["headers"]["content-type"] == "application/json", e
assert e["body"] == '{"lesson": 3}' and e["body_length"] == len(data), e
print("echo ok")
"#;

#[tokio::test]
async fn urllib_gets_json_errors_redirects_and_its_own_request_back() {
    let (_relay, addr) = lab().await;
    let out = python(URLLIB, addr).await;
    assert!(out.contains("quotes 5 1 Jon Postel"), "{out}");
    assert!(
        out.contains(r#"/api/quotes/99 HTTPError 404 {"error":"no quote \"99\""#),
        "{out}"
    );
    assert!(out.contains("/api/quotes/0 HTTPError 404"), "{out}");
    assert!(out.contains("/api/quotes/x HTTPError 404"), "{out}");
    assert!(
        out.contains("/status/404 HTTPError 404 404 Not Found"),
        "{out}"
    );
    assert!(
        out.contains("/status/503 HTTPError 503 503 Service Unavailable"),
        "{out}"
    );
    assert!(out.contains("/hello.txt Hello from the lab!"), "{out}");
    assert!(out.contains("redirect 200 http://"), "{out}");
    assert!(out.contains("201 201"), "{out}");
    assert!(out.contains("echo ok"), "{out}");
}

const XMLRPC: &str = r#"
import sys, xmlrpc.client, datetime
s = xmlrpc.client.ServerProxy(f"http://{sys.argv[1]}:{sys.argv[2]}/RPC2", allow_none=True)
print("add", s.add(2, 3), s.add(1.5, 2), s.add(-7, 7))
value = {"name": "lab", "ports": [7, 13, 80], "ok": True, "pi": 3.25, "none": None,
         "nested": {"list": [[], {}, ["<&>"]]}, "text": "naïve < & >",
         "raw": xmlrpc.client.Binary(b"\x00\x01\xff"),
         "when": xmlrpc.client.DateTime("20240301T12:00:00")}
back = s.echo(value)
assert back == value, back
print("echo round trip ok")
methods = s.system.listMethods()
print("methods", " ".join(methods))
print("help", s.system.methodHelp("add"))
print("time", s.lab.time())
print("quote", s.lab.quote())
for call in [lambda: s.no_such_method(1), lambda: s.add(1), lambda: s.add("a", "b"),
             lambda: s.echo(), lambda: s.lab.time(1)]:
    try:
        call()
        print("no fault")
    except xmlrpc.client.Fault as f:
        print("fault", f.faultCode, f.faultString)
"#;

#[tokio::test]
async fn xmlrpc_client_calls_methods_and_gets_faults() {
    let (_relay, addr) = lab().await;
    let out = python(XMLRPC, addr).await;
    assert!(out.contains("add 5 3.5 0"), "{out}");
    assert!(out.contains("echo round trip ok"), "{out}");
    assert!(
        out.contains("methods add echo lab.time lab.quote system.listMethods system.methodHelp"),
        "{out}"
    );
    assert!(out.contains("help add(a, b)"), "{out}");
    assert!(
        out.contains("time 20") && out.contains("Z\nquote "),
        "{out}"
    );
    assert!(
        out.contains("fault -32601 no method \"no_such_method\""),
        "{out}"
    );
    assert_eq!(out.matches("fault -32602 usage: ").count(), 4, "{out}");
    assert!(!out.contains("no fault"), "{out}");
}

const XMLRPC_BROKEN: &str = r#"
import sys, http.client, xmlrpc.client
def post(body):
    conn = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=10)
    conn.request("POST", "/RPC2", body, {"Content-Type": "text/xml"})
    r = conn.getresponse()
    text = r.read()
    assert r.status == 200 and r.getheader("Content-Type") == "text/xml", (r.status, text)
    try:
        print("result", xmlrpc.client.loads(text))
    except xmlrpc.client.Fault as f:
        print("fault", f.faultCode)
post(b"<methodCall><methodName>add</methodName>")                    # ends early
post(b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'>]><methodCall/>")
post(b"<methodCall><methodName>echo</methodName><params><param><value>&bogus;</value></param></params></methodCall>")
post(b"\xff\xfe not utf-8")
post(b"<hello/>")                                                    # well-formed, not a call
post(b"<methodCall><methodName>echo</methodName><params><param><value><int>x</int></value></param></params></methodCall>")
deep = "<value><array><data>" * 40 + "</data></array></value>" * 40
post(("<methodCall><methodName>echo</methodName><params><param>" + deep + "</param></params></methodCall>").encode())
post(b"<methodCall><methodName>echo</methodName><params><param><value>bare &amp; &#65;</value></param></params></methodCall>")
"#;

#[tokio::test]
async fn broken_xmlrpc_calls_get_parse_and_request_faults() {
    let (_relay, addr) = lab().await;
    let out = python(XMLRPC_BROKEN, addr).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "fault -32700",
            "fault -32700",
            "fault -32700",
            "fault -32700",
            "fault -32600",
            "fault -32600",
            "fault -32700",
            "result (('bare & A',), None)",
        ],
        "{out}"
    );
}

#[tokio::test]
async fn curl_sees_headers_redirects_and_the_body_limit() {
    let (_relay, addr) = lab().await;
    let head = curl(addr, "/hello.txt", &["-i"]).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: text/plain; charset=utf-8\r\n"),
        "{head}"
    );
    let body = head.split("\r\n\r\n").nth(1).expect("a body");
    assert!(
        lower.contains(&format!("content-length: {}\r\n", body.len())),
        "{head}"
    );

    let redirect = curl(addr, "/redirect", &["-i"]).await;
    assert!(redirect.starts_with("HTTP/1.1 302 Found\r\n"), "{redirect}");
    assert!(
        redirect
            .to_ascii_lowercase()
            .contains("location: /hello.txt\r\n"),
        "{redirect}"
    );
    let followed = curl(addr, "/redirect", &["-L"]).await;
    assert!(followed.starts_with("Hello from the lab!"), "{followed}");

    let echo = curl(addr, "/api/echo", &["-d", "a=1", "-H", "X-Test: yes"]).await;
    assert!(
        echo.contains(r#""method":"POST""#) && echo.contains(r#""body":"a=1""#),
        "{echo}"
    );
    assert!(echo.contains(r#""x-test":"yes""#), "{echo}");

    // 100 KiB: over the 64 KiB limit, read and refused with 413.
    let big = std::env::temp_dir().join(format!("lab-http-big-{}", std::process::id()));
    std::fs::write(&big, vec![b'x'; 100 * 1024]).expect("write the big body");
    let code = curl(
        addr,
        "/api/echo",
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--data-binary",
            &format!("@{}", big.display()),
        ],
    )
    .await;
    let _ = std::fs::remove_file(&big);
    assert_eq!(code, "413");
    // Exactly the limit is fine.
    let limit = curl(
        addr,
        "/api/echo",
        &["--data-binary", &"y".repeat(64 * 1024)],
    )
    .await;
    assert!(
        limit.contains(r#""body_length":65536"#),
        "{}",
        &limit[..200]
    );
}

#[tokio::test]
async fn an_announced_huge_body_is_refused_before_it_is_sent() {
    let (_relay, addr) = lab().await;
    let reply = raw(
        addr,
        b"POST /RPC2 HTTP/1.1\r\nHost: lab\r\nContent-Length: 50000000\r\n\r\n",
    )
    .await;
    assert!(
        reply.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
        "{reply}"
    );
    // Chunked, so no length is announced: the limit is found while reading.
    let mut request =
        b"POST /api/echo HTTP/1.1\r\nHost: lab\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..5 {
        request.extend_from_slice(b"4000\r\n");
        request.extend_from_slice(&[b'z'; 0x4000]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(
        b"0\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n",
    );
    let reply = raw(addr, &request).await;
    assert!(
        reply.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
        "{reply}"
    );
    // The whole body was read, so the connection went on to the next request.
    assert!(reply.contains("Hello from the lab!"), "{reply}");
}

#[tokio::test]
async fn a_malformed_request_gets_400() {
    let (_relay, addr) = lab().await;
    for request in [
        &b"HELLO THERE\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /\x01 HTTP/1.1\r\nHost: lab\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n",
    ] {
        let reply = raw(addr, request).await;
        assert!(
            reply.starts_with("HTTP/1.1 400 Bad Request\r\n") || reply.starts_with("HTTP/1.1 505"),
            "{:?} got {reply:?}",
            String::from_utf8_lossy(request)
        );
    }
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: lab\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let reply = raw(addr, huge.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 431 "), "{reply:?}");
}

/// Waits for the server to close `socket` (reading and dropping whatever comes); returns how long it took.
async fn closed_after(socket: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut buf = [0; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the server kept the connection open for 10 s"),
        }
    }
}

#[tokio::test]
async fn quiet_slow_and_idle_clients_are_dropped() {
    let (_relay, addr) = lab().await;
    // Connects and says nothing.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let waited = closed_after(&mut silent).await;
    assert!(waited >= Duration::from_millis(1500), "{waited:?}");

    // Sends its headers a byte every 300 ms, never quiet for the idle timeout, but never done.
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    let start = Instant::now();
    let trickle = async {
        for byte in b"GET / HTTP/1.1\r\nX-Slow: "
            .iter()
            .chain([b'a'; 100].iter())
        {
            if slow.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(20), trickle).await;
    let waited = start.elapsed() + closed_after(&mut slow).await;
    assert!(waited < Duration::from_secs(8), "{waited:?}");

    // Keep-alive: one answer, then silence.
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: lab\r\n\r\n")
        .await
        .expect("send");
    let waited = closed_after(&mut idle).await;
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_session_reaches_www_lab_on_port_80() {
    let relay = start(&[]).await;
    let client = session(&relay).await;
    let mut conn = client
        .connect_tcp("www.lab", 80)
        .await
        .expect("connect www.lab:80");
    conn.write_all(b"GET /api/quotes/1 HTTP/1.0\r\nHost: www.lab\r\n\r\n")
        .await
        .expect("write");
    let reply = conn.read_to_end().await.expect("read");
    let reply = String::from_utf8(reply).expect("utf-8");
    assert!(
        reply.starts_with("HTTP/1.0 200 OK\r\n") || reply.starts_with("HTTP/1.1 200 OK\r\n"),
        "{reply}"
    );
    assert!(
        reply.contains(r#""author":"Jon Postel, RFC 761""#),
        "{reply}"
    );
}
