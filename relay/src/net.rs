//! The real network behind a trait: name resolution and TCP dials.
//!
//! Sessions reach the outside world only through [`Network`], after the policy agreed. Tests swap in a
//! network that records what it was asked and dials nothing, so that refusals of addresses beyond loopback
//! are tested without sending a packet.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;

use tokio::net::TcpStream;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a session may ask of the world outside its own host.
pub trait Network: Send + Sync + 'static {
    /// The addresses of `name` (already checked against the allow list).
    fn resolve<'a>(&'a self, name: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>>;

    /// A TCP connection to `addr` (already checked against the policy).
    fn connect<'a>(&'a self, addr: SocketAddr) -> BoxFuture<'a, io::Result<TcpStream>>;
}

/// The host's resolver and TCP stack.
pub struct SystemNetwork;

impl Network for SystemNetwork {
    fn resolve<'a>(&'a self, name: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((name, 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }

    fn connect<'a>(&'a self, addr: SocketAddr) -> BoxFuture<'a, io::Result<TcpStream>> {
        Box::pin(TcpStream::connect(addr))
    }
}
