//! The lab network as a session sees it: names, the lab address, routing to the services, per-session
//! state, and the classic small services on TCP and UDP — through a real relay with the native client as
//! the page, and with `nc` and CPython as clients on the relay host.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::*;
use soket_client::{Error, Failure};
use soket_protocol::errno;
use soket_relay::lab::{Service, LAB_ADDR};

#[tokio::test]
async fn every_lab_name_resolves_to_the_lab_address_and_nothing_else_under_lab_does() {
    let relay = start(&[]).await;
    let client = session(&relay).await;
    for name in soket_relay::lab::HOSTS {
        let addrs = client.resolve(name).await.expect(name);
        assert_eq!(addrs, vec![IpAddr::V4(LAB_ADDR)], "{name}");
    }
    assert_eq!(
        client.resolve("MAIL.LAB.").await.expect("case and dot"),
        vec![IpAddr::V4(LAB_ADDR)]
    );
    match client.resolve("other.lab").await {
        Err(Error::Errno(Failure { errno: e, .. })) => assert_eq!(e, errno::EAI_NONAME),
        other => panic!("other.lab resolved: {other:?}"),
    }
}

#[tokio::test]
async fn echo_on_the_lab_answers_through_the_session_with_the_lab_as_peer() {
    let relay = start(&[]).await;
    let client = session(&relay).await;
    let mut conn = client.connect_tcp("lab", 7).await.expect("connect lab:7");
    assert_eq!(conn.peer, SocketAddr::new(IpAddr::V4(LAB_ADDR), 7));
    conn.write_all(b"hello lab\n").await.expect("write");
    assert_eq!(conn.read_exact(10).await.expect("echo"), b"hello lab\n");
    // By address as well as by name.
    let mut conn = client.connect_tcp("192.0.2.1", 13).await.expect("daytime");
    let text = conn.read_to_end().await.expect("daytime");
    let text = String::from_utf8(text).expect("ascii");
    assert!(text.ends_with("\r\n") && text.contains(" UTC "), "{text:?}");
}

#[tokio::test]
async fn a_lab_port_without_a_service_is_refused() {
    let relay = start(&[]).await;
    let client = session(&relay).await;
    match client.connect_tcp("lab", 8080).await {
        Err(Error::Errno(Failure { errno: e, .. })) => assert_eq!(e, errno::ECONNREFUSED),
        other => panic!("lab:8080 connected: {:?}", other.map(|c| c.peer)),
    }
}

#[tokio::test]
async fn the_lab_is_not_subject_to_the_allow_list_and_opens_no_door_to_the_host() {
    // No --allow at all: the lab still answers, while 127.0.0.1 stays the session's own host.
    let relay = start(&[]).await;
    let client = session(&relay).await;
    client.connect_tcp("www.lab", 7).await.expect("lab:7");
    let real_echo = relay.relay.lab().tcp_addr(Service::Echo).expect("started");
    match client.connect_tcp("127.0.0.1", real_echo.port()).await {
        Err(Error::Errno(Failure { errno: e, .. })) => assert_eq!(e, errno::ECONNREFUSED),
        other => panic!(
            "the lab's real port was reachable as localhost: {:?}",
            other.map(|c| c.peer)
        ),
    }
}

#[tokio::test]
async fn udp_services_answer_from_the_lab_address() {
    let relay = start(&[]).await;
    let client = session(&relay).await;
    let mut udp = client.bind_udp("0.0.0.0", 0).await.expect("bind");
    udp.send_to("lab", 7, b"ping").await.expect("send echo");
    let (bytes, from) = tokio::time::timeout(Duration::from_secs(5), udp.recv_from())
        .await
        .expect("an echo within 5 s")
        .expect("recv");
    assert_eq!(&bytes[..], b"ping");
    assert_eq!(from, SocketAddr::new(IpAddr::V4(LAB_ADDR), 7));

    udp.send_to("lab", 19, b"").await.expect("send chargen");
    let (bytes, from) = tokio::time::timeout(Duration::from_secs(5), udp.recv_from())
        .await
        .expect("chargen within 5 s")
        .expect("recv");
    assert!(bytes.len() > 72 && bytes.len() <= 512, "{}", bytes.len());
    assert_eq!(from.port(), 19);
}

#[tokio::test]
async fn udp_services_answer_a_relay_bound_to_another_address() {
    // The sessions' sockets are bound to --bind-ip, so their datagrams reach the lab from that address;
    // the lab answers it (the relay tells it with `Lab::sending_from`).
    let relay = start(&["--bind-ip", "127.0.0.2"]).await;
    let client = session(&relay).await;
    let mut udp = client.bind_udp("0.0.0.0", 0).await.expect("bind");
    udp.send_to("lab", 7, b"ping").await.expect("send echo");
    let (bytes, from) = tokio::time::timeout(Duration::from_secs(5), udp.recv_from())
        .await
        .expect("an echo within 5 s")
        .expect("recv");
    assert_eq!(&bytes[..], b"ping");
    assert_eq!(from, SocketAddr::new(IpAddr::V4(LAB_ADDR), 7));
}

