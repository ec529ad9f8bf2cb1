//! The lab's Telnet server, spoken to by CPython's `telnetlib` and by raw sockets (option negotiation).

mod common;

use std::time::{Duration, Instant};

use soket_relay::lab::Service;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const SE: u8 = 240;
const NOP: u8 = 241;
const AYT: u8 = 246;

async fn run(script: &str) -> String {
    let relay = common::start_lab(&["--lab-idle-timeout", "5"]).await;
    let addr = relay.lab(Service::Telnet);
    let out = common::python3(script, &[&addr.ip().to_string(), &addr.port().to_string()]).await;
    out.assert_ok().to_string()
}

const SESSION: &str = r#"
import sys, telnetlib
t = telnetlib.Telnet(sys.argv[1], int(sys.argv[2]), timeout=10)
print("banner", repr(t.read_until(b"login: ", 5)))
t.write(b"learner\n")
print("prompt", repr(t.read_until(b"Password: ", 5)))
t.write(b"learner\n")
print("in", repr(t.read_until(b"lab$ ", 5)))
for command in [b"echo hello, world", b"date", b"whoami", b"fortune", b"frobnicate now", b"", b"help"]:
    t.write(command + b"\n")
    print("cmd", repr(command), repr(t.read_until(b"lab$ ", 5)))
t.write(b"quit\n")
print("end", repr(t.read_all()))
"#;

#[tokio::test]
async fn telnetlib_logs_in_and_runs_commands() {
    let out = run(SESSION).await;
    assert!(
        out.contains("Welcome to telnet.lab") && out.contains("login: \""),
        "{out}"
    );
    assert!(out.contains("prompt b'Password: '"), "{out}");
    assert!(out.contains("Hello, learner!"), "{out}");
    assert!(
        out.contains("cmd b'echo hello, world' b'hello, world\\r\\nlab$ '"),
        "{out}"
    );
    assert!(out.contains(" UTC 20"), "{out}");
    assert!(out.contains("cmd b'whoami' b'learner\\r\\nlab$ '"), "{out}");
    // A fortune with a quote in it is shown in double quotes by repr().
    assert!(
        out.contains("cmd b'fortune' b'") || out.contains("cmd b'fortune' b\""),
        "{out}"
    );
    assert!(
        out.contains("b'frobnicate: command not found\\r\\nlab$ '"),
        "{out}"
    );
    assert!(
        out.contains("cmd b'' b'lab$ '"),
        "an empty line just prompts again: {out}"
    );
    assert!(
        out.contains("\\r\\n  echo TEXT     prints TEXT back\\r\\n"),
        "{out}"
    );
    assert!(
        out.contains("end b'Goodbye!\\r\\n'"),
        "quit closes the connection: {out}"
    );
}

const WRONG: &str = r#"
import sys, telnetlib
t = telnetlib.Telnet(sys.argv[1], int(sys.argv[2]), timeout=10)
for user, password in [(b"learner", b"wrong"), (b"root", b"learner"), (b"learner", b"Learner")]:
    t.read_until(b"login: ", 5)
    t.write(user + b"\n")
    t.read_until(b"Password: ", 5)
    t.write(password + b"\n")
print("end", repr(t.read_all()))
"#;

#[tokio::test]
async fn telnetlib_wrong_passwords_close_after_three() {
    let out = run(WRONG).await;
    assert!(
        out.contains(
            "end b'\\r\\nLogin incorrect\\r\\n\\r\\nToo many failed logins, goodbye.\\r\\n'"
        ),
        "{out}"
    );
}

const OPTIONS: &str = r#"
import sys, telnetlib
from telnetlib import IAC, DO, DONT, WILL, WONT, ECHO, SGA
seen = []
def negotiate(sock, cmd, opt):
    name = {DO: "DO", DONT: "DONT", WILL: "WILL", WONT: "WONT"}.get(cmd, repr(cmd))
    seen.append("%s %d" % (name, opt[0] if opt else -1))
    # Agree to what the server offers, as the telnet command does.
    if cmd == WILL and opt in (ECHO, SGA):
        sock.sendall(IAC + DO + opt)
    elif cmd == WONT:
        sock.sendall(IAC + DONT + opt)
