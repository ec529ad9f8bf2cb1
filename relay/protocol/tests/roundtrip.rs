//! Property tests: every message survives encode then decode unchanged, and no byte string makes the
//! decoder panic or accept a frame that does not re-encode to itself.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use proptest::prelude::*;
use soket_protocol::{
    Down, GoodbyeCode, StreamId, Transport, Up, MAX_ADDRS, MAX_HOST, MAX_PAYLOAD,
};

fn stream() -> impl Strategy<Value = StreamId> {
    (1u32..=u32::MAX).prop_map(StreamId)
}

fn host() -> impl Strategy<Value = String> {
    // Any Unicode, kept under the byte limit so that encoding does not cut it.
    any::<String>().prop_filter("within MAX_HOST bytes", |s| s.len() <= MAX_HOST)
}

fn message() -> impl Strategy<Value = String> {
    any::<String>().prop_filter("within 1 KiB", |s| s.len() <= 1024)
}

fn payload() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec(any::<u8>(), MAX_PAYLOAD - 2..=MAX_PAYLOAD),
    ]
    .prop_map(Bytes::from)
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from)
    ]
}

fn addr() -> impl Strategy<Value = SocketAddr> {
    (ip(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port))
}

fn up() -> impl Strategy<Value = Up> {
    let transport = prop_oneof![Just(Transport::Tcp), Just(Transport::Udp)];
    prop_oneof![
        (stream(), host(), any::<u16>()).prop_map(|(stream, host, port)| Up::Connect {
            stream,
            host,
            port
        }),
        (stream(), transport, host(), any::<u16>()).prop_map(|(stream, transport, host, port)| {
            Up::Bind {
                stream,
                transport,
                host,
                port,
            }
        }),
        (stream(), any::<u32>()).prop_map(|(stream, backlog)| Up::Listen { stream, backlog }),
        (stream(), payload()).prop_map(|(stream, payload)| Up::Data { stream, payload }),
        (stream(), any::<u32>()).prop_map(|(stream, amount)| Up::Credit { stream, amount }),
        stream().prop_map(|stream| Up::Shutdown { stream }),
        stream().prop_map(|stream| Up::Close { stream }),
        stream().prop_map(|stream| Up::Reset { stream }),
        (stream(), host(), any::<u16>(), payload()).prop_map(|(stream, host, port, payload)| {
            Up::SendTo {
                stream,
                host,
                port,
                payload,
            }
        }),
        (stream(), host()).prop_map(|(stream, host)| Up::Resolve { stream, host }),
        stream().prop_map(|stream| Up::Ping { stream }),
    ]
}

fn down() -> impl Strategy<Value = Down> {
    prop_oneof![
        (host(), host(), any::<u32>()).prop_map(|(hostname, public_host, window)| Down::Welcome {
            hostname,
            public_host,
            window
        }),
        (stream(), addr(), addr()).prop_map(|(stream, local, peer)| Down::Connected {
            stream,
            local,
            peer
        }),
        (stream(), addr()).prop_map(|(stream, local)| Down::Bound { stream, local }),
        (stream(), host()).prop_map(|(stream, public)| Down::Listening { stream, public }),
        (stream(), stream(), addr(), addr()).prop_map(|(stream, conn, local, peer)| {
            Down::Incoming {
                stream,
                conn,
                local,
                peer,
            }
        }),
        (stream(), payload()).prop_map(|(stream, payload)| Down::Data { stream, payload }),
        (stream(), any::<u32>()).prop_map(|(stream, amount)| Down::Credit { stream, amount }),
        stream().prop_map(|stream| Down::Shutdown { stream }),
        (stream(), any::<i32>(), message()).prop_map(|(stream, errno, message)| Down::Closed {
            stream,
            errno,
            message
        }),
        (stream(), addr(), payload()).prop_map(|(stream, from, payload)| Down::Datagram {
            stream,
            from,
            payload
        }),
        (stream(), proptest::collection::vec(ip(), 0..=MAX_ADDRS))
            .prop_map(|(stream, addrs)| Down::Resolved { stream, addrs }),
        (stream(), any::<i32>(), message()).prop_map(|(stream, errno, message)| Down::Failed {
            stream,
            errno,
            message
        }),
        stream().prop_map(|stream| Down::Pong { stream }),
        (1u16..=u16::MAX, message()).prop_map(|(code, message)| Down::Goodbye {
            code: GoodbyeCode::from_u16(code),
            message
        }),
    ]
}

proptest! {
    #[test]
    fn up_round_trips(msg in up()) {
        let frame = msg.encode();
        prop_assert_eq!(Up::decode(&frame), Ok(msg));
        // A frame of one direction is never a frame of the other.
        prop_assert!(Down::decode(&frame).is_err());
    }

    #[test]
    fn down_round_trips(msg in down()) {
        let frame = msg.encode();
        prop_assert_eq!(Down::decode(&frame), Ok(msg));
        prop_assert!(Up::decode(&frame).is_err());
    }

    #[test]
    fn a_data_frame_built_in_place_is_the_encoded_frame(stream in stream(), payload in payload()) {
        let mut frame = Down::data_header(stream).to_vec();
        frame.extend_from_slice(&payload);
        prop_assert_eq!(Bytes::from(frame), Down::Data { stream, payload }.encode());
    }

    #[test]
    fn every_prefix_of_a_frame_is_refused(msg in up()) {
        let frame = msg.encode();
        for len in 0..frame.len() {
            let cut = frame.slice(..len);
            // A cut Data payload is still a valid, shorter Data frame; everything else must be refused.
            if let Ok(decoded) = Up::decode(&cut) {
                prop_assert!(matches!(decoded, Up::Data { .. } | Up::SendTo { .. }), "accepted {decoded:?}");
            }
        }
        let mut longer = frame.to_vec();
        longer.push(0);
        if !matches!(msg, Up::Data { .. } | Up::SendTo { .. }) {
            prop_assert!(Up::decode(&Bytes::from(longer)).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_reencode_exactly(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let frame = Bytes::from(bytes);
        if let Ok(msg) = Up::decode(&frame) {
            prop_assert_eq!(msg.encode(), frame.clone());
        }
        if let Ok(msg) = Down::decode(&frame) {
            prop_assert_eq!(msg.encode(), frame);
        }
    }
}

#[test]
fn oversized_and_empty_frames_are_refused() {
    assert!(Up::decode(&Bytes::new()).is_err());
    let mut big = vec![0x04u8, 0, 0, 0, 1];
    big.resize(soket_protocol::MAX_FRAME + 1, 0);
    assert!(matches!(
        Up::decode(&Bytes::from(big)),
        Err(soket_protocol::DecodeError::TooLarge(_))
    ));
    let mut over = vec![0x04u8, 0, 0, 0, 1];
    over.resize(5 + MAX_PAYLOAD + 1, 0);
    assert!(Up::decode(&Bytes::from(over)).is_err());
}

#[test]
fn stream_zero_is_only_the_session() {
    assert!(Up::decode(
        &Up::Close {
            stream: StreamId(1)
        }
        .encode()
    )
    .is_ok());
    let frame = Bytes::from_static(&[0x07, 0, 0, 0, 0]);
    assert!(Up::decode(&frame).is_err());
}
