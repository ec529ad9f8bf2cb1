//! The classic small services (to be written): echo, discard, daytime, qotd, chargen on TCP and UDP.

use std::io;

use tokio::net::{TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

use super::{Context, Service};

pub async fn serve_tcp(service: Service, socket: TcpStream, context: Context) -> io::Result<()> {
    let _ = (service, socket, context);
    Ok(())
}

pub async fn serve_udp(service: Service, socket: UdpSocket, shutdown: CancellationToken) {
    let _ = (service, socket);
    shutdown.cancelled().await;
}