t = telnetlib.Telnet()
t.set_option_negotiation_callback(negotiate)
t.open(sys.argv[1], int(sys.argv[2]), timeout=10)
t.read_until(b"login: ", 5)
print("at login", seen)
t.write(b"learner\n")
t.read_until(b"Password: ", 5)
print("at password", seen)
t.write(b"learner\n")
print("in", repr(t.read_until(b"lab$ ", 5)))
print("after", seen)
t.write(b"echo still fine\n")
print("echo", repr(t.read_until(b"lab$ ", 5)))
print("finally", seen)
"#;

#[tokio::test]
async fn telnetlib_sees_the_options_offered() {
    let out = run(OPTIONS).await;
    assert!(out.contains("at login ['WILL 3']"), "{out}");
    assert!(out.contains("at password ['WILL 3', 'WILL 1']"), "{out}");
    assert!(
        out.contains("after ['WILL 3', 'WILL 1', 'WONT 1']"),
        "{out}"
    );
    assert!(
        out.contains("echo b'still fine\\r\\nlab$ '"),
        "the server does not echo: {out}"
    );
    assert!(
        out.contains("finally ['WILL 3', 'WILL 1', 'WONT 1']"),
        "no more negotiation: {out}"
    );
}

/// Reads until `pattern` shows up (or 5 s pass, or the server closes); returns everything read.
async fn read_until(socket: &mut TcpStream, pattern: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !got.windows(pattern.len()).any(|w| w == pattern) {
        let mut buf = [0; 4096];
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    got
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

async fn connect(relay: &common::TestRelay) -> TcpStream {
    TcpStream::connect(relay.lab(Service::Telnet))
        .await
        .expect("connect")
}

async fn log_in(socket: &mut TcpStream) -> Vec<u8> {
    let mut seen = read_until(socket, b"login: ").await;
    socket.write_all(b"learner\r\n").await.expect("write");
    seen.extend(read_until(socket, b"Password: ").await);
    socket.write_all(b"learner\r\n").await.expect("write");
    seen.extend(read_until(socket, b"lab$ ").await);
    seen
}

#[tokio::test]
async fn unknown_options_are_refused_once_and_states_in_effect_not_acknowledged() {
    let relay = common::start_lab(&["--lab-idle-timeout", "5"]).await;
    let mut socket = connect(&relay).await;
    let greeting = read_until(&mut socket, b"login: ").await;
    assert!(greeting.starts_with(&[IAC, WILL, 3]), "{greeting:?}");
    #[rustfmt::skip]
    let requests = [
        IAC, DO, 99, IAC, DO, 99,    // unknown option of the server's: one WONT
        IAC, WILL, 98, IAC, WILL, 98, // unknown option of the client's: one DONT
        IAC, DONT, 97, IAC, WONT, 97, // already off: no answer
        IAC, DO, 3, IAC, DO, 3,       // SGA, offered: agreed, then already on: no answer
        IAC, DO, 1,                   // ECHO outside a password: refused
    ];
    socket.write_all(&requests).await.expect("write");
    socket.write_all(b"learner\r\n").await.expect("write");
    let answers = read_until(&mut socket, b"Password: ").await;
    assert_eq!(count(&answers, &[IAC, WONT, 99]), 1, "{answers:?}");
    assert_eq!(count(&answers, &[IAC, DONT, 98]), 1, "{answers:?}");
    assert_eq!(count(&answers, &[IAC, WONT, 1]), 1, "{answers:?}");
    assert_eq!(
        count(&answers, &[IAC, WILL, 1]),
        1,
        "offered for the password: {answers:?}"
    );
    assert_eq!(count(&answers, &[IAC, WILL, 3]), 0, "{answers:?}");
    assert!(
        !answers.windows(3).any(|w| w[0] == IAC && w[2] == 97),
        "nothing about option 97: {answers:?}"
    );
    // The client agrees to ECHO; after the password the server takes it back, once.
    socket.write_all(&[IAC, DO, 1]).await.expect("write");
    socket.write_all(b"learner\r\n").await.expect("write");
    let after = read_until(&mut socket, b"lab$ ").await;
    assert_eq!(count(&after, &[IAC, WONT, 1]), 1, "{after:?}");
    socket
        .write_all(&[IAC, DONT, 1, IAC, DONT, 1])
        .await
        .expect("write");
    socket.write_all(b"whoami\r\n").await.expect("write");
    let last = read_until(&mut socket, b"lab$ ").await;
    assert_eq!(last, b"learner\r\nlab$ ", "nothing acknowledged twice");
}

#[tokio::test]
async fn iac_sequences_are_stripped_and_iac_iac_is_data() {
    let relay = common::start_lab(&["--lab-idle-timeout", "5"]).await;
    let mut socket = connect(&relay).await;
    log_in(&mut socket).await;
    let mut line = b"ec".to_vec();
    line.extend([IAC, SB, 24, 0]);
    line.extend(b"vt100");
    line.extend([IAC, SE]);
    line.extend(b"ho a");
    line.extend([IAC, IAC, IAC, NOP]);
    line.extend(b"b\r\n");
    socket.write_all(&line).await.expect("write");
    let got = read_until(&mut socket, b"lab$ ").await;
    assert_eq!(
        got,
        [b"a".as_slice(), &[IAC, IAC], b"b\r\nlab$ "].concat(),
        "a 255 data byte is sent doubled"
    );

    // CR NUL and a lone LF end lines too; BS erases; AYT is answered.
    socket
        .write_all(b"whoamx\x08i\r\0echo x\n")
        .await
        .expect("write");
    let got = read_until(&mut socket, b"x\r\nlab$ ").await;
    assert_eq!(got, b"learner\r\nlab$ x\r\nlab$ ");
    socket.write_all(&[IAC, AYT]).await.expect("write");
    let got = read_until(&mut socket, b"still here]\r\n").await;
    assert!(got.ends_with(b"[lab: yes, still here]\r\n"), "{got:?}");
}

#[tokio::test]
async fn an_endless_subnegotiation_is_dropped_with_its_connection() {
    let relay = common::start_lab(&["--lab-idle-timeout", "5"]).await;
    let mut socket = connect(&relay).await;
    read_until(&mut socket, b"login: ").await;
    let start = Instant::now();
    let mut junk = vec![IAC, SB, 24];
    junk.extend(std::iter::repeat_n(b'x', 2000));
    socket.write_all(&junk).await.expect("write");
    let got = read_until(&mut socket, b"never comes").await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "closed at once, not by the idle timeout"
    );
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains("Subnegotiation over 1024 bytes, goodbye."),
        "{text:?}"
    );
    assert!(!text.contains("xxx"), "{text:?}");
}

#[tokio::test]
async fn long_lines_are_refused_and_quiet_clients_dropped() {
    let relay = common::start_lab(&["--lab-idle-timeout", "2"]).await;
    let mut socket = connect(&relay).await;
    log_in(&mut socket).await;
    let long = [vec![b'y'; 600], b"\r\n".to_vec()].concat();
    socket.write_all(&long).await.expect("write");
    let got = read_until(&mut socket, b"lab$ ").await;
    assert_eq!(got, b"line too long (at most 512 bytes)\r\nlab$ ");

    let start = Instant::now();
    let got = read_until(&mut socket, b"never comes").await;
    let waited = start.elapsed();
    assert!(
        String::from_utf8_lossy(&got).contains("Idle for too long, goodbye."),
        "{got:?}"
    );
    assert!(
        waited > Duration::from_millis(1500) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}
