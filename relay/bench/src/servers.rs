//! The far ends every path talks to: a sink, a source and an echo server, on real loopback sockets, and
//! for the browser part's Python program a drain (a sink that answers with its count).
//!
//! They run on plain threads with blocking sockets, outside the bench's tokio runtime, so that they behave
//! like the separate programs they stand for and do not queue behind the clients' tasks. Each connection
//! gets its own thread; the accept loops live as long as the bench process.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use anyhow::{Context, Result};
use tokio::sync::mpsc;

/// Bytes the servers read or write per call.
const CHUNK: usize = 256 * 1024;

/// A discard server that reports when a connection has delivered `expect` bytes.
pub struct Sink {
    pub addr: SocketAddr,
    /// One instant per connection that reached `expect` bytes: when its last byte was read. A connection
    /// that ends sooner (a readiness probe) reports nothing.
    pub done: mpsc::UnboundedReceiver<Instant>,
}

/// Starts a [`Sink`] on `ip`, port 0.
pub fn sink(ip: &str, expect: u64) -> Result<Sink> {
    let listener = TcpListener::bind((ip, 0)).with_context(|| format!("bind a sink on {ip}"))?;
    let addr = listener.local_addr()?;
    let (tx, done) = mpsc::unbounded_channel();
    serve(listener, move |mut socket| {
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        let mut reported = false;
        loop {
            match socket.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n as u64,
            }
            if !reported && total >= expect {
                reported = true;
                let _ = tx.send(Instant::now());
            }
        }
    });
    Ok(Sink { addr, done })
}

/// Starts a source on `ip`, port 0: for each connection it waits for one byte (the client's "go", so that
/// the client's clock starts before the first byte leaves), writes `total` bytes and closes.
pub fn source(ip: &str, total: u64) -> Result<SocketAddr> {
    let listener = TcpListener::bind((ip, 0)).with_context(|| format!("bind a source on {ip}"))?;
    let addr = listener.local_addr()?;
    let data: Arc<Vec<u8>> = Arc::new(crate::pattern(CHUNK));
    serve(listener, move |mut socket| {
        let mut go = [0u8; 1];
        if socket.read_exact(&mut go).is_err() {
            return;
        }
        let mut left = total;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            if socket.write_all(&data[..n]).is_err() {
                return;
            }
            left -= n as u64;
        }
        let _ = socket.shutdown(Shutdown::Write);
        // Wait (a bounded time) for the client's close, so that ours is not a reset for bytes it still had
        // in flight.
        let _ = socket.set_read_timeout(Some(std::time::Duration::from_secs(10)));
        let mut rest = [0u8; 64];
        while matches!(socket.read(&mut rest), Ok(n) if n > 0) {}
    });
    Ok(addr)
}

/// Starts an echo server on `ip`, port 0, with Nagle off (it answers small messages at once).
pub fn echo(ip: &str) -> Result<SocketAddr> {
    let listener = TcpListener::bind((ip, 0)).with_context(|| format!("bind an echo on {ip}"))?;
    let addr = listener.local_addr()?;
    serve(listener, |mut socket| {
        let _ = socket.set_nodelay(true);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match socket.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if socket.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(addr)
}

/// Starts a drain on `ip`, port 0: for each connection it reads to end of file, then answers the number of
/// bytes it read (8 bytes, big-endian) and closes. A client that half-closes after its last write and
/// waits for the answer times the delivery of every byte, which a sink cannot tell it.
pub fn drain(ip: &str) -> Result<SocketAddr> {
    let listener = TcpListener::bind((ip, 0)).with_context(|| format!("bind a drain on {ip}"))?;
    let addr = listener.local_addr()?;
    serve(listener, |mut socket| {
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            match socket.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n as u64,
                Err(_) => return,
            }
        }
        let _ = socket.write_all(&total.to_be_bytes());
    });
    Ok(addr)
}

/// Accepts connections on `listener` for the life of the process, each handled on a thread of its own.
fn serve<F>(listener: TcpListener, handle: F)
where
    F: Fn(TcpStream) + Clone + Send + 'static,
{
    thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(socket) = socket else { continue };
            let handle = handle.clone();
            thread::spawn(move || handle(socket));
        }
    });
}
