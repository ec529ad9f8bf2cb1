//! The session's streams: what each stream id the page opened stands for now.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpSocket, UdpSocket};
use tokio::task::AbortHandle;

use super::{Conn, Credit};

pub(super) enum Stream {
    /// A `Connect` under way.
    Pending {
        task: AbortHandle,
    },
    /// A bound TCP socket, not yet listening.
    Bound {
        socket: TcpSocket,
        port: u16,
        local: SocketAddr,
    },
    Listening {
        port: u16,
        public: String,
        credit: Arc<Credit>,
        task: AbortHandle,
    },
    Connected(Conn),
    Udp {
        port: u16,
        socket: Arc<UdpSocket>,
        task: AbortHandle,
    },
    /// The relay reported the stream gone (or a connect failed); frames for it are dropped until the
    /// page's `Close` frees the id.
    Closed,
}
