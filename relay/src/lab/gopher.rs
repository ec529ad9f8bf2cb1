//! The lab's gopher server (to be written).

use std::io;

use tokio::net::TcpStream;

use super::Context;

pub async fn serve(socket: TcpStream, context: Context) -> io::Result<()> {
    let _ = (socket, context);
    Ok(())
}
