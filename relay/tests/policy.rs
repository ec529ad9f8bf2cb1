//! The egress policy as a page meets it: which destinations a session may reach, what the refusal says,
//! and that a refused destination is never dialled.
//!
//! Loopback is tested for real: listeners on the relay host count the connections they get, and must
//! get none. Everything beyond loopback goes through a [`RecordingNetwork`], which dials and sends
//! nothing, so these tests send no packet off the machine.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use soket_client::{Error, Failure};
use soket_protocol::errno;

/// The errno and message of a failed call, or a panic naming what happened instead.
fn errno_of<T: std::fmt::Debug>(what: &str, result: Result<T, Error>) -> (i32, String) {
    match result {
        Err(Error::Errno(Failure { errno, message })) => (errno, message),
        other => panic!("{what}: expected an errno, got {other:?}"),
    }
}

#[tokio::test]
async fn loopback_services_of_the_relay_host_are_never_dialled() {
    // One listener on every address of the host (dual stack when the host has IPv6), one on 127.0.0.2.
    let any = if std::net::TcpListener::bind("[::]:0").is_ok() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let (everywhere, everywhere_count) = counting_listener(any).await;
    let (second, second_count) = counting_listener("127.0.0.2:0").await;
    let names = FixedNames {
        names: vec![("loopy.test".into(), "127.0.0.1".parse().expect("ip"))],
    };
    let relay = start_with_network(&["--allow", "loopy.test:*"], Arc::new(names)).await;
    let refusals_before = metric(relay.addr, "soket_refusals_total").await;
    let client = session(&relay).await;

    // These name the session's own host, where nothing listens on these ports.
    let own_host = [
        "127.0.0.1",
        "localhost",
        "::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "2130706433",
    ];
    // These name the relay host's other addresses, or lead to them: the policy refuses them.
    let refused = ["127.0.0.2", "loopy.test"];
    let mut expected_refusals = 0;
    for port in [everywhere.port(), second.port()] {
        for host in own_host {
            let (errno, message) = errno_of(
                &format!("{host}:{port}"),
                client.connect_tcp(host, port).await.map(|c| c.peer),
            );
            assert_eq!(
                errno,
                errno::ECONNREFUSED,
                "{host}:{port} is the session's own host: {message}"
            );
            assert_eq!(message, "Connection refused", "{host}:{port}");
        }
        for host in refused {
            let (errno, message) = errno_of(
                &format!("{host}:{port}"),
                client.connect_tcp(host, port).await.map(|c| c.peer),
            );
            assert_eq!(errno, errno::EACCES, "{host}:{port}: {message}");
            assert!(
                message.contains(host) && message.contains(&port.to_string()),
                "{host}:{port}: the refusal names the destination: {message}"
            );
            assert!(message.contains("loopback"), "{host}:{port}: {message}");
            expected_refusals += 1;
        }
    }
    // The name's refusal says why a name rule does not reach it.
    let (_, message) = errno_of(
        "loopy.test",
        client
            .connect_tcp("loopy.test", second.port())
            .await
            .map(|c| c.peer),
    );
    assert!(
        message.contains("--allow loopy.test:*") && message.contains("resolves to loopback"),
        "{message}"
    );
    expected_refusals += 1;

    // A dial in flight would land well within this.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        everywhere_count.load(Ordering::SeqCst),
        0,
        "{any} was dialled"
    );
    assert_eq!(
        second_count.load(Ordering::SeqCst),
        0,
        "127.0.0.2 was dialled"
    );
    assert_eq!(
        metric(relay.addr, "soket_refusals_total").await,
        refusals_before + expected_refusals
    );
    client.ping().await.expect("the session goes on");
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn special_addresses_beyond_loopback_are_refused_without_a_dial() {
    let network = Arc::new(RecordingNetwork::default());
    let relay = start_with_network(&[], network.clone()).await;
    let client = session(&relay).await;
    for host in [
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "fd00::1",
        "fe80::1",
        "224.0.0.1",
        "ff02::1",
        "255.255.255.255",
    ] {
        let (errno, message) = errno_of(host, client.connect_tcp(host, 80).await.map(|c| c.peer));
        assert_eq!(errno, errno::EACCES, "{host}: {message}");
        assert!(message.contains(host), "{host}: {message}");
        assert!(
            message.contains("no --allow rule names it"),
            "{host}: {message}"
        );
    }
    assert_eq!(network.asked(), vec![], "nothing was resolved or dialled");
    assert_eq!(metric(relay.addr, "soket_refusals_total").await, 10);
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_name_rule_does_not_lead_to_a_private_address() {
    let network = Arc::new(RecordingNetwork::with_names(&[(
        "internal.test",
        "10.0.0.1",
    )]));
    let relay = start_with_network(&["--allow", "internal.test:*"], network.clone()).await;
    let client = session(&relay).await;
    let (errno, message) = errno_of(
        "internal.test",
        client
            .connect_tcp("internal.test", 80)
            .await
            .map(|c| c.peer),
    );
    assert_eq!(errno, errno::EACCES, "{message}");
    assert!(
        message.contains("internal.test (10.0.0.1):80")
            && message.contains("resolves to private network"),
        "{message}"
    );
    assert_eq!(
        network.asked(),
        vec![Asked::Resolve("internal.test".into())]
    );
    assert_eq!(network.dials(), vec![]);
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn an_address_rule_is_dialled_and_nothing_else() {
    // The control for the tests above: with a rule, the relay does ask the network to connect.
    let network = Arc::new(RecordingNetwork::default());
    let relay = start_with_network(&["--allow", "203.0.113.5:80"], network.clone()).await;
    let client = session(&relay).await;
    let (errno, message) = errno_of(
        "203.0.113.5:80",
        client.connect_tcp("203.0.113.5", 80).await.map(|c| c.peer),
    );
    assert_eq!(
        errno,
        errno::ECONNREFUSED,
        "the recorder refuses: {message}"
    );
    let dialled: SocketAddr = "203.0.113.5:80".parse().expect("addr");
    assert_eq!(network.dials(), vec![dialled]);

    // The same host on another port is refused, and says which rule names it.
    let (errno, message) = errno_of(
        "203.0.113.5:81",
        client.connect_tcp("203.0.113.5", 81).await.map(|c| c.peer),
    );
    assert_eq!(errno, errno::EACCES, "{message}");
    assert!(message.contains("--allow 203.0.113.5:80"), "{message}");

    // A name no rule names is refused before it is even resolved.
    let (errno, message) = errno_of(
        "nowhere.test",
        client.connect_tcp("nowhere.test", 80).await.map(|c| c.peer),
    );
    assert_eq!(errno, errno::EACCES, "{message}");
    assert!(
        message.contains("nowhere.test:80") && message.contains("allow list"),
        "{message}"
    );
    assert_eq!(network.asked(), vec![Asked::Connect(dialled)]);
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn resolve_answers_own_names_and_addresses_and_allowed_names_only() {
    let network = Arc::new(RecordingNetwork::with_names(&[(
        "public.test",
        "198.51.100.7",
    )]));
    let relay = start_with_network(&["--allow", "public.test:443"], network.clone()).await;
    let client = session(&relay).await;
    let localhost: IpAddr = "127.0.0.1".parse().expect("ip");

    let hostname = client.welcome().hostname.clone();
    for name in ["localhost", hostname.as_str()] {
        assert_eq!(
            client.resolve(name).await.expect(name),
            vec![localhost],
            "{name}"
        );
    }
    assert_eq!(
        client.resolve("10.1.2.3").await.expect("an address"),
        vec!["10.1.2.3".parse::<IpAddr>().expect("ip")]
    );
    let (errno, message) = errno_of("example.com", client.resolve("example.com").await);
    assert_eq!(errno, errno::EAI_NONAME, "{message}");
    assert!(
        message.contains("example.com") && message.contains("allow list"),
        "{message}"
    );
    assert_eq!(network.asked(), vec![], "only an allowed name is looked up");

    assert_eq!(
        client.resolve("public.test").await.expect("allowed name"),
        vec!["198.51.100.7".parse::<IpAddr>().expect("ip")]
    );
    assert_eq!(network.asked(), vec![Asked::Resolve("public.test".into())]);
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn udp_to_a_loopback_address_not_allowed_is_refused_and_not_sent() {
    let target = tokio::net::UdpSocket::bind("127.0.0.2:0")
        .await
        .expect("bind target");
    let port = target.local_addr().expect("addr").port();
    let mut buf = [0u8; 64];

    let relay = start(&[]).await;
    let client = session(&relay).await;
    let mut socket = client.bind_udp("", 0).await.expect("bind");
    socket
        .send_to("127.0.0.2", port, b"should not arrive")
        .await
        .expect("send");
    let failed = tokio::time::timeout(Duration::from_secs(5), socket.recv_from())
        .await
        .expect("an answer in time");
    let (errno, message) = errno_of("sendto 127.0.0.2", failed);
    assert_eq!(errno, errno::EACCES, "{message}");
    assert!(message.contains(&format!("127.0.0.2:{port}")), "{message}");
    let nothing =
        tokio::time::timeout(Duration::from_millis(200), target.recv_from(&mut buf)).await;
    assert!(nothing.is_err(), "the datagram arrived: {nothing:?}");
    relay.shutdown().await.expect("shutdown");

    // The control: with a rule, the same datagram does arrive.
    let relay = start(&["--allow", &format!("127.0.0.2:{port}")]).await;
    let client = session(&relay).await;
    let socket = client.bind_udp("", 0).await.expect("bind");
    socket
        .send_to("127.0.0.2", port, b"allowed")
        .await
        .expect("send");
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), target.recv_from(&mut buf))
        .await
        .expect("the allowed datagram arrives")
        .expect("recv");
    assert_eq!(&buf[..n], b"allowed");
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn udp_to_allowed_destinations_goes_through_the_network_and_is_not_sent() {
    // A receiver the rules allow, on loopback: had the relay sent past the recorder, it would get these.
    // The name resolves to it too, so that both the address and the name path are checked on loopback
    // before anything goes beyond it.
    let target = tokio::net::UdpSocket::bind("127.0.0.2:0")
        .await
        .expect("bind target");
    let loopback = target.local_addr().expect("addr");
    let network = Arc::new(RecordingNetwork::with_names(&[("udp.test", "127.0.0.2")]));
    let flags = [
        "--allow",
        &loopback.to_string(),
        "--allow",
        "udp.test:*",
        "--allow",
        "203.0.113.9:5000",
    ];
    let relay = start_with_network(&flags, network.clone()).await;
    let client = session(&relay).await;
    let socket = client.bind_udp("", 0).await.expect("bind");
    let wait_for = async |count: usize| {
        // A name is resolved in a task of its own: wait for it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while network.asked().len() < count && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        network.asked()
    };

    socket
        .send_to("127.0.0.2", loopback.port(), b"to an address")
        .await
        .expect("send");
    socket
        .send_to("udp.test", loopback.port(), b"to a name")
        .await
        .expect("send");
    let mut expected = vec![
        Asked::SendTo(loopback, b"to an address".to_vec()),
        Asked::Resolve("udp.test".into()),
        Asked::SendTo(loopback, b"to a name".to_vec()),
    ];
    assert_eq!(wait_for(3).await, expected, "both went to the network");
    let mut buf = [0u8; 64];
    let nothing =
        tokio::time::timeout(Duration::from_millis(200), target.recv_from(&mut buf)).await;
    assert!(nothing.is_err(), "a datagram was sent: {nothing:?}");

    // Beyond loopback, likewise.
    socket
        .send_to("203.0.113.9", 5000, b"beyond")
        .await
        .expect("send");
    let beyond: SocketAddr = "203.0.113.9:5000".parse().expect("addr");
    expected.push(Asked::SendTo(beyond, b"beyond".to_vec()));
    assert_eq!(wait_for(4).await, expected);
    assert_eq!(network.dials(), vec![], "nothing was dialled");

    // Every datagram counts as bytes up, the one sent to a name too (its lookup runs in a task: wait).
    let sent = ["to an address", "to a name", "beyond"]
        .map(str::len)
        .iter()
        .sum::<usize>() as i64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut counted = metric(relay.addr, "soket_bytes_up_total").await;
    while counted < sent && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        counted = metric(relay.addr, "soket_bytes_up_total").await;
    }
    assert_eq!(counted, sent, "bytes up");
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_name_off_the_allow_list_is_not_resolved_and_dialling_it_is_a_policy_refusal() {
    // Looking the name up fails as for a name that does not exist (gaierror -2, as getaddrinfo only
    // raises gaierror); connecting or sending to it is a refusal of the destination (PermissionError).
    // Every message says that the allow list is why.
    let network = Arc::new(RecordingNetwork::with_names(&[(
        "example.test",
        "198.51.100.7",
    )]));
    let relay = start_with_network(&["--allow", "other.test:*"], network.clone()).await;
    let client = session(&relay).await;

    let (errno, message) = errno_of("resolve", client.resolve("example.test").await);
    assert_eq!(errno, errno::EAI_NONAME, "{message}");
    assert_eq!(
        message,
        "Name or service not known (soket: example.test is not on this relay's allow list)"
    );

    let (errno, message) = errno_of(
        "connect",
        client.connect_tcp("example.test", 80).await.map(|c| c.peer),
    );
    assert_eq!(errno, errno::EACCES, "{message}");
    assert_eq!(
        message,
        "soket relay policy refuses example.test:80: not on the relay's allow list"
    );

    let mut socket = client.bind_udp("", 0).await.expect("bind");
    socket
        .send_to("example.test", 53, b"query")
        .await
        .expect("send");
    let failed = tokio::time::timeout(Duration::from_secs(5), socket.recv_from())
        .await
        .expect("an answer in time");
    let (errno, message) = errno_of("sendto", failed);
    assert_eq!(errno, errno::EACCES, "{message}");
    assert_eq!(
        message,
        "soket relay policy refuses example.test:53: not on the relay's allow list"
    );

    assert_eq!(network.asked(), vec![], "the name was never looked up");
    assert_eq!(metric(relay.addr, "soket_refusals_total").await, 2);
    relay.shutdown().await.expect("shutdown");
}

/// Connects to `host:port` and expects the relay's refusal, naming the destination.
async fn expect_refused(client: &soket_client::Client, host: &str, port: u16) -> String {
    let (errno, message) = errno_of(
        &format!("{host}:{port}"),
        client.connect_tcp(host, port).await.map(|c| c.peer),
    );
    assert_eq!(errno, errno::EACCES, "{host}:{port}: {message}");
    assert!(message.contains("soket relay policy refuses"), "{message}");
    message
}

/// Connects to `host:port` and expects the recording network's answer: the relay dialled it.
async fn expect_dialled(client: &soket_client::Client, host: &str, port: u16) {
    let (errno, message) = errno_of(
        &format!("{host}:{port}"),
        client.connect_tcp(host, port).await.map(|c| c.peer),
    );
    assert_eq!(
        errno,
        errno::ECONNREFUSED,
        "{host}:{port} was not dialled: {message}"
    );
}

/// Special addresses in every disguise a broad rule covers: none may be dialled through `0.0.0.0/0` or
/// `::/0`. Each is refused without touching the network.
const SPECIAL_UNDER_BROAD_RULES: &[&str] = &[
    "169.254.169.254",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "127.0.0.2",
    "224.0.0.1",
    "255.255.255.255",
    "fe80::1",
    "fd00:ec2::254",
    "ff02::1",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b::a00:1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "2002:a9fe:a9fe::",
    "2001:0:a9fe:a9fe::",
    "::a9fe:a9fe",
    "2001:db8::1",
];

#[tokio::test]
async fn a_rule_for_the_whole_internet_does_not_open_special_addresses() {
    let network = Arc::new(RecordingNetwork::default());
    let relay = start_with_network(
        &["--allow", "0.0.0.0/0:*", "--allow", "[::/0]:*"],
        network.clone(),
    )
    .await;
    let client = session(&relay).await;
    for host in SPECIAL_UNDER_BROAD_RULES {
        let message = expect_refused(&client, host, 80).await;
        assert!(
            message.contains("no --allow rule names it"),
            "{host}: {message}"
        );
    }
    assert_eq!(network.asked(), vec![], "no special address was dialled");

    // The control: public addresses, both families, are dialled.
    expect_dialled(&client, "93.184.216.34", 443).await;
    expect_dialled(&client, "2606:4700:4700::1111", 53).await;
    let dialled: Vec<SocketAddr> = vec![
        "93.184.216.34:443".parse().expect("addr"),
        "[2606:4700:4700::1111]:53".parse().expect("addr"),
    ];
    assert_eq!(network.dials(), dialled);
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn public_allows_public_addresses_and_names_on_its_ports_only() {
    let network = Arc::new(RecordingNetwork::with_names(&[
        ("www.example.test", "93.184.216.34"),
        ("rebind.example.test", "169.254.169.254"),
    ]));
    let relay = start_with_network(&["--allow", "public:80"], network.clone()).await;
    let client = session(&relay).await;
    let public: SocketAddr = "93.184.216.34:80".parse().expect("addr");

    expect_dialled(&client, "93.184.216.34", 80).await;
    assert_eq!(network.dials(), vec![public]);

    let message = expect_refused(&client, "93.184.216.34", 81).await;
    assert!(message.contains("--allow public:80"), "{message}");
    for host in SPECIAL_UNDER_BROAD_RULES {
        expect_refused(&client, host, 80).await;
    }
    assert_eq!(network.dials(), vec![public], "only the public address");

    // Any name, as long as it resolves to a public address.
    expect_dialled(&client, "www.example.test", 80).await;
    let message = expect_refused(&client, "rebind.example.test", 80).await;
    assert!(
        message.contains("--allow public:80") && message.contains("resolves to link-local"),
        "{message}"
    );
    assert_eq!(network.dials(), vec![public, public]);
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_rule_naming_a_special_range_opens_it_and_only_it() {
    let network = Arc::new(RecordingNetwork::default());
    let relay = start_with_network(
        &[
            "--allow",
            "10.0.0.0/8:*",
            "--allow",
            "169.254.169.254:80",
            "--allow",
            "0.0.0.0/0:443",
        ],
        network.clone(),
    )
    .await;
    let client = session(&relay).await;
    expect_dialled(&client, "10.0.0.1", 22).await;
    expect_dialled(&client, "::ffff:10.0.0.1", 443).await;
    expect_dialled(&client, "169.254.169.254", 80).await;
    // The same ranges beyond what the rules name stay closed, on 443 too, where 0.0.0.0/0 applies.
    expect_refused(&client, "169.254.169.254", 443).await;
    expect_refused(&client, "169.254.169.253", 80).await;
    expect_refused(&client, "192.168.1.1", 443).await;
    expect_refused(&client, "64:ff9b::a00:1", 443).await;
    let dialled: Vec<SocketAddr> = ["10.0.0.1:22", "10.0.0.1:443", "169.254.169.254:80"]
        .iter()
        .map(|a| a.parse().expect("addr"))
        .collect();
    assert_eq!(network.dials(), dialled);
    relay.shutdown().await.expect("shutdown");
}
