//! UDP sockets: datagrams sent for the page and received for it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use soket_protocol::errno;
use soket_protocol::{Down, StreamId, Transport};
use tokio::net::UdpSocket;

use super::{
    protocol_error, unknown, Buffered, End, Failure, Link, Out, Session, Stream, MAX_DATAGRAM,
};
use crate::egress::Allowed;
use crate::lab;
use crate::net;
use crate::vhost::{Binding, Destination};

impl Session {
    /// Binds a real UDP socket for the session's `port` and starts receiving on it.
    pub(super) fn bind_udp(&mut self, stream: StreamId, port: u16) -> Result<(), Failure> {
        let socket = Arc::new(
            self.shared
                .real_ports
                .bind_udp()
                .map_err(|e| Failure::io(&e))?,
        );
        let real = socket.local_addr().map_err(|e| Failure::io(&e))?;
        self.host.claim(Transport::Udp, port, Binding { real });
        let task = self.tasks.spawn(receive_datagrams(
            self.link(stream),
            socket.clone(),
            self.host.udp_name_table(),
        ));
        self.streams
            .open(stream, Stream::Udp { port, socket, task });
        Ok(())
    }

    pub(super) async fn send_to(
        &mut self,
        stream: StreamId,
        host: &str,
        port: u16,
        payload: Bytes,
    ) -> Result<(), End> {
        let socket = match self.streams.get(stream) {
            Some(Stream::Udp { socket, .. }) => socket.clone(),
            Some(Stream::Closed) => return Ok(()),
            Some(_) => {
                return Err(protocol_error(format!(
                    "SendTo on stream {stream}, which is not a UDP socket"
                )))
            }
            None => return Err(unknown(stream)),
        };
        if payload.len() > MAX_DATAGRAM {
            return self
                .answer(stream, Err(Failure::errno(errno::EMSGSIZE)))
                .await;
        }
        // The session's own ports and the lab's are on the relay host; everything else is the outside
        // world, reached through the egress.
        let to = match self.host.destination(host) {
            // A datagram to a port nobody bound vanishes, as on Linux.
            Destination::OwnHost { .. } => match self.host.binding(Transport::Udp, port) {
                Some(binding) => Hop::Host(binding.real),
                None => return Ok(()),
            },
            Destination::Lab => {
                let service = lab::Service::from_port(port);
                match service.and_then(|s| self.shared.lab.udp_addr(s)) {
                    Some(real) => Hop::Host(real),
                    None => return Ok(()),
                }
            }
            Destination::Addr(ip) => {
                match self.shared.egress.route(self.id, SocketAddr::new(ip, port)) {
                    Ok(to) => Hop::Outside(to),
                    Err(refusal) => return self.answer(stream, Err(refusal)).await,
                }
            }
            Destination::Name(name) => {
                let name = match self.shared.egress.name(self.id, &name, port) {
                    Ok(name) => name,
                    Err(refusal) => return self.answer(stream, Err(refusal)).await,
                };
                let shared = self.shared.clone();
                let rate = self.rate.clone();
                let session = self.id;
                let started = self.spawn_resolution(async move {
                    let egress = &shared.egress;
                    let to = match egress.route_name(session, &name, port).await {
                        Ok(to) => to,
                        Err(failure) => return Some(Down::failed(stream, failure)),
                    };
                    // The same budget and count as a datagram to an address.
                    rate.take(payload.len()).await;
                    let sent = egress.send_to(&socket, &payload, to);
                    let len = payload.len() as u64;
                    shared.metrics.bytes_up.fetch_add(len, Relaxed);
                    sent.err().map(|e| Down::failed(stream, Failure::io(&e)))
                });
                return match started {
                    true => Ok(()),
                    false => {
                        self.answer(stream, Err(Failure::errno(errno::ENOBUFS)))
                            .await
                    }
                };
            }
        };
        self.rate.take(payload.len()).await;
        let _ = match to {
            Hop::Host(real) => net::send_datagram(&socket, &payload, real),
            Hop::Outside(to) => self.shared.egress.send_to(&socket, &payload, to),
        };
        self.shared
            .metrics
            .bytes_up
            .fetch_add(payload.len() as u64, Relaxed);
        Ok(())
    }
}

/// Where a datagram goes: a real port on the relay host (the session's own or the lab's), or the outside
/// world.
enum Hop {
    Host(SocketAddr),
    Outside(Allowed),
}

/// Receives datagrams on a UDP stream's socket and sends them to the page.
async fn receive_datagrams(
    link: Link,
    socket: Arc<UdpSocket>,
    names: Arc<Mutex<HashMap<SocketAddr, u16>>>,
) {
    let Link {
        stream,
        out,
        out_budget: budget,
        rate,
        shared,
        ..
    } = &link;
    let stream = *stream;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            // An ICMP error from an earlier send; an unconnected socket ignores it.
            Err(_) => continue,
        };
        // A datagram from the session's own socket shows the port the session knows it by.
        let own = names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&from)
            .copied();
        let from = match own {
            Some(port) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            None => shared.lab.udp_visible(from).unwrap_or(from),
        };
        // When the page is behind, drop rather than queue: UDP promises no delivery.
        let Ok(permit) = budget.try_acquire_many(n as u32) else {
            continue;
        };
        permit.forget();
        let held = Buffered::new(shared, n, Some(budget.clone()));
        rate.take(n).await;
        let datagram = Down::Datagram {
            stream,
            from,
            payload: Bytes::copy_from_slice(&buf[..n]),
        };
        if out.send(Out::Data(datagram.encode(), held)).await.is_err() {
            return;
        }
    }
}