/// What `nc` reads from `addr` with nothing to send (it gives up after 5 s of silence).
async fn nc(addr: SocketAddr) -> Vec<u8> {
    let out = tokio::process::Command::new("nc")
        .args(["-w", "5", &addr.ip().to_string(), &addr.port().to_string()])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("nc runs");
    out.stdout
}

#[tokio::test]
async fn a_stranger_on_the_relay_host_is_closed_unless_the_operator_lets_local_clients_in() {
    let relay = start(&[]).await;
    let real = relay
        .relay
        .lab()
        .tcp_addr(Service::Daytime)
        .expect("started");
    let got = nc(real).await;
    assert!(got.is_empty(), "a stranger got {got:?}");

    let relay = start_lab(&[]).await;
    let real = relay.lab(Service::Daytime);
    let got = nc(real).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains(" UTC "), "nc got {text:?}");
}

#[tokio::test]
async fn cpython_talks_to_echo_chargen_and_qotd() {
    let relay = start_lab(&["--lab-idle-timeout", "2"]).await;
    let port = |s| relay.lab(s).port().to_string();
    let script = r#"
import socket, sys
host = "127.0.0.1"
echo, chargen, qotd = (int(p) for p in sys.argv[1:4])
with socket.create_connection((host, echo)) as s:
    s.sendall(b"x" * 100000)
    got = b""
    while len(got) < 100000:
        got += s.recv(65536)
    assert got == b"x" * 100000
with socket.create_connection((host, chargen)) as s:
    data = b""
    while len(data) < 740:
        data += s.recv(4096)
    lines = data.split(b"\r\n")
    assert lines[1] == lines[0][1:] + bytes([lines[0][-1] + 1]), lines[:2]
with socket.create_connection((host, qotd)) as s:
    quote = b""
    while chunk := s.recv(1024):
        quote += chunk
    print(quote.decode().strip())
"#;
    let out = python3(
        script,
        &[
            &port(Service::Echo),
            &port(Service::Chargen),
            &port(Service::Qotd),
        ],
    )
    .await;
    assert!(out.assert_ok().contains('"'), "{}", out.stdout);
}

#[tokio::test]
async fn a_quiet_echo_client_is_dropped_after_the_idle_timeout() {
    let relay = start(&["--lab-idle-timeout", "1"]).await;
    let client = session(&relay).await;
    let mut conn = client.connect_tcp("lab", 7).await.expect("connect");
    let end = tokio::time::timeout(Duration::from_secs(10), conn.read())
        .await
        .expect("the lab closed the connection within 10 s");
    assert!(matches!(end, Ok(None)), "{end:?}");
}

/// Reads one FTP reply (the last line of a multi-line one) from `conn`.
async fn ftp_reply(conn: &mut soket_client::TcpConn, pending: &mut Vec<u8>) -> String {
    loop {
        if let Some(end) = pending.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = pending.drain(..end + 2).collect();
            let line = String::from_utf8_lossy(&line).trim_end().to_owned();
            if line.len() >= 4 && line.as_bytes()[3] == b' ' {
                return line;
            }
            continue;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(5), conn.read())
            .await
            .expect("an FTP reply within 5 s")
            .expect("read")
            .expect("the control connection stays open");
        pending.extend_from_slice(&chunk);
    }
}

#[tokio::test]
async fn an_ftp_data_connection_leaves_no_registration_behind() {
    let relay = start(&[]).await;
    let client = session(&relay).await;
    let mut control = client.connect_tcp("ftp.lab", 21).await.expect("connect");
    let mut pending = Vec::new();
    assert!(ftp_reply(&mut control, &mut pending)
        .await
        .starts_with("220"));
    for (command, code) in [("USER anonymous\r\n", "331"), ("PASS x\r\n", "230")] {
        control.write_all(command.as_bytes()).await.expect("write");
        assert!(ftp_reply(&mut control, &mut pending)
            .await
            .starts_with(code));
    }
    control.write_all(b"EPSV\r\n").await.expect("write");
    let reply = ftp_reply(&mut control, &mut pending).await;
    let port: u16 = reply
        .split("|||")
        .nth(1)
        .and_then(|rest| rest.split('|').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {reply:?}"));
    let mut data = client
        .connect_tcp("ftp.lab", port)
        .await
        .expect("data port");
    control
        .write_all(b"RETR /pub/hello.txt\r\n")
        .await
        .expect("write");
    let text = data.read_to_end().await.expect("file");
    assert!(!text.is_empty());
    assert!(ftp_reply(&mut control, &mut pending)
        .await
        .starts_with("150"));
    assert!(ftp_reply(&mut control, &mut pending)
        .await
        .starts_with("226"));
    assert_eq!(relay.relay.lab().unclaimed(), 0);
}
