//! The real network behind a trait: name resolution, TCP dials and UDP sends.
//!
//! Sessions reach the outside world only through [`Network`], after the policy agreed: its methods take
//! only what [`Egress`](crate::egress::Egress) allowed ([`Allowed`], [`AllowedName`]). Tests swap in a
//! network that records what it was asked and dials or sends nothing, so that refusals of addresses beyond
//! loopback are tested without sending a packet. What stays on the relay host (a session's own ports, the
//! lab's servers) is not the outside world and does not go through it.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;

use tokio::net::{TcpStream, UdpSocket};

use crate::egress::{Allowed, AllowedName};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a session may ask of the world outside its own host.
pub trait Network: Send + Sync + 'static {
    /// The addresses of a name the allow list names.
    fn resolve<'a>(&'a self, name: &'a AllowedName) -> BoxFuture<'a, io::Result<Vec<IpAddr>>>;

    /// A TCP connection to a destination the policy allows.
    fn connect(&self, to: Allowed) -> BoxFuture<'_, io::Result<TcpStream>>;

    /// Sends one datagram from the session's `socket` to a destination the policy allows, without
    /// waiting: when the socket's buffer is full the datagram is dropped, as UDP may.
    fn send_to(&self, socket: &UdpSocket, payload: &[u8], to: Allowed) -> io::Result<()>;
}

/// The host's resolver, TCP and UDP.
pub struct SystemNetwork;

impl Network for SystemNetwork {
    fn resolve<'a>(&'a self, name: &'a AllowedName) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((name.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }

    fn connect(&self, to: Allowed) -> BoxFuture<'_, io::Result<TcpStream>> {
        Box::pin(TcpStream::connect(to.addr()))
    }

    fn send_to(&self, socket: &UdpSocket, payload: &[u8], to: Allowed) -> io::Result<()> {
        send_datagram(socket, payload, to.addr())
    }
}

/// Sends one datagram now, or drops it if the socket's buffer is full.
pub fn send_datagram(socket: &UdpSocket, payload: &[u8], dest: SocketAddr) -> io::Result<()> {
    // Straight to the non-blocking socket: tokio's `try_send_to` says WouldBlock for a socket bound in
    // this same turn (its readiness is not known yet), which would drop the first datagram.
    match socket2::SockRef::from(socket).send_to(payload, &dest.into()) {
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
        _ => Ok(()),
    }
}
